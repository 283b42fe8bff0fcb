//! `POST /nodes/discover` (seed 002's discover/nodes): probe addresses over SSH and
//! record the hosts that answered as `discovered`.
//!
//! The whole list is checked first: an empty list, more than [`MAX_ADDRESSES`], or any
//! address that is not `[user@]host[:port]` is a 422 listing every bad one, and nothing
//! is probed. Then every distinct address is probed ([`host_probe`](super::host_probe))
//! at most `server.discover.concurrency` at a time, each within
//! `server.discover.timeout`; one that cannot be reached is reported with why, the
//! others are recorded in one transaction. The answer comes when every probe has
//! ended.
//!
//! A host is matched to an inventory node by host and port (the address's port, else
//! the site's `ssh.port`, else 22; users aside). One the inventory does not have is
//! shown by `GET /nodes` under its address with `in_inventory: false`, and its answer
//! carries its `inventory.yml` line: added to the inventory, it is a node like any
//! other, `discovered` until commissioned.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use axum::Extension;
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use tokio::sync::Semaphore;
use tracing::info;

use super::api_error::ApiError;
use super::api_json::ApiJson;
use super::api_types::{DiscoverRequest, DiscoverResult, DiscoverStatus, Discovered};
use super::discover_address::DiscoverAddress;
use super::host_probe::{ProbeFailure, probe};
use super::runs_routes::{blocking, store_error};
use super::token_set::Caller;
use crate::daemon::AppState;
use crate::inventory::Inventory;
use crate::store::{DiscoveredHost, Write};
use crate::transport::SshConnector;

/// Most addresses in one request: the request is answered when all are probed.
pub const MAX_ADDRESSES: usize = 1000;

/// What matches a discovered host to an inventory node: host (lowercase) and port.
pub(super) type HostKey = (String, u16);

pub(super) fn host_key(host: &str, port: Option<u16>, site_port: Option<u16>) -> HostKey {
    (host.to_ascii_lowercase(), port.or(site_port).unwrap_or(22))
}

/// Inventory node names by [`HostKey`].
pub(super) fn inventory_by_host(inv: &Inventory, site_port: Option<u16>) -> HashMap<HostKey, String> {
    inv.ids()
        .map(|id| {
            let n = inv.node(id);
            (
                host_key(&n.address.host, n.address.port, site_port),
                n.name.clone(),
            )
        })
        .collect()
}

/// Every address, parsed, without repeats; or the 422 naming every bad one.
fn parse_all(entries: &[String]) -> Result<Vec<DiscoverAddress>, ApiError> {
    let refuse = |message: String, invalid: serde_json::Value| {
        ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid_addresses", message)
            .with_details(serde_json::json!({ "invalid": invalid }))
    };
    if entries.is_empty() {
        return Err(refuse(
            "the address list is empty; nothing was probed".into(),
            serde_json::json!([]),
        ));
    }
    if entries.len() > MAX_ADDRESSES {
        return Err(refuse(
            format!(
                "{} addresses: at most {MAX_ADDRESSES} in one request; nothing was probed",
                entries.len()
            ),
            serde_json::json!([]),
        ));
    }
    let mut seen = HashSet::new();
    let mut good = Vec::new();
    let mut bad = Vec::new();
    for e in entries {
        match DiscoverAddress::parse(e) {
            Ok(a) => {
                if seen.insert(a.canonical()) {
                    good.push(a);
                }
            }
            Err(reason) => bad.push(serde_json::json!({ "address": e, "reason": reason })),
        }
    }
    if !bad.is_empty() {
        let listed: Vec<String> = bad
            .iter()
            .map(|b| {
                format!(
                    "`{}` ({})",
                    b["address"].as_str().unwrap_or(""),
                    b["reason"].as_str().unwrap_or("")
                )
            })
            .collect();
        return Err(refuse(
            format!("invalid addresses: {}; nothing was probed", listed.join(", ")),
            serde_json::Value::Array(bad),
        ));
    }
    Ok(good)
}

