//! `drover nodes maintenance on|off|list`: automation off (and on again) for nodes,
//! with who and why, kept in the state database. A node in maintenance is left out of
//! every plan (listed with its reason), never checked, started or hooked by a run; a
//! run already going skips it if its turn has not begun.

use std::io::Write;
use std::path::Path;

use super::pause::who;
use super::run_state::{ReadState, open_store, open_store_read, store_error_text};
use super::runs::load_project;
use super::selection::Refusal;
use crate::exit_code;
use crate::inventory::Inventory;
use crate::store::Write as StoreWrite;

fn refuse(err: &mut dyn Write, r: Refusal) -> i32 {
    let _ = writeln!(err, "error: {}", r.0);
    r.1
}

/// The inventory's names for `entries` (names, host lists like `n[001-004]`, `@group`),
/// in the order given without duplicates. Any name the inventory does not have refuses
/// the whole list, naming every one of them, so nothing is half done.
pub(super) fn resolve_names(inv: &Inventory, entries: &[String]) -> Result<Vec<String>, Refusal> {
    if entries.is_empty() {
        return Err(Refusal::usage("no node given"));
    }
    let mut names = Vec::new();
    let mut seen = std::collections::HashSet::new();
    let mut unknown = Vec::new();
    for e in entries {
        let expanded = if e.starts_with('@') {
            inv.resolve(e)
                .map(|ids| ids.into_iter().map(|i| inv.node(i).name.clone()).collect())
                .map_err(|p| Refusal::usage(p.message))?
        } else {
            crate::hostlist::expand(e).map_err(|x| Refusal::usage(format!("`{e}`: {x}")))?
        };
        for n in expanded {
            if inv.find(&n).is_none() {
                unknown.push(n);
            } else if seen.insert(n.clone()) {
                names.push(n);
            }
        }
    }
    if !unknown.is_empty() {
        return Err(Refusal::usage(format!(
            "not in the inventory: {}; nothing was changed",
            crate::hostlist::compress(&unknown)
        )));
    }
    Ok(names)
}

/// `nodes maintenance on|off`.
pub struct MaintenanceRequest<'a> {
    pub site: &'a Path,
    pub on: bool,
    pub nodes: &'a [String],
    pub reason: Option<&'a str>,
    pub by: Option<&'a str>,
    pub json: bool,
}

pub fn maintenance(
    req: &MaintenanceRequest<'_>,
    color: bool,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> i32 {
    let project = match load_project(req.site, color, err) {
        Ok(p) => p,
        Err(c) => return c,
    };
    let names = match resolve_names(&project.inventory, req.nodes) {
        Ok(n) => n,
        Err(r) => return refuse(err, r),
    };
    if req.on && req.reason.is_none_or(|r| r.trim().is_empty()) {
        return refuse(
            err,
            Refusal::usage("a node goes into maintenance with a reason: pass --reason TEXT"),
        );
    }
    let store = match open_store(&project) {
        Ok(s) => s,
        Err(r) => return refuse(err, r),
    };
    let at = jiff::Timestamp::now();
    let by = who(req.by);
    let writes = names
        .iter()
        .map(|node| {
            if req.on {
                StoreWrite::MaintenanceOn {
                    node: node.clone(),
                    reason: req.reason.map(str::to_string),
                    by: by.clone(),
                    at,
                }
            } else {
                StoreWrite::MaintenanceOff { node: node.clone() }
            }
        })
        .collect();
    // One request, one transaction: all of them or none.
    if let Err(e) = store.write_blocking(writes) {
        return refuse(err, Refusal(store_error_text(&e), exit_code::FAILURE));
    }
    if req.json {
        let now = store.in_maintenance().unwrap_or_default();
        let _ = writeln!(out, "{}", serde_json::json!({ "maintenance": now }));
        return exit_code::OK;
    }
    let list = crate::hostlist::compress(&names);
    if req.on {
        let _ = writeln!(
            out,
            "in maintenance: {list} ({}): no run checks or starts {}; a node already in a run's turn finishes it",
            req.reason.unwrap_or_default(),
            if names.len() == 1 { "it" } else { "them" }
        );
    } else {
        let _ = writeln!(out, "out of maintenance: {list}");
    }
    exit_code::OK
}

/// `nodes maintenance list`: every node in maintenance, with who, since and why.
pub fn maintenance_list(
    site: &Path,
    json: bool,
    color: bool,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> i32 {
    let project = match load_project(site, color, err) {
        Ok(p) => p,
        Err(c) => return c,
    };
    let nodes = match open_store_read(&project) {
        Ok(s) => match s.in_maintenance() {
            Ok(n) => n,
            Err(e) => return refuse(err, Refusal(store_error_text(&e), exit_code::FAILURE)),
        },
        Err(ReadState::NoRuns(_)) => Vec::new(),
        Err(ReadState::Failed(r)) => return refuse(err, r),
    };
    if json {
        let _ = writeln!(out, "{}", serde_json::json!({ "maintenance": nodes }));
        return exit_code::OK;
    }
    if nodes.is_empty() {
        let _ = writeln!(out, "no node is in maintenance");
    }
    for n in &nodes {
        let gone = if project.inventory.find(&n.node).is_none() {
            " (no longer in the inventory)"
        } else {
            ""
        };
        let _ = writeln!(out, "{}: {n}{gone}", n.node);
    }
    exit_code::OK
}
