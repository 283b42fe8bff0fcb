//! Opening a connection and bringing the schema up to date.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use rusqlite::{Connection, ErrorCode, OpenFlags, TransactionBehavior};

use super::store_error::StoreError;

/// How long a connection waits for another writer (our writer thread or another drover
/// process) before giving up with [`StoreError::Locked`].
pub(super) const BUSY_TIMEOUT: Duration = Duration::from_secs(10);

/// `PRAGMA application_id` of a drover state database ("drvr"): a file without it is not
/// drover's, whatever tables it has, and is never written to.
pub(super) const APPLICATION_ID: i32 = 0x6472_7672;

/// The tables of schema version 1: a database from a drover that did not yet set the
/// application id is adopted only if it has all of them.
const V1_TABLES: [&str; 4] = ["leases", "nodes", "runs", "steps"];

/// One entry per schema version: `MIGRATIONS[i]` takes a database from version `i` to
/// `i + 1`. `PRAGMA user_version` holds the version; never edit a shipped entry, add one.
const MIGRATIONS: &[&str] = &[V1, V2, V3, V4, V5, V6, V7, V8, V9];

/// The version this drover writes.
pub(super) const SCHEMA_VERSION: i64 = MIGRATIONS.len() as i64;

/// Version 1. Timestamps are unix milliseconds, JSON is text (see `columns`). `nodes.seq`
/// is the node's index in the plan, so reads return nodes in plan order. Leases do not
/// reference `runs` (a lease row may outlive its run); a lease binds only while its run
/// is recorded and unfinished (see `Lease::acquire`).
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

/// Version 1's SQL, for tests that build an older drover's database.
#[cfg(test)]
pub(super) const V1_FOR_TESTS: &str = V1;

/// Version 2: where each node was last left, across runs (`Store::held_by_earlier_runs`,
/// asked for every node found drained at the start of a run), without a scan of every
/// run's rows per node.
const V2: &str = "
CREATE INDEX nodes_by_node ON nodes (node, updated_at);
";

/// Version 3: the daemon's git watcher. `source_commits` has one row per commit it
/// looked at (accepted or rejected, with the diagnostics); `source_head` (one row) the
/// last commit seen, the commit in force and its workflows' content fingerprints, so a
/// restart neither re-runs nor forgets a commit.
const V3: &str = "
CREATE TABLE source_commits (
    sha     TEXT PRIMARY KEY NOT NULL,
    verdict TEXT NOT NULL,
    author  TEXT NOT NULL,
    subject TEXT NOT NULL,
    detail  TEXT NOT NULL,
    at      INTEGER NOT NULL
) STRICT;

CREATE TABLE source_head (
    id           INTEGER PRIMARY KEY CHECK (id = 1),
    seen         TEXT NOT NULL,
    good         TEXT,
    fingerprints TEXT NOT NULL
) STRICT;
";

/// Version 4: what gates automation, apart from runs. `pauses`: one row per pause in
/// force, `scope` `*` for the global pause or a run id (no foreign key: a run's pause is
/// kept when the run is pruned, and a pause is looked up, not joined). `node_lifecycle`:
/// one row per node drover keeps a lifecycle state for, by node name (the inventory, not
/// a run, names nodes); `state` is `maintenance` today, and the states of node lifecycle
/// (`discovered`, `commissioned`, `decommissioned`) fit the same row; `previous` is the
/// state to return to when maintenance ends (NULL: no row, the node is simply in the
/// inventory).
const V4: &str = "
CREATE TABLE pauses (
    scope  TEXT PRIMARY KEY NOT NULL,
    reason TEXT,
    set_by TEXT NOT NULL,
    since  INTEGER NOT NULL
) STRICT;

CREATE TABLE node_lifecycle (
    node     TEXT PRIMARY KEY NOT NULL,
    state    TEXT NOT NULL,
    previous TEXT,
    reason   TEXT,
    set_by   TEXT NOT NULL,
    since    INTEGER NOT NULL
) STRICT;
";

/// Version 2's SQL (V1 and V2 together), for tests that build an older drover's database.
#[cfg(test)]
pub(super) fn v2_for_tests() -> String {
    format!("{V1}{V2}")
}

/// The first version with the `pauses` and `node_lifecycle` tables: a read-only open of
/// an older file (not migrated) has no pause and no node in maintenance.
pub(super) const GATES_VERSION: usize = 4;

