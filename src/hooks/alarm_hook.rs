//! `POST /hooks/{name}`: an alarm from a monitoring system. Verified with the trigger's
//! secret, its nodes read from the JSON body and checked against the inventory (one
//! unknown node, or one the workflow does not target, and nothing runs: 422 listing
//! them), then offered to the trigger's queue, which starts at most one run per node
//! per cooldown and coalesces alarms for nodes whose run is pending or going on.

use std::collections::HashSet;

use axum::body::Bytes;
use axum::extract::{Path as UrlPath, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::json;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use tracing::{info, warn};

use super::alarm_queue::Offered;
use super::hook_rejection::HookRejection;
use super::hooks_state::HooksState;
use super::slack_signature::{MAX_BODY, verify_slack};
use crate::inventory::{Inventory, NodeId};
use crate::project::AlarmTrigger;

/// The headers of a signed alarm (Slack's scheme, under drover's names).
pub const TIMESTAMP_HEADER: &str = "x-drover-timestamp";
pub const SIGNATURE_HEADER: &str = "x-drover-signature";

fn answer(status: StatusCode, body: serde_json::Value) -> Response {
    (
        status,
        [(axum::http::header::CONTENT_TYPE, "application/json")],
        format!("{body}\n"),
    )
        .into_response()
}

fn error(status: StatusCode, message: impl Into<String>) -> Response {
    answer(status, json!({ "error": message.into() }))
}

pub(super) async fn alarm(
    State(s): State<HooksState>,
    UrlPath(name): UrlPath<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let project = s.site.borrow().clone();
    let Some(trigger) = project.trigger(&name) else {
        let known: Vec<&str> = project.triggers.iter().map(|t| t.name.as_str()).collect();
        return error(
            StatusCode::NOT_FOUND,
            if known.is_empty() {
                format!("no trigger `{name}`: the site has no `triggers:`")
            } else {
                format!("no trigger `{name}`; triggers: {}", known.join(", "))
            },
        );
    };
    let secret = match trigger.secret.read() {
        Ok(x) => x,
        Err(e) => {
            warn!(hook = %name, "alarm refused: the trigger's secret: {e}");
            return error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "the trigger's secret cannot be read on the controller (see its log)",
            );
        }
    };
    if let Err(r) = verify(&s, secret.as_bytes(), &headers, &body) {
        warn!(hook = %name, "alarm rejected: {r}");
        return error(r.status(), r.to_string());
    }
    let payload: serde_json::Value = match serde_json::from_slice(&body) {
        Ok(v) => v,
        Err(e) => return error(StatusCode::BAD_REQUEST, format!("the body is not JSON: {e}")),
    };
    let selectors = match trigger.selectors(&payload) {
        Ok(s) => s,
        Err(e) => return error(StatusCode::UNPROCESSABLE_ENTITY, e.to_string()),
    };
    let inv = &project.inventory;
    let (ids, unknown) = resolve(inv, &selectors);
    let not_targets = outside_targets(trigger, inv, &ids);
    if !unknown.is_empty() || !not_targets.is_empty() || ids.is_empty() {
        let mut why = Vec::new();
        if ids.is_empty() && unknown.is_empty() {
            why.push(format!("`{}` names no node", trigger.nodes_from));
        }
        if !unknown.is_empty() {
            why.push(format!("not in the inventory: {}", unknown.join(", ")));
        }
        if !not_targets.is_empty() {
            why.push(format!(
                "not targets of workflow `{}`: {}",
                trigger.workflow,
                not_targets.join(", ")
            ));
        }
        warn!(hook = %name, "alarm refused, nothing runs: {}", why.join("; "));
        return answer(
            StatusCode::UNPROCESSABLE_ENTITY,
            json!({
                "error": format!("{}; nothing runs", why.join("; ")),
                "unknown": unknown,
                "not_targets": not_targets,
            }),
        );
    }
    let names: Vec<String> = ids.iter().map(|i| inv.node(*i).name.clone()).collect();
    info!(hook = %name, nodes = %crate::hostlist::compress(&names), "alarm");
    match s.alarms.offer(&s, trigger, names).await {
        Ok(o) => offered(o),
        Err(e) => {
            warn!(hook = %name, "alarm not taken: {e}");
            error(StatusCode::SERVICE_UNAVAILABLE, format!("nothing runs: {e}"))
        }
    }
}

