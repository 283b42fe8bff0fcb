//! Until when an alarm trigger starts nothing more on a node: kept in the store so a
//! daemon restarted in the middle of an alarm storm does not run the node again.

use jiff::Timestamp;
use rusqlite::{Connection, Row};
use serde::Serialize;

use super::columns::{rfc3339, timestamp_at};

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AlarmCooldown {
    pub trigger: String,
    pub node: String,
    #[serde(serialize_with = "rfc3339::serialize")]
    pub until: Timestamp,
    /// When the alarm that set it came.
    #[serde(serialize_with = "rfc3339::serialize")]
    pub at: Timestamp,
}

impl AlarmCooldown {
    /// The cooldowns of `trigger` still running at `now`.
    pub(super) fn of(
        conn: &Connection,
        trigger: &str,
        now: Timestamp,
    ) -> rusqlite::Result<Vec<AlarmCooldown>> {
        conn.prepare_cached(
            "SELECT trigger, node, until, at FROM alarm_cooldowns
             WHERE trigger = ?1 AND until > ?2 ORDER BY node",
        )?
        .query_map(
            rusqlite::params![trigger, now.as_millisecond()],
            AlarmCooldown::from_row,
        )?
        .collect()
    }

    fn from_row(row: &Row<'_>) -> rusqlite::Result<AlarmCooldown> {
        Ok(AlarmCooldown {
            trigger: row.get(0)?,
            node: row.get(1)?,
            until: timestamp_at(row, 2)?,
            at: timestamp_at(row, 3)?,
        })
    }
}
