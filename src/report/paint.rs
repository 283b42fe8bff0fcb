//! Colour for node states on a terminal, and counted nouns.

/// Paints states when colour is on (`--color`, `NO_COLOR`): green for done, red for
/// failed, yellow for held and skipped. Off, the text is unchanged.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Paint(pub bool);

const GREEN: &str = "\x1b[32m";
const RED: &str = "\x1b[31;1m";
const YELLOW: &str = "\x1b[33m";
const PLAIN_RED: &str = "\x1b[31m";
const CYAN: &str = "\x1b[36m";
const RESET: &str = "\x1b[0m";

impl Paint {
    fn with(self, code: &str, text: &str) -> String {
        if self.0 {
            format!("{code}{text}{RESET}")
        } else {
            text.to_string()
        }
    }

    pub fn ok(self, text: &str) -> String {
        self.with(GREEN, text)
    }

    pub fn failed(self, text: &str) -> String {
        self.with(RED, text)
    }

    pub fn held(self, text: &str) -> String {
        self.with(YELLOW, text)
    }

    /// A diff's removed line.
    pub fn removed(self, text: &str) -> String {
        self.with(PLAIN_RED, text)
    }

    /// A diff's added line.
    pub fn added(self, text: &str) -> String {
        self.with(GREEN, text)
    }

    /// A diff's hunk header.
    pub fn hunk(self, text: &str) -> String {
        self.with(CYAN, text)
    }

    /// A drain-cycle state (`draining`, `resumed`, `held`, ...), painted by what it
    /// means for the node.
    pub fn state(self, state: &str) -> String {
        match state {
            "resumed" | "back" | "ok" | "succeeded" => self.ok(state),
            "held" | "skipped" => self.held(state),
            "failed" => self.failed(state),
            _ => state.to_string(),
        }
    }
}

/// `1 node`, `2 nodes`, `0 nodes`. Nouns here take an `s`.
pub fn plural(n: usize, noun: &str) -> String {
    if n == 1 {
        format!("1 {noun}")
    } else {
        format!("{n} {noun}s")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counted_nouns() {
        assert_eq!(plural(1, "node"), "1 node");
        assert_eq!(plural(0, "node"), "0 nodes");
        assert_eq!(plural(12, "window"), "12 windows");
    }

    #[test]
    fn colour_only_when_on() {
        assert_eq!(Paint(false).failed("FAILED"), "FAILED");
        assert_eq!(Paint(true).failed("FAILED"), "\x1b[31;1mFAILED\x1b[0m");
        assert_eq!(Paint(true).state("draining"), "draining");
        assert_eq!(Paint(true).state("held"), "\x1b[33mheld\x1b[0m");
    }
}
