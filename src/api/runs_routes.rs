//! `/runs`: list, show, start (or plan), abort, pause, resume, and the live events of a
//! run as Server-Sent Events.

use std::collections::HashSet;
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::Extension;
use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures_util::Stream;
use serde::Serialize;
use tokio::sync::{broadcast, oneshot, watch};
use tracing::info;

use super::api_error::ApiError;
use super::api_json::ApiJson;
use super::api_types::{
    AbortRequest, DryRunPlan, RunControlled, RunList, RunStartRequest, RunStarted, RunsQuery,
};
use super::node_scope::check_scope;
use super::read_cache::Stamp;
use super::token_set::Caller;
use crate::daemon::{Action, AppState, NotStarted, RunOrder, StartedRun};
use crate::inventory::{Inventory, NodeId};
use crate::project::Project;
use crate::service::{self, Mode, Outcome, RunEvent, RunRequest, Trigger};
use crate::store::{Pause, PauseScope, RunDetail, RunRow, RunStatus, Store, StoreError, Write};

/// A store read or write off the runtime's threads (SQLite calls block).
pub(super) async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, ApiError> + Send + 'static,
) -> Result<T, ApiError> {
    tokio::task::spawn_blocking(f)
        .await
        .unwrap_or_else(|e| Err(ApiError::internal(format!("the request's task failed: {e}"))))
}

pub(super) fn store_error(e: StoreError) -> ApiError {
    ApiError::internal(service::store_error_text(&e))
}

#[utoipa::path(get, operation_id = "listRuns", tag = "runs", path = "/api/v1/runs", params(RunsQuery),
    responses((status = 200, body = RunList), (status = 401, body = super::api_error::ErrorBody)),
    security(("bearer" = [])))]
pub async fn list(State(s): State<AppState>, Query(q): Query<RunsQuery>) -> Result<Response, ApiError> {
    let state = match q.state.as_deref() {
        None | Some("") => None,
        Some(t) => Some(
            RunStatus::ALL
                .into_iter()
                .find(|st| st.as_str() == t)
                .ok_or_else(|| {
                    ApiError::invalid(format!("unknown run state `{t}`")).with_details(serde_json::json!({
                        "expected": RunStatus::ALL.iter().map(|s| s.as_str()).collect::<Vec<_>>()
                    }))
                })?,
        ),
    };
    let workflow = q.workflow.filter(|w| !w.is_empty());
    let key = format!(
        "runs\0{}\0{}",
        state.map_or("", RunStatus::as_str),
        workflow.as_deref().unwrap_or("")
    );
    let store = s.store.clone();
    let arrived = Stamp::now(&s.store, s.api.project())?;
    let body = s
        .api
        .reads
        .get(key, arrived, s.store.clone(), move || {
            let runs = store.runs().map_err(store_error)?;
            let runs: Vec<&RunRow> = runs
                .iter()
                .filter(|r| state.is_none_or(|st| r.status == st))
                .filter(|r| workflow.as_deref().is_none_or(|w| r.workflow == w))
                .collect();
            to_json(&RunListView { runs })
        })
        .await?;
    Ok(json_response(body))
}

/// `RunList` as sent: the store's rows serialised as they are.
#[derive(Serialize)]
struct RunListView<'a> {
    runs: Vec<&'a RunRow>,
}

/// `GET /runs/{id}` as sent: `drover runs show --json`, with who started the run and
/// the pause holding it.
#[derive(Serialize)]
struct RunView<'a> {
    #[serde(flatten)]
    detail: &'a RunDetail,
    trigger: Option<serde_json::Value>,
    paused: Option<Pause>,
}

pub(super) fn to_json(v: &impl Serialize) -> Result<Vec<u8>, ApiError> {
    serde_json::to_vec(v).map_err(|e| ApiError::internal(format!("serialising the answer failed: {e}")))
}

/// Bytes already serialised as JSON, as a response.
pub(super) fn json_response(body: Bytes) -> Response {
    ([(header::CONTENT_TYPE, "application/json")], body).into_response()
}

