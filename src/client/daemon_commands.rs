//! `drover status`, `drover pause [REASON]` and `drover resume` against the daemon.

use std::io::Write;

use serde_json::{Value, json};

use super::api_client::ApiClient;
use super::client_error::ClientError;
use super::runs_commands::{short_time, text};
use super::table::Table;
use crate::api::DaemonStatus;
use crate::exit_code;

fn parse_status(c: &ApiClient, v: Value) -> Result<DaemonStatus, ClientError> {
    serde_json::from_value(v).map_err(|e| ClientError::NotTheApi {
        url: c.server(),
        status: 200,
        body: format!("a status that does not parse: {e}"),
    })
}

fn pause_text(p: &Value) -> String {
    let reason = p
        .get("reason")
        .and_then(Value::as_str)
        .map(|r| format!(": {r}"))
        .unwrap_or_default();
    format!(
        "by {} since {}{reason}",
        text(p, "by"),
        short_time(text(p, "since"))
    )
}

/// The daemon's status for people.
fn render_status(s: &DaemonStatus) -> String {
    let mut o = String::new();
    match (&s.commit, &s.last_seen_commit) {
        (Some(c), Some(seen)) if seen != c => o.push_str(&format!(
            "commit in force  {c} (last seen {seen}, not accepted)\n"
        )),
        (Some(c), _) => o.push_str(&format!("commit in force  {c}\n")),
        (None, Some(seen)) => o.push_str(&format!(
            "commit in force  none (last seen {seen}, not accepted)\n"
        )),
        (None, None) => o.push_str("commit in force  none (the site is not followed in git)\n"),
    }
    match &s.paused {
        Some(p) => o.push_str(&format!("paused           every run, {}\n", pause_text(p))),
        None => o.push_str("paused           no\n"),
    }
    for p in &s.paused_runs {
        o.push_str(&format!(
            "paused run       {} {}\n",
            text(p, "run"),
            pause_text(p)
        ));
    }
    if s.active_runs.is_empty() {
        o.push_str("active runs      none\n");
    } else {
        o.push_str("active runs\n");
        let mut t = Table::new(&["RUN", "WORKFLOW"]);
        for r in &s.active_runs {
            t.row(vec![r.run_id.clone(), r.workflow.clone()]);
        }
        indent(&mut o, &t);
    }
    if !s.windows.is_empty() {
        o.push_str("windows\n");
        let mut t = Table::new(&["WINDOW", "STATE", "CHANGES"]);
        for w in &s.windows {
            t.row(vec![
                w.name.clone(),
                if w.open { "open" } else { "closed" }.into(),
                w.next_change
                    .as_deref()
                    .map(short_time)
                    .unwrap_or_else(|| "not within a year".into()),
            ]);
        }
        indent(&mut o, &t);
    }
    if !s.rejected_commits.is_empty() {
        o.push_str("rejected commits\n");
        let mut t = Table::new(&["COMMIT", "AUTHOR", "SUBJECT", "WHY"]);
        for c in &s.rejected_commits {
            t.row(vec![
                text(c, "sha").chars().take(12).collect(),
                text(c, "author").to_string(),
                text(c, "subject").to_string(),
                text(c, "detail").lines().next().unwrap_or("").to_string(),
            ]);
        }
        indent(&mut o, &t);
    }
    o
}

fn indent(o: &mut String, t: &Table) {
    for line in t.render().lines() {
        o.push_str(&format!("  {line}\n"));
    }
}

pub async fn status(c: &ApiClient, json: bool, out: &mut dyn Write) -> Result<i32, ClientError> {
    let v = c.get(&["status"], &[]).await?;
    if json {
        let _ = writeln!(out, "{v}");
        return Ok(exit_code::OK);
    }
    let s = parse_status(c, v)?;
    let _ = write!(out, "{}", render_status(&s));
    Ok(exit_code::OK)
}

pub async fn pause(
    c: &ApiClient,
    reason: Option<&str>,
    json: bool,
    out: &mut dyn Write,
) -> Result<i32, ClientError> {
    let v = c.post(&["pause"], &json!({ "reason": reason })).await?;
    if json {
        let _ = writeln!(out, "{v}");
        return Ok(exit_code::OK);
    }
    let s = parse_status(c, v)?;
    let _ = writeln!(
        out,
        "paused all runs: no new node starts (nodes in flight finish their cycle)\n"
    );
    let _ = write!(out, "{}", render_status(&s));
    Ok(exit_code::OK)
}

pub async fn resume(c: &ApiClient, json: bool, out: &mut dyn Write) -> Result<i32, ClientError> {
    let v = c.post(&["resume"], &json!({})).await?;
    if json {
        let _ = writeln!(out, "{v}");
        return Ok(exit_code::OK);
    }
    let s = parse_status(c, v)?;
    let _ = writeln!(out, "resumed all runs\n");
    let _ = write!(out, "{}", render_status(&s));
    Ok(exit_code::OK)
}
