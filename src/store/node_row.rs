//! One node of a run, as last recorded.

use jiff::Timestamp;
use rusqlite::{Connection, Row};
use serde::Serialize;

use super::columns::{rfc3339, timestamp_at, usize_at};
use super::node_state::NodeState;

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NodeRow {
    pub node: String,
    /// The index of the plan phase the node belongs to (the canary phase is 0 when present).
    pub phase: usize,
    pub state: NodeState,
    pub attempt: u32,
    /// The position in the node's step list where it stands; a resumed run starts there.
    pub step: usize,
    /// Whether this run drained the node, so a resumed or stopped run undrains it.
    pub drained_by_us: bool,
    /// The boot id read before a reboot: a different one afterwards proves the reboot.
    pub boot_id: Option<String>,
    pub reason: Option<String>,
    #[serde(serialize_with = "rfc3339::serialize")]
    pub updated_at: Timestamp,
}

impl NodeRow {
    /// The run's nodes in plan order.
    pub(super) fn of_run(conn: &Connection, run: &str) -> rusqlite::Result<Vec<NodeRow>> {
        conn.prepare_cached(
            "SELECT node, phase, state, attempt, step, drained_by_us, boot_id, reason, updated_at
             FROM nodes WHERE run = ?1 ORDER BY seq",
        )?
        .query_map([run], NodeRow::from_row)?
        .collect()
    }

    fn from_row(row: &Row<'_>) -> rusqlite::Result<NodeRow> {
        Ok(NodeRow {
            node: row.get(0)?,
            phase: usize_at(row, 1)?,
            state: row.get(2)?,
            attempt: row.get(3)?,
            step: usize_at(row, 4)?,
            drained_by_us: row.get(5)?,
            boot_id: row.get(6)?,
            reason: row.get(7)?,
            updated_at: timestamp_at(row, 8)?,
        })
    }
}
