//! Which writes are worth telling, and what to tell: each is turned into an outbox row
//! inside the write's own savepoint, so the event and the state change it reports are
//! committed together or not at all, whichever part of drover made the write (a daemon's
//! rollout, `drover run`, `drover pause`, the API).

use rusqlite::{Connection, OptionalExtension, params};
use serde_json::{Value, json};

use super::columns::millis;
use super::node_state::NodeState;
use super::notice_kind::NoticeKind;
use super::outbox::Notice;
use super::run_status::RunStatus;
use super::source_commit::SourceVerdict;
use super::write::Write;

/// The most failed or held nodes a stop message names (the rest are counted).
const NODES_NAMED: usize = 5;
/// The output lines a stop message quotes per node.
const OUTPUT_LINES: usize = 5;
/// The diagnostic lines a rejected commit's message quotes.
const DIAGNOSTIC_LINES: usize = 12;

/// Records the event `w` makes, if any. `changed` is the rows the write changed: a
/// pause lifted that was not set tells nothing.
pub(super) fn record(conn: &Connection, w: &Write, changed: usize) -> rusqlite::Result<()> {
    match w {
        Write::RunCreated {
            id,
            workflow,
            version,
            commit,
            plan,
            at,
            nodes,
            ..
        } => {
            let count = |k: &str| plan.get(k).and_then(Value::as_array).map_or(0, Vec::len);
            let drain = count("drains");
            let (author, subject) = commit_author(conn, commit.as_deref())?;
            let payload = json!({
                "workflow": workflow,
                "version": version,
                "commit": commit,
                "author": author,
                "subject": subject,
                "nodes": nodes.len(),
                "canary": count("canary"),
                "drain": drain,
                "hot": nodes.len().saturating_sub(drain),
                "excluded": count("excluded"),
                "window": plan.get("window"),
            });
            Notice::insert(
                conn,
                &format!("run_started:{id}"),
                NoticeKind::RunStarted,
                Some(id),
                &payload,
                *at,
            )?;
        }
        Write::RunTriggered { id, trigger } => {
            // Written right after its RunCreated, in the same request.
            conn.prepare_cached(
                "UPDATE outbox SET payload = json_set(payload, '$.trigger', json(?2))
                 WHERE key = 'run_started:' || ?1",
            )?
            .execute(params![id, super::columns::json_text(trigger)?])?;
        }
        Write::RunResumed { id, at, .. } => {
            let mut payload = run_facts(conn, id)?;
            payload["left"] = json!(count_not_final(conn, id)?);
            let key = format!("run_resumed:{id}:{}", millis(*at));
            Notice::insert(conn, &key, NoticeKind::RunResumed, Some(id), &payload, *at)?;
        }
        Write::Node {
            run,
            node,
            state,
            reason,
            at,
            ..
        } => match state {
            NodeState::Held => {
                let mut payload = run_facts(conn, run)?;
                payload["node"] = json!(node);
                payload["reason"] = json!(reason);
                payload["last_step"] = last_step(conn, run, node)?;
                let key = format!("node_held:{run}:{node}");
                Notice::insert(conn, &key, NoticeKind::NodeHeld, Some(run), &payload, *at)?;
            }
            NodeState::Succeeded | NodeState::Skipped => canary_passed(conn, run, node, *at)?,
            _ => {}
        },
        Write::RunFinished {
            id,
            status,
            outcome,
            at,
        } => {
            let kind = if *status == RunStatus::Stopped {
                NoticeKind::RunStopped
            } else {
                NoticeKind::RunFinished
            };
            let mut payload = run_facts(conn, id)?;
            payload["status"] = json!(status.as_str());
            payload["outcome"] = outcome.clone();
            payload["counts"] = state_counts(conn, id)?;
            payload["duration_ms"] = json!(millis(*at) - started_at(conn, id)?.unwrap_or(millis(*at)));
            payload["nodes_failed"] = failed_nodes(conn, id)?;
            if matches!(status, RunStatus::Stopped | RunStatus::Interrupted) {
                payload["resume"] = json!(format!("drover runs resume {id}"));
            }
            let key = format!("{kind}:{id}:{}", millis(*at));
            Notice::insert(conn, &key, kind, Some(id), &payload, *at)?;
        }
        Write::Paused {
            scope,
            reason,
            by,
            at,
        } => {
            let payload = json!({ "scope": scope.key(), "reason": reason, "by": by });
            let key = format!("paused:{}:{}", scope.key(), millis(*at));
            Notice::insert(conn, &key, NoticeKind::Paused, run_of(scope), &payload, *at)?;
        }
        Write::Unpaused { scope, by, at } if changed > 0 => {
            let payload = json!({ "scope": scope.key(), "by": by });
            let key = format!("resumed:{}:{}", scope.key(), millis(*at));
            Notice::insert(conn, &key, NoticeKind::Resumed, run_of(scope), &payload, *at)?;
        }
        Write::SourceCommit {
            sha,
            verdict: SourceVerdict::Rejected,
            author,
            subject,
            detail,
            at,
            ..
        } => {
            let lines: Vec<&str> = detail.lines().collect();
            let payload = json!({
                "commit": sha,
                "author": author,
                "subject": subject,
                "diagnostics": lines.iter().copied().take(DIAGNOSTIC_LINES).collect::<Vec<_>>().join("\n"),
                "more_lines": lines.len().saturating_sub(DIAGNOSTIC_LINES),
            });
            Notice::insert(
                conn,
                &format!("commit_rejected:{sha}"),
                NoticeKind::CommitRejected,
                None,
                &payload,
                *at,
            )?;
        }
        Write::Notice {
            key,
            kind,
            run,
            payload,
            at,
        } => {
            let mut payload = payload.clone();
            if let Some(run) = run
                && let Value::Object(facts) = run_facts(conn, run)?
            {
                for (k, v) in facts {
                    payload[k] = v;
                }
            }
            Notice::insert(conn, key, *kind, run.as_deref(), &payload, *at)?;
        }
        _ => {}
    }
    Ok(())
}

