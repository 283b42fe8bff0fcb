//! What the writer thread does for a caller: record facts, and every lease operation.
//!
//! Leases go through the writer, not a connection of their own, for two reasons: a run's
//! leases and its record are one transaction (a controller killed between the two would
//! otherwise leave leases for a run that does not exist), and a lease call may wait for
//! SQLite's lock (up to the busy timeout, with an fsync), which must not happen on an
//! async runtime's thread.

use std::path::Path;

use rusqlite::{Connection, params};

use super::fault;
use super::lease::Lease;
use super::lease_conflict::LeaseConflict;
use super::node_state::NodeState;
use super::store_error::StoreError;
use super::write::Write;

pub(super) enum Op {
    /// Facts, applied in order, all or nothing.
    Writes(Vec<Write>),
    /// Takes or renews the leases of `nodes` for `run` until `until`, and only if every
    /// one was free applies `writes` (the run's record) in the same transaction.
    Begin {
        run: String,
        nodes: Vec<String>,
        now: i64,
        until: i64,
        writes: Vec<Write>,
    },
    /// Extends every lease `run` holds.
    Renew { run: String, until: i64 },
    /// Releases the run's leases on `nodes` (`None`: all of them).
    Release { run: String, nodes: Option<Vec<String>> },
    /// Applies `writes` (the run's end), then releases the run's leases: all of them, or
    /// with `keep_in_flight` all but those of nodes caught mid-cycle, which a resumed run
    /// must find untouched.
    Finish {
        run: String,
        writes: Vec<Write>,
        keep_in_flight: bool,
    },
}

/// What an [`Op`] answers.
#[derive(Debug)]
pub(super) enum Answer {
    Done,
    /// Nodes another live run holds (empty: all taken).
    Conflicts(Vec<LeaseConflict>),
    Count(usize),
    /// The run's nodes that were in flight, in plan order, with their state.
    InFlight(Vec<(String, NodeState)>),
}

/// The states of a node the run had started and not finished.
const IN_FLIGHT: &str = "('running', 'draining', 'drained', 'rebooting', 'resuming')";

impl Op {
    /// Applies the op inside the writer's open transaction (a savepoint of it).
    pub(super) fn apply(&self, conn: &Connection, path: &Path) -> Result<Answer, StoreError> {
        let db = |action: String| move |e| StoreError::database(path, action, e);
        match self {
            Op::Writes(writes) => {
                writes.iter().try_for_each(|w| w.apply(conn, path))?;
                Ok(Answer::Done)
            }
            Op::Begin {
                run,
                nodes,
                now,
                until,
                writes,
            } => {
                let conflicts = Lease::acquire(conn, run, nodes, *now, *until)
                    .map_err(db(format!("take leases for run `{run}`")))?;
                if !conflicts.is_empty() {
                    return Ok(Answer::Conflicts(conflicts));
                }
                fault::point("after-leases");
                writes.iter().try_for_each(|w| w.apply(conn, path))?;
                Ok(Answer::Conflicts(Vec::new()))
            }
            Op::Renew { run, until } => Lease::renew(conn, run, *until)
                .map(Answer::Count)
                .map_err(db(format!("renew the leases of run `{run}`"))),
            Op::Release { run, nodes } => Lease::release(conn, run, nodes.as_deref())
                .map(Answer::Count)
                .map_err(db(format!("release the leases of run `{run}`"))),
            Op::Finish {
                run,
                writes,
                keep_in_flight,
            } => {
                writes.iter().try_for_each(|w| w.apply(conn, path))?;
                let in_flight = in_flight(conn, run).map_err(db(format!("read the nodes of run `{run}`")))?;
                let released = if *keep_in_flight {
                    conn.execute(
                        &format!(
                            "DELETE FROM leases WHERE run = ?1 AND node NOT IN
                             (SELECT node FROM nodes WHERE run = ?1 AND state IN {IN_FLIGHT})"
                        ),
                        params![run],
                    )
                } else {
                    Lease::release(conn, run, None)
                };
                released.map_err(db(format!("release the leases of run `{run}`")))?;
                Ok(Answer::InFlight(in_flight))
            }
        }
    }
}

fn in_flight(conn: &Connection, run: &str) -> rusqlite::Result<Vec<(String, NodeState)>> {
    conn.prepare_cached(&format!(
        "SELECT node, state FROM nodes WHERE run = ?1 AND state IN {IN_FLIGHT} ORDER BY seq"
    ))?
    .query_map([run], |row| Ok((row.get(0)?, row.get(1)?)))?
    .collect()
}