/// `202` when a run was asked for; `200` when every node was cooling down or already
/// waiting for or in a run: the alarm was taken, and a sender that retries on anything
/// but 2xx does not make a storm worse.
fn offered(o: Offered) -> Response {
    let status = if o.accepted.is_empty() {
        StatusCode::OK
    } else {
        StatusCode::ACCEPTED
    };
    let cooling: Vec<serde_json::Value> = o
        .cooling_down
        .iter()
        .map(|(n, until)| json!({ "node": n, "until": until.to_string() }))
        .collect();
    let mut text = Vec::new();
    if !o.accepted.is_empty() {
        text.push(format!(
            "{} run on {}",
            o.workflow,
            crate::hostlist::compress(&o.accepted)
        ));
    }
    for (n, until) in &o.cooling_down {
        text.push(format!("{n}: cooling down until {until}"));
    }
    if !o.coalesced.is_empty() {
        text.push(format!(
            "{}: already waiting for or in a run",
            crate::hostlist::compress(&o.coalesced)
        ));
    }
    answer(
        status,
        json!({
            "message": text.join("; "),
            "accepted": o.accepted,
            "cooling_down": cooling,
            "coalesced": o.coalesced,
        }),
    )
}

/// Node ids for the selectors, and the names (or selectors) that are not in `inv`.
fn resolve(inv: &Inventory, selectors: &[String]) -> (Vec<NodeId>, Vec<String>) {
    let mut ids = Vec::new();
    let mut unknown = Vec::new();
    let mut seen = HashSet::new();
    for sel in selectors {
        let names = if sel.starts_with('@') {
            None
        } else {
            crate::hostlist::expand(sel).ok()
        };
        match names {
            Some(names) => {
                for n in names {
                    match inv.find(&n) {
                        Some(id) if seen.insert(id) => ids.push(id),
                        Some(_) => {}
                        None => unknown.push(n),
                    }
                }
            }
            None => match inv.resolve(sel) {
                Ok(found) => ids.extend(found.into_iter().filter(|id| seen.insert(*id))),
                Err(_) => unknown.push(sel.clone()),
            },
        }
    }
    (ids, unknown)
}

/// The nodes of `ids` the trigger's workflow does not target.
fn outside_targets(t: &AlarmTrigger, inv: &Inventory, ids: &[NodeId]) -> Vec<String> {
    let root = crate::yaml::Path::root();
    let targets: HashSet<NodeId> = inv
        .select(&t.run.targets, &root)
        .unwrap_or_default()
        .into_iter()
        .collect();
    let excluded: HashSet<NodeId> = inv
        .select(&t.run.exclude, &root)
        .unwrap_or_default()
        .into_iter()
        .collect();
    ids.iter()
        .filter(|i| !targets.contains(i) || excluded.contains(i))
        .map(|i| inv.node(*i).name.clone())
        .collect()
}

/// A signed request (timestamp, HMAC, not seen before), or the secret as a bearer
/// token for senders that cannot sign (compared by digest, in constant time).
fn verify(s: &HooksState, secret: &[u8], h: &HeaderMap, body: &[u8]) -> Result<(), HookRejection> {
    if body.len() > MAX_BODY {
        return Err(HookRejection::TooLarge(body.len()));
    }
    let header = |n: &str| h.get(n).and_then(|v| v.to_str().ok());
    if let Some(sig) = header(SIGNATURE_HEADER) {
        let ts = header(TIMESTAMP_HEADER).ok_or(HookRejection::MissingHeader("X-Drover-Timestamp"))?;
        let now = jiff::Timestamp::now().as_second();
        verify_slack(secret, ts, body, sig, now)?;
        if !s.replay.first_time(&[ts.as_bytes(), b":", body].concat(), now) {
            return Err(HookRejection::Replayed);
        }
        return Ok(());
    }
    if let Some(token) = header("authorization").and_then(|v| v.strip_prefix("Bearer ")) {
        let a = Sha256::digest(token.trim().as_bytes());
        let b = Sha256::digest(secret);
        return if bool::from(a.ct_eq(&b)) {
            Ok(())
        } else {
            Err(HookRejection::BadSignature)
        };
    }
    Err(HookRejection::MissingHeader(
        "X-Drover-Signature (or Authorization: Bearer)",
    ))
}