fn run_of(scope: &super::pause::PauseScope) -> Option<&str> {
    match scope {
        super::pause::PauseScope::All => None,
        super::pause::PauseScope::Run(id) => Some(id),
    }
}

/// When the last canary of `run` ends well, the canary passed (once: the key).
fn canary_passed(conn: &Connection, run: &str, node: &str, at: jiff::Timestamp) -> rusqlite::Result<()> {
    let Some(plan) = conn
        .prepare_cached("SELECT plan FROM runs WHERE id = ?1")?
        .query_row([run], |r| r.get::<_, String>(0))
        .optional()?
    else {
        return Ok(());
    };
    let plan: Value = serde_json::from_str(&plan).unwrap_or(Value::Null);
    let canary: Vec<&str> = plan
        .get("canary")
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    if !canary.contains(&node) {
        return Ok(());
    }
    let open: i64 = conn
        .prepare_cached(
            "SELECT COUNT(*) FROM nodes WHERE run = ?1 AND phase = 0 AND state NOT IN ('succeeded', 'skipped')",
        )?
        .query_row([run], |r| r.get(0))?;
    if open > 0 {
        return Ok(());
    }
    let mut payload = run_facts(conn, run)?;
    payload["canary"] = json!(canary);
    payload["bulk"] = json!(plan.get("batches").and_then(Value::as_array).map_or(0, |b| {
        b.iter().filter_map(Value::as_array).map(Vec::len).sum::<usize>()
    }));
    Notice::insert(
        conn,
        &format!("canary_passed:{run}"),
        NoticeKind::CanaryPassed,
        Some(run),
        &payload,
        at,
    )?;
    Ok(())
}

