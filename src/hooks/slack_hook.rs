//! `POST /hooks/slack`: a slash command, verified, parsed, checked against
//! `slack.allowed` and the user's node scope, then carried out through the daemon's
//! actions and the store. Answers within Slack's 3 s: the outcome itself when it is
//! known by then, else an acknowledgement, the outcome following on `response_url`; a
//! run the command started is followed, and how it ended is posted there too.

use std::collections::HashSet;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::json;
use tokio::sync::oneshot;
use tracing::{info, warn};

use super::hook_rejection::HookRejection;
use super::hooks_state::HooksState;
use super::slack_command::{HELP, SlackCommand};
use super::slack_signature::{MAX_BODY, verify_slack};
use crate::daemon::{Action, RunNowAnswer};
use crate::inventory::Inventory;
use crate::service::Trigger;
use crate::site::SlackCommandSettings;
use crate::store::{NodeState, PauseScope, RunStatus, Write};

fn ephemeral(text: impl Into<String>) -> Response {
    (
        StatusCode::OK,
        [(axum::http::header::CONTENT_TYPE, "application/json")],
        json!({ "response_type": "ephemeral", "text": text.into() }).to_string(),
    )
        .into_response()
}

fn header<'a>(h: &'a HeaderMap, name: &'static str) -> Result<&'a str, HookRejection> {
    h.get(name)
        .and_then(|v| v.to_str().ok())
        .ok_or(HookRejection::MissingHeader(name))
}

/// Verifies the request; on success, its form fields.
fn check(s: &HooksState, secret: &str, headers: &HeaderMap, body: &[u8]) -> Result<(), HookRejection> {
    if body.len() > MAX_BODY {
        return Err(HookRejection::TooLarge(body.len()));
    }
    let ts = header(headers, "x-slack-request-timestamp")?;
    let sig = header(headers, "x-slack-signature")?;
    let now = jiff::Timestamp::now().as_second();
    verify_slack(secret.as_bytes(), ts, body, sig, now)?;
    if !s.replay.first_time(body, now) {
        return Err(HookRejection::Replayed);
    }
    Ok(())
}

pub(super) async fn slack(State(s): State<HooksState>, headers: HeaderMap, body: Bytes) -> Response {
    let Some((secret, settings)) = s.slack.clone() else {
        return (
            StatusCode::NOT_FOUND,
            "slash commands are not configured (slack.signing_secret)\n",
        )
            .into_response();
    };
    if let Err(r) = check(&s, &secret, &headers, &body) {
        warn!(hook = "slack", "slash command rejected: {r}");
        return (r.status(), format!("{r}\n")).into_response();
    }
    let form: std::collections::HashMap<String, String> =
        form_urlencoded::parse(&body).into_owned().collect();
    let field = |k: &str| form.get(k).cloned().unwrap_or_default();
    let (user, user_name, channel, text) = (
        field("user_id"),
        field("user_name"),
        field("channel_id"),
        field("text"),
    );
    let cmd = match SlackCommand::parse(&text) {
        Ok(SlackCommand::Help) => return ephemeral(HELP),
        Ok(c) => c,
        Err(e) => return ephemeral(format!("{e}.\n{HELP}")),
    };
    info!(hook = "slack", %user, %user_name, %channel, command = %text, "slash command");
    if cmd.mutates() && !allowed(&settings, &user, &channel) {
        warn!(hook = "slack", %user, %channel, command = %text, "slash command refused: the user may not change anything");
        return ephemeral(format!(
            "Sorry <@{user}>, you are not allowed to do that here (`slack.allowed`). Nothing was changed."
        ));
    }
    let inv = s.inventory.borrow().clone();
    let scope = scope_of(&settings, &inv, &user);
    let by = format!("slack:{}", if user_name.is_empty() { &user } else { &user_name });
    let (tx, rx) = oneshot::channel::<RunNowAnswer>();
    carry_out(&s, cmd, &inv, scope, user.clone(), by, tx);
    let url = field("response_url");
    let mut rx = rx;
    // Zero: every answer goes to the response_url, after the acknowledgement.
    let early = if s.answer_within.is_zero() {
        None
    } else {
        match tokio::time::timeout(s.answer_within, &mut rx).await {
            Ok(Ok(answer)) => Some(answer),
            Ok(Err(_)) => return ephemeral("The daemon is stopping; nothing was done."),
            Err(_) => None,
        }
    };
    match early {
        Some(answer) => {
            if let Some(run) = answer.started {
                tokio::spawn(follow_run(s.clone(), url, run));
            }
            ephemeral(answer.text)
        }
        None => {
            // Still working (a dry run checks every node): the answer follows on the
            // command's response_url.
            let s = s.clone();
            tokio::spawn(async move {
                let Ok(answer) = rx.await else { return };
                respond(&s, &url, &answer.text).await;
                if let Some(run) = answer.started {
                    follow_run(s, url, run).await;
                }
            });
            ephemeral("Working on it; the answer follows here.")
        }
    }
}

