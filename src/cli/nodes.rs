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
    /// Drain the nodes entering maintenance (the site's drain hook).
    pub drain: bool,
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
    if req.drain && project.site.drain.is_none() {
        return refuse(
            err,
            Refusal::usage(
                "--drain: the site has no drain hooks (`drain:` in drover.yml) to drain with; nothing was changed",
            ),
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
    // In maintenance first (so no run starts them meanwhile), then drained.
    let drained = if req.on && req.drain {
        let local = project.site.transport == crate::site::SiteTransport::Local;
        let why = format!("drover: maintenance by {by}: {}", req.reason.unwrap_or_default());
        let project = std::sync::Arc::new(project);
        let Ok(rt) = tokio::runtime::Builder::new_current_thread().enable_all().build() else {
            return refuse(
                err,
                Refusal("cannot start the runtime".into(), exit_code::FAILURE),
            );
        };
        match rt.block_on(crate::service::drain_for_maintenance(
            &project, &names, &why, local,
        )) {
            Ok(d) => Some(d),
            Err(e) => return refuse(err, Refusal(e, exit_code::FAILURE)),
        }
    } else {
        None
    };
    let failed: Vec<&(String, Result<(), String>)> =
        drained.iter().flatten().filter(|(_, r)| r.is_err()).collect();
    let code = if failed.is_empty() {
        exit_code::OK
    } else {
        exit_code::FAILURE
    };
    if req.json {
        let now = store.in_maintenance().unwrap_or_default();
        let mut v = serde_json::json!({ "maintenance": now });
        if let Some(d) = &drained {
            v["drain"] = d
                .iter()
                .map(|(n, r)| match r {
                    Ok(()) => serde_json::json!({"node": n, "drain": "asked"}),
                    Err(e) => serde_json::json!({"node": n, "drain": "failed", "error": e}),
                })
                .collect();
        }
        let _ = writeln!(out, "{v}");
        return code;
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
    if let Some(d) = &drained {
        let asked: Vec<String> = d
            .iter()
            .filter(|(_, r)| r.is_ok())
            .map(|(n, _)| n.clone())
            .collect();
        if !asked.is_empty() {
            let _ = writeln!(
                out,
                "drain asked for: {} (the scheduler drains them as their jobs end)",
                crate::hostlist::compress(&asked)
            );
        }
        for (n, r) in &failed {
            if let Err(e) = r {
                let _ = writeln!(err, "error: {n}: not drained: {e}");
            }
        }
    }
    code
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
