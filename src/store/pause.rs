//! A pause in force: no new node starts in the runs it covers (nodes in flight finish
//! their cycle). Kept in the store so it outlives the process that set it and the runs
//! and daemons that obey it.

use jiff::Timestamp;
use rusqlite::{Connection, Row};
use serde::{Deserialize, Serialize};

use super::columns::{rfc3339, timestamp_at};

/// What a pause covers.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "scope", content = "run")]
pub enum PauseScope {
    /// Every run of the site, running or to come.
    All,
    /// One run, by id.
    Run(String),
}

impl PauseScope {
    /// The `pauses.scope` key: `*` for all (never a run id: ids are `<workflow>-<time>`).
    pub(super) fn key(&self) -> &str {
        match self {
            PauseScope::All => "*",
            PauseScope::Run(id) => id,
        }
    }

    fn from_key(key: String) -> PauseScope {
        if key == "*" {
            PauseScope::All
        } else {
            PauseScope::Run(key)
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pause {
    #[serde(flatten)]
    pub scope: PauseScope,
    pub reason: Option<String>,
    /// Who set it (`--by`, else `$USER`).
    pub by: String,
    #[serde(with = "rfc3339")]
    pub since: Timestamp,
}

impl std::fmt::Display for Pause {
    /// `paused (all runs) by alice since 2026-12-01 20:15 UTC: fixing the playbook`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let what = match &self.scope {
            PauseScope::All => "all runs".to_string(),
            PauseScope::Run(id) => format!("run {id}"),
        };
        let since = self.since.strftime("%Y-%m-%d %H:%M UTC");
        write!(f, "paused ({what}) by {} since {since}", self.by)?;
        if let Some(r) = &self.reason {
            write!(f, ": {r}")?;
        }
        Ok(())
    }
}

impl Pause {
    /// Every pause in force, the global one first, then by run id.
    pub(super) fn all(conn: &Connection) -> rusqlite::Result<Vec<Pause>> {
        conn.prepare_cached("SELECT scope, reason, set_by, since FROM pauses ORDER BY scope <> '*', scope")?
            .query_map([], Pause::from_row)?
            .collect()
    }

    /// The pause that holds `run`: the global one if set (it is the one to lift first),
    /// else the run's own.
    pub(super) fn holding(conn: &Connection, run: &str) -> rusqlite::Result<Option<Pause>> {
        let mut stmt = conn.prepare_cached(
            "SELECT scope, reason, set_by, since FROM pauses WHERE scope IN ('*', ?1)
             ORDER BY scope <> '*' LIMIT 1",
        )?;
        let mut rows = stmt.query_map([run], Pause::from_row)?;
        rows.next().transpose()
    }

    fn from_row(row: &Row<'_>) -> rusqlite::Result<Pause> {
        Ok(Pause {
            scope: PauseScope::from_key(row.get(0)?),
            reason: row.get(1)?,
            by: row.get(2)?,
            since: timestamp_at(row, 3)?,
        })
    }
}