/// How long Slack takes posts to a command's `response_url`.
const RESPONSE_URL_LIFETIME: std::time::Duration = std::time::Duration::from_secs(30 * 60);
/// How often a run started by a command is looked at, to tell its end.
const FOLLOW_EVERY: std::time::Duration = std::time::Duration::from_millis(500);

/// Posts `text` to the command's `response_url`, ephemeral (only the asker sees it).
async fn respond(s: &HooksState, url: &str, text: &str) {
    let body = json!({ "response_type": "ephemeral", "text": text });
    match s.client.post(url).json(&body).send().await {
        Ok(r) if !r.status().is_success() => warn!(
            hook = "slack",
            status = r.status().as_u16(),
            "the command's response_url refused the answer"
        ),
        Ok(_) => {}
        Err(e) => warn!(
            hook = "slack",
            "cannot post the answer to the command's response_url: {}",
            e.without_url()
        ),
    }
}

/// Tells the one who started run `run` how it ended, on the command's `response_url`
/// (the channel hears it in the run's thread as well, from the notifications). Gives up
/// when Slack no longer takes posts there.
async fn follow_run(s: HooksState, url: String, run: String) {
    let t = std::time::Instant::now();
    while t.elapsed() < RESPONSE_URL_LIFETIME {
        tokio::time::sleep(FOLLOW_EVERY).await;
        let store = s.store.clone();
        let id = run.clone();
        let row = tokio::task::spawn_blocking(move || store.run(&id))
            .await
            .ok()
            .and_then(Result::ok)
            .flatten();
        let Some(r) = row.map(|d| d.run) else { continue };
        if r.status == RunStatus::Running {
            continue;
        }
        let failed = r.counts.get(NodeState::Failed) + r.counts.get(NodeState::Held);
        let text = format!(
            "Run {} of `{}` v{} {}: {} of {} nodes succeeded{}.",
            r.id,
            r.workflow,
            r.version,
            r.status.label(),
            r.counts.get(NodeState::Succeeded),
            r.counts.total(),
            if failed > 0 {
                format!(", {failed} failed or held")
            } else {
                String::new()
            }
        );
        respond(&s, &url, &text).await;
        return;
    }
}

fn allowed(settings: &SlackCommandSettings, user: &str, channel: &str) -> bool {
    settings.users.iter().any(|u| u == user)
        && (settings.channels.is_empty() || settings.channels.iter().any(|c| c == channel))
}

/// The node names the user may act on; `None`: every node.
fn scope_of(settings: &SlackCommandSettings, inv: &Inventory, user: &str) -> Option<HashSet<String>> {
    let selectors = settings.scopes.get(user)?;
    let mut names = HashSet::new();
    for sel in selectors {
        // A selector that no longer resolves grants nothing.
        if let Ok(ids) = inv.resolve(sel) {
            names.extend(ids.into_iter().map(|i| inv.node(i).name.clone()));
        }
    }
    Some(names)
}

fn carry_out(
    s: &HooksState,
    cmd: SlackCommand,
    inv: &Arc<Inventory>,
    scope: Option<HashSet<String>>,
    user: String,
    by: String,
    answer: oneshot::Sender<RunNowAnswer>,
) {
    let s = s.clone();
    let inv = Arc::clone(inv);
    tokio::spawn(async move {
        let mut started = None;
        let text = match cmd {
            SlackCommand::Help => HELP.to_string(),
            SlackCommand::Status => status(&s).await,
            SlackCommand::Run {
                workflow,
                limit,
                dry_run,
            } => {
                let (tx, rx) = oneshot::channel();
                let a = Action::RunNow {
                    workflow,
                    limit,
                    dry_run,
                    scope,
                    trigger: Trigger::Slack { user },
                    reply: tx,
                };
                let stopping = || "The daemon is stopping; nothing was started.".to_string();
                if s.actions.send(a).is_err() {
                    stopping()
                } else {
                    match rx.await {
                        Ok(a) => {
                            started = a.started;
                            a.text
                        }
                        Err(_) => stopping(),
                    }
                }
            }
            SlackCommand::Pause { reason } => {
                let w = Write::Paused {
                    scope: PauseScope::All,
                    reason: reason.clone(),
                    by: by.clone(),
                    at: jiff::Timestamp::now(),
                };
                match s.store.write(vec![w]).await {
                    Ok(()) => format!(
                        "Paused: no new node starts in any run{}.",
                        reason.map(|r| format!(" ({r})")).unwrap_or_default()
                    ),
                    Err(e) => format!("Not paused: {e}"),
                }
            }
            SlackCommand::Resume => {
                let w = Write::Unpaused {
                    scope: PauseScope::All,
                    by: by.clone(),
                    at: jiff::Timestamp::now(),
                };
                match s.store.write(vec![w]).await {
                    Ok(()) => "Resumed: runs start nodes again.".to_string(),
                    Err(e) => format!("Not resumed: {e}"),
                }
            }
            SlackCommand::Abort { run } => {
                let (tx, rx) = oneshot::channel();
                let sent = s
                    .actions
                    .send(Action::Abort {
                        run: run.clone(),
                        reply: tx,
                    })
                    .is_ok();
                match (sent, rx.await) {
                    (true, Ok(true)) => format!(
                        "Stopping run {run}: no new node starts, the nodes in flight finish. `drover runs resume {run}` continues it."
                    ),
                    _ => format!("No active run `{run}` in this daemon."),
                }
            }
            SlackCommand::Nodes { nodes } => nodes_text(&s, &inv, &nodes),
            SlackCommand::Maintenance { on, nodes, reason } => {
                maintenance(&s, &inv, scope.as_ref(), on, &nodes, reason, &by).await
            }
        };
        let _ = answer.send(RunNowAnswer { text, started });
    });
}

