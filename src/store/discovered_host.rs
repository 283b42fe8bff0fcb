//! A host that discovery reached over SSH: what it said about itself and the host key
//! ssh recorded, by the address it was asked for.

use jiff::Timestamp;
use rusqlite::{Connection, Row};
use serde::Serialize;

use super::columns::{rfc3339, timestamp_at};

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DiscoveredHost {
    pub address: String,
    pub hostname: Option<String>,
    pub cpus: Option<u32>,
    /// `type base64`, as in known_hosts.
    pub host_key: Option<String>,
    pub by: String,
    #[serde(serialize_with = "rfc3339::serialize")]
    pub since: Timestamp,
}

impl DiscoveredHost {
    pub(super) fn all(conn: &Connection) -> rusqlite::Result<Vec<DiscoveredHost>> {
        conn.prepare_cached(
            "SELECT address, hostname, cpus, host_key, set_by, since FROM discovered_hosts ORDER BY address",
        )?
        .query_map([], DiscoveredHost::from_row)?
        .collect()
    }

    fn from_row(row: &Row<'_>) -> rusqlite::Result<DiscoveredHost> {
        Ok(DiscoveredHost {
            address: row.get(0)?,
            hostname: row.get(1)?,
            cpus: row.get(2)?,
            host_key: row.get(3)?,
            by: row.get(4)?,
            since: timestamp_at(row, 5)?,
        })
    }
}
