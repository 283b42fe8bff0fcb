//! A version the daemon's git source wants rolled out: per workflow, the newest
//! accepted commit that changed it. Kept so that a version waiting when the daemon
//! stopped (queued behind a bulk, about to replace a superseded canary, accepted but
//! not started) is queued again by the next daemon instead of waiting for another
//! commit.

use jiff::Timestamp;
use rusqlite::{Connection, Row, params};
use serde::Serialize;

use super::columns::{int, millis, rfc3339, timestamp_at};

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct WantedRollout {
    pub workflow: String,
    pub version: u32,
    pub sha: String,
    pub author: String,
    pub subject: String,
    /// The commit's own time (for its signature check and display).
    #[serde(serialize_with = "rfc3339::serialize")]
    pub commit_time: Timestamp,
}

impl WantedRollout {
    /// Replaces the workflow's wanted version (a newer commit always wins: only the
    /// newest waiting version ever rolls).
    pub(super) fn upsert(&self, conn: &Connection, at: Timestamp) -> rusqlite::Result<usize> {
        conn.prepare_cached(
            "INSERT INTO rollouts_wanted (workflow, version, sha, author, subject, commit_time, at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
             ON CONFLICT (workflow) DO UPDATE SET version = excluded.version, sha = excluded.sha,
                 author = excluded.author, subject = excluded.subject,
                 commit_time = excluded.commit_time, at = excluded.at",
        )?
        .execute(params![
            self.workflow,
            int(self.version)?,
            self.sha,
            self.author,
            self.subject,
            millis(self.commit_time),
            millis(at),
        ])
    }

    /// The wanted versions no run was started for yet (no run of the workflow records
    /// the commit), oldest accepted first.
    pub(super) fn unstarted(conn: &Connection) -> rusqlite::Result<Vec<WantedRollout>> {
        conn.prepare_cached(
            "SELECT w.workflow, w.version, w.sha, w.author, w.subject, w.commit_time
             FROM rollouts_wanted w
             WHERE NOT EXISTS (SELECT 1 FROM runs r WHERE r.workflow = w.workflow AND r.git_commit = w.sha)
             ORDER BY w.at, w.workflow",
        )?
        .query_map([], WantedRollout::from_row)?
        .collect()
    }

    fn from_row(row: &Row<'_>) -> rusqlite::Result<WantedRollout> {
        Ok(WantedRollout {
            workflow: row.get(0)?,
            version: row.get(1)?,
            sha: row.get(2)?,
            author: row.get(3)?,
            subject: row.get(4)?,
            commit_time: timestamp_at(row, 5)?,
        })
    }
}
