//! `drover runs watch ID`: follows a run's event stream (`GET /runs/{id}/events`) and
//! shows it with the reporter of a local `drover run` (the same lines and progress
//! bars, from the same events read back), then the run's verdict, exiting with the code
//! a local run with that outcome exits with.
//!
//! A stream that breaks before its `end` is opened again (a few times, waiting longer
//! each time); events in between are not replayed (the daemon keeps none), so the
//! watch says so and goes on from the run as it then stands. Ctrl-C stops watching,
//! not the run.

use std::io::{IsTerminal, Write};
use std::time::Duration;

use serde_json::Value;
use tokio::signal::unix::{Signal, SignalKind, signal};

use super::api_client::ApiClient;
use super::client_error::ClientError;
use super::runs_commands::{status_label, text};
use super::sse_parser::SseParser;
use crate::engine::{self, RunEvent};
use crate::exit_code;
use crate::report::{self, Style};

/// How often a broken stream is opened again, and the first wait (doubling: 0.5 s, 1 s,
/// 2 s, 4 s, 8 s, so a daemon restarted within about 15 s is found again).
const RECONNECTS: u32 = 5;
const FIRST_DELAY: Duration = Duration::from_millis(500);

/// What the watch learnt of the run.
#[derive(Debug, Default)]
struct Seen {
    /// The last `run` snapshot, and the `end` event's run (`None` in `end`: the run
    /// was not in flight in the daemon).
    snapshot: Option<Value>,
    end: Option<Value>,
    /// The engine's outcome, from `run_finished`.
    outcome: Option<Value>,
    ended: bool,
}

enum Read {
    /// The stream reached `end`.
    Ended,
    /// It broke (or the server closed it) before `end`.
    Broken(String),
}

/// Why the watch ends without the run's end.
enum Stop {
    Failed(ClientError),
    /// Ctrl-C: the watch stops, the run goes on.
    Interrupted,
}

/// Until the next Ctrl-C (never, if its handler could not be installed).
async fn interrupted(s: &mut Option<Signal>) {
    match s {
        Some(s) => {
            s.recv().await;
        }
        None => std::future::pending().await,
    }
}

