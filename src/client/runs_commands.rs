//! `drover runs list|show|abort|pause|resume` against the daemon: the same tables as
//! the local commands, from the API's JSON (`--json` prints that JSON as it came).

use std::io::Write;

use serde_json::{Value, json};

use super::api_client::ApiClient;
use super::client_error::ClientError;
use super::table::Table;
use crate::exit_code;

pub(super) fn text<'a>(v: &'a Value, key: &str) -> &'a str {
    v.get(key).and_then(Value::as_str).unwrap_or("")
}

fn count(v: &Value, key: &str) -> u64 {
    v.get(key).and_then(Value::as_u64).unwrap_or(0)
}

/// `completed_with_failures` as people read it.
pub(super) fn status_label(s: &str) -> String {
    s.replace('_', " ")
}

fn print_json(out: &mut dyn Write, v: &Value) {
    let _ = writeln!(out, "{v}");
}

pub async fn list(
    c: &ApiClient,
    state: Option<&str>,
    workflow: Option<&str>,
    json: bool,
    out: &mut dyn Write,
) -> Result<i32, ClientError> {
    let mut q = Vec::new();
    if let Some(s) = state {
        q.push(("state", s));
    }
    if let Some(w) = workflow {
        q.push(("workflow", w));
    }
    let v = c.get(&["runs"], &q).await?;
    if json {
        print_json(out, &v);
        return Ok(exit_code::OK);
    }
    let runs = v["runs"].as_array().cloned().unwrap_or_default();
    if runs.is_empty() {
        let _ = writeln!(out, "no runs");
        return Ok(exit_code::OK);
    }
    let _ = write!(out, "{}", render_runs(&runs));
    Ok(exit_code::OK)
}

/// Runs as `drover runs list` prints them: a table, a row per run.
fn render_runs(runs: &[Value]) -> String {
    let mut t = Table::new(&[
        "RUN", "WORKFLOW", "STATUS", "STARTED", "OK", "FAIL", "HELD", "LEFT",
    ])
    .right(&[4, 5, 6, 7]);
    for r in runs {
        let counts = &r["counts"];
        let total: u64 = counts
            .as_object()
            .map(|o| o.values().filter_map(Value::as_u64).sum())
            .unwrap_or(0);
        let finished: u64 = ["succeeded", "failed", "held", "skipped"]
            .iter()
            .map(|k| count(counts, k))
            .sum();
        t.row(vec![
            text(r, "id").to_string(),
            format!("{} v{}", text(r, "workflow"), count(r, "version")),
            status_label(text(r, "status")),
            short_time(text(r, "started_at")),
            count(counts, "succeeded").to_string(),
            // Nodes whose checks failed are not among the run's nodes, but failed it.
            (count(counts, "failed") + crate::report::check_failed(r.get("outcome")).len() as u64)
                .to_string(),
            count(counts, "held").to_string(),
            total.saturating_sub(finished).to_string(),
        ]);
    }
    t.render()
}

/// `2026-12-02T03:04:05.123Z` → `2026-12-02 03:04:05Z`.
pub(super) fn short_time(t: &str) -> String {
    match t.parse::<jiff::Timestamp>() {
        Ok(ts) => ts.strftime("%Y-%m-%d %H:%M:%SZ").to_string(),
        Err(_) => t.to_string(),
    }
}

pub async fn show(c: &ApiClient, id: &str, json: bool, out: &mut dyn Write) -> Result<i32, ClientError> {
    let v = c.get(&["runs", id], &[]).await?;
    if json {
        print_json(out, &v);
        return Ok(exit_code::OK);
    }
    let _ = write!(out, "{}", render_run(&v));
    Ok(exit_code::OK)
}

/// A run as `drover runs show` prints it: the run, then a table of its nodes.
pub(super) fn render_run(v: &Value) -> String {
    let r = &v["run"];
    let mut s = String::new();
    let status = text(r, "status");
    if r.get("workflow").is_none() {
        // Live, not recorded yet: its targets are being checked.
        s.push_str(&format!("run {}: {}\n", text(r, "id"), status_label(status)));
        return s;
    }
    s.push_str(&format!(
        "run {}: {} v{}, {}\n",
        text(r, "id"),
        text(r, "workflow"),
        count(r, "version"),
        status_label(status)
    ));
    if let Some(commit) = r.get("commit").and_then(Value::as_str) {
        s.push_str(&format!("  commit {commit}\n"));
    }
    s.push_str(&format!(
        "  started {} by {}; last heartbeat {}\n",
        short_time(text(r, "started_at")),
        trigger_text(&v["trigger"]),
        short_time(text(r, "heartbeat_at"))
    ));
    if let Some(f) = r.get("finished_at").and_then(Value::as_str) {
        s.push_str(&format!("  finished {}\n", short_time(f)));
    }
    if let Some(p) = v.get("paused").filter(|p| !p.is_null()) {
        s.push_str(&format!(
            "  paused by {} since {}{}: no new node starts\n",
            text(p, "by"),
            short_time(text(p, "since")),
            p.get("reason")
                .and_then(Value::as_str)
                .map(|r| format!(" ({r})"))
                .unwrap_or_default()
        ));
    }
    let nodes = v["nodes"].as_array().cloned().unwrap_or_default();
    if !nodes.is_empty() {
        let mut t = Table::new(&["NODE", "STATE", "ATTEMPT", "REASON"]).right(&[2]);
        for n in &nodes {
            let drained = if n["drained_by_us"].as_bool() == Some(true) {
                " (drained by this run)"
            } else {
                ""
            };
            t.row(vec![
                text(n, "node").to_string(),
                format!("{}{drained}", text(n, "state")),
                count(n, "attempt").to_string(),
                n.get("reason").and_then(Value::as_str).unwrap_or("").to_string(),
            ]);
        }
        for line in t.render().lines() {
            s.push_str(&format!("  {line}\n"));
        }
    }
    let unchecked = crate::report::check_failed(r.get("outcome"));
    if !unchecked.is_empty() {
        s.push_str(&format!(
            "  check failed, not touched: {}\n",
            crate::hostlist::compress(&unchecked)
        ));
    }
    s
}

