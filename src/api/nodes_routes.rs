//! `/nodes` (seed 002): the inventory with each node's lifecycle state (and the hosts
//! discovery reached that it does not have yet), and the bulk operations on nodes:
//! commission, decommission, maintenance (discover is `discover_routes`).
//!
//! Every operation takes the whole list or nothing: an empty list, or any name the
//! inventory does not have, is a 422 naming every unknown one, and nothing runs. The
//! site's lifecycle workflow for the operation (`lifecycle:` in drover.yml) runs on
//! exactly those nodes, with the request's extra variables over the workflow's; when
//! it has wound down the nodes' new state is recorded for all of them in one
//! transaction (never some of them):
//! - commission: succeeded → `commissioned`; otherwise the decommission workflow runs
//!   on every node of the request as cleanup, and they stay `discovered`, so the same
//!   request can be posted again once the cause is fixed;
//! - decommission: `decommissioned` whatever the workflow's outcome (best effort);
//!   from then on every rollout and converge pass leaves them out, like maintenance;
//! - maintenance on: the maintenance workflow (a restart, a replacement) runs first,
//!   then the nodes are in maintenance; off: out of maintenance at once.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use axum::Extension;
use axum::Json;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use tracing::{info, warn};

use super::api_error::ApiError;
use super::api_json::ApiJson;
use super::api_types::{
    DiscoveredFacts, LifecycleStarted, MaintenanceInfo, MaintenanceRequest, NodeInfo, NodeList, NodeWorkflow,
    NodesQuery, NodesRequest, Switch,
};
use super::discover_address::DiscoverAddress;
use super::discover_routes::{HostKey, host_key};
use super::node_scope::check_scope;
use super::read_cache::Stamp;
use super::runs_routes::{
    blocking, find_workflow, json_response, order, request_for, store_error, to_json, wound_down,
};
use super::token_set::Caller;
use crate::daemon::AppState;
use crate::inventory::{Inventory, NodeId};
use crate::store::{DiscoveredHost, LifecycleState, RunStatus, Store, Write};

#[utoipa::path(get, operation_id = "listNodes", tag = "nodes", path = "/api/v1/nodes", params(NodesQuery),
    responses((status = 200, body = NodeList), (status = 401, body = super::api_error::ErrorBody)),
    security(("bearer" = [])))]
pub async fn list(
    State(s): State<AppState>,
    Extension(caller): Extension<Caller>,
    Query(q): Query<NodesQuery>,
) -> Result<Response, ApiError> {
    let project = s.api.project();
    let names = q.names.as_deref().map(str::trim).unwrap_or("").to_string();
    // A bad host list is refused before anything is built or kept.
    for e in crate::service::split_list(&names) {
        if !is_address(&project.inventory, &e) {
            crate::hostlist::expand(&e).map_err(|x| ApiError::invalid(format!("names: `{e}`: {x}")))?;
        }
    }
    // The answer depends on the subset and the token's scope, nothing else of the caller.
    let key = format!(
        "nodes\0{names}\0{}",
        caller.nodes.as_ref().map_or("*".to_string(), |sel| sel.join(","))
    );
    let store = s.store.clone();
    let site = Arc::clone(&project);
    let arrived = Stamp::now(&s.store, project)?;
    let body = s
        .api
        .reads
        .get(key, arrived, s.store.clone(), move || {
            to_json(&NodeList {
                nodes: node_list(&store, &site, caller.nodes.as_deref(), &names)?,
            })
        })
        .await?;
    Ok(json_response(body))
}

/// Whether `e` of a `names` subset is a discovered host's address rather than a node
/// name or host list.
fn is_address(inv: &Inventory, e: &str) -> bool {
    DiscoverAddress::parse(e).is_ok_and(|a| a.canonical() == e) && inv.find(e).is_none()
}