#[utoipa::path(post, operation_id = "discoverNodes", tag = "nodes", path = "/api/v1/nodes/discover", request_body = DiscoverRequest,
    responses((status = 200, description = "every address probed: reached ones recorded, others reported with why", body = DiscoverResult),
        (status = 401, body = super::api_error::ErrorBody),
        (status = 403, description = "not an admin token, or a token with a node scope", body = super::api_error::ErrorBody),
        (status = 422, description = "an empty list or an invalid address: nothing probed", body = super::api_error::ErrorBody)),
    security(("bearer" = [])))]
pub async fn discover(
    State(s): State<AppState>,
    Extension(caller): Extension<Caller>,
    ApiJson(body): ApiJson<DiscoverRequest>,
) -> Result<Json<DiscoverResult>, ApiError> {
    if caller.nodes.is_some() {
        return Err(ApiError::forbidden(format!(
            "token `{}` is limited to some nodes; discovery reaches hosts outside the inventory, \
             so it needs a token without a node scope",
            caller.name
        )));
    }
    let addrs = parse_all(&body.addresses)?;
    let project = s.api.project();
    let settings = project
        .site
        .server
        .as_ref()
        .map(|x| x.discover)
        .unwrap_or_default();
    // `log_kex`: ssh's DEBUG1 log names the host key it was shown.
    let connector = SshConnector::new(project.site.ssh_setup(true), &project.inventory)
        .map_err(|e| ApiError::internal(format!("cannot make the ssh control directory: {e}")))?;
    let permits = Arc::new(Semaphore::new(settings.concurrency.max(1) as usize));
    let probes = addrs.iter().map(|a| {
        let (connector, permits) = (&connector, Arc::clone(&permits));
        async move {
            let _permit = permits.acquire_owned().await;
            probe(connector, a, settings.timeout).await
        }
    });
    let outcomes = futures_util::future::join_all(probes).await;
    connector.shutdown().await;

    let site_port = project.site.ssh.defaults.port;
    let known = inventory_by_host(&project.inventory, site_port);
    let now = jiff::Timestamp::now();
    let mut writes = Vec::new();
    let mut results = Vec::new();
    for (a, outcome) in addrs.iter().zip(outcomes) {
        let node = known.get(&host_key(&a.host, a.port, site_port)).cloned();
        let address = a.canonical();
        let mut r = Discovered {
            address: address.clone(),
            status: DiscoverStatus::Discovered,
            ok: false,
            hostname: None,
            cpus: None,
            memory_mib: None,
            os: None,
            kernel: None,
            arch: None,
            host_key: None,
            node: node.clone(),
            inventory_entry: None,
            error: None,
        };
        match outcome {
            Ok(f) => {
                writes.push(Write::Discovered {
                    host: DiscoveredHost {
                        address,
                        hostname: f.hostname.clone(),
                        cpus: f.cpus,
                        memory_mib: f.memory_mib,
                        os: f.os.clone(),
                        kernel: f.kernel.clone(),
                        arch: f.arch.clone(),
                        host_key: f.host_key.clone(),
                        by: caller.name.clone(),
                        since: now,
                    },
                });
                r.ok = true;
                r.inventory_entry = node.is_none().then(|| a.inventory_entry(f.hostname.as_deref()));
                (r.hostname, r.cpus, r.memory_mib) = (f.hostname, f.cpus, f.memory_mib);
                (r.os, r.kernel, r.arch, r.host_key) = (f.os, f.kernel, f.arch, f.host_key);
            }
            Err(ProbeFailure::HostKey(why)) => {
                r.status = DiscoverStatus::HostKeyRejected;
                r.error = Some(why);
            }
            Err(ProbeFailure::Unreachable(why)) => {
                r.status = DiscoverStatus::Unreachable;
                r.error = Some(why);
            }
        }
        results.push(r);
    }
    let reached = writes.len();
    if !writes.is_empty() {
        let store = s.store.clone();
        blocking(move || store.write_blocking(writes).map_err(store_error)).await?;
    }
    let failed: Vec<&str> = results
        .iter()
        .filter(|r| !r.ok)
        .map(|r| r.address.as_str())
        .collect();
    info!(target: "drover::audit", token = %caller.name, operation = "discover",
        addresses = results.len(), discovered = reached, not_reached = %failed.join(","), "nodes discovered");
    Ok(Json(DiscoverResult { results }))
}
