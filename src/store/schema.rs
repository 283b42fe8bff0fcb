//! Opening a connection and bringing the schema up to date.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use rusqlite::{Connection, OpenFlags, TransactionBehavior};

use super::store_error::StoreError;

/// How long a connection waits for another writer (our writer thread, a lease call, or
/// another drover process) before giving up with "database is locked".
const BUSY_TIMEOUT: Duration = Duration::from_secs(10);

/// One entry per schema version: `MIGRATIONS[i]` takes a database from version `i` to
/// `i + 1`. `PRAGMA user_version` holds the version; never edit a shipped entry, add one.
const MIGRATIONS: &[&str] = &[V1];

/// The version this drover writes.
pub(super) const SCHEMA_VERSION: i64 = MIGRATIONS.len() as i64;

/// Version 1. Timestamps are unix milliseconds, JSON is text (see `columns`). `nodes.seq`
/// is the node's index in the plan, so reads return nodes in plan order. Leases do not
/// reference `runs`: the engine may take leases before it records its run, and a lease
/// outlives nothing but its own expiry.
const V1: &str = "
CREATE TABLE runs (
    id              TEXT PRIMARY KEY NOT NULL,
    workflow        TEXT NOT NULL,
    version         INTEGER NOT NULL,
    git_commit      TEXT,
    status          TEXT NOT NULL,
    plan            TEXT NOT NULL,
    options         TEXT NOT NULL,
    controller_host TEXT NOT NULL,
    controller_pid  INTEGER NOT NULL,
    started_at      INTEGER NOT NULL,
    heartbeat_at    INTEGER NOT NULL,
    finished_at     INTEGER,
    outcome         TEXT
) STRICT;

CREATE INDEX runs_by_status ON runs (status);

CREATE TABLE nodes (
    run           TEXT NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
    node          TEXT NOT NULL,
    seq           INTEGER NOT NULL,
    phase         INTEGER NOT NULL,
    state         TEXT NOT NULL,
    attempt       INTEGER NOT NULL,
    step          INTEGER NOT NULL,
    drained_by_us INTEGER NOT NULL,
    boot_id       TEXT,
    reason        TEXT,
    updated_at    INTEGER NOT NULL,
    PRIMARY KEY (run, node)
) STRICT, WITHOUT ROWID;

CREATE TABLE steps (
    run         TEXT NOT NULL,
    node        TEXT NOT NULL,
    position    INTEGER NOT NULL,
    attempt     INTEGER NOT NULL,
    step        TEXT NOT NULL,
    status      TEXT NOT NULL,
    exit_code   INTEGER,
    duration_ms INTEGER NOT NULL,
    output_tail TEXT NOT NULL,
    at          INTEGER NOT NULL,
    PRIMARY KEY (run, node, position, attempt),
    FOREIGN KEY (run, node) REFERENCES nodes (run, node) ON DELETE CASCADE
) STRICT;

CREATE TABLE leases (
    node       TEXT PRIMARY KEY NOT NULL,
    run        TEXT NOT NULL,
    expires_at INTEGER NOT NULL
) STRICT;

CREATE INDEX leases_by_run ON leases (run);
";

/// A connection with the per-connection settings every store connection needs. Reads
/// nothing from the file yet, so a database from a newer drover is refused by
/// [`migrate`] before anything is written to it.
pub(super) fn connect(path: &Path) -> Result<Connection, StoreError> {
    let open_err = |source| StoreError::Open {
        path: path.to_path_buf(),
        source: Arc::new(source),
    };
    // No SQLITE_OPEN_URI: a state dir named `file:...` is a path, not a URI.
    let flags =
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_CREATE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let conn = Connection::open_with_flags(path, flags).map_err(open_err)?;
    conn.busy_timeout(BUSY_TIMEOUT).map_err(open_err)?;
    // FULL: a commit is on disk (the WAL fsynced) before the writer acknowledges it,
    // so a write that returned survives power loss, not only a killed process.
    conn.pragma_update(None, "synchronous", "FULL")
        .map_err(open_err)?;
    conn.pragma_update(None, "foreign_keys", true).map_err(open_err)?;
    Ok(conn)
}

/// Refuses a database from a newer drover without touching it, switches to WAL (so
/// readers never wait for the writer) and applies the missing migrations in one
/// IMMEDIATE transaction, which makes two processes opening a fresh file at once safe:
/// the second sees the first's version and does nothing.
pub(super) fn migrate(conn: &mut Connection, path: &Path) -> Result<(), StoreError> {
    check_version(conn, path)?;

    let mode: String = conn
        .pragma_update_and_check(None, "journal_mode", "WAL", |row| row.get(0))
        .map_err(|e| StoreError::database(path, "switch to WAL journal mode", e))?;
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(StoreError::NoWal {
            path: path.to_path_buf(),
            mode,
        });
    }

    let db_err = |e| StoreError::database(path, "migrate the schema", e);
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(db_err)?;
    let current = check_version(&tx, path)?;
    for sql in &MIGRATIONS[current..] {
        tx.execute_batch(sql).map_err(db_err)?;
    }
    if current < MIGRATIONS.len() {
        tx.pragma_update(None, "user_version", SCHEMA_VERSION)
            .map_err(db_err)?;
    }
    tx.commit().map_err(db_err)
}

/// The file's schema version (0 for a new file), refusing one this drover does not know.
fn check_version(conn: &Connection, path: &Path) -> Result<usize, StoreError> {
    let found: i64 = conn
        .pragma_query_value(None, "user_version", |row| row.get(0))
        .map_err(|e| StoreError::Open {
            path: path.to_path_buf(),
            source: Arc::new(e),
        })?;
    match usize::try_from(found) {
        Ok(v) if v <= MIGRATIONS.len() => Ok(v),
        _ => Err(StoreError::TooNew {
            path: path.to_path_buf(),
            found,
            known: SCHEMA_VERSION,
        }),
    }
}
