//! One run as listed by `drover runs`.

use std::collections::HashMap;

use jiff::Timestamp;
use rusqlite::{Connection, Row, params};
use serde::Serialize;

use super::columns::{self, opt_json_at, opt_timestamp_at, rfc3339, timestamp_at};
use super::controller::Controller;
use super::node_counts::NodeCounts;
use super::node_state::NodeState;
use super::run_status::RunStatus;

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RunRow {
    pub id: String,
    pub workflow: String,
    pub version: u32,
    /// The git commit the workflow was read at, when the site is a git checkout.
    pub commit: Option<String>,
    pub status: RunStatus,
    /// The controller that last drove the run (it changes on resume).
    pub controller: Controller,
    #[serde(serialize_with = "rfc3339::serialize")]
    pub started_at: Timestamp,
    /// The controller's last sign of life.
    #[serde(serialize_with = "rfc3339::serialize")]
    pub heartbeat_at: Timestamp,
    #[serde(serialize_with = "rfc3339::option::serialize")]
    pub finished_at: Option<Timestamp>,
    pub outcome: Option<serde_json::Value>,
    pub counts: NodeCounts,
}

impl RunRow {
    /// Runs with the given id and status (`None`: any), newest first, with their counts.
    pub(super) fn query(
        conn: &Connection,
        id: Option<&str>,
        status: Option<RunStatus>,
    ) -> rusqlite::Result<Vec<RunRow>> {
        let mut runs = conn
            .prepare_cached(
                "SELECT id, workflow, version, git_commit, status, controller_host, controller_pid,
                        started_at, heartbeat_at, finished_at, outcome
                 FROM runs
                 WHERE (?1 IS NULL OR id = ?1) AND (?2 IS NULL OR status = ?2)
                 ORDER BY started_at DESC, rowid DESC",
            )?
            .query_map(params![id, status], RunRow::from_row)?
            .collect::<rusqlite::Result<Vec<_>>>()?;

        let mut counts: HashMap<String, NodeCounts> = HashMap::new();
        let mut stmt = conn.prepare_cached(
            "SELECT n.run, n.state, COUNT(*)
             FROM nodes n JOIN runs r ON r.id = n.run
             WHERE (?1 IS NULL OR r.id = ?1) AND (?2 IS NULL OR r.status = ?2)
             GROUP BY n.run, n.state",
        )?;
        let mut rows = stmt.query(params![id, status])?;
        while let Some(row) = rows.next()? {
            let state: NodeState = row.get(1)?;
            let n = columns::usize_at(row, 2)?;
            counts.entry(row.get(0)?).or_default().add(state, n);
        }
        for run in &mut runs {
            if let Some(c) = counts.remove(&run.id) {
                run.counts = c;
            }
        }
        Ok(runs)
    }

    fn from_row(row: &Row<'_>) -> rusqlite::Result<RunRow> {
        Ok(RunRow {
            id: row.get(0)?,
            workflow: row.get(1)?,
            version: row.get(2)?,
            commit: row.get(3)?,
            status: row.get(4)?,
            controller: Controller {
                host: row.get(5)?,
                pid: row.get(6)?,
            },
            started_at: timestamp_at(row, 7)?,
            heartbeat_at: timestamp_at(row, 8)?,
            finished_at: opt_timestamp_at(row, 9)?,
            outcome: opt_json_at(row, 10)?,
            counts: NodeCounts::default(),
        })
    }
}