/// Who started a run: `api token alice`, `cli`, `converge` ...
fn trigger_text(t: &Value) -> String {
    match t.get("kind").and_then(Value::as_str) {
        Some("api") => format!("API token `{}`", text(t, "token_name")),
        Some(k) => {
            let rest: Vec<String> = t
                .as_object()
                .into_iter()
                .flatten()
                .filter(|(key, _)| *key != "kind")
                .map(|(key, v)| {
                    format!(
                        "{key} {}",
                        v.as_str().map_or_else(|| v.to_string(), str::to_string)
                    )
                })
                .collect();
            if rest.is_empty() {
                k.to_string()
            } else {
                format!("{k} ({})", rest.join(", "))
            }
        }
        None => "unknown".into(),
    }
}

pub async fn abort(
    c: &ApiClient,
    id: &str,
    force: bool,
    json: bool,
    out: &mut dyn Write,
) -> Result<i32, ClientError> {
    let v = c.post(&["runs", id, "abort"], &json!({ "force": force })).await?;
    if json {
        print_json(out, &v);
    } else if force {
        let _ = writeln!(
            out,
            "aborting run {id}: no new node starts, the steps in flight are aborted (a node may be left drained, held with the reason)\nfollow it: drover runs watch {id}"
        );
    } else {
        let _ = writeln!(
            out,
            "aborting run {id}: no new node starts; the nodes in flight finish their cycle, then the run is cancelled\nfollow it: drover runs watch {id}"
        );
    }
    Ok(exit_code::OK)
}

pub async fn pause(c: &ApiClient, id: &str, json: bool, out: &mut dyn Write) -> Result<i32, ClientError> {
    let v = c.post(&["runs", id, "pause"], &json!({})).await?;
    if json {
        print_json(out, &v);
    } else {
        let _ = writeln!(
            out,
            "paused run {id}: no new node starts (nodes in flight finish their cycle)"
        );
    }
    Ok(exit_code::OK)
}

pub async fn resume(c: &ApiClient, id: &str, json: bool, out: &mut dyn Write) -> Result<i32, ClientError> {
    let v = c.post(&["runs", id, "resume"], &json!({})).await?;
    if json {
        print_json(out, &v);
    } else {
        let _ = writeln!(
            out,
            "lifted the pause of run {id} (a pause of every run, if set, still holds it: `drover status`)"
        );
    }
    Ok(exit_code::OK)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_shown_run_names_the_nodes_its_checks_could_not_reach() {
        let v = json!({
            "run": {"id": "r1", "workflow": "w", "version": 2, "status": "completed_with_failures",
                    "started_at": "2026-12-03T15:00:00Z", "heartbeat_at": "2026-12-03T15:00:01Z",
                    "outcome": {"outcome": "completed_with_failures", "failed": 2, "check_failed": ["n03", "n04"]}},
            "trigger": {"kind": "cli"},
            "nodes": [{"node": "n01", "state": "succeeded", "attempt": 1}],
        });
        let text = render_run(&v);
        assert!(text.contains("w v2, completed with failures"), "{text}");
        assert!(
            text.ends_with("  check failed, not touched: n[03-04]\n"),
            "{text}"
        );
        let mut ok = v.clone();
        ok["run"]["outcome"] = json!({"outcome": "succeeded"});
        assert!(!render_run(&ok).contains("check failed"));
        // Listed, they count as failed (OK FAIL HELD LEFT).
        let mut listed = v["run"].clone();
        listed["counts"] = json!({"succeeded": 1});
        let table = render_runs(&[listed]);
        let row: Vec<&str> = table.lines().nth(1).unwrap().split_whitespace().collect();
        assert_eq!(row[row.len() - 4..], ["1", "2", "0", "0"], "{table}");
    }
}
