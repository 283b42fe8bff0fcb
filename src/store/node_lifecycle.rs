//! A node's lifecycle state as drover keeps it, apart from any run: today whether it is
//! in maintenance (automation off, with who and why). Keyed by node name, since the
//! inventory names nodes and a node keeps its state across runs and inventory edits.

use jiff::Timestamp;
use rusqlite::types::{FromSql, FromSqlError, FromSqlResult, ToSqlOutput, ValueRef};
use rusqlite::{Connection, Row, ToSql};
use serde::Serialize;

use super::columns::{rfc3339, timestamp_at};

/// The lifecycle states drover records. A node without a row is simply in the
/// inventory. Node lifecycle (commission, decommission, discover) adds its states here;
/// the column is text, so adding one needs no migration.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum LifecycleState {
    /// Automation is off: no run, converge pass or hook touches the node.
    Maintenance,
}

impl LifecycleState {
    fn as_str(self) -> &'static str {
        match self {
            LifecycleState::Maintenance => "maintenance",
        }
    }
}

impl ToSql for LifecycleState {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(ToSqlOutput::from(self.as_str()))
    }
}

impl FromSql for LifecycleState {
    fn column_result(value: ValueRef<'_>) -> FromSqlResult<Self> {
        match value.as_str()? {
            "maintenance" => Ok(LifecycleState::Maintenance),
            other => Err(FromSqlError::Other(
                format!("unknown node lifecycle state `{other}`").into(),
            )),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NodeLifecycle {
    pub node: String,
    pub state: LifecycleState,
    pub reason: Option<String>,
    /// Who set it (`--by`, else `$USER`).
    pub by: String,
    #[serde(serialize_with = "rfc3339::serialize")]
    pub since: Timestamp,
}

impl std::fmt::Display for NodeLifecycle {
    /// `maintenance by alice since 2026-12-01 20:15 UTC: replacing a DIMM`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let state = self.state.as_str();
        let since = self.since.strftime("%Y-%m-%d %H:%M UTC");
        write!(f, "{state} by {} since {since}", self.by)?;
        if let Some(r) = &self.reason {
            write!(f, ": {r}")?;
        }
        Ok(())
    }
}

impl NodeLifecycle {
    /// Nodes in `state`, by name.
    pub(super) fn in_state(conn: &Connection, state: LifecycleState) -> rusqlite::Result<Vec<NodeLifecycle>> {
        conn.prepare_cached(
            "SELECT node, state, reason, set_by, since FROM node_lifecycle WHERE state = ?1 ORDER BY node",
        )?
        .query_map([state], NodeLifecycle::from_row)?
        .collect()
    }

    fn from_row(row: &Row<'_>) -> rusqlite::Result<NodeLifecycle> {
        Ok(NodeLifecycle {
            node: row.get(0)?,
            state: row.get(1)?,
            reason: row.get(2)?,
            by: row.get(3)?,
            since: timestamp_at(row, 4)?,
        })
    }
}