#[utoipa::path(get, operation_id = "getRun", tag = "runs", path = "/api/v1/runs/{id}", params(("id" = String, Path)),
    responses((status = 200, description = "the run as `drover runs show --json`: plan, phases, every node's state, attempt, step and reason, trigger, commit", body = Object),
        (status = 404, body = super::api_error::ErrorBody)),
    security(("bearer" = [])))]
pub async fn show(State(s): State<AppState>, Path(id): Path<String>) -> Result<Response, ApiError> {
    run_answer(&s, &id).await.map(json_response)
}

/// The run as recorded (kept in the read cache); a live run not recorded yet (its
/// targets are being checked) is shown as `checking`.
async fn run_answer(s: &AppState, id: &str) -> Result<Bytes, ApiError> {
    let live = s.api.live.subscribe(id).is_some();
    let store = s.store.clone();
    let rid = id.to_string();
    let arrived = Stamp::now(&s.store, s.api.project())?;
    let recorded = s
        .api
        .reads
        .get(format!("run\0{id}"), arrived, s.store.clone(), move || {
            run_json(&store, &rid)
        })
        .await;
    match recorded {
        Err(e) if live && e.status == StatusCode::NOT_FOUND => to_json(&serde_json::json!({
            "run": { "id": id, "status": "checking" },
            "nodes": [],
        }))
        .map(Bytes::from),
        other => other,
    }
}

fn run_json(store: &Store, id: &str) -> Result<Vec<u8>, ApiError> {
    let detail = store
        .run(id)
        .map_err(store_error)?
        .ok_or_else(|| ApiError::not_found(format!("no run `{id}`")))?;
    let trigger = store.trigger(id).map_err(store_error)?;
    let paused = store.pause_holding(id).map_err(store_error)?;
    to_json(&RunView {
        detail: &detail,
        trigger,
        paused,
    })
}

/// The nodes a run of `wf` may touch: its targets, less its exclusions, within `limit`.
fn workflow_nodes(
    inv: &Inventory,
    project: &Project,
    wi: usize,
    limit: Option<&HashSet<NodeId>>,
) -> Vec<NodeId> {
    let wf = &project.workflows[wi];
    let resolve = |sel: &[String]| -> HashSet<NodeId> {
        sel.iter().filter_map(|s| inv.resolve(s).ok()).flatten().collect()
    };
    let excluded = resolve(&wf.exclude);
    let mut v: Vec<NodeId> = resolve(&wf.targets)
        .into_iter()
        .filter(|n| !excluded.contains(n))
        .filter(|n| limit.is_none_or(|l| l.contains(n)))
        .collect();
    v.sort();
    v
}

pub(super) fn find_workflow(project: &Project, name: &str) -> Result<usize, ApiError> {
    project
        .workflows
        .iter()
        .position(|w| w.name == name)
        .ok_or_else(|| {
            ApiError::invalid(format!("no workflow `{name}` in the site")).with_details(serde_json::json!({
                "workflows": project.workflows.iter().map(|w| w.name.clone()).collect::<Vec<_>>()
            }))
        })
}

fn refusal(r: service::Refusal) -> ApiError {
    match r.kind {
        service::RefusalKind::Failure => ApiError::internal(r.message),
        _ => ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "refused", r.message),
    }
}

/// Starts `req` through the daemon's loop: its id and events, or why not.
pub(super) async fn order(
    s: &AppState,
    request: RunRequest,
    interrupts: watch::Sender<u32>,
) -> Result<StartedRun, ApiError> {
    let (reply, answer) = oneshot::channel();
    s.api
        .actions
        .send(Action::Run(Box::new(RunOrder {
            request,
            interrupts,
            reply,
        })))
        .map_err(|_| ApiError::conflict("the daemon is stopping"))?;
    match answer.await {
        Ok(Ok(started)) => Ok(started),
        Ok(Err(n @ NotStarted::Busy { .. })) => Err(ApiError::conflict(n.to_string())),
        Ok(Err(n @ NotStarted::Stopping)) => Err(ApiError::conflict(n.to_string())),
        Ok(Err(NotStarted::Refused(m))) => Err(ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "refused", m)),
        Err(_) => Err(ApiError::conflict("the daemon is stopping")),
    }
}

