//! Leases: a node is in at most one active run, across processes and hosts sharing a
//! state dir.
//!
//! A lease expires so that a controller that died (and whose run nobody resumes) does
//! not lock its nodes forever; a live controller renews its leases well before then.

use jiff::Timestamp;
use rusqlite::{Connection, OptionalExtension, Row, params};
use serde::Serialize;

use super::columns::{rfc3339, timestamp_at};
use super::lease_conflict::LeaseConflict;

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Lease {
    pub node: String,
    pub run: String,
    #[serde(serialize_with = "rfc3339::serialize")]
    pub expires_at: Timestamp,
}

impl Lease {
    /// Takes or renews every node for `run` until `until`, or none of them. Runs inside
    /// the writer's IMMEDIATE transaction, which holds SQLite's write lock before reading,
    /// so two processes cannot both see a node free and both take it.
    ///
    /// A lease binds only while its run is recorded and not finished (running, or
    /// interrupted and waiting for `runs resume`): a lease left by a run that was never
    /// recorded, or by one that ended without releasing it, is free.
    pub(super) fn acquire(
        conn: &Connection,
        run: &str,
        nodes: &[String],
        now: i64,
        until: i64,
    ) -> rusqlite::Result<Vec<LeaseConflict>> {
        let mut conflicts = Vec::new();
        {
            let mut holder = conn.prepare_cached(
                "SELECT l.node, l.run, l.expires_at FROM leases l JOIN runs r ON r.id = l.run
                 WHERE l.node = ?1 AND r.status IN ('running', 'interrupted')",
            )?;
            for node in nodes {
                let lease = holder.query_row([node], Lease::from_row).optional()?;
                if let Some(lease) = lease
                    && lease.run != run
                    && lease.expires_at.as_millisecond() > now
                {
                    conflicts.push(LeaseConflict {
                        node: lease.node,
                        run: lease.run,
                        expires_at: lease.expires_at,
                    });
                }
            }
        }
        if !conflicts.is_empty() {
            return Ok(conflicts);
        }
        {
            let mut take = conn.prepare_cached(
                "INSERT INTO leases (node, run, expires_at) VALUES (?1, ?2, ?3)
                 ON CONFLICT (node) DO UPDATE SET run = excluded.run, expires_at = excluded.expires_at",
            )?;
            for node in nodes {
                take.execute(params![node, run, until])?;
            }
        }
        Ok(conflicts)
    }

    /// Extends every lease `run` still holds; a lease another run took over after it
    /// expired is not ours any more and is not counted.
    pub(super) fn renew(conn: &Connection, run: &str, until: i64) -> rusqlite::Result<usize> {
        conn.prepare_cached("UPDATE leases SET expires_at = ?2 WHERE run = ?1")?
            .execute(params![run, until])
    }

    pub(super) fn release(conn: &Connection, run: &str, nodes: Option<&[String]>) -> rusqlite::Result<usize> {
        let Some(nodes) = nodes else {
            return conn
                .prepare_cached("DELETE FROM leases WHERE run = ?1")?
                .execute([run]);
        };
        let mut released = 0;
        let mut one = conn.prepare_cached("DELETE FROM leases WHERE run = ?1 AND node = ?2")?;
        for node in nodes {
            released += one.execute([run, node])?;
        }
        Ok(released)
    }

    /// Every lease, expired or not, by node name.
    pub(super) fn all(conn: &Connection) -> rusqlite::Result<Vec<Lease>> {
        conn.prepare_cached("SELECT node, run, expires_at FROM leases ORDER BY node")?
            .query_map([], Lease::from_row)?
            .collect()
    }

    fn from_row(row: &Row<'_>) -> rusqlite::Result<Lease> {
        Ok(Lease {
            node: row.get(0)?,
            run: row.get(1)?,
            expires_at: timestamp_at(row, 2)?,
        })
    }
}
