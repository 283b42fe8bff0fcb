//! Where a run stands as a whole.

use rusqlite::ToSql;
use rusqlite::types::{FromSql, FromSqlError, FromSqlResult, ToSqlOutput, ValueRef};
use serde::Serialize;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RunStatus {
    /// A controller is driving it, or was until it died (see `Store::abandoned`).
    Running,
    Succeeded,
    /// Ended within its failure budgets, with some nodes failed.
    CompletedWithFailures,
    /// Stopped by a failed canary, an exhausted budget or an operator.
    Stopped,
    /// Its controller was interrupted (Ctrl-C twice, or found dead); it can be resumed.
    Interrupted,
    /// Given up by `drover runs cancel`: its leases released, nodes it left drained held.
    Cancelled,
}

impl RunStatus {
    pub const ALL: [RunStatus; 6] = [
        RunStatus::Running,
        RunStatus::Succeeded,
        RunStatus::CompletedWithFailures,
        RunStatus::Stopped,
        RunStatus::Interrupted,
        RunStatus::Cancelled,
    ];

    /// The name stored in the database and in JSON output (the serde name).
    pub fn as_str(self) -> &'static str {
        match self {
            RunStatus::Running => "running",
            RunStatus::Succeeded => "succeeded",
            RunStatus::CompletedWithFailures => "completed_with_failures",
            RunStatus::Stopped => "stopped",
            RunStatus::Interrupted => "interrupted",
            RunStatus::Cancelled => "cancelled",
        }
    }

    /// The name in human output.
    pub fn label(self) -> &'static str {
        match self {
            RunStatus::CompletedWithFailures => "completed with failures",
            other => other.as_str(),
        }
    }

    pub fn parse(s: &str) -> Option<RunStatus> {
        RunStatus::ALL.into_iter().find(|x| x.as_str() == s)
    }
}

impl std::fmt::Display for RunStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.label())
    }
}

impl ToSql for RunStatus {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(ToSqlOutput::from(self.as_str()))
    }
}

impl FromSql for RunStatus {
    fn column_result(value: ValueRef<'_>) -> FromSqlResult<Self> {
        let s = value.as_str()?;
        RunStatus::parse(s).ok_or_else(|| FromSqlError::Other(format!("unknown run status `{s}`").into()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_match_serde() {
        for s in RunStatus::ALL {
            assert_eq!(RunStatus::parse(s.as_str()), Some(s));
            assert_eq!(serde_json::to_value(s).unwrap(), serde_json::json!(s.as_str()));
        }
        assert_eq!(RunStatus::parse("Running"), None);
    }
}