/// `GET /nodes` for the subset `names` (empty: all) as a token limited to `scope` sees it.
fn node_list(
    store: &Store,
    project: &crate::project::Project,
    scope: Option<&[String]>,
    names: &str,
) -> Result<Vec<NodeInfo>, ApiError> {
    let inv = &project.inventory;
    // The subset: inventory nodes, and discovered hosts by their address.
    let mut wanted_addresses: HashSet<String> = HashSet::new();
    let wanted: Option<HashSet<NodeId>> = if names.is_empty() {
        None
    } else {
        let mut set = HashSet::new();
        for e in crate::service::split_list(names) {
            if is_address(inv, &e) {
                wanted_addresses.insert(e);
                continue;
            }
            let expanded =
                crate::hostlist::expand(&e).map_err(|x| ApiError::invalid(format!("names: `{e}`: {x}")))?;
            // Seed 002: a name that does not exist is silently ignored.
            set.extend(expanded.iter().filter_map(|n| inv.find(n)));
            wanted_addresses.extend(expanded);
        }
        Some(set)
    };
    // A scoped token sees only its nodes.
    let scope: Option<HashSet<NodeId>> =
        scope.map(|sel| sel.iter().filter_map(|x| inv.resolve(x).ok()).flatten().collect());
    let lifecycle = store.lifecycle().map_err(store_error)?;
    let versions = store.node_versions().map_err(store_error)?;
    let discovered = store.discovered().map_err(store_error)?;
    // The newest record of each host and port (one host may be probed as two users).
    let site_port = project.site.ssh.defaults.port;
    let mut by_host: HashMap<HostKey, DiscoveredHost> = HashMap::new();
    for d in discovered {
        let Ok(a) = DiscoverAddress::parse(&d.address) else {
            continue;
        };
        let k = host_key(&a.host, a.port, site_port);
        if by_host.get(&k).is_none_or(|o| o.since < d.since) {
            by_host.insert(k, d);
        }
    }
    let lifecycle: HashMap<String, _> = lifecycle.into_iter().map(|l| (l.node.clone(), l)).collect();
    let mut by_node: HashMap<String, Vec<NodeWorkflow>> = HashMap::new();
    for v in versions {
        by_node.entry(v.node).or_default().push(NodeWorkflow {
            workflow: v.workflow,
            version: v.version,
            commit: v.commit,
            run_id: v.run,
        });
    }
    let mut groups_of: HashMap<NodeId, Vec<String>> = HashMap::new();
    for (g, ids) in inv.groups() {
        for id in ids {
            groups_of.entry(*id).or_default().push(g.clone());
        }
    }
    let mut nodes: Vec<NodeInfo> = inv
        .ids()
        .filter(|id| wanted.as_ref().is_none_or(|w| w.contains(id)))
        .filter(|id| scope.as_ref().is_none_or(|w| w.contains(id)))
        .map(|id| {
            let n = inv.node(id);
            let l = lifecycle.get(&n.name);
            let found = by_host.remove(&host_key(&n.address.host, n.address.port, site_port));
            let lifecycle = match (l, &found) {
                (Some(l), _) => state_name(l.state).to_string(),
                (None, Some(_)) => "discovered".to_string(),
                (None, None) => "inventory".to_string(),
            };
            NodeInfo {
                name: n.name.clone(),
                address: address_text(&n.address),
                groups: groups_of.remove(&id).unwrap_or_default(),
                ha_group: n
                    .ha_group
                    .and_then(|g| inv.ha_groups().get(g))
                    .map(|g| g.name.clone()),
                lifecycle,
                maintenance: l
                    .filter(|l| l.state == LifecycleState::Maintenance)
                    .map(|l| MaintenanceInfo {
                        reason: l.reason.clone(),
                        by: l.by.clone(),
                        since: l.since.to_string(),
                    }),
                workflows: by_node.remove(&n.name).unwrap_or_default(),
                in_inventory: true,
                discovered: found.map(facts),
            }
        })
        .collect();
    // Hosts discovery reached that the inventory does not have: by address, after the
    // inventory, and only to a token that is not limited to some nodes.
    if scope.is_none() {
        let mut rest: Vec<DiscoveredHost> = by_host
            .into_values()
            .filter(|d| wanted.is_none() || wanted_addresses.contains(&d.address))
            .collect();
        rest.sort_by(|a, b| a.address.cmp(&b.address));
        nodes.extend(rest.into_iter().map(|d| NodeInfo {
            name: d.address.clone(),
            address: d.address.clone(),
            groups: Vec::new(),
            ha_group: None,
            lifecycle: "discovered".to_string(),
            maintenance: None,
            workflows: Vec::new(),
            in_inventory: false,
            discovered: Some(facts(d)),
        }));
    }
    Ok(nodes)
}