/// Version 5: who or what started a run (`trigger`, JSON: the service's `Trigger`).
/// Runs recorded before it have none.
const V5: &str = "
ALTER TABLE runs ADD COLUMN trigger TEXT;
";

/// Version 6: the notification outbox. `outbox` has one row per event worth telling
/// (run started, canary passed, run stopped, ...), inserted in the same transaction as
/// the state change it reports, so a crash can neither lose one nor tell one that did
/// not happen; `key` is unique per event, so recording a write twice tells it once.
/// `outbox_sent` has one row per event and sink once the sink took it (`reply`: what
/// the sink answered that later messages need, such as a Slack message's `ts` to reply
/// in its thread).
const V6: &str = "
CREATE TABLE outbox (
    id      INTEGER PRIMARY KEY AUTOINCREMENT,
    key     TEXT NOT NULL UNIQUE,
    kind    TEXT NOT NULL,
    run     TEXT,
    payload TEXT NOT NULL,
    at      INTEGER NOT NULL
) STRICT;

CREATE TABLE outbox_sent (
    outbox_id INTEGER NOT NULL REFERENCES outbox (id) ON DELETE CASCADE,
    sink      TEXT NOT NULL,
    reply     TEXT,
    at        INTEGER NOT NULL,
    PRIMARY KEY (outbox_id, sink)
) STRICT;
";

/// Version 7: hosts the API's `POST /nodes/discover` reached (`discovered_hosts`, by
/// the address as given): hostname, CPU count and the host key ssh recorded, with who
/// and when. A host in the inventory keeps its lifecycle state in `node_lifecycle`.
const V7: &str = "
CREATE TABLE discovered_hosts (
    address  TEXT PRIMARY KEY NOT NULL,
    hostname TEXT,
    cpus     INTEGER,
    host_key TEXT,
    set_by   TEXT NOT NULL,
    since    INTEGER NOT NULL
) STRICT;
";

/// The first version with `discovered_hosts`.
pub(super) const DISCOVERY_VERSION: usize = 7;

/// Version 8: the daemon's wanted rollouts, one row per workflow: the newest accepted
/// commit that changed it, written in the transaction that accepts the commit. A row
/// with no run of its commit (`runs.git_commit`) is a version the daemon still owes the
/// fleet (it was queued behind a bulk, about to replace a superseded canary, or not
/// started yet when the daemon stopped): a restarted daemon queues it again.
const V8: &str = "
CREATE TABLE rollouts_wanted (
    workflow    TEXT PRIMARY KEY NOT NULL,
    version     INTEGER NOT NULL,
    sha         TEXT NOT NULL,
    author      TEXT NOT NULL,
    subject     TEXT NOT NULL,
    commit_time INTEGER NOT NULL,
    at          INTEGER NOT NULL
) STRICT;

CREATE INDEX runs_by_commit ON runs (workflow, git_commit);
";

/// The first version with `rollouts_wanted`.
pub(super) const WANTED_VERSION: usize = 8;

/// Version 9: what else discovery's one round trip asks a host (memory in MiB, the OS
/// as `/etc/os-release` names it, the kernel as `uname -sr` prints it, the machine as
/// `uname -m`), beside its hostname and CPU count.
const V9: &str = "
ALTER TABLE discovered_hosts ADD COLUMN memory_mib INTEGER;
ALTER TABLE discovered_hosts ADD COLUMN os TEXT;
ALTER TABLE discovered_hosts ADD COLUMN kernel TEXT;
ALTER TABLE discovered_hosts ADD COLUMN arch TEXT;
";

/// The first version with discovery's memory, OS, kernel and machine columns.
pub(super) const DISCOVERY_FACTS_VERSION: usize = 9;

/// How a connection may use the file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Access {
    ReadWrite,
    /// `runs list`, `show`: never writes, so it works on a file or directory it may not
    /// write, and never creates or migrates anything.
    ReadOnly,
}

/// A connection to an existing file with the settings every store connection needs.
/// Reads nothing from the file yet: [`prepare`] (or [`identify`]) decides whether it is
/// drover's before anything is written to it.
pub(super) fn connect(path: &Path, access: Access) -> Result<Connection, StoreError> {
    let open_err = |source| open_error(path, source);
    // No SQLITE_OPEN_CREATE: a fresh database is made complete by `create` and put in
    // place whole, so a file found at the path is always someone's. No SQLITE_OPEN_URI:
    // a state dir named `file:...` is a path, not a URI.
    let flags = match access {
        Access::ReadWrite => OpenFlags::SQLITE_OPEN_READ_WRITE,
        Access::ReadOnly => OpenFlags::SQLITE_OPEN_READ_ONLY,
    } | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let conn = Connection::open_with_flags(path, flags).map_err(open_err)?;
    configure(&conn).map_err(open_err)?;
    Ok(conn)
}

