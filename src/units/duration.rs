//! Durations as written in YAML: `30s`, `5m`, `1h30m`.

use std::borrow::Cow;
use std::fmt;
use std::time::Duration;

use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::{Deserialize, Deserializer, Serialize, Serializer, de};

use super::limits::MAX_ANY_DURATION;

/// A duration written as a number and unit (`30s`, `5m`, `2h`, `1h30m`). Bare numbers are
/// refused: "timeout: 30" could mean seconds or minutes, and guessing wrong on a reboot
/// timeout takes a node down for too long.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct HumanDuration(pub Duration);

impl HumanDuration {
    pub fn parse(s: &str) -> Result<Self, String> {
        let t = s.trim();
        if t.starts_with('-') {
            return Err(negative(s));
        }
        if t.is_empty() || t.chars().all(|c| c.is_ascii_digit()) {
            return Err(format!(
                "invalid duration `{s}`: expected a number with a unit, like `30s`, `5m` or `2h`"
            ));
        }
        let d = humantime::parse_duration(t).map_err(|e| match e {
            // humantime also says "overflow" for fractions it cannot represent exactly.
            humantime::DurationError::NumberOverflow if t.contains('.') => {
                format!("invalid duration `{s}`: too large, or finer than a nanosecond")
            }
            humantime::DurationError::NumberOverflow => format!("duration `{s}` is too large"),
            _ => {
                format!("invalid duration `{s}`: expected a number with a unit, like `30s`, `5m` or `2h`")
            }
        })?;
        if d > MAX_ANY_DURATION {
            return Err(format!(
                "duration `{s}` is too large: no setting accepts more than {}",
                humantime::format_duration(MAX_ANY_DURATION)
            ));
        }
        Ok(HumanDuration(d))
    }

    pub fn get(self) -> Duration {
        self.0
    }
}

fn negative(s: impl fmt::Display) -> String {
    format!("invalid duration `{s}`: a duration cannot be negative")
}

impl fmt::Display for HumanDuration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", humantime::format_duration(self.0))
    }
}

impl<'de> Deserialize<'de> for HumanDuration {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl de::Visitor<'_> for V {
            type Value = HumanDuration;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a duration like `30s`, `5m` or `2h`")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                HumanDuration::parse(v).map_err(E::custom)
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
                Err(E::custom(format!(
                    "invalid duration `{v}`: a bare number has no unit; write `{v}s` or `{v}m`"
                )))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
                match u64::try_from(v) {
                    Ok(v) => self.visit_u64(v),
                    Err(_) => Err(E::custom(negative(v))),
                }
            }
        }
        d.deserialize_any(V)
    }
}

impl Serialize for HumanDuration {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl JsonSchema for HumanDuration {
    fn schema_name() -> Cow<'static, str> {
        "Duration".into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "type": "string",
            "description": "A duration with a unit: `30s`, `5m`, `2h`, `1h30m`.",
            "pattern": "^\\s*[0-9]+\\s*[a-zA-Z]+(\\s*[0-9]+\\s*[a-zA-Z]+)*\\s*$"
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_units_and_refuses_bare_numbers() {
        assert_eq!(HumanDuration::parse("90s").map(|d| d.get().as_secs()), Ok(90));
        assert_eq!(HumanDuration::parse("1h30m").map(|d| d.get().as_secs()), Ok(5400));
        assert!(HumanDuration::parse("30").is_err());
        assert_eq!(
            HumanDuration::parse("-5m").unwrap_err(),
            "invalid duration `-5m`: a duration cannot be negative"
        );
        assert_eq!(
            HumanDuration::parse("99999999999999999999s").unwrap_err(),
            "duration `99999999999999999999s` is too large"
        );
        assert_eq!(
            HumanDuration::parse("3000000000000000h").unwrap_err(),
            "duration `3000000000000000h` is too large: no setting accepts more than 1year"
        );
        assert!(HumanDuration::parse("365d").is_ok());
        assert_eq!(
            HumanDuration::parse("5 mins please").unwrap_err(),
            "invalid duration `5 mins please`: expected a number with a unit, like `30s`, `5m` or `2h`"
        );
    }
}