pub async fn watch(
    c: &ApiClient,
    id: &str,
    json: bool,
    color: bool,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> Result<i32, ClientError> {
    let (etx, erx) = engine::event_channel(engine::EVENT_CAPACITY);
    let style = if json {
        Style::Json
    } else {
        Style::Human {
            bars: std::io::stderr().is_terminal(),
            color,
            timestamps: false,
        }
    };
    // The reporter writes to the terminal, which may block: on a thread of its own.
    let rt = tokio::runtime::Handle::current();
    let reporter = tokio::task::spawn_blocking(move || {
        rt.block_on(async move {
            if json {
                // `--json` prints the stream's own JSON (below), not the reporter's.
                let mut erx = erx;
                while erx.recv().await.is_some() {}
            } else {
                report::report(erx, style).await;
            }
        });
    });
    let mut seen = Seen::default();
    let mut first = true;
    let mut attempt = 0u32;
    // Installed once, before the first request: from here a Ctrl-C is seen wherever
    // the watch is waiting (connecting, reading, between tries), and never lost.
    let mut sigint = signal(SignalKind::interrupt()).ok();
    let result = loop {
        let opened = tokio::select! {
            r = c.events(id) => r,
            _ = interrupted(&mut sigint) => break Err(Stop::Interrupted),
        };
        let resp = match opened {
            Ok(r) => r,
            // Not found, refused: the watch cannot start (or go on).
            Err(e @ ClientError::Refused { .. }) => break Err(Stop::Failed(e)),
            Err(e) if first || attempt >= RECONNECTS => break Err(Stop::Failed(e)),
            Err(e) => {
                attempt += 1;
                let _ = writeln!(err, "{e}; trying again ({attempt}/{RECONNECTS})");
                tokio::select! {
                    _ = tokio::time::sleep(FIRST_DELAY * 2u32.pow(attempt - 1)) => {}
                    _ = interrupted(&mut sigint) => break Err(Stop::Interrupted),
                }
                continue;
            }
        };
        if !first {
            // Found again: the next break gets its tries afresh.
            attempt = 0;
            let _ = writeln!(
                err,
                "reconnected to the event stream of run {id}: what happened meanwhile is not shown (`drover runs show {id}`)"
            );
        }
        let got = tokio::select! {
            r = read(resp, &mut seen, first, &etx, json, out, err) => r,
            _ = interrupted(&mut sigint) => break Err(Stop::Interrupted),
        };
        match got {
            Read::Ended => break Ok(()),
            Read::Broken(why) => {
                if attempt >= RECONNECTS {
                    break Err(Stop::Failed(ClientError::Unreachable {
                        url: c.server(),
                        reason: format!(
                            "the event stream of run {id} broke ({why}) and could not be opened again"
                        ),
                    }));
                }
                attempt += 1;
                let _ = writeln!(
                    err,
                    "the event stream of run {id} broke ({why}); opening it again ({attempt}/{RECONNECTS})"
                );
                tokio::select! {
                    _ = tokio::time::sleep(FIRST_DELAY * 2u32.pow(attempt - 1)) => {}
                    _ = interrupted(&mut sigint) => break Err(Stop::Interrupted),
                }
            }
        }
        first = false;
    };
    drop(etx);
    let _ = reporter.await;
    match result {
        Ok(()) => {}
        Err(Stop::Failed(e)) => return Err(e),
        Err(Stop::Interrupted) => {
            let _ = writeln!(
                err,
                "\nstopped watching; run {id} goes on (`drover runs abort {id}` stops it)"
            );
            return Ok(exit_code::INTERRUPTED);
        }
    }
    Ok(verdict(id, &seen, json, out, err))
}

/// Reads one connection's events until `end` or a break.
async fn read(
    mut resp: reqwest::Response,
    seen: &mut Seen,
    first: bool,
    etx: &engine::EventSender,
    json: bool,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> Read {
    let mut parser = SseParser::new();
    let mut got_snapshot = false;
    loop {
        let bytes = match resp.chunk().await {
            Ok(Some(b)) => b,
            Ok(None) => return Read::Broken("the server closed it".into()),
            Err(e) => return Read::Broken(e.to_string()),
        };
        for ev in parser.feed(&bytes) {
            let data: Value = serde_json::from_str(&ev.data).unwrap_or(Value::Null);
            if json && !(ev.name == "run" && (got_snapshot || !first)) {
                let _ = writeln!(out, "{}", if ev.data.is_empty() { "null" } else { &ev.data });
            }
            match ev.name.as_str() {
                "run" => {
                    if first && !got_snapshot && !json {
                        let r = &data["run"];
                        let _ = match r.get("workflow").and_then(Value::as_str) {
                            Some(w) => writeln!(
                                out,
                                "run {}: {w} v{}, {}",
                                text(r, "id"),
                                r["version"].as_u64().unwrap_or(0),
                                status_label(text(r, "status"))
                            ),
                            // Live, not recorded yet.
                            None => writeln!(out, "run {}: checking its targets", text(r, "id")),
                        };
                        let _ = out.flush();
                    }
                    got_snapshot = true;
                    seen.snapshot = Some(data);
                }
                "end" => {
                    seen.ended = true;
                    seen.end = data.get("run").is_some().then_some(data);
                    return Read::Ended;
                }
                "notice" => {
                    if !json {
                        let _ = writeln!(err, "{}", text(&data, "message"));
                    }
                }
                "lagged" => {
                    if !json {
                        let _ = writeln!(
                            err,
                            "(the daemon dropped {} events for this client: it read too slowly)",
                            data["missed"].as_u64().unwrap_or(0)
                        );
                    }
                }
                "planned" | "recorded" => {}
                _ => {
                    // A kind this drover does not know (a newer daemon) is skipped.
                    if let Ok(e) = serde_json::from_value::<RunEvent>(data) {
                        if let RunEvent::RunFinished { outcome } = &e {
                            seen.outcome = Some(outcome.clone());
                        }
                        etx.send(e);
                    }
                }
            }
        }
    }
}

/// The exit code a local `drover run` with this outcome (the engine's, as recorded)
/// exits with, and its verdict. `status`: the run's recorded status, for a run
/// without an outcome.
pub fn outcome_exit(status: &str, outcome: Option<&Value>) -> (i32, String) {
    let Some(o) = outcome.filter(|o| o.get("outcome").is_some()) else {
        return match status {
            "succeeded" => (exit_code::OK, "succeeded".into()),
            "completed_with_failures" => (exit_code::NODES_FAILED, "completed with failures".into()),
            "stopped" | "interrupted" | "cancelled" => (
                exit_code::RUN_STOPPED,
                format!("STOPPED: {}", status_label(status)),
            ),
            other => (exit_code::FAILURE, status_label(other)),
        };
    };
    match text(o, "outcome") {
        "succeeded" => {
            let remains = o["still_need_other_steps"].as_array().map_or(0, Vec::len);
            if remains > 0 {
                (
                    exit_code::WORK_REMAINS,
                    format!(
                        "work remains: {} still {} steps outside --tags",
                        crate::report::plural(remains, "node"),
                        if remains == 1 { "needs" } else { "need" }
                    ),
                )
            } else {
                (exit_code::OK, "succeeded".into())
            }
        }
        "completed_with_failures" => {
            let n = o["failed"].as_u64().unwrap_or(0) as usize;
            // Nodes whose checks failed count in `failed`; no step failed on them.
            let unchecked = crate::report::check_failed(Some(o)).len();
            let failed = crate::report::plural(n.saturating_sub(unchecked), "failed node");
            let text = match unchecked {
                0 => format!("completed with {failed} within the failure budget"),
                u if u >= n => crate::report::not_checked(u),
                u => format!(
                    "completed with {failed} within the failure budget; {}",
                    crate::report::not_checked(u)
                ),
            };
            (exit_code::NODES_FAILED, text)
        }
        _ => {
            let s = &o["stop"];
            let n = |k: &str| s[k].as_u64().unwrap_or(0) as usize;
            let (code, why) = match text(s, "reason") {
                "canary_failed" => (
                    exit_code::RUN_STOPPED,
                    format!("canary {} failed; no bulk node was touched", text(s, "node")),
                ),
                "batch_budget" => (
                    exit_code::RUN_STOPPED,
                    format!(
                        "{} failed in batch {}, its budget is {}",
                        crate::report::plural(n("failed"), "node"),
                        n("batch"),
                        n("budget")
                    ),
                ),
                "run_budget" => (
                    exit_code::RUN_STOPPED,
                    format!(
                        "{} failed, the run's budget is {}",
                        crate::report::plural(n("failed"), "node"),
                        n("budget")
                    ),
                ),
                "blocked" => (
                    exit_code::RUN_STOPPED,
                    format!(
                        "{} cannot be taken down without breaking a disruption budget ({})",
                        text(s, "node"),
                        text(s, "limit")
                    ),
                ),
                // Aborted over the API (or the daemon stopped): the watcher was not
                // interrupted, so not 130, which shells read as its own Ctrl-C.
                "interrupted" => (exit_code::RUN_STOPPED, "aborted (or the daemon stopped)".into()),
                "state_store" => (
                    exit_code::STATE_STORE_FAILED,
                    format!("the state store cannot record the run ({})", text(s, "error")),
                ),
                "lease_lost" => (
                    exit_code::LEASE_LOST,
                    format!("another run took over the lease of {}", text(s, "node")),
                ),
                other => (exit_code::RUN_STOPPED, other.replace('_', " ")),
            };
            (code, format!("STOPPED: {why}"))
        }
    }
}

/// Prints the verdict and the nodes by state; returns the exit code.
fn verdict(id: &str, seen: &Seen, json: bool, out: &mut dyn Write, err: &mut dyn Write) -> i32 {
    let last = seen.end.as_ref().or(seen.snapshot.as_ref());
    let run = last.map(|v| &v["run"]).filter(|r| r.get("workflow").is_some());
    let Some(run) = run else {
        let _ = writeln!(
            err,
            "run {id} ended before it was recorded: it had nothing to do or was refused (the daemon's log says which)"
        );
        return exit_code::OK;
    };
    let status = text(run, "status");
    if status == "running" && seen.end.is_none() {
        let _ = writeln!(
            err,
            "error: run {id} is recorded as running, but this daemon is not driving it (another controller, or one that died); `drover runs show {id}`"
        );
        return exit_code::FAILURE;
    }
    let outcome = seen
        .outcome
        .as_ref()
        .or_else(|| run.get("outcome").filter(|o| !o.is_null()));
    let (code, verdict) = outcome_exit(status, outcome);
    if json {
        return code;
    }
    let _ = writeln!(out, "\nrun {id}: {verdict}");
    let nodes = last
        .and_then(|v| v["nodes"].as_array())
        .cloned()
        .unwrap_or_default();
    let mut by_state: Vec<(String, Vec<String>)> = Vec::new();
    for n in &nodes {
        let st = text(n, "state").to_string();
        let name = text(n, "node").to_string();
        match by_state.iter_mut().find(|(s, _)| *s == st) {
            Some((_, v)) => v.push(name),
            None => by_state.push((st, vec![name])),
        }
    }
    for (st, names) in by_state {
        let _ = writeln!(
            out,
            "  {st:<12}{:>6}  {}",
            names.len(),
            crate::hostlist::compress(&names)
        );
    }
    code
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn outcomes_exit_as_a_local_run_does() {
        let cases = [
            (json!({"outcome": "succeeded"}), 0),
            (
                json!({"outcome": "succeeded", "still_need_other_steps": ["n1"]}),
                10,
            ),
            (json!({"outcome": "completed_with_failures", "failed": 2}), 6),
            (
                json!({"outcome": "stopped", "stop": {"reason": "canary_failed", "node": "n1"}}),
                5,
            ),
            (
                json!({"outcome": "stopped", "stop": {"reason": "run_budget", "failed": 2, "budget": 1}}),
                5,
            ),
            (
                json!({"outcome": "stopped", "stop": {"reason": "interrupted"}}),
                5,
            ),
            (
                json!({"outcome": "stopped", "stop": {"reason": "state_store", "error": "disk"}}),
                11,
            ),
            (
                json!({"outcome": "stopped", "stop": {"reason": "lease_lost", "node": "n1"}}),
                12,
            ),
        ];
        for (o, want) in cases {
            assert_eq!(outcome_exit("whatever", Some(&o)).0, want, "{o}");
        }
        // Nodes whose checks failed: the run did not succeed on them, and no step failed.
        let only =
            json!({"outcome": "completed_with_failures", "failed": 3, "check_failed": ["n1", "n2", "n3"]});
        assert_eq!(
            outcome_exit("completed_with_failures", Some(&only)),
            (6, "3 nodes failed their checks and were not touched".to_string())
        );
        let both = json!({"outcome": "completed_with_failures", "failed": 3, "check_failed": ["n3"]});
        assert_eq!(
            outcome_exit("completed_with_failures", Some(&both)),
            (
                6,
                "completed with 2 failed nodes within the failure budget; 1 node failed its check and was not touched"
                    .to_string()
            )
        );
        assert_eq!(outcome_exit("cancelled", None).0, 5);
        assert_eq!(outcome_exit("completed_with_failures", None).0, 6);
        assert!(
            outcome_exit(
                "stopped",
                Some(&json!({"outcome": "stopped", "stop": {"reason": "canary_failed", "node": "n1"}}))
            )
            .1
            .contains("canary n1 failed")
        );
    }
}
