//! One line of the fake scheduler's call log.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// One hook call, as the fake scheduler logged it (`<unix-ms> <hook> <node> <reason>`,
/// the reason only for `drain`). Times are wall-clock, like [`Reboot`](super::Reboot)'s,
/// so a test can order hook calls and reboots.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogLine {
    /// When the hook started.
    pub at: SystemTime,
    /// `drain`, `drained` or `resume` (or whatever a wrong call named).
    pub hook: String,
    /// The node argument, as given (empty if missing).
    pub node: String,
    /// `drain`'s reason, newlines turned into spaces; `None` for other hooks.
    pub reason: Option<String>,
}

impl LogLine {
    /// Parses one line; `None` for anything the scheduler's scripts do not write.
    pub(crate) fn parse(line: &str) -> Option<LogLine> {
        let mut fields = line.splitn(4, ' ');
        let ms: u64 = fields.next()?.parse().ok()?;
        let hook = fields.next()?.to_string();
        let node = fields.next()?.to_string();
        Some(LogLine {
            at: UNIX_EPOCH + Duration::from_millis(ms),
            hook,
            node,
            reason: fields.next().map(str::to_string),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_with_and_without_reason() {
        let drain = LogLine::parse("1700000000123 drain node001 drover: w v1 run 7").expect("drain");
        assert_eq!(drain.at, UNIX_EPOCH + Duration::from_millis(1_700_000_000_123));
        assert_eq!((drain.hook.as_str(), drain.node.as_str()), ("drain", "node001"));
        assert_eq!(drain.reason.as_deref(), Some("drover: w v1 run 7"));
        let resume = LogLine::parse("1700000000124 resume node002").expect("resume");
        assert_eq!(resume.reason, None);
        assert_eq!(
            LogLine::parse("1 drain node001 ")
                .expect("empty reason")
                .reason
                .as_deref(),
            Some("")
        );
        assert_eq!(LogLine::parse("garbage"), None);
        assert_eq!(LogLine::parse("12 drain"), None);
    }
}
