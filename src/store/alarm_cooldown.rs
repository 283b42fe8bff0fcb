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

#[cfg(test)]
mod tests {
    use crate::store::{Store, Write};

    #[test]
    fn a_cooldown_is_read_until_it_ends_and_a_new_one_replaces_it() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("drover.db")).unwrap();
        let t = |s: i64| jiff::Timestamp::from_second(s).unwrap();
        let cool = |node: &str, until: i64| Write::AlarmCooldown {
            trigger: "disk".into(),
            node: node.into(),
            until: t(until),
            run: None,
            at: t(100),
        };
        store
            .write_blocking(vec![cool("n1", 700), cool("n2", 200)])
            .unwrap();
        let nodes = |now: i64| -> Vec<(String, i64)> {
            store
                .alarm_cooldowns("disk", t(now))
                .unwrap()
                .into_iter()
                .map(|c| (c.node, c.until.as_second()))
                .collect()
        };
        assert_eq!(nodes(150), [("n1".into(), 700), ("n2".into(), 200)]);
        assert_eq!(nodes(200), [("n1".into(), 700)], "over at `until`");
        assert!(store.alarm_cooldowns("other", t(150)).unwrap().is_empty());
        store.write_blocking(vec![cool("n1", 300)]).unwrap();
        assert_eq!(nodes(150), [("n1".into(), 300), ("n2".into(), 200)]);
    }
}