fn facts(d: DiscoveredHost) -> DiscoveredFacts {
    DiscoveredFacts {
        address: d.address,
        hostname: d.hostname,
        cpus: d.cpus,
        memory_mib: d.memory_mib,
        os: d.os,
        kernel: d.kernel,
        arch: d.arch,
        host_key: d.host_key,
        by: d.by,
        since: d.since.to_string(),
    }
}

fn address_text(a: &crate::inventory::Address) -> String {
    let user = a.user.as_ref().map(|u| format!("{u}@")).unwrap_or_default();
    let port = a.port.map(|p| format!(":{p}")).unwrap_or_default();
    format!("{user}{}{port}", a.host)
}

pub(super) fn state_name(s: LifecycleState) -> &'static str {
    match s {
        LifecycleState::Maintenance => "maintenance",
        LifecycleState::Discovered => "discovered",
        LifecycleState::Commissioned => "commissioned",
        LifecycleState::Decommissioned => "decommissioned",
    }
}

/// The request's nodes, whole or not at all: an empty list, a bad host list or any
/// unknown name refuses it (422 naming every unknown one).
fn resolve_all(inv: &Inventory, entries: &[String]) -> Result<Vec<NodeId>, ApiError> {
    if entries.is_empty() {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "unknown_nodes",
            "the node list is empty; nothing was run",
        )
        .with_details(serde_json::json!({ "unknown": [] })));
    }
    let mut ids = Vec::new();
    let mut seen = HashSet::new();
    let mut unknown = Vec::new();
    for e in entries {
        let names =
            crate::hostlist::expand(e).map_err(|x| ApiError::invalid(format!("nodes: `{e}`: {x}")))?;
        for n in names {
            match inv.find(&n) {
                Some(id) => {
                    if seen.insert(id) {
                        ids.push(id);
                    }
                }
                None => unknown.push(n),
            }
        }
    }
    if !unknown.is_empty() {
        return Err(ApiError::unknown_nodes(&unknown));
    }
    Ok(ids)
}

/// Which lifecycle operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Operation {
    Commission,
    Decommission,
    MaintenanceOn,
}

impl Operation {
    fn name(self) -> &'static str {
        match self {
            Operation::Commission => "commission",
            Operation::Decommission => "decommission",
            Operation::MaintenanceOn => "maintenance",
        }
    }
}

/// The lifecycle workflow's index for `op`, if the site names one; refused when the
/// name is not a workflow of the site or does not target every node of the request.
fn lifecycle_workflow(
    project: &crate::project::Project,
    workflow: Option<&str>,
    key: &str,
    nodes: &[NodeId],
) -> Result<Option<usize>, ApiError> {
    let Some(name) = workflow else { return Ok(None) };
    let wi = find_workflow(project, name).map_err(|e| {
        ApiError::invalid(format!("lifecycle.{key} names `{name}`: {}", e.message)).with_details(e.details)
    })?;
    let inv = &project.inventory;
    let wf = &project.workflows[wi];
    let targets: HashSet<NodeId> = wf
        .targets
        .iter()
        .filter_map(|s| inv.resolve(s).ok())
        .flatten()
        .collect();
    let outside: Vec<String> = nodes
        .iter()
        .filter(|n| !targets.contains(n))
        .map(|&n| inv.node(n).name.clone())
        .collect();
    if !outside.is_empty() {
        return Err(ApiError::invalid(format!(
            "the {key} workflow `{name}` does not target {}; nothing was run",
            crate::hostlist::compress(&outside)
        ))
        .with_details(serde_json::json!({ "not_targets": outside })));
    }
    Ok(Some(wi))
}

fn record(nodes: &[String], state: LifecycleState, reason: Option<String>, by: &str) -> Vec<Write> {
    let at = jiff::Timestamp::now();
    nodes
        .iter()
        .map(|n| Write::Lifecycle {
            node: n.clone(),
            state,
            reason: reason.clone(),
            by: by.to_string(),
            at,
        })
        .collect()
}

fn maintenance_on(nodes: &[String], reason: Option<String>, by: &str) -> Vec<Write> {
    let at = jiff::Timestamp::now();
    nodes
        .iter()
        .map(|n| Write::MaintenanceOn {
            node: n.clone(),
            reason: reason.clone(),
            by: by.to_string(),
            at,
        })
        .collect()
}

async fn write(store: &Store, writes: Vec<Write>) -> Result<(), ApiError> {
    let store = store.clone();
    blocking(move || store.write_blocking(writes).map_err(store_error)).await
}