/// A read-only connection to a database in WAL mode whose directory this process may not
/// write: SQLite cannot create the shared-memory file it reads through, so the file is
/// opened as immutable (read as it is on disk, without locking). Only for reading when
/// the normal read-only open failed.
pub(super) fn connect_immutable(path: &Path) -> Result<Connection, StoreError> {
    let open_err = |source| open_error(path, source);
    let uri = format!("file:{}?immutable=1", uri_path(path));
    let flags =
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_URI | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let conn = Connection::open_with_flags(uri, flags).map_err(open_err)?;
    configure(&conn).map_err(open_err)?;
    Ok(conn)
}

fn open_error(path: &Path, source: rusqlite::Error) -> StoreError {
    if source.sqlite_error_code() == Some(ErrorCode::NotADatabase) {
        return StoreError::NotDrover {
            path: path.to_path_buf(),
            why: "it is not an SQLite database".into(),
        };
    }
    StoreError::Open {
        path: path.to_path_buf(),
        source: Arc::new(source),
    }
}

/// The path percent-encoded for an SQLite URI.
fn uri_path(path: &Path) -> String {
    use std::os::unix::ffi::OsStrExt;
    let mut out = String::new();
    for &b in path.as_os_str().as_bytes() {
        if b.is_ascii_alphanumeric() || b"/-._~".contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn configure(conn: &Connection) -> rusqlite::Result<()> {
    conn.busy_timeout(BUSY_TIMEOUT)?;
    // FULL: a commit is on disk (the WAL fsynced) before the writer acknowledges it,
    // so a write that returned survives power loss, not only a killed process.
    conn.pragma_update(None, "synchronous", "FULL")?;
    conn.pragma_update(None, "foreign_keys", true)
}

/// Creates a new, complete database at `path` unless a file is there: built under a
/// temporary name beside it (application id, schema) and linked into place, so another
/// process never sees a half-made (0-byte) drover database, and two processes creating
/// one at once end with one of them. Returns whether this call created it.
pub(super) fn create(path: &Path) -> Result<bool, StoreError> {
    let create_err = |source: std::io::Error| StoreError::Create {
        path: path.to_path_buf(),
        source: Arc::new(source),
    };
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let nonce = jiff::Timestamp::now().subsec_nanosecond();
    let tmp = path.with_file_name(format!(".{name}.{}-{nonce}.new", std::process::id()));
    let built = (|| -> Result<(), StoreError> {
        let db_err = |e| StoreError::database(&tmp, "create the schema", e);
        let flags = OpenFlags::SQLITE_OPEN_READ_WRITE
            | OpenFlags::SQLITE_OPEN_CREATE
            | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let mut conn = Connection::open_with_flags(&tmp, flags).map_err(|e| StoreError::Open {
            path: tmp.clone(),
            source: Arc::new(e),
        })?;
        configure(&conn).map_err(db_err)?;
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(db_err)?;
        for sql in MIGRATIONS {
            tx.execute_batch(sql).map_err(db_err)?;
        }
        tx.pragma_update(None, "user_version", SCHEMA_VERSION)
            .map_err(db_err)?;
        tx.pragma_update(None, "application_id", APPLICATION_ID)
            .map_err(db_err)?;
        tx.commit().map_err(db_err)
    })();
    let linked = built.and_then(|()| match std::fs::hard_link(&tmp, path) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(false),
        // A file system without hard links: a rename also puts the file in place whole,
        // but would replace one another process put there meanwhile, so look first.
        Err(_) if path.exists() => Ok(false),
        Err(_) => std::fs::rename(&tmp, path).map(|()| true).map_err(create_err),
    });
    let _ = std::fs::remove_file(&tmp);
    let _ = std::fs::remove_file(tmp.with_file_name(format!(
        "{}-journal",
        tmp.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default()
    )));
    linked
}

/// What [`identify`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Identity {
    /// The schema version (`PRAGMA user_version`).
    pub(super) version: usize,
    /// Whether the file carries drover's application id; an older drover's database has
    /// drover's tables but no id, and gets it on the next writable open.
    pub(super) stamped: bool,
}

