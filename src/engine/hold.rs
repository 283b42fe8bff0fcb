//! Why a rollout starts no new node for now: a gate outside the rollout's own rules.
//! The rollout waits, says why, and carries on once the gate opens; nodes in flight
//! finish their cycle meanwhile.

use jiff::Timestamp;
use jiff::tz::TimeZone;
use serde::{Deserialize, Serialize};

use crate::store::Pause;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "hold")]
pub enum Hold {
    /// The workflow's window is closed, or open but past its cutoff.
    Window {
        name: String,
        /// When it next lets a node start (`None`: not within the next year).
        #[serde(serialize_with = "opt_rfc3339", deserialize_with = "opt_rfc3339_de")]
        opens: Option<Timestamp>,
        /// The window's zone, to show `opens` on the clock its author meant.
        /// Not sent: read back (from the daemon's event stream) it is UTC.
        #[serde(skip, default = "utc")]
        tz: TimeZone,
    },
    /// A pause in the state database: global, or of this run.
    Paused { pause: Pause },
}

impl std::fmt::Display for Hold {
    /// `window business-hours, opens Mon 2026-12-07 08:00 Europe/Berlin`, or the pause
    /// with who set it, since when and why.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Hold::Window { name, opens, tz } => {
                write!(f, "window {name}, ")?;
                match opens {
                    Some(t) => {
                        let zoned = t.to_zoned(tz.clone());
                        let zone = tz
                            .iana_name()
                            .map_or_else(|| zoned.strftime("%Z").to_string(), str::to_string);
                        write!(f, "opens {} {zone}", zoned.strftime("%a %Y-%m-%d %H:%M"))
                    }
                    None => write!(f, "which does not open in the next year"),
                }
            }
            Hold::Paused { pause } => write!(f, "{pause}"),
        }
    }
}

fn utc() -> TimeZone {
    TimeZone::UTC
}

fn opt_rfc3339_de<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Timestamp>, D::Error> {
    match <Option<String> as Deserialize>::deserialize(d)? {
        None => Ok(None),
        Some(t) => t.parse().map(Some).map_err(serde::de::Error::custom),
    }
}

fn opt_rfc3339<S: serde::Serializer>(at: &Option<Timestamp>, s: S) -> Result<S::Ok, S::Error> {
    match at {
        Some(t) => s.collect_str(t),
        None => s.serialize_none(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::PauseScope;

    #[test]
    fn holds_say_what_to_wait_for() {
        let w = Hold::Window {
            name: "business-hours".into(),
            opens: Some("2026-12-07T07:00:00Z".parse().unwrap()),
            tz: TimeZone::get("Europe/Berlin").unwrap(),
        };
        assert_eq!(
            w.to_string(),
            "window business-hours, opens Mon 2026-12-07 08:00 Europe/Berlin"
        );
        let p = Hold::Paused {
            pause: Pause {
                scope: PauseScope::Run("w-1".into()),
                reason: None,
                by: "alice".into(),
                since: "2026-12-01T20:15:00Z".parse().unwrap(),
            },
        };
        assert_eq!(
            p.to_string(),
            "paused (run w-1) by alice since 2026-12-01 20:15 UTC"
        );
        let json = serde_json::to_value(&w).unwrap();
        assert_eq!(json["hold"], "window");
        assert_eq!(json["opens"], "2026-12-07T07:00:00Z");
    }
}
