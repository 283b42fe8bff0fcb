//! What an event says, in words: a one-line summary (a Slack notification's preview, a
//! webhook's `text`), labelled facts, and the output to quote.

use serde_json::Value;

use crate::store::{Notice, NoticeKind};

#[derive(Debug, Clone, PartialEq)]
pub struct NoticeText {
    pub summary: String,
    /// Label and value, in the order they read best.
    pub fields: Vec<(String, String)>,
    /// Output lines or diagnostics to show verbatim (a code block in Slack).
    pub quote: Option<String>,
    /// What to do next, when something waits for a human.
    pub hint: Option<String>,
}

fn s(v: &Value, k: &str) -> Option<String> {
    match v.get(k)? {
        Value::Null => None,
        Value::String(x) => Some(x.clone()),
        other => Some(other.to_string()),
    }
}

fn short(sha: &str) -> &str {
    sha.get(..10).unwrap_or(sha)
}

/// `mark v3`, or the run id alone when the run is not known.
fn what(p: &Value) -> String {
    match (s(p, "workflow"), s(p, "version")) {
        (Some(w), Some(v)) => format!("{w} v{v}"),
        _ => s(p, "run").unwrap_or_else(|| "a run".into()),
    }
}

fn trigger_text(t: &Value) -> Option<String> {
    let kind = t.get("kind").and_then(Value::as_str)?;
    let who = ["user", "name", "commit", "sha"]
        .iter()
        .find_map(|k| t.get(*k).and_then(Value::as_str));
    Some(match who {
        Some(w) => format!("{kind} ({w})"),
        None => kind.to_string(),
    })
}

fn duration_text(ms: i64) -> String {
    let secs = u64::try_from(ms.max(0) / 1000).unwrap_or(0);
    humantime::format_duration(std::time::Duration::from_secs(secs)).to_string()
}

