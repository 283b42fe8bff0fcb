//! How values are stored in columns.
//!
//! Timestamps are INTEGER unix milliseconds (UTC): they compare and sort in SQL
//! (`expires_at <= now` for leases, newest run first) without parsing, and a millisecond
//! is finer than anything the store records. They are shown as RFC 3339 text in
//! `--json` output. JSON values (plan, options, outcome) are TEXT holding JSON. Counts
//! and positions are INTEGER; Rust's `usize`/`u64` go through checked conversions since
//! SQLite integers are `i64`.

use std::time::Duration;

use jiff::Timestamp;
use rusqlite::Row;
use rusqlite::types::Type;

/// The longest output tail kept per step attempt, in bytes.
pub(super) const OUTPUT_TAIL_MAX: usize = 4096;

pub(super) fn millis(at: Timestamp) -> i64 {
    at.as_millisecond()
}

/// A duration in milliseconds; durations beyond `i64` (about 292 million years) saturate.
pub(super) fn duration_millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

pub(super) fn int<T: TryInto<i64> + Copy + std::fmt::Display>(value: T) -> rusqlite::Result<i64> {
    value
        .try_into()
        .map_err(|_| rusqlite::Error::ToSqlConversionFailure(format!("{value} does not fit in i64").into()))
}

pub(super) fn json_text(value: &serde_json::Value) -> rusqlite::Result<String> {
    serde_json::to_string(value).map_err(|e| rusqlite::Error::ToSqlConversionFailure(Box::new(e)))
}

/// The last `max` bytes of `text`, starting at a character boundary.
pub(super) fn tail(text: &str, max: usize) -> &str {
    let Some(mut start) = text.len().checked_sub(max) else {
        return text;
    };
    while !text.is_char_boundary(start) {
        start += 1;
    }
    &text[start..]
}

pub(super) fn timestamp_at(row: &Row<'_>, idx: usize) -> rusqlite::Result<Timestamp> {
    let ms: i64 = row.get(idx)?;
    Timestamp::from_millisecond(ms)
        .map_err(|e| rusqlite::Error::FromSqlConversionFailure(idx, Type::Integer, Box::new(e)))
}

pub(super) fn opt_timestamp_at(row: &Row<'_>, idx: usize) -> rusqlite::Result<Option<Timestamp>> {
    match row.get::<_, Option<i64>>(idx)? {
        None => Ok(None),
        Some(_) => timestamp_at(row, idx).map(Some),
    }
}

pub(super) fn usize_at(row: &Row<'_>, idx: usize) -> rusqlite::Result<usize> {
    let v: i64 = row.get(idx)?;
    usize::try_from(v).map_err(|e| rusqlite::Error::FromSqlConversionFailure(idx, Type::Integer, Box::new(e)))
}

pub(super) fn u64_at(row: &Row<'_>, idx: usize) -> rusqlite::Result<u64> {
    let v: i64 = row.get(idx)?;
    u64::try_from(v).map_err(|e| rusqlite::Error::FromSqlConversionFailure(idx, Type::Integer, Box::new(e)))
}

pub(super) fn json_at(row: &Row<'_>, idx: usize) -> rusqlite::Result<serde_json::Value> {
    let text: String = row.get(idx)?;
    serde_json::from_str(&text)
        .map_err(|e| rusqlite::Error::FromSqlConversionFailure(idx, Type::Text, Box::new(e)))
}

pub(super) fn opt_json_at(row: &Row<'_>, idx: usize) -> rusqlite::Result<Option<serde_json::Value>> {
    match row.get::<_, Option<String>>(idx)? {
        None => Ok(None),
        Some(_) => json_at(row, idx).map(Some),
    }
}

/// serde helpers that write timestamps as RFC 3339 text, the form jiff's own serde
/// support uses (not enabled in this crate).
pub(super) mod rfc3339 {
    use jiff::Timestamp;

    pub(crate) fn serialize<S: serde::Serializer>(at: &Timestamp, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(at)
    }

    pub(crate) fn deserialize<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Timestamp, D::Error> {
        let t = <String as serde::Deserialize>::deserialize(d)?;
        t.parse().map_err(serde::de::Error::custom)
    }

    pub(crate) mod option {
        use jiff::Timestamp;

        pub(crate) fn serialize<S: serde::Serializer>(
            at: &Option<Timestamp>,
            s: S,
        ) -> Result<S::Ok, S::Error> {
            match at {
                Some(at) => s.collect_str(at),
                None => s.serialize_none(),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tail_keeps_the_end_on_a_char_boundary() {
        assert_eq!(tail("abc", 10), "abc");
        assert_eq!(tail("abcdef", 3), "def");
        // "é" is two bytes: cutting into it moves the start past it.
        assert_eq!(tail("aéb", 2), "b");
        assert_eq!(tail("aéb", 3), "éb");
    }

    #[test]
    fn durations_saturate() {
        assert_eq!(duration_millis(Duration::from_secs(10)), 10_000);
        assert_eq!(duration_millis(Duration::MAX), i64::MAX);
    }
}