/// A request for `wf`: every target unless `limit`, the steps `tags` selects,
/// `extra_vars` over the workflow's, triggered by the caller.
pub(super) fn request_for(
    project: &Arc<Project>,
    wi: usize,
    caller: &Caller,
    limit: Option<HashSet<NodeId>>,
    tags: Option<&str>,
    extra_vars: serde_json::Map<String, serde_json::Value>,
) -> Result<(RunRequest, watch::Sender<u32>), ApiError> {
    let wf = &project.workflows[wi];
    let (itx, irx) = watch::channel(0u32);
    let trigger = Trigger::Api {
        token_name: caller.name.clone(),
    };
    let mut req = RunRequest::new(Arc::clone(project), &wf.name, trigger, irx).map_err(refusal)?;
    if let Some(t) = tags {
        req.selection.selected = service::selected_steps(wf, Some(t)).map_err(refusal)?;
        req.selection.tags = Some(t.to_string());
    }
    if let Some(l) = &limit {
        req.selection.limit_text = Some(project.inventory.names(&l.iter().copied().collect::<Vec<_>>()));
    }
    req.selection.limit = limit;
    req.selection.extra_vars = extra_vars;
    Ok((req, itx))
}

fn resolve_limit(inv: &Inventory, limit: Option<&str>) -> Result<Option<HashSet<NodeId>>, ApiError> {
    let Some(l) = limit.filter(|l| !l.trim().is_empty()) else {
        return Ok(None);
    };
    let mut set = HashSet::new();
    for e in service::split_list(l) {
        let ids = inv
            .resolve(&e)
            .map_err(|p| ApiError::invalid(format!("limit: {}", p.message)))?;
        set.extend(ids);
    }
    if set.is_empty() {
        return Err(ApiError::invalid("limit selects no node"));
    }
    Ok(Some(set))
}

#[utoipa::path(post, operation_id = "startRun", tag = "runs", path = "/api/v1/runs", request_body = RunStartRequest,
    responses((status = 202, body = RunStarted), (status = 200, description = "a dry run's plan", body = DryRunPlan),
        (status = 403, body = super::api_error::ErrorBody), (status = 409, body = super::api_error::ErrorBody),
        (status = 422, body = super::api_error::ErrorBody)),
    security(("bearer" = [])))]
pub async fn start(
    State(s): State<AppState>,
    Extension(caller): Extension<Caller>,
    ApiJson(body): ApiJson<RunStartRequest>,
) -> Result<(StatusCode, Json<serde_json::Value>), ApiError> {
    let project = s.api.project();
    let wi = find_workflow(&project, &body.workflow)?;
    let limit = resolve_limit(&project.inventory, body.limit.as_deref())?;
    let nodes = workflow_nodes(&project.inventory, &project, wi, limit.as_ref());
    check_scope(&project.inventory, &caller, &nodes)?;
    let (mut req, itx) = request_for(
        &project,
        wi,
        &caller,
        limit,
        body.tags.as_deref(),
        body.extra_vars.clone().unwrap_or_default(),
    )?;
    if body.dry_run {
        req.mode = Mode::Run { dry_run: true };
        let handle = service::start(req).map_err(refusal)?;
        let outcome = handle.outcome().await;
        drop(itx);
        return match outcome {
            Outcome::DryRun { plan } => Ok((
                StatusCode::OK,
                Json(
                    serde_json::to_value(DryRunPlan {
                        workflow: body.workflow,
                        plan: crate::cli::plan_json(&project.inventory, &plan),
                    })
                    .unwrap_or_default(),
                ),
            )),
            Outcome::Refused(r) => Err(refusal(r)),
            other => Err(ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "refused",
                format!("the dry run ended without a plan: {other:?}"),
            )),
        };
    }
    let started = order(&s, req, itx).await?;
    info!(target: "drover::audit", token = %caller.name, workflow = %body.workflow, run = %started.run_id, "run started");
    Ok((
        StatusCode::ACCEPTED,
        Json(
            serde_json::to_value(RunStarted {
                run_id: started.run_id,
                workflow: body.workflow,
            })
            .unwrap_or_default(),
        ),
    ))
}

