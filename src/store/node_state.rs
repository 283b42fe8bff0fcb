//! Where one node of a run stands.

use rusqlite::ToSql;
use rusqlite::types::{FromSql, FromSqlError, FromSqlResult, ToSqlOutput, ValueRef};
use serde::Serialize;

/// The states a resumed run must tell apart: a node left `Draining`, `Drained` or
/// `Rebooting` by a crash needs different handling (undrain it, compare its boot id)
/// than one that never started.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum NodeState {
    Pending,
    Running,
    Draining,
    Drained,
    Rebooting,
    Resuming,
    Succeeded,
    Failed,
    /// Kept out of the run on purpose (e.g. a drain hook refused), with a reason.
    Held,
    Skipped,
}

impl NodeState {
    pub const ALL: [NodeState; 10] = [
        NodeState::Pending,
        NodeState::Running,
        NodeState::Draining,
        NodeState::Drained,
        NodeState::Rebooting,
        NodeState::Resuming,
        NodeState::Succeeded,
        NodeState::Failed,
        NodeState::Held,
        NodeState::Skipped,
    ];

    /// Whether the run is done with the node: a resumed run does not touch it again.
    pub fn is_final(self) -> bool {
        matches!(
            self,
            NodeState::Succeeded | NodeState::Failed | NodeState::Held | NodeState::Skipped
        )
    }

    /// Started and not finished: a run interrupted now leaves the node unsure (a step may
    /// be running, the node may be drained), for `runs resume` or `runs cancel`.
    pub fn is_in_flight(self) -> bool {
        matches!(
            self,
            NodeState::Running
                | NodeState::Draining
                | NodeState::Drained
                | NodeState::Rebooting
                | NodeState::Resuming
        )
    }

    /// The name stored in the database and shown to users (the serde name).
    pub fn as_str(self) -> &'static str {
        match self {
            NodeState::Pending => "pending",
            NodeState::Running => "running",
            NodeState::Draining => "draining",
            NodeState::Drained => "drained",
            NodeState::Rebooting => "rebooting",
            NodeState::Resuming => "resuming",
            NodeState::Succeeded => "succeeded",
            NodeState::Failed => "failed",
            NodeState::Held => "held",
            NodeState::Skipped => "skipped",
        }
    }

    pub fn parse(s: &str) -> Option<NodeState> {
        NodeState::ALL.into_iter().find(|x| x.as_str() == s)
    }
}

impl std::fmt::Display for NodeState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl ToSql for NodeState {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(ToSqlOutput::from(self.as_str()))
    }
}

impl FromSql for NodeState {
    fn column_result(value: ValueRef<'_>) -> FromSqlResult<Self> {
        let s = value.as_str()?;
        NodeState::parse(s).ok_or_else(|| FromSqlError::Other(format!("unknown node state `{s}`").into()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_match_serde() {
        for s in NodeState::ALL {
            assert_eq!(NodeState::parse(s.as_str()), Some(s));
            assert_eq!(serde_json::to_value(s).unwrap(), serde_json::json!(s.as_str()));
        }
        assert_eq!(NodeState::parse("done"), None);
    }

    #[test]
    fn final_states() {
        let finals: Vec<_> = NodeState::ALL.into_iter().filter(|s| s.is_final()).collect();
        assert_eq!(
            finals,
            [
                NodeState::Succeeded,
                NodeState::Failed,
                NodeState::Held,
                NodeState::Skipped
            ]
        );
    }
}