/// Whether the file is a drover state database this drover can use: drover's application
/// id (or, from before drover set one, exactly drover's tables), and a schema version
/// it knows. Reads only.
pub(super) fn identify(conn: &Connection, path: &Path) -> Result<Identity, StoreError> {
    let not_drover = |why: String| StoreError::NotDrover {
        path: path.to_path_buf(),
        why,
    };
    let read_err = |e: rusqlite::Error| {
        if e.sqlite_error_code() == Some(ErrorCode::NotADatabase) {
            not_drover("it is not an SQLite database".into())
        } else {
            StoreError::database(path, "read the schema version", e)
        }
    };
    let app: i32 = conn
        .pragma_query_value(None, "application_id", |row| row.get(0))
        .map_err(read_err)?;
    let found: i64 = conn
        .pragma_query_value(None, "user_version", |row| row.get(0))
        .map_err(read_err)?;
    let too_new = || StoreError::TooNew {
        path: path.to_path_buf(),
        found,
        known: SCHEMA_VERSION,
    };
    if app == APPLICATION_ID {
        let version = usize::try_from(found)
            .ok()
            .filter(|v| *v <= MIGRATIONS.len())
            .ok_or_else(too_new)?;
        return Ok(Identity {
            version,
            stamped: true,
        });
    }
    if app != 0 {
        return Err(not_drover(format!(
            "it belongs to another application (application id {app:#010x})"
        )));
    }
    let tables: Vec<String> = conn
        .prepare(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name",
        )
        .and_then(|mut s| s.query_map([], |row| row.get(0))?.collect())
        .map_err(read_err)?;
    if found >= 1 && tables == V1_TABLES {
        let version = usize::try_from(found)
            .ok()
            .filter(|v| *v <= MIGRATIONS.len())
            .ok_or_else(too_new)?;
        return Ok(Identity {
            version,
            stamped: false,
        });
    }
    if tables.is_empty() {
        return Err(not_drover(
            "it is an SQLite database without drover's tables".into(),
        ));
    }
    const SHOWN: usize = 5;
    let more = tables.len().saturating_sub(SHOWN);
    let mut list = tables.iter().take(SHOWN).cloned().collect::<Vec<_>>().join(", ");
    if more > 0 {
        list.push_str(&format!(" and {more} more"));
    }
    Err(not_drover(format!(
        "it holds another application's tables ({list})"
    )))
}

/// Makes a writable connection's file ready: refuses a file that is not drover's or is
/// from a newer drover without touching it, switches to WAL (so readers never wait for
/// the writer) and, only when something is missing, applies the migrations and the
/// application id in one IMMEDIATE transaction (two processes opening at once are safe:
/// the second sees the first's work and does nothing). A database that is up to date is
/// not written, so one locked by another process still opens.
pub(super) fn prepare(conn: &mut Connection, path: &Path) -> Result<(), StoreError> {
    let found = identify(conn, path)?;

    let mode: String = conn
        .pragma_query_value(None, "journal_mode", |row| row.get(0))
        .map_err(|e| StoreError::database(path, "read the journal mode", e))?;
    if !mode.eq_ignore_ascii_case("wal") {
        let mode: String = conn
            .pragma_update_and_check(None, "journal_mode", "WAL", |row| row.get(0))
            .map_err(|e| StoreError::database(path, "switch to WAL journal mode", e))?;
        if !mode.eq_ignore_ascii_case("wal") {
            return Err(StoreError::NoWal {
                path: path.to_path_buf(),
                mode,
            });
        }
    }
    if found.stamped && found.version == MIGRATIONS.len() {
        return Ok(());
    }

    let db_err = |e| StoreError::database(path, "migrate the schema", e);
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(db_err)?;
    let current = identify(&tx, path)?;
    for sql in &MIGRATIONS[current.version..] {
        tx.execute_batch(sql).map_err(db_err)?;
    }
    if current.version < MIGRATIONS.len() {
        tx.pragma_update(None, "user_version", SCHEMA_VERSION)
            .map_err(db_err)?;
    }
    if !current.stamped {
        tx.pragma_update(None, "application_id", APPLICATION_ID)
            .map_err(db_err)?;
    }
    tx.commit().map_err(db_err)
}
