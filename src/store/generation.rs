//! A stamp of the database's contents: two reads with the same generation saw the
//! same committed data, so an answer built from the first may be served for the
//! second (the API's read cache, `crate::api::ReadCache`).

/// Changes whenever anything is committed to the database: by this store's writer
/// (`commits`), or by any other connection, another drover process included
/// (`data_version`, SQLite's `PRAGMA data_version` on a connection that never writes:
/// SQLite changes it for commits of every *other* connection, never for the asking
/// connection's own, which is why it is asked on one kept for nothing else).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Generation {
    pub commits: u64,
    pub data_version: i64,
}
