//! Why the state store could not open, record or read.

use std::path::PathBuf;
use std::sync::Arc;

/// Errors name the database file, because a controller may be pointed at several state
/// dirs over its life and "database is locked" alone does not say which one.
///
/// The sources sit behind an `Arc` so the error is `Clone`: one failed commit is
/// reported to every caller whose writes were in that transaction.
#[derive(Debug, Clone, thiserror::Error)]
pub enum StoreError {
    #[error("could not create the state directory `{}`: {source}", path.display())]
    CreateDir {
        path: PathBuf,
        #[source]
        source: Arc<std::io::Error>,
    },

    #[error("could not create the state database `{}`: {source}", path.display())]
    Create {
        path: PathBuf,
        #[source]
        source: Arc<std::io::Error>,
    },

    #[error("could not open the state database `{}`: {source}", path.display())]
    Open {
        path: PathBuf,
        #[source]
        source: Arc<rusqlite::Error>,
    },

    #[error(
        "the state database `{}` has schema version {found}, but this drover only knows \
         versions up to {known}: it was written by a newer drover, so use that one (the file \
         was left untouched)",
        path.display()
    )]
    TooNew { path: PathBuf, found: i64, known: i64 },

    #[error(
        "the state database `{}` cannot use write-ahead logging (its journal mode stays \
         `{mode}`); put the state dir on a local file system",
        path.display()
    )]
    NoWal { path: PathBuf, mode: String },

    #[error(
        "`{}` is not a drover state database: {why}; it was left untouched\n\
         help: point `state_dir` at a directory of drover's own, or move the file away",
        path.display()
    )]
    NotDrover { path: PathBuf, why: String },

    #[error(
        "the state database `{}` is locked by another process: could not {action} after \
         waiting {}s\nhelp: is another drover, or an sqlite3 shell, holding it?",
        path.display(),
        waited.as_secs()
    )]
    Locked {
        path: PathBuf,
        action: String,
        waited: std::time::Duration,
    },

    #[error("there is no state database at `{}`", path.display())]
    Missing { path: PathBuf },

    #[error("the state database `{}` is open read-only, so nothing can be recorded", path.display())]
    ReadOnly { path: PathBuf },

    #[error("state database `{}`: could not {action}: {source}", path.display())]
    Database {
        path: PathBuf,
        action: String,
        #[source]
        source: Arc<rusqlite::Error>,
    },

    #[error("run `{run}` is already recorded")]
    RunExists { run: String },

    #[error("no run `{run}` is recorded")]
    UnknownRun { run: String },

    #[error("run `{run}` has no node `{node}` in its plan")]
    UnknownNode { run: String, node: String },

    #[error("could not start the state store's writer thread: {source}")]
    Thread {
        #[source]
        source: Arc<std::io::Error>,
    },

    #[error("internal error in the state store: {what}")]
    Internal { what: String },

    #[error("the state store's writer thread has stopped, so nothing more can be recorded")]
    WriterGone,
}

impl StoreError {
    /// Whether SQLite failed because it may not write the file or its directory (a
    /// read-only open of a WAL database needs to create its shared-memory file).
    pub(super) fn is_unwritable(&self) -> bool {
        let source = match self {
            StoreError::Open { source, .. } | StoreError::Database { source, .. } => source,
            _ => return false,
        };
        matches!(
            source.sqlite_error_code(),
            Some(rusqlite::ErrorCode::ReadOnly | rusqlite::ErrorCode::CannotOpen)
        )
    }

    pub(super) fn database(
        path: &std::path::Path,
        action: impl Into<String>,
        source: rusqlite::Error,
    ) -> Self {
        if matches!(
            source.sqlite_error_code(),
            Some(rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked)
        ) {
            return StoreError::Locked {
                path: path.to_path_buf(),
                action: action.into(),
                waited: super::schema::BUSY_TIMEOUT,
            };
        }
        StoreError::Database {
            path: path.to_path_buf(),
            action: action.into(),
            source: Arc::new(source),
        }
    }
}
