//! What the daemon's git watcher decided about each commit, and where it stands, so a
//! restarted daemon neither runs a commit again nor forgets one it refused.

use jiff::Timestamp;
use rusqlite::types::{FromSql, FromSqlError, FromSqlResult, ToSqlOutput, ValueRef};
use rusqlite::{Connection, OptionalExtension, Row, ToSql};
use serde::Serialize;

use super::columns::{json_at, rfc3339, timestamp_at};

/// Whether a commit was taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SourceVerdict {
    /// Valid (and signed, when required): in force from then on.
    Accepted,
    /// Did not validate, or its signature was refused: nothing of it runs.
    Rejected,
}

impl SourceVerdict {
    pub fn as_str(self) -> &'static str {
        match self {
            SourceVerdict::Accepted => "accepted",
            SourceVerdict::Rejected => "rejected",
        }
    }
}

impl ToSql for SourceVerdict {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(ToSqlOutput::from(self.as_str()))
    }
}

impl FromSql for SourceVerdict {
    fn column_result(value: ValueRef<'_>) -> FromSqlResult<Self> {
        match value.as_str()? {
            "accepted" => Ok(SourceVerdict::Accepted),
            "rejected" => Ok(SourceVerdict::Rejected),
            s => Err(FromSqlError::Other(
                format!("unknown commit verdict `{s}`").into(),
            )),
        }
    }
}

/// One commit the watcher looked at.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SourceCommitRow {
    pub sha: String,
    pub verdict: SourceVerdict,
    pub author: String,
    pub subject: String,
    /// Why it was rejected: every diagnostic as `drover validate` prints them, or the
    /// signature's problem. Empty for an accepted commit.
    pub detail: String,
    #[serde(serialize_with = "rfc3339::serialize")]
    pub at: Timestamp,
}

/// Where the watcher stands.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SourceHead {
    /// The last commit looked at, accepted or not: the next poll starts after it.
    pub seen: String,
    /// The commit in force (the last accepted one), if any.
    pub good: Option<String>,
    /// Per workflow of `good`, the fingerprint of its effective content.
    pub fingerprints: serde_json::Value,
}

impl SourceCommitRow {
    fn from_row(row: &Row<'_>) -> rusqlite::Result<SourceCommitRow> {
        Ok(SourceCommitRow {
            sha: row.get(0)?,
            verdict: row.get(1)?,
            author: row.get(2)?,
            subject: row.get(3)?,
            detail: row.get(4)?,
            at: timestamp_at(row, 5)?,
        })
    }

    pub(super) fn one(conn: &Connection, sha: &str) -> rusqlite::Result<Option<SourceCommitRow>> {
        conn.prepare_cached(
            "SELECT sha, verdict, author, subject, detail, at FROM source_commits WHERE sha = ?1",
        )?
        .query_row([sha], SourceCommitRow::from_row)
        .optional()
    }

    /// Newest first.
    pub(super) fn all(conn: &Connection) -> rusqlite::Result<Vec<SourceCommitRow>> {
        conn.prepare_cached(
            "SELECT sha, verdict, author, subject, detail, at FROM source_commits ORDER BY at DESC, rowid DESC",
        )?
        .query_map([], SourceCommitRow::from_row)?
        .collect()
    }
}

impl SourceHead {
    pub(super) fn load(conn: &Connection) -> rusqlite::Result<Option<SourceHead>> {
        conn.prepare_cached("SELECT seen, good, fingerprints FROM source_head WHERE id = 1")?
            .query_row([], |row| {
                Ok(SourceHead {
                    seen: row.get(0)?,
                    good: row.get(1)?,
                    fingerprints: json_at(row, 2)?,
                })
            })
            .optional()
    }
}
