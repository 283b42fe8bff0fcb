//! `drover nodes get|commission|decommission|maintenance|discover` against the daemon
//! (clusterctl's shape, seed 002). Node lists are names and host lists (`n[001-004]`),
//! checked here for their syntax and sent as given: the daemon resolves them against
//! its inventory and refuses the whole request if any is unknown (every one listed).

use std::io::Write;

use serde_json::Value;

use super::api_client::ApiClient;
use super::client_error::ClientError;
use super::runs_commands::short_time;
use super::table::Table;
use crate::api::{
    DiscoverRequest, DiscoverResult, DiscoverStatus, Discovered, MaintenanceRequest, NodeList, NodesRequest,
    Switch,
};
use crate::exit_code;

/// The entries of `args`, commas split outside brackets, each host list checked, so a
/// typo is refused here with the expression rather than as unknown names.
fn entries(args: &[String]) -> Result<Vec<String>, ClientError> {
    let mut v = Vec::new();
    for a in args {
        for e in crate::service::split_list(a) {
            crate::hostlist::expand(&e).map_err(|x| ClientError::Usage(format!("`{e}`: {x}")))?;
            v.push(e);
        }
    }
    Ok(v)
}

fn parse<T: serde::de::DeserializeOwned>(c: &ApiClient, v: Value) -> Result<T, ClientError> {
    serde_json::from_value(v).map_err(|e| ClientError::NotTheApi {
        url: c.server(),
        status: 200,
        body: format!("an answer that does not parse: {e}"),
    })
}

async fn fetch(c: &ApiClient, names: &[String]) -> Result<Value, ClientError> {
    let names = entries(names)?.join(",");
    let q: Vec<(&str, &str)> = if names.is_empty() {
        Vec::new()
    } else {
        vec![("names", names.as_str())]
    };
    c.get(&["nodes"], &q).await
}

/// `nodes get [NODES...]`: every node, or those named (a name the daemon does not
/// have is ignored, as seed 002 asks).
pub async fn get(
    c: &ApiClient,
    names: &[String],
    json: bool,
    out: &mut dyn Write,
) -> Result<i32, ClientError> {
    let v = fetch(c, names).await?;
    if json {
        let _ = writeln!(out, "{v}");
        return Ok(exit_code::OK);
    }
    let list: NodeList = parse(c, v)?;
    if list.nodes.is_empty() {
        let _ = writeln!(out, "no nodes");
        return Ok(exit_code::OK);
    }
    let mut t = Table::new(&["NODE", "ADDRESS", "GROUPS", "HA GROUP", "STATE", "WORKFLOWS"]);
    for n in &list.nodes {
        let state = match &n.maintenance {
            Some(m) => format!(
                "maintenance (by {} since {}{})",
                m.by,
                short_time(&m.since),
                m.reason.as_deref().map(|r| format!(": {r}")).unwrap_or_default()
            ),
            None => n.lifecycle.clone(),
        };
        let workflows: Vec<String> = n
            .workflows
            .iter()
            .map(|w| match &w.commit {
                Some(c) => format!(
                    "{} v{} @{}",
                    w.workflow,
                    w.version,
                    c.chars().take(8).collect::<String>()
                ),
                None => format!("{} v{}", w.workflow, w.version),
            })
            .collect();
        t.row(vec![
            n.name.clone(),
            n.address.clone(),
            n.groups.join(","),
            n.ha_group.clone().unwrap_or_else(|| "-".into()),
            state,
            if workflows.is_empty() {
                "-".into()
            } else {
                workflows.join(", ")
            },
        ]);
    }
    let _ = write!(out, "{}", t.render());
    Ok(exit_code::OK)
}

/// `nodes maintenance list`: the nodes in maintenance, with who, since when and why.
pub async fn maintenance_list(c: &ApiClient, json: bool, out: &mut dyn Write) -> Result<i32, ClientError> {
    let v = fetch(c, &[]).await?;
    let list: NodeList = parse(c, v)?;
    let inm: Vec<_> = list.nodes.iter().filter(|n| n.maintenance.is_some()).collect();
    if json {
        let _ = writeln!(out, "{}", serde_json::json!({ "nodes": inm }));
        return Ok(exit_code::OK);
    }
    if inm.is_empty() {
        let _ = writeln!(out, "no node is in maintenance");
        return Ok(exit_code::OK);
    }
    let mut t = Table::new(&["NODE", "BY", "SINCE", "REASON"]);
    for n in inm {
        if let Some(m) = &n.maintenance {
            t.row(vec![
                n.name.clone(),
                m.by.clone(),
                short_time(&m.since),
                m.reason.clone().unwrap_or_default(),
            ]);
        }
    }
    let _ = write!(out, "{}", t.render());
    Ok(exit_code::OK)
}

/// A lifecycle operation as the command line gives it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lifecycle<'a> {
    Commission,
    Decommission,
    MaintenanceOn { reason: Option<&'a str> },
    MaintenanceOff,
}

