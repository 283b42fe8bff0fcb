//! A host that discovery reached over SSH: what it said about itself and the host key
//! ssh recorded, by the address it was asked for.

use jiff::Timestamp;
use rusqlite::{Connection, Row};
use serde::Serialize;

use super::columns::{rfc3339, timestamp_at};

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DiscoveredHost {
    /// `[user@]host[:port]` as discovery normalised it (IPv6 in brackets with a port).
    pub address: String,
    pub hostname: Option<String>,
    pub cpus: Option<u32>,
    pub memory_mib: Option<u64>,
    /// `PRETTY_NAME` of `/etc/os-release`.
    pub os: Option<String>,
    /// `uname -sr`.
    pub kernel: Option<String>,
    /// `uname -m`.
    pub arch: Option<String>,
    /// `type base64`, as in known_hosts.
    pub host_key: Option<String>,
    pub by: String,
    #[serde(serialize_with = "rfc3339::serialize")]
    pub since: Timestamp,
}

impl DiscoveredHost {
    /// Every row; `facts`: the file has schema 8's columns (a read-only open of an
    /// older file has only the hostname and CPU count).
    pub(super) fn all(conn: &Connection, facts: bool) -> rusqlite::Result<Vec<DiscoveredHost>> {
        let sql = if facts {
            "SELECT address, hostname, cpus, host_key, set_by, since, memory_mib, os, kernel, arch
             FROM discovered_hosts ORDER BY address"
        } else {
            "SELECT address, hostname, cpus, host_key, set_by, since, NULL, NULL, NULL, NULL
             FROM discovered_hosts ORDER BY address"
        };
        conn.prepare_cached(sql)?
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
            memory_mib: row.get::<_, Option<i64>>(6)?.and_then(|m| u64::try_from(m).ok()),
            os: row.get(7)?,
            kernel: row.get(8)?,
            arch: row.get(9)?,
        })
    }
}