fn run_status(store: &Store, run: &str) -> Option<RunStatus> {
    store.run(run).ok().flatten().map(|d| d.run.status)
}

/// Starts `op`'s workflow on `ids` (when the site names one) and records the outcome
/// when it has wound down.
async fn operate(
    s: AppState,
    caller: Caller,
    op: Operation,
    entries: &[String],
    extra_vars: serde_json::Map<String, serde_json::Value>,
    reason: Option<String>,
) -> Result<(StatusCode, Json<LifecycleStarted>), ApiError> {
    let project = s.api.project();
    let inv = &project.inventory;
    let ids = resolve_all(inv, entries)?;
    check_scope(inv, &caller, &ids)?;
    let names: Vec<String> = ids.iter().map(|&i| inv.node(i).name.clone()).collect();
    let lc = &project.site.lifecycle;
    let wf = match op {
        Operation::Commission => lc.commission.as_deref(),
        Operation::Decommission => lc.decommission.as_deref(),
        Operation::MaintenanceOn => lc.maintenance.as_deref(),
    };
    let wi = lifecycle_workflow(&project, wf, op.name(), &ids)?;
    // The decommission workflow is commission's cleanup: checked now, before anything runs.
    let cleanup = if op == Operation::Commission {
        lifecycle_workflow(&project, lc.decommission.as_deref(), "decommission", &ids)?
    } else {
        None
    };
    let final_state = match op {
        Operation::Commission => LifecycleState::Commissioned,
        Operation::Decommission => LifecycleState::Decommissioned,
        Operation::MaintenanceOn => LifecycleState::Maintenance,
    };
    let by = caller.name.clone();
    let Some(wi) = wi else {
        // No workflow for it: the state alone.
        let writes = match op {
            Operation::MaintenanceOn => maintenance_on(&names, reason, &by),
            _ => record(&names, final_state, reason, &by),
        };
        write(&s.store, writes).await?;
        info!(target: "drover::audit", token = %caller.name, operation = op.name(), nodes = %inv.names(&ids), "node lifecycle (no workflow)");
        return Ok((
            StatusCode::OK,
            Json(LifecycleStarted {
                operation: op.name().into(),
                nodes: names,
                run_id: None,
                state: state_name(final_state).into(),
            }),
        ));
    };
    if op == Operation::Commission {
        // A decommissioned node is out of automation, which would skip it: commissioning
        // starts from `discovered`.
        write(
            &s.store,
            record(
                &names,
                LifecycleState::Discovered,
                Some("commissioning".into()),
                &by,
            ),
        )
        .await?;
    }
    let limit: HashSet<NodeId> = ids.iter().copied().collect();
    let (mut req, itx) = request_for(
        &project,
        wi,
        &caller,
        Some(limit.clone()),
        None,
        extra_vars.clone(),
    )?;
    // The request's nodes are the point of the run: not left out as in maintenance.
    req.selection.maintenance.retain(|id, _| !limit.contains(id));
    let started = order(&s, req, itx).await?;
    let run_id = started.run_id.clone();
    info!(target: "drover::audit", token = %caller.name, operation = op.name(), run = %run_id, nodes = %inv.names(&ids), "node lifecycle started");
    let answer = LifecycleStarted {
        operation: op.name().into(),
        nodes: names.clone(),
        run_id: Some(run_id.clone()),
        state: state_name(final_state).into(),
    };
    let store = s.store.clone();
    let s2 = s.clone();
    tokio::spawn(async move {
        wound_down(started.events).await;
        let st = store.clone();
        let rid = run_id.clone();
        let status = tokio::task::spawn_blocking(move || run_status(&st, &rid))
            .await
            .ok()
            .flatten();
        let writes = match op {
            Operation::Commission if status == Some(RunStatus::Succeeded) => {
                record(&names, LifecycleState::Commissioned, None, &by)
            }
            Operation::Commission => {
                let why = format!("commission run {run_id} did not succeed");
                warn!(run = %run_id, "{why}: cleaning up every node of the request");
                let mut reason = why.clone();
                if let Some(ci) = cleanup {
                    match request_for(&project, ci, &caller, Some(limit.clone()), None, extra_vars) {
                        Ok((mut req, itx)) => {
                            req.selection.maintenance.retain(|id, _| !limit.contains(id));
                            match order(&s2, req, itx).await {
                                Ok(c) => {
                                    info!(target: "drover::audit", token = %caller.name, run = %c.run_id, failed = %run_id, "commission cleanup started");
                                    reason = format!("{why}; cleanup run {}", c.run_id);
                                    wound_down(c.events).await;
                                }
                                Err(e) => warn!(run = %run_id, "commission cleanup not started: {e}"),
                            }
                        }
                        Err(e) => warn!(run = %run_id, "commission cleanup not started: {e}"),
                    }
                }
                record(&names, LifecycleState::Discovered, Some(reason), &by)
            }
            Operation::Decommission => record(&names, LifecycleState::Decommissioned, reason, &by),
            Operation::MaintenanceOn => maintenance_on(&names, reason, &by),
        };
        if let Err(e) = tokio::task::spawn_blocking(move || store.write_blocking(writes)).await {
            warn!("recording the nodes' lifecycle failed: {e}");
        }
    });
    Ok((StatusCode::ACCEPTED, Json(answer)))
}

