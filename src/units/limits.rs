//! The largest value every duration and count in the file formats may take, in one place.
//!
//! A value far beyond any real use is a typo (`3000000000000000h`, `4294967295` retries),
//! and some of them used to overflow time arithmetic in the engine. Each setting has a
//! maximum that is generous for real fleets (a drain may wait for week-long jobs) and far
//! below where arithmetic could overflow; validation refuses anything above it, naming the
//! value and the limit. `LIMITS` is the table the README lists (a test keeps them equal).

use std::time::Duration;

use crate::diag::Problem;
use crate::yaml::Path;

const MINUTE: u64 = 60;
const HOUR: u64 = 60 * MINUTE;
const DAY: u64 = 24 * HOUR;

/// The most nodes one inventory may define. Checked before any host list is expanded, so a
/// typo such as two lists of 600,000 names is refused at once without allocating them.
pub const MAX_NODES: u64 = 100_000;

/// The longest duration any setting accepts, whatever its own limit: a bound on every
/// `HumanDuration` at parse time, so a setting added later cannot overflow `Instant`.
pub const MAX_ANY_DURATION: Duration = Duration::from_secs(31_557_600);

/// A setting and the largest value it accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limit {
    /// Where it is written, as in the docs (`drain.timeout`, `steps[].timeout`).
    pub key: &'static str,
    pub max: Max,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Max {
    Duration(Duration),
    Count(u64),
}

const fn duration(key: &'static str, secs: u64) -> Limit {
    Limit {
        key,
        max: Max::Duration(Duration::from_secs(secs)),
    }
}

const fn count(key: &'static str, n: u64) -> Limit {
    Limit {
        key,
        max: Max::Count(n),
    }
}

pub const DRAIN_TIMEOUT: Limit = duration("drain.timeout", 14 * DAY);
pub const DRAIN_POLL_INTERVAL: Limit = duration("drain.poll_interval", HOUR);
pub const STEP_TIMEOUT: Limit = duration("steps[].timeout", DAY);
pub const WAIT_FOR_TIMEOUT: Limit = duration("steps[].wait_for.timeout", DAY);
pub const WAIT_FOR_INTERVAL: Limit = duration("steps[].wait_for.interval", HOUR);
pub const REBOOT_TIMEOUT: Limit = duration("steps[].reboot.timeout", DAY);
pub const CANARY_SOAK: Limit = duration("canary.soak", 7 * DAY);
pub const CONVERGE_EVERY: Limit = duration("converge.every", 7 * DAY);
pub const RETRY_DELAY: Limit = duration("strategy.retries.delay", DAY);
pub const RETRY_MAX_DELAY: Limit = duration("strategy.retries.max_delay", DAY);
pub const LEASE_TTL: Limit = duration("leases.ttl", DAY);
pub const LEASE_WAIT_TIMEOUT: Limit = duration("leases.wait_timeout", 7 * DAY);
pub const PAUSE_POLL_INTERVAL: Limit = duration("pause.poll_interval", HOUR);
pub const SSH_CONNECT_TIMEOUT: Limit = duration("ssh.connect_timeout", 10 * MINUTE);
pub const SSH_CONTROL_PERSIST: Limit = duration("ssh.control_persist", DAY);
pub const SSH_SERVER_ALIVE_INTERVAL: Limit = duration("ssh.server_alive_interval", DAY);
pub const GIT_POLL_INTERVAL: Limit = duration("git.poll_interval", DAY);
pub const DISCOVER_TIMEOUT: Limit = duration("server.discover.timeout", 10 * MINUTE);
pub const TRIGGER_COOLDOWN: Limit = duration("triggers.*.cooldown", 7 * DAY);

