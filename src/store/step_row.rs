//! One attempt of one step on one node.

use jiff::Timestamp;
use rusqlite::{Connection, Row};
use serde::Serialize;

use super::columns::{rfc3339, timestamp_at, u64_at, usize_at};

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StepRow {
    pub node: String,
    pub step: String,
    /// The step's position in the node's step list.
    pub position: usize,
    pub attempt: u32,
    pub status: String,
    pub exit_code: Option<i32>,
    pub duration_ms: u64,
    /// The end of the step's output, at most 4 KiB.
    pub output_tail: String,
    #[serde(serialize_with = "rfc3339::serialize")]
    pub at: Timestamp,
}

impl StepRow {
    /// The run's step attempts: nodes in plan order, then by position and attempt.
    pub(super) fn of_run(conn: &Connection, run: &str) -> rusqlite::Result<Vec<StepRow>> {
        conn.prepare_cached(
            "SELECT s.node, s.step, s.position, s.attempt, s.status, s.exit_code, s.duration_ms,
                    s.output_tail, s.at
             FROM steps s JOIN nodes n ON n.run = s.run AND n.node = s.node
             WHERE s.run = ?1
             ORDER BY n.seq, s.position, s.attempt",
        )?
        .query_map([run], StepRow::from_row)?
        .collect()
    }

    fn from_row(row: &Row<'_>) -> rusqlite::Result<StepRow> {
        Ok(StepRow {
            node: row.get(0)?,
            step: row.get(1)?,
            position: usize_at(row, 2)?,
            attempt: row.get(3)?,
            status: row.get(4)?,
            exit_code: row.get(5)?,
            duration_ms: u64_at(row, 6)?,
            output_tail: row.get(7)?,
            at: timestamp_at(row, 8)?,
        })
    }
}