/// The run's workflow, version and commit, which every message of a run names.
fn run_facts(conn: &Connection, run: &str) -> rusqlite::Result<Value> {
    let row = conn
        .prepare_cached("SELECT workflow, version, git_commit FROM runs WHERE id = ?1")?
        .query_row([run], |r| {
            Ok(json!({
                "run": run,
                "workflow": r.get::<_, String>(0)?,
                "version": r.get::<_, i64>(1)?,
                "commit": r.get::<_, Option<String>>(2)?,
            }))
        })
        .optional()?;
    Ok(row.unwrap_or_else(|| json!({ "run": run })))
}

fn started_at(conn: &Connection, run: &str) -> rusqlite::Result<Option<i64>> {
    conn.prepare_cached("SELECT started_at FROM runs WHERE id = ?1")?
        .query_row([run], |r| r.get(0))
        .optional()
}

fn commit_author(
    conn: &Connection,
    commit: Option<&str>,
) -> rusqlite::Result<(Option<String>, Option<String>)> {
    let Some(sha) = commit else {
        return Ok((None, None));
    };
    Ok(conn
        .prepare_cached("SELECT author, subject FROM source_commits WHERE sha = ?1")?
        .query_row([sha], |r| Ok((Some(r.get(0)?), Some(r.get(1)?))))
        .optional()?
        .unwrap_or((None, None)))
}

fn count_not_final(conn: &Connection, run: &str) -> rusqlite::Result<i64> {
    conn.prepare_cached(
        "SELECT COUNT(*) FROM nodes WHERE run = ?1 AND state NOT IN ('succeeded', 'failed', 'held', 'skipped')",
    )?
    .query_row([run], |r| r.get(0))
}

fn state_counts(conn: &Connection, run: &str) -> rusqlite::Result<Value> {
    let mut counts = serde_json::Map::new();
    let mut stmt = conn.prepare_cached("SELECT state, COUNT(*) FROM nodes WHERE run = ?1 GROUP BY state")?;
    let rows = stmt.query_map([run], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)))?;
    for row in rows {
        let (state, n) = row?;
        counts.insert(state, json!(n));
    }
    Ok(Value::Object(counts))
}

