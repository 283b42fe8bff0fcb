//! Where a node stands per workflow: the version (and commit) of the last run that
//! succeeded on it, for the API's `GET /nodes`.

use rusqlite::{Connection, Row};
use serde::Serialize;

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NodeVersion {
    pub node: String,
    pub workflow: String,
    pub version: u32,
    pub commit: Option<String>,
    pub run: String,
}

impl NodeVersion {
    /// One row per node and workflow: its newest succeeded run.
    pub(super) fn all(conn: &Connection) -> rusqlite::Result<Vec<NodeVersion>> {
        // SQLite's bare columns with MAX() come from the row holding the maximum.
        conn.prepare_cached(
            "SELECT n.node, r.workflow, r.version, r.git_commit, r.id, MAX(r.started_at)
             FROM nodes n JOIN runs r ON r.id = n.run
             WHERE n.state = 'succeeded'
             GROUP BY n.node, r.workflow
             ORDER BY n.node, r.workflow",
        )?
        .query_map([], NodeVersion::from_row)?
        .collect()
    }

    fn from_row(row: &Row<'_>) -> rusqlite::Result<NodeVersion> {
        Ok(NodeVersion {
            node: row.get(0)?,
            workflow: row.get(1)?,
            version: row.get(2)?,
            commit: row.get(3)?,
            run: row.get(4)?,
        })
    }
}
