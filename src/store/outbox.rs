//! The notification outbox: events recorded with the state change they report, handed
//! to each sink in order and marked once it took them.

use jiff::Timestamp;
use rusqlite::{Connection, OptionalExtension, params};
use serde::Serialize;

use super::columns::{json_text, millis, timestamp_at};
use super::notice_kind::NoticeKind;

/// One event to tell, as recorded.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Notice {
    /// Increasing: the order events happened in.
    pub id: i64,
    /// Unique per event (`run_started:RUN`, `node_held:RUN:NODE`, ...): receivers may use
    /// it to drop a repeat.
    pub key: String,
    pub kind: NoticeKind,
    pub run: Option<String>,
    /// The facts of the event (its fields depend on `kind`; see the README).
    pub payload: serde_json::Value,
    #[serde(serialize_with = "super::columns::rfc3339::serialize")]
    pub at: Timestamp,
}

impl Notice {
    /// Records the event unless one with its key is recorded already.
    pub(super) fn insert(
        conn: &Connection,
        key: &str,
        kind: NoticeKind,
        run: Option<&str>,
        payload: &serde_json::Value,
        at: Timestamp,
    ) -> rusqlite::Result<usize> {
        conn.prepare_cached(
            "INSERT INTO outbox (key, kind, run, payload, at) VALUES (?1, ?2, ?3, ?4, ?5)
             ON CONFLICT (key) DO NOTHING",
        )?
        .execute(params![key, kind.as_str(), run, json_text(payload)?, millis(at)])
    }

    /// The oldest events `sink` has not taken, at most `limit`.
    pub(super) fn pending(conn: &Connection, sink: &str, limit: usize) -> rusqlite::Result<Vec<Notice>> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        conn.prepare_cached(
            "SELECT id, key, kind, run, payload, at FROM outbox o
             WHERE NOT EXISTS (SELECT 1 FROM outbox_sent s WHERE s.outbox_id = o.id AND s.sink = ?1)
             ORDER BY id LIMIT ?2",
        )?
        .query_map(params![sink, limit], Notice::from_row)?
        .collect()
    }

    /// How many events `sink` has not taken yet.
    pub(super) fn backlog(conn: &Connection, sink: &str) -> rusqlite::Result<usize> {
        conn.prepare_cached(
            "SELECT COUNT(*) FROM outbox o
             WHERE NOT EXISTS (SELECT 1 FROM outbox_sent s WHERE s.outbox_id = o.id AND s.sink = ?1)",
        )?
        .query_row(params![sink], |r| r.get::<_, i64>(0))
        .map(|n| usize::try_from(n).unwrap_or(0))
    }

    /// What `sink` answered when it took the run's `run_started` event (a Slack
    /// message's `ts`): later events of the run reply in its thread.
    pub(super) fn thread(conn: &Connection, run: &str, sink: &str) -> rusqlite::Result<Option<String>> {
        conn.prepare_cached(
            "SELECT s.reply FROM outbox o JOIN outbox_sent s ON s.outbox_id = o.id
             WHERE o.run = ?1 AND o.kind = 'run_started' AND s.sink = ?2",
        )?
        .query_row(params![run, sink], |r| r.get::<_, Option<String>>(0))
        .optional()
        .map(Option::flatten)
    }

    /// Every event recorded, oldest first.
    pub(super) fn all(conn: &Connection) -> rusqlite::Result<Vec<Notice>> {
        conn.prepare_cached("SELECT id, key, kind, run, payload, at FROM outbox ORDER BY id")?
            .query_map([], Notice::from_row)?
            .collect()
    }

    fn from_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<Notice> {
        let kind: String = row.get(2)?;
        let payload: String = row.get(4)?;
        Ok(Notice {
            id: row.get(0)?,
            key: row.get(1)?,
            kind: NoticeKind::parse(&kind).ok_or_else(|| {
                rusqlite::Error::FromSqlConversionFailure(2, rusqlite::types::Type::Text, kind.into())
            })?,
            run: row.get(3)?,
            payload: serde_json::from_str(&payload).map_err(|e| {
                rusqlite::Error::FromSqlConversionFailure(4, rusqlite::types::Type::Text, Box::new(e))
            })?,
            at: timestamp_at(row, 5)?,
        })
    }
}