/// The failed and held nodes (the first few) with their reason and last step.
fn failed_nodes(conn: &Connection, run: &str) -> rusqlite::Result<Value> {
    let mut stmt = conn.prepare_cached(
        "SELECT node, state, reason FROM nodes WHERE run = ?1 AND state IN ('failed', 'held') ORDER BY seq",
    )?;
    let rows: Vec<(String, String, Option<String>)> = stmt
        .query_map([run], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
        .collect::<rusqlite::Result<_>>()?;
    let mut out = Vec::new();
    for (node, state, reason) in rows.iter().take(NODES_NAMED) {
        out.push(json!({
            "node": node,
            "state": state,
            "reason": reason,
            "last_step": last_step(conn, run, node)?,
        }));
    }
    Ok(json!({ "total": rows.len(), "first": out }))
}

/// The node's last recorded step attempt: its name, exit code and last output lines.
fn last_step(conn: &Connection, run: &str, node: &str) -> rusqlite::Result<Value> {
    let row = conn
        .prepare_cached(
            "SELECT step, status, exit_code, output_tail FROM steps WHERE run = ?1 AND node = ?2
             ORDER BY at DESC, position DESC, attempt DESC LIMIT 1",
        )?
        .query_row([run, node], |r| {
            let tail: String = r.get(3)?;
            let lines: Vec<&str> = tail.lines().collect();
            let from = lines.len().saturating_sub(OUTPUT_LINES);
            Ok(json!({
                "step": r.get::<_, String>(0)?,
                "status": r.get::<_, String>(1)?,
                "exit_code": r.get::<_, Option<i64>>(2)?,
                "output": lines[from..].join("\n"),
            }))
        })
        .optional()?;
    Ok(row.unwrap_or(Value::Null))
}

#[cfg(test)]
mod tests {
    use serde_json::json;
    use tempfile::TempDir;

    use super::*;
    use crate::store::{Controller, PauseScope, Store};

    fn created(id: &str) -> Write {
        Write::RunCreated {
            id: id.into(),
            workflow: "w".into(),
            version: 2,
            commit: None,
            plan: json!({"canary": ["a"], "drains": ["b"], "batches": [["b"]]}),
            options: json!({}),
            controller: Controller::this(),
            at: jiff::Timestamp::UNIX_EPOCH,
            nodes: vec![("a".into(), 0), ("b".into(), 1)],
        }
    }

    fn node(state: NodeState, n: &str) -> Write {
        Write::Node {
            run: "r1".into(),
            node: n.into(),
            state,
            attempt: 1,
            step: 0,
            drained_by_us: false,
            boot_id: None,
            reason: Some("why".into()),
            at: jiff::Timestamp::UNIX_EPOCH,
        }
    }

    fn kinds(store: &Store) -> Vec<&'static str> {
        store.outbox().unwrap().iter().map(|n| n.kind.as_str()).collect()
    }

    #[test]
    fn each_event_is_recorded_once_with_its_state_change_and_a_failed_write_records_none() {
        let dir = TempDir::new().unwrap();
        let store = Store::open(&dir.path().join("drover.db")).unwrap();
        store
            .write_blocking(vec![
                created("r1"),
                Write::RunTriggered {
                    id: "r1".into(),
                    trigger: json!({"kind": "slack", "user": "U1"}),
                },
            ])
            .unwrap();
        let start = &store.outbox().unwrap()[0];
        assert_eq!(
            start.payload["trigger"]["user"], "U1",
            "the trigger joins the start"
        );
        assert_eq!(start.payload["drain"], 1);
        // The canary's success, recorded twice (a retry), passes the canary once.
        store
            .write_blocking(vec![node(NodeState::Succeeded, "a")])
            .unwrap();
        store
            .write_blocking(vec![node(NodeState::Succeeded, "a")])
            .unwrap();
        store.write_blocking(vec![node(NodeState::Held, "b")]).unwrap();
        // A request that fails is rolled back whole: its event with it.
        let bad = store.write_blocking(vec![node(NodeState::Held, "nope")]);
        assert!(bad.is_err());
        // Lifting a pause that is not set tells nothing; a real one tells who.
        let unpause = |by: &str| Write::Unpaused {
            scope: PauseScope::All,
            by: by.into(),
            at: jiff::Timestamp::UNIX_EPOCH,
        };
        store.write_blocking(vec![unpause("nobody")]).unwrap();
        store
            .write_blocking(vec![Write::Paused {
                scope: PauseScope::All,
                reason: None,
                by: "ann".into(),
                at: jiff::Timestamp::UNIX_EPOCH,
            }])
            .unwrap();
        store.write_blocking(vec![unpause("bob")]).unwrap();
        assert_eq!(
            kinds(&store),
            ["run_started", "canary_passed", "node_held", "paused", "resumed"]
        );
        assert_eq!(store.outbox().unwrap()[4].payload["by"], "bob");
        // Marked sent to one sink, it is still pending for another.
        let first = store.outbox().unwrap()[0].id;
        for _ in 0..2 {
            store
                .write_blocking(vec![Write::Delivered {
                    outbox: first,
                    sink: "slack".into(),
                    reply: Some("1.1".into()),
                    at: jiff::Timestamp::UNIX_EPOCH,
                }])
                .unwrap();
        }
        assert_eq!(store.outbox_pending("slack", 10).unwrap().len(), 4);
        assert_eq!(store.outbox_pending("webhook:x", 10).unwrap().len(), 5);
        assert_eq!(
            store.outbox_thread("r1", "slack").unwrap().as_deref(),
            Some("1.1")
        );
    }
}