/// The run's nodes, for the scope check of a request on the run.
async fn run_scope(s: &AppState, caller: &Caller, id: &str) -> Result<(), ApiError> {
    let store = s.store.clone();
    let rid = id.to_string();
    let names = blocking(move || {
        if store.run(&rid).map_err(store_error)?.is_none() {
            return Err(ApiError::not_found(format!("no run `{rid}`")));
        }
        store
            .nodes(&rid)
            .map_err(store_error)
            .map(|v| v.into_iter().map(|n| n.node).collect::<Vec<_>>())
    })
    .await?;
    let project = s.api.project();
    let inv = &project.inventory;
    let ids: Vec<NodeId> = names.iter().filter_map(|n| inv.find(n)).collect();
    check_scope(inv, caller, &ids)
}

#[utoipa::path(post, operation_id = "abortRun", tag = "runs", path = "/api/v1/runs/{id}/abort", params(("id" = String, Path)), request_body = AbortRequest,
    responses((status = 202, body = RunControlled), (status = 404, body = super::api_error::ErrorBody),
        (status = 409, body = super::api_error::ErrorBody)),
    security(("bearer" = [])))]
pub async fn abort(
    State(s): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<AbortRequest>,
) -> Result<(StatusCode, Json<RunControlled>), ApiError> {
    run_scope(&s, &caller, &id).await?;
    let Some(events) = s.api.live.subscribe(&id) else {
        return Err(ApiError::conflict(format!(
            "run `{id}` is not in flight in this daemon: nothing to abort"
        )));
    };
    s.api.live.interrupt(&id, if body.force { 2 } else { 1 });
    info!(target: "drover::audit", token = %caller.name, run = %id, force = body.force, "run aborted");
    // Once it has wound down, the run is given up (not left to a resume at the next
    // start): its unfinished nodes skipped, its leases released.
    let store = s.store.clone();
    let run = id.clone();
    tokio::spawn(async move {
        wound_down(events).await;
        let _ = tokio::task::spawn_blocking(move || {
            if let Ok(Some(d)) = store.run(&run)
                && matches!(d.run.status, RunStatus::Interrupted | RunStatus::Running)
            {
                let c = service::GiveUp::of(&d, &service::GiveUpReason::Cancelled, jiff::Timestamp::now());
                let _ = store.finish_run_blocking(&run, c.writes, false);
            }
        })
        .await;
    });
    Ok((
        StatusCode::ACCEPTED,
        Json(RunControlled {
            run_id: id,
            action: "aborting".into(),
        }),
    ))
}

/// Until the run's event stream ends (the run has wound down).
pub(super) async fn wound_down(mut events: broadcast::Receiver<RunEvent>) {
    loop {
        match events.recv().await {
            Ok(_) | Err(broadcast::error::RecvError::Lagged(_)) => {}
            Err(broadcast::error::RecvError::Closed) => return,
        }
    }
}

async fn set_pause(s: &AppState, caller: &Caller, id: &str, on: bool) -> Result<(), ApiError> {
    let store = s.store.clone();
    let write = if on {
        Write::Paused {
            scope: PauseScope::Run(id.to_string()),
            reason: None,
            by: caller.name.clone(),
            at: jiff::Timestamp::now(),
        }
    } else {
        Write::Unpaused {
            scope: PauseScope::Run(id.to_string()),
            by: caller.name.clone(),
            at: jiff::Timestamp::now(),
        }
    };
    blocking(move || store.write_blocking(vec![write]).map_err(store_error)).await
}

#[utoipa::path(post, operation_id = "pauseRun", tag = "runs", path = "/api/v1/runs/{id}/pause", params(("id" = String, Path)),
    responses((status = 200, body = RunControlled), (status = 404, body = super::api_error::ErrorBody)),
    security(("bearer" = [])))]
pub async fn pause(
    State(s): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
) -> Result<Json<RunControlled>, ApiError> {
    run_scope(&s, &caller, &id).await?;
    set_pause(&s, &caller, &id, true).await?;
    Ok(Json(RunControlled {
        run_id: id,
        action: "paused".into(),
    }))
}