pub async fn lifecycle(
    c: &ApiClient,
    op: Lifecycle<'_>,
    nodes: &[String],
    extra_vars: Option<serde_json::Map<String, Value>>,
    json: bool,
    out: &mut dyn Write,
) -> Result<i32, ClientError> {
    let nodes = entries(nodes)?;
    let v = match op {
        Lifecycle::Commission | Lifecycle::Decommission => {
            let route = if op == Lifecycle::Commission {
                "commission"
            } else {
                "decommission"
            };
            let body = NodesRequest { nodes, extra_vars };
            c.post(&["nodes", route], &body).await?
        }
        Lifecycle::MaintenanceOn { reason } => {
            let body = MaintenanceRequest {
                nodes,
                state: Switch::On,
                reason: reason.map(str::to_string),
                extra_vars,
            };
            c.post(&["nodes", "maintenance"], &body).await?
        }
        Lifecycle::MaintenanceOff => {
            let body = MaintenanceRequest {
                nodes,
                state: Switch::Off,
                reason: None,
                extra_vars,
            };
            c.post(&["nodes", "maintenance"], &body).await?
        }
    };
    if json {
        let _ = writeln!(out, "{v}");
        return Ok(exit_code::OK);
    }
    let a: crate::api::LifecycleStarted = parse(c, v)?;
    let names = crate::hostlist::compress(&a.nodes);
    let count = crate::report::plural(a.nodes.len(), "node");
    match (&a.run_id, op) {
        (Some(run), _) => {
            let _ = writeln!(
                out,
                "{}: run {run} started on {count} {names}; they are `{}` once it has wound down\nfollow it: drover runs watch {run}",
                a.operation, a.state
            );
        }
        (None, Lifecycle::MaintenanceOff) => {
            let _ = writeln!(out, "maintenance off: {count} {names}");
        }
        (None, _) => {
            let _ = writeln!(
                out,
                "{}: {count} {names} recorded as `{}` (the site names no workflow for it)",
                a.operation, a.state
            );
        }
    }
    Ok(exit_code::OK)
}

/// `nodes discover ADDRESS...`: each address probed over SSH by the daemon. Exit 6 when
/// some could not be reached (each is listed with why), like failed nodes of a run.
pub async fn discover(
    c: &ApiClient,
    addresses: &[String],
    json: bool,
    out: &mut dyn Write,
) -> Result<i32, ClientError> {
    let body = DiscoverRequest {
        addresses: addresses.to_vec(),
    };
    let v = c.post(&["nodes", "discover"], &body).await?;
    let r: DiscoverResult = parse(c, v.clone())?;
    let failed = r.results.iter().filter(|d| !d.ok).count();
    let code = if failed > 0 {
        exit_code::NODES_FAILED
    } else {
        exit_code::OK
    };
    if json {
        let _ = writeln!(out, "{v}");
        return Ok(code);
    }
    let mut t = Table::new(&["ADDRESS", "RESULT", "HOSTNAME", "CPUS", "HOST KEY"]).right(&[3]);
    for d in &r.results {
        t.row(vec![
            d.address.clone(),
            result_text(d),
            d.hostname.clone().unwrap_or_else(|| "-".into()),
            d.cpus.map_or_else(|| "-".into(), |n| n.to_string()),
            d.host_key
                .as_deref()
                .and_then(|k| k.split_whitespace().next())
                .unwrap_or("-")
                .to_string(),
        ]);
    }
    let _ = write!(out, "{}", t.render());
    if failed > 0 {
        let _ = writeln!(
            out,
            "{failed} of {} not discovered: fix them and discover those again",
            match r.results.len() {
                1 => "1 address".to_string(),
                n => format!("{n} addresses"),
            }
        );
    }
    Ok(code)
}

/// The RESULT column of `nodes discover`: the probe's outcome as the daemon named it, with
/// why for a failure. A refused host key is not an unreachable host: the host answered,
/// and its key is unknown (`host_key_policy: strict`) or changed, which needs a human to
/// check the key, not the network.
fn result_text(d: &Discovered) -> String {
    let why = || d.error.as_deref().unwrap_or("(no reason given)");
    match d.status {
        DiscoverStatus::Discovered => "discovered".into(),
        DiscoverStatus::Unreachable => format!("unreachable: {}", why()),
        DiscoverStatus::HostKeyRejected => format!("host key rejected: {}", why()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn probed(status: DiscoverStatus, error: Option<&str>) -> Discovered {
        Discovered {
            address: "10.0.0.1".into(),
            status,
            ok: status == DiscoverStatus::Discovered,
            hostname: None,
            cpus: None,
            memory_mib: None,
            os: None,
            kernel: None,
            arch: None,
            host_key: None,
            node: None,
            inventory_entry: None,
            error: error.map(str::to_string),
        }
    }

    #[test]
    fn each_outcome_is_shown_as_what_it_is() {
        assert_eq!(
            result_text(&probed(DiscoverStatus::Discovered, None)),
            "discovered"
        );
        assert_eq!(
            result_text(&probed(DiscoverStatus::Unreachable, Some("connection refused"))),
            "unreachable: connection refused"
        );
        assert_eq!(
            result_text(&probed(
                DiscoverStatus::HostKeyRejected,
                Some("Host key verification failed.")
            )),
            "host key rejected: Host key verification failed."
        );
    }
}