pub const RETRY_COUNT: Limit = count("strategy.retries.count", 100);
pub const STEP_RETRIES: Limit = count("steps[].retries", 100);
pub const FORKS: Limit = count("ssh.forks", 10_000);
pub const KEEP_MASTERS: Limit = count("ssh.keep_masters", 10_000);
pub const DISCOVER_CONCURRENCY: Limit = count("server.discover.concurrency", 1_000);
pub const NODE_COUNT: Limit = count("nodes in one inventory", MAX_NODES);
pub const HA_MAX_UNAVAILABLE: Limit = count("ha_groups.*.max_unavailable", MAX_NODES);
/// Counts written as amounts (`batch`, `max_unavailable`, failure budgets, `canary.size`)
/// are checked when they are parsed ([`Amount::count`](super::Amount::count)).
pub const AMOUNT: Limit = count(
    "batch, max_unavailable, max_unavailable_per_group, failure budgets, canary.size (as counts)",
    MAX_NODES,
);

/// Every limit, in the order the README lists them.
pub const LIMITS: [Limit; 27] = [
    DRAIN_TIMEOUT,
    DRAIN_POLL_INTERVAL,
    STEP_TIMEOUT,
    WAIT_FOR_TIMEOUT,
    WAIT_FOR_INTERVAL,
    REBOOT_TIMEOUT,
    CANARY_SOAK,
    CONVERGE_EVERY,
    RETRY_DELAY,
    RETRY_MAX_DELAY,
    LEASE_TTL,
    LEASE_WAIT_TIMEOUT,
    PAUSE_POLL_INTERVAL,
    SSH_CONNECT_TIMEOUT,
    SSH_CONTROL_PERSIST,
    SSH_SERVER_ALIVE_INTERVAL,
    GIT_POLL_INTERVAL,
    DISCOVER_TIMEOUT,
    TRIGGER_COOLDOWN,
    RETRY_COUNT,
    STEP_RETRIES,
    FORKS,
    KEEP_MASTERS,
    DISCOVER_CONCURRENCY,
    NODE_COUNT,
    HA_MAX_UNAVAILABLE,
    AMOUNT,
];

impl Limit {
    /// The limit as the README shows it: `14d`, `100`.
    pub fn shown(&self) -> String {
        match self.max {
            Max::Duration(d) => humantime::format_duration(d).to_string(),
            Max::Count(n) => n.to_string(),
        }
    }

    /// A problem at `path` when `value` is above a duration limit.
    pub fn check_duration(&self, path: Path, value: Duration, p: &mut Vec<Problem>) {
        if let Max::Duration(max) = self.max
            && value > max
        {
            p.push(
                Problem::value(
                    path,
                    format!(
                        "{} is above the limit of {}",
                        humantime::format_duration(value),
                        humantime::format_duration(max)
                    ),
                )
                .with_help(format!("`{}` may be at most {}", self.key, self.shown())),
            );
        }
    }

    /// A problem at `path` when `value` is above a count limit.
    pub fn check_count(&self, path: Path, value: u64, p: &mut Vec<Problem>) {
        if let Max::Count(max) = self.max
            && value > max
        {
            p.push(
                Problem::value(path, format!("{value} is above the limit of {max}"))
                    .with_help(format!("`{}` may be at most {max}", self.key)),
            );
        }
    }
}

/// The README's table of limits, as it must read (one row per limit).
pub fn readme_rows() -> Vec<String> {
    LIMITS
        .iter()
        .map(|l| format!("| `{}` | {} |", l.key, l.shown()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_name_the_value_and_the_limit() {
        let mut p = Vec::new();
        CANARY_SOAK.check_duration(
            Path::root().key("soak"),
            Duration::from_secs(3600 * 1_000_000),
            &mut p,
        );
        assert_eq!(p[0].message, "114years 28days 4h is above the limit of 7days");
        RETRY_COUNT.check_count(Path::root(), 101, &mut p);
        assert_eq!(p[1].message, "101 is above the limit of 100");
        CANARY_SOAK.check_duration(Path::root(), Duration::from_secs(7 * DAY), &mut p);
        assert_eq!(p.len(), 2, "the limit itself is allowed");
    }

    #[test]
    fn every_limit_fits_in_instant_arithmetic() {
        for l in LIMITS {
            if let Max::Duration(d) = l.max {
                assert!(d <= MAX_ANY_DURATION, "{}", l.key);
                assert!(std::time::Instant::now().checked_add(d * 4).is_some());
            }
        }
    }
}
