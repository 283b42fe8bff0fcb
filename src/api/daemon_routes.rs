//! `/status`, `/pause`, `/resume`: the daemon as a whole.

use axum::Extension;
use axum::Json;
use axum::extract::State;
use tracing::info;

use super::api_error::ApiError;
use super::api_json::ApiJson;
use super::api_types::{DaemonStatus, PauseRequest, RunStarted, WindowState};
use super::runs_routes::{blocking, store_error};
use super::token_set::Caller;
use crate::daemon::AppState;
use crate::store::{PauseScope, SourceVerdict, Write};

#[utoipa::path(get, operation_id = "getStatus", tag = "daemon", path = "/api/v1/status",
    responses((status = 200, body = DaemonStatus), (status = 401, body = super::api_error::ErrorBody)),
    security(("bearer" = [])))]
pub async fn status(State(s): State<AppState>) -> Result<Json<DaemonStatus>, ApiError> {
    let store = s.store.clone();
    let (head, commits, pauses) = blocking(move || {
        Ok((
            store.source_head().map_err(store_error)?,
            store.source_commits().map_err(store_error)?,
            store.pauses().map_err(store_error)?,
        ))
    })
    .await?;
    let project = s.api.project();
    // The process clock: the time runs hold their windows by (a test clock in tests).
    let now = crate::engine::clock_from_env().now();
    let windows = project
        .site
        .windows
        .iter()
        .map(|(name, w)| {
            let open = w.is_open(now);
            let next = if open {
                w.current_close(now)
            } else {
                w.next_open(now)
            };
            WindowState {
                name: name.clone(),
                open,
                next_change: next.map(|t| t.to_string()),
            }
        })
        .collect();
    let (all, runs): (Vec<_>, Vec<_>) = pauses.into_iter().partition(|p| p.scope == PauseScope::All);
    Ok(Json(DaemonStatus {
        commit: head.as_ref().and_then(|h| h.good.clone()),
        last_seen_commit: head.map(|h| h.seen),
        rejected_commits: commits
            .into_iter()
            .filter(|c| c.verdict == SourceVerdict::Rejected)
            .map(|c| serde_json::to_value(c).unwrap_or_default())
            .collect(),
        paused: all
            .into_iter()
            .next()
            .map(|p| serde_json::to_value(p).unwrap_or_default()),
        paused_runs: runs
            .into_iter()
            .map(|p| serde_json::to_value(p).unwrap_or_default())
            .collect(),
        windows,
        active_runs: s
            .api
            .live
            .list()
            .into_iter()
            .map(|(run_id, workflow)| RunStarted { run_id, workflow })
            .collect(),
    }))
}

/// A scoped token may not pause or resume the whole site: that touches every node.
fn whole_site(caller: &Caller) -> Result<(), ApiError> {
    match &caller.nodes {
        None => Ok(()),
        Some(_) => Err(ApiError::forbidden(format!(
            "token `{}` is scoped to some nodes; pausing or resuming every run touches every node",
            caller.name
        ))),
    }
}

#[utoipa::path(post, operation_id = "pauseAll", tag = "daemon", path = "/api/v1/pause", request_body = PauseRequest,
    responses((status = 200, body = DaemonStatus), (status = 403, body = super::api_error::ErrorBody)),
    security(("bearer" = [])))]
pub async fn pause(
    State(s): State<AppState>,
    Extension(caller): Extension<Caller>,
    ApiJson(body): ApiJson<PauseRequest>,
) -> Result<Json<DaemonStatus>, ApiError> {
    whole_site(&caller)?;
    let store = s.store.clone();
    let w = Write::Paused {
        scope: PauseScope::All,
        reason: body.reason.clone(),
        by: caller.name.clone(),
        at: jiff::Timestamp::now(),
    };
    blocking(move || store.write_blocking(vec![w]).map_err(store_error)).await?;
    info!(target: "drover::audit", token = %caller.name, reason = body.reason.as_deref().unwrap_or(""), "paused every run");
    status(State(s)).await
}

#[utoipa::path(post, operation_id = "resumeAll", tag = "daemon", path = "/api/v1/resume",
    responses((status = 200, body = DaemonStatus), (status = 403, body = super::api_error::ErrorBody)),
    security(("bearer" = [])))]
pub async fn resume(
    State(s): State<AppState>,
    Extension(caller): Extension<Caller>,
) -> Result<Json<DaemonStatus>, ApiError> {
    whole_site(&caller)?;
    let store = s.store.clone();
    let w = Write::Unpaused {
        scope: PauseScope::All,
        by: caller.name.clone(),
        at: jiff::Timestamp::now(),
    };
    blocking(move || store.write_blocking(vec![w]).map_err(store_error)).await?;
    info!(target: "drover::audit", token = %caller.name, "resumed every run");
    status(State(s)).await
}