impl NoticeText {
    pub fn of(n: &Notice) -> NoticeText {
        let p = &n.payload;
        let mut fields = Vec::new();
        let mut quote = None;
        let mut hint = None;
        let mut field = |label: &str, value: Option<String>| {
            if let Some(v) = value {
                fields.push((label.to_string(), v));
            }
        };
        let summary = match n.kind {
            NoticeKind::RunStarted => {
                field("Trigger", p.get("trigger").and_then(trigger_text));
                field(
                    "Commit",
                    s(p, "commit").map(|c| match (s(p, "author"), s(p, "subject")) {
                        (Some(a), Some(sub)) => format!("{} by {a}: {sub}", short(&c)),
                        _ => short(&c).to_string(),
                    }),
                );
                field(
                    "Nodes",
                    Some(format!(
                        "{} ({} canary, {} drain, {} hot)",
                        s(p, "nodes").unwrap_or_default(),
                        s(p, "canary").unwrap_or_default(),
                        s(p, "drain").unwrap_or_default(),
                        s(p, "hot").unwrap_or_default()
                    )),
                );
                field("Window", s(p, "window"));
                format!("{} started", what(p))
            }
            NoticeKind::RunResumed => {
                field("Nodes left", s(p, "left"));
                format!("{} resumed", what(p))
            }
            NoticeKind::CanaryPassed => {
                field(
                    "Canary",
                    p.get("canary")
                        .and_then(Value::as_array)
                        .map(|a| a.iter().filter_map(Value::as_str).collect::<Vec<_>>().join(", ")),
                );
                field("Bulk", s(p, "bulk").map(|b| format!("{b} nodes next")));
                format!("{}: canary passed", what(p))
            }
            NoticeKind::RunStopped | NoticeKind::RunFinished => {
                let status = s(p, "status").unwrap_or_default();
                if let Some(c) = p.get("counts").and_then(Value::as_object) {
                    let counts: Vec<String> = c.iter().map(|(k, v)| format!("{v} {k}")).collect();
                    field("Nodes", Some(counts.join(", ")));
                }
                field(
                    "Duration",
                    p.get("duration_ms").and_then(Value::as_i64).map(duration_text),
                );
                if let Some(stop) = p.get("outcome").and_then(|o| o.get("stop")) {
                    field("Stopped by", Some(stop_text(stop)));
                }
                // Never worked on, so not among the run's nodes: named here or nowhere.
                let unchecked = crate::report::check_failed(p.get("outcome"));
                if !unchecked.is_empty() {
                    field(
                        "Check failed, not touched",
                        Some(crate::hostlist::compress(&unchecked)),
                    );
                }
                let failed = p.get("nodes_failed");
                let first = failed.and_then(|f| f.get("first")).and_then(Value::as_array);
                if let Some(first) = first.filter(|f| !f.is_empty()) {
                    let total = failed
                        .and_then(|f| f.get("total"))
                        .and_then(Value::as_u64)
                        .unwrap_or(0);
                    let mut lines = Vec::new();
                    let mut out = Vec::new();
                    for f in first {
                        let node = s(f, "node").unwrap_or_default();
                        let step = f.get("last_step");
                        let step_name = step.and_then(|st| s(st, "step")).unwrap_or_else(|| "-".into());
                        lines.push(format!(
                            "{node} ({}) at {step_name}{}",
                            s(f, "state").unwrap_or_default(),
                            s(f, "reason").map(|r| format!(": {r}")).unwrap_or_default()
                        ));
                        if let Some(o) = step.and_then(|st| s(st, "output")).filter(|o| !o.is_empty()) {
                            out.push(format!("{node}:\n{o}"));
                        }
                    }
                    let more = total.saturating_sub(first.len() as u64);
                    if more > 0 {
                        lines.push(format!("and {more} more"));
                    }
                    field("Failed or held", Some(lines.join("\n")));
                    if !out.is_empty() {
                        quote = Some(out.join("\n"));
                    }
                }
                hint = s(p, "resume").map(|r| format!("To resume: `{r}`"));
                if n.kind == NoticeKind::RunStopped {
                    format!("{} stopped", what(p))
                } else {
                    format!("{} {}", what(p), status.replace('_', " "))
                }
            }
            NoticeKind::NodeHeld => {
                field("Reason", s(p, "reason"));
                if let Some(st) = p.get("last_step").filter(|v| !v.is_null()) {
                    field("Step", s(st, "step"));
                    quote = s(st, "output").filter(|o| !o.is_empty());
                }
                hint = Some("It stays out of service until a human resumes it.".into());
                format!(
                    "{}: node {} held for a human",
                    what(p),
                    s(p, "node").unwrap_or_default()
                )
            }
            NoticeKind::Paused | NoticeKind::Resumed => {
                let scope = match s(p, "scope").as_deref() {
                    Some("*") | None => "all runs".to_string(),
                    Some(run) => format!("run {run}"),
                };
                field("Reason", s(p, "reason"));
                let by = s(p, "by").unwrap_or_else(|| "someone".into());
                if n.kind == NoticeKind::Paused {
                    format!("{scope} paused by {by}")
                } else {
                    format!("{scope} resumed by {by}")
                }
            }
            NoticeKind::WaitingForWindow => {
                // In the window's own zone, as the terminal says it ("Mon 2026-12-07
                // 08:00 Europe/Berlin"); the UTC instant only when that is missing.
                let local = s(p, "text").and_then(|t| t.split_once(", opens ").map(|(_, o)| o.to_string()));
                field("Opens", local.or_else(|| s(p, "opens")));
                format!(
                    "{} waits for window {}",
                    what(p),
                    s(p, "window").unwrap_or_default()
                )
            }
            NoticeKind::CommitRejected => {
                field("Author", s(p, "author"));
                field("Subject", s(p, "subject"));
                quote = s(p, "diagnostics").map(|d| match p.get("more_lines").and_then(Value::as_u64) {
                    Some(m) if m > 0 => format!("{d}\n... {m} more lines"),
                    _ => d,
                });
                format!(
                    "commit {} rejected: nothing of it runs",
                    short(&s(p, "commit").unwrap_or_default())
                )
            }
        };
        if let Some(run) = &n.run {
            fields.push(("Run".into(), run.clone()));
        }
        NoticeText {
            summary,
            fields,
            quote,
            hint,
        }
    }

    /// Everything as plain text, for sinks without formatting.
    pub fn plain(&self) -> String {
        let mut out = self.summary.clone();
        for (k, v) in &self.fields {
            out.push_str(&format!("\n{k}: {v}"));
        }
        if let Some(q) = &self.quote {
            out.push_str(&format!("\n{q}"));
        }
        if let Some(h) = &self.hint {
            out.push_str(&format!("\n{h}"));
        }
        out
    }
}

/// The stop reason of an outcome's `stop` object, in words.
fn stop_text(stop: &Value) -> String {
    let reason = stop.get("reason").and_then(Value::as_str).unwrap_or("");
    let num = |k: &str| stop.get(k).map(Value::to_string).unwrap_or_default();
    match reason {
        "canary_failed" => format!("the canary {} failed", s(stop, "node").unwrap_or_default()),
        "batch_budget" => format!(
            "the failure budget of batch {}: {} failed, {} allowed",
            num("batch"),
            num("failed"),
            num("budget")
        ),
        "run_budget" => format!(
            "the run's failure budget: {} failed, {} allowed",
            num("failed"),
            num("budget")
        ),
        "blocked" => format!(
            "{} (no room for node {})",
            s(stop, "limit").unwrap_or_default(),
            s(stop, "node").unwrap_or_default()
        ),
        "" => stop.to_string(),
        other => other.replace('_', " "),
    }
}
