//! A node's lifecycle state as drover keeps it, apart from any run: discovered,
//! commissioned, in maintenance (automation off, with who and why) or decommissioned.
//! Keyed by node name, since the inventory names nodes and a node keeps its state
//! across runs and inventory edits.

use jiff::Timestamp;
use rusqlite::types::{FromSql, FromSqlError, FromSqlResult, ToSqlOutput, ValueRef};
use rusqlite::{Connection, Row, ToSql};
use serde::Serialize;

use super::columns::{rfc3339, timestamp_at};

/// The lifecycle states drover records. A node without a row is simply in the
/// inventory (and in automation, as a commissioned one). The column is text, so adding
/// a state needs no migration.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum LifecycleState {
    /// Automation is off: no run, converge pass or hook touches the node.
    Maintenance,
    /// Reached by discovery (or commissioned without success yet).
    Discovered,
    /// Its commission workflow succeeded.
    Commissioned,
    /// Out of service: like maintenance, excluded from every rollout and converge pass,
    /// until it is commissioned again.
    Decommissioned,
}

impl LifecycleState {
    fn as_str(self) -> &'static str {
        match self {
            LifecycleState::Maintenance => "maintenance",
            LifecycleState::Discovered => "discovered",
            LifecycleState::Commissioned => "commissioned",
            LifecycleState::Decommissioned => "decommissioned",
        }
    }

    /// Whether automation leaves the node alone: plans exclude it, runs skip it.
    pub fn out_of_automation(self) -> bool {
        matches!(self, LifecycleState::Maintenance | LifecycleState::Decommissioned)
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
            "discovered" => Ok(LifecycleState::Discovered),
            "commissioned" => Ok(LifecycleState::Commissioned),
            "decommissioned" => Ok(LifecycleState::Decommissioned),
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
    /// Nodes out of automation (in maintenance or decommissioned), by name.
    pub(super) fn out_of_automation(conn: &Connection) -> rusqlite::Result<Vec<NodeLifecycle>> {
        conn.prepare_cached(
            "SELECT node, state, reason, set_by, since FROM node_lifecycle
             WHERE state IN ('maintenance', 'decommissioned') ORDER BY node",
        )?
        .query_map([], NodeLifecycle::from_row)?
        .collect()
    }

    /// Every node with a lifecycle state, by name.
    pub(super) fn all(conn: &Connection) -> rusqlite::Result<Vec<NodeLifecycle>> {
        conn.prepare_cached("SELECT node, state, reason, set_by, since FROM node_lifecycle ORDER BY node")?
            .query_map([], NodeLifecycle::from_row)?
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