#[utoipa::path(post, operation_id = "resumeRun", tag = "runs", path = "/api/v1/runs/{id}/resume", params(("id" = String, Path)),
    responses((status = 200, body = RunControlled), (status = 404, body = super::api_error::ErrorBody)),
    security(("bearer" = [])))]
pub async fn resume(
    State(s): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
) -> Result<Json<RunControlled>, ApiError> {
    run_scope(&s, &caller, &id).await?;
    set_pause(&s, &caller, &id, false).await?;
    Ok(Json(RunControlled {
        run_id: id,
        action: "resumed".into(),
    }))
}

/// One run event as SSE: its kind as the event name, its JSON as the data.
fn sse_event(ev: &RunEvent) -> Option<Event> {
    let (name, data) = match ev {
        RunEvent::Engine(e) => {
            let v = serde_json::to_value(e).ok()?;
            let name = v
                .get("event")
                .and_then(|n| n.as_str())
                .unwrap_or("engine")
                .to_string();
            (name, v)
        }
        RunEvent::Notice(n) => (
            "notice".to_string(),
            serde_json::json!({"event": "notice", "message": n}),
        ),
        RunEvent::Planned(p) => (
            "planned".to_string(),
            serde_json::json!({"event": "planned", "nodes": p.plan.nodes.len()}),
        ),
        RunEvent::Recorded { run } => (
            "recorded".to_string(),
            serde_json::json!({"event": "recorded", "run": run}),
        ),
    };
    Some(Event::default().event(name).data(data.to_string()))
}

#[utoipa::path(get, operation_id = "runEvents", tag = "runs", path = "/api/v1/runs/{id}/events", params(("id" = String, Path)),
    responses((status = 200, description = "Server-Sent Events: first `run` (the run as `GET /runs/{id}`), then the run's events as they happen (the event name is the event's kind, the data its JSON, as `drover run --json` prints them), last `end` (the run as recorded once it wound down)", content_type = "text/event-stream", body = String),
        (status = 404, body = super::api_error::ErrorBody)),
    security(("bearer" = [])))]
pub async fn events(
    State(s): State<AppState>,
    Path(id): Path<String>,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, ApiError> {
    // Subscribe before reading the snapshot, so nothing falls between the two.
    let live = s.api.live.subscribe(&id);
    let first = String::from_utf8_lossy(&run_answer(&s, &id).await?).into_owned();
    let store = s.store.clone();
    enum St {
        First(String, Option<broadcast::Receiver<RunEvent>>),
        Live(broadcast::Receiver<RunEvent>),
        End,
        Done,
    }
    let stream = futures_util::stream::unfold(St::First(first, live), move |st| {
        let store = store.clone();
        let id = id.clone();
        async move {
            match st {
                St::First(v, live) => {
                    let ev = Event::default().event("run").data(v);
                    let next = match live {
                        Some(rx) => St::Live(rx),
                        None => St::End,
                    };
                    Some((Ok(ev), next))
                }
                St::Live(mut rx) => loop {
                    match rx.recv().await {
                        Ok(ev) => {
                            if let Some(e) = sse_event(&ev) {
                                return Some((Ok(e), St::Live(rx)));
                            }
                        }
                        Err(broadcast::error::RecvError::Lagged(n)) => {
                            let e = Event::default()
                                .event("lagged")
                                .data(serde_json::json!({"event": "lagged", "missed": n}).to_string());
                            return Some((Ok(e), St::Live(rx)));
                        }
                        Err(broadcast::error::RecvError::Closed) => {
                            let v = tokio::task::spawn_blocking(move || run_json(&store, &id).ok())
                                .await
                                .ok()
                                .flatten()
                                .map_or_else(
                                    || "null".to_string(),
                                    |b| String::from_utf8_lossy(&b).into_owned(),
                                );
                            return Some((Ok(Event::default().event("end").data(v)), St::Done));
                        }
                    }
                },
                St::End => {
                    let v = serde_json::json!({"event": "end"});
                    Some((Ok(Event::default().event("end").data(v.to_string())), St::Done))
                }
                St::Done => None,
            }
        }
    });
    Ok(Sse::new(stream).keep_alive(KeepAlive::new().interval(Duration::from_secs(15))))
}