#[utoipa::path(post, operation_id = "commissionNodes", tag = "nodes", path = "/api/v1/nodes/commission", request_body = NodesRequest,
    responses((status = 202, description = "the commission workflow started", body = LifecycleStarted),
        (status = 200, description = "no commission workflow: the state recorded", body = LifecycleStarted),
        (status = 403, body = super::api_error::ErrorBody), (status = 422, body = super::api_error::ErrorBody)),
    security(("bearer" = [])))]
pub async fn commission(
    State(s): State<AppState>,
    Extension(caller): Extension<Caller>,
    ApiJson(body): ApiJson<NodesRequest>,
) -> Result<(StatusCode, Json<LifecycleStarted>), ApiError> {
    operate(
        s,
        caller,
        Operation::Commission,
        &body.nodes,
        body.extra_vars.unwrap_or_default(),
        None,
    )
    .await
}

#[utoipa::path(post, operation_id = "decommissionNodes", tag = "nodes", path = "/api/v1/nodes/decommission", request_body = NodesRequest,
    responses((status = 202, body = LifecycleStarted), (status = 200, body = LifecycleStarted),
        (status = 403, body = super::api_error::ErrorBody), (status = 422, body = super::api_error::ErrorBody)),
    security(("bearer" = [])))]
pub async fn decommission(
    State(s): State<AppState>,
    Extension(caller): Extension<Caller>,
    ApiJson(body): ApiJson<NodesRequest>,
) -> Result<(StatusCode, Json<LifecycleStarted>), ApiError> {
    operate(
        s,
        caller,
        Operation::Decommission,
        &body.nodes,
        body.extra_vars.unwrap_or_default(),
        None,
    )
    .await
}

#[utoipa::path(post, operation_id = "maintainNodes", tag = "nodes", path = "/api/v1/nodes/maintenance", request_body = MaintenanceRequest,
    responses((status = 202, body = LifecycleStarted), (status = 200, body = LifecycleStarted),
        (status = 403, body = super::api_error::ErrorBody), (status = 422, body = super::api_error::ErrorBody)),
    security(("bearer" = [])))]
pub async fn maintenance(
    State(s): State<AppState>,
    Extension(caller): Extension<Caller>,
    ApiJson(body): ApiJson<MaintenanceRequest>,
) -> Result<(StatusCode, Json<LifecycleStarted>), ApiError> {
    match body.state {
        Switch::On => {
            operate(
                s,
                caller,
                Operation::MaintenanceOn,
                &body.nodes,
                body.extra_vars.unwrap_or_default(),
                body.reason,
            )
            .await
        }
        Switch::Off => {
            let project = s.api.project();
            let inv = &project.inventory;
            let ids = resolve_all(inv, &body.nodes)?;
            check_scope(inv, &caller, &ids)?;
            let names: Vec<String> = ids.iter().map(|&i| inv.node(i).name.clone()).collect();
            let writes = names
                .iter()
                .map(|n| Write::MaintenanceOff { node: n.clone() })
                .collect();
            write(&s.store, writes).await?;
            info!(target: "drover::audit", token = %caller.name, nodes = %inv.names(&ids), "maintenance off");
            Ok((
                StatusCode::OK,
                Json(LifecycleStarted {
                    operation: "maintenance".into(),
                    nodes: names,
                    run_id: None,
                    state: "off".into(),
                }),
            ))
        }
    }
}