async fn status(s: &HooksState) -> String {
    let store = s.store.clone();
    tokio::task::spawn_blocking(move || {
        let runs = store.runs().unwrap_or_default();
        let running: Vec<String> = runs
            .iter()
            .filter(|r| r.status == RunStatus::Running)
            .map(|r| format!("• {} v{}: run {}", r.workflow, r.version, r.id))
            .collect();
        let pauses: Vec<String> = store
            .pauses()
            .unwrap_or_default()
            .iter()
            .map(|p| format!("• {p}"))
            .collect();
        let mut out = if running.is_empty() {
            "No run in progress.".to_string()
        } else {
            format!("Runs in progress:\n{}", running.join("\n"))
        };
        if !pauses.is_empty() {
            out.push_str(&format!("\nPaused:\n{}", pauses.join("\n")));
        }
        out
    })
    .await
    .unwrap_or_else(|_| "Cannot read the state database.".into())
}

fn resolve(inv: &Inventory, nodes: &str) -> Result<Vec<crate::inventory::NodeId>, String> {
    let mut out = Vec::new();
    for e in crate::service::split_list(nodes) {
        match inv.resolve(&e) {
            Ok(ids) => out.extend(ids),
            Err(p) => return Err(format!("{}. Nothing was changed.", p.message)),
        }
    }
    if out.is_empty() {
        return Err(format!("`{nodes}` names no node."));
    }
    Ok(out)
}

fn nodes_text(s: &HooksState, inv: &Inventory, nodes: &str) -> String {
    let ids = match resolve(inv, nodes) {
        Ok(i) => i,
        Err(e) => return e,
    };
    let maint = s.store.in_maintenance().unwrap_or_default();
    ids.iter()
        .map(|i| {
            let name = &inv.node(*i).name;
            match maint.iter().find(|m| &m.node == name) {
                Some(m) => format!("• {name}: in maintenance ({m:?})"),
                None => format!("• {name}: in service"),
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
}

async fn maintenance(
    s: &HooksState,
    inv: &Inventory,
    scope: Option<&HashSet<String>>,
    on: bool,
    nodes: &str,
    reason: Option<String>,
    by: &str,
) -> String {
    let ids = match resolve(inv, nodes) {
        Ok(i) => i,
        Err(e) => return e,
    };
    if let Some(scope) = scope {
        let outside = crate::daemon::outside_scope(inv, &ids, scope);
        if !outside.is_empty() {
            return format!(
                "Sorry, you may not act on {} (outside your node scope, or in an HA group that is not wholly in it). Nothing was changed.",
                outside.join(", ")
            );
        }
    }
    let names: Vec<String> = ids.iter().map(|i| inv.node(*i).name.clone()).collect();
    let writes = names
        .iter()
        .map(|n| {
            if on {
                Write::MaintenanceOn {
                    node: n.clone(),
                    reason: reason.clone(),
                    by: by.to_string(),
                    at: jiff::Timestamp::now(),
                }
            } else {
                Write::MaintenanceOff { node: n.clone() }
            }
        })
        .collect();
    match s.store.write(writes).await {
        Ok(()) => format!(
            "{} {}.",
            if on {
                "In maintenance (automation off):"
            } else {
                "Out of maintenance:"
            },
            crate::hostlist::compress(&names)
        ),
        Err(e) => format!("Nothing was changed: {e}"),
    }
}
