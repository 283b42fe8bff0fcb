//! The one place where command lines are assembled from parts.

use std::fmt::Display;

/// A shell command line built from two kinds of parts: `code`, shell syntax written in
/// drover's own source (a `&'static str`, so no runtime value can be passed as code),
/// and `value`s, which are always quoted into one shell word. Every command drover
/// builds around a user's (steps, file steps, lock, timeout and kill wrappers, settle)
/// goes through this type, so a path with a space or a `;` is data, never code.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ShellLine(String);

impl ShellLine {
    pub fn new() -> Self {
        ShellLine(String::new())
    }

    /// Shell syntax from drover's source.
    pub fn code(mut self, code: &'static str) -> Self {
        self.0.push_str(code);
        self
    }

    /// A value, quoted as one shell word (`'a b; c'`).
    pub fn value(mut self, v: impl AsRef<str>) -> Self {
        self.0.push_str(&super::quote(v.as_ref()));
        self
    }

    /// A number: digits only, nothing to quote.
    pub fn number(mut self, n: impl Into<u64>) -> Self {
        self.0.push_str(&n.into().to_string());
        self
    }

    /// A lock directory, for the shell to expand its variables.
    pub fn expand(mut self, dir: &super::LockDir) -> Self {
        self.0.push_str(&dir.shell());
        self
    }

    /// Another line, as code: it was built from quoted parts already.
    pub fn line(mut self, other: &ShellLine) -> Self {
        self.0.push_str(&other.0);
        self
    }

    /// A user's command (a rendered `run:`, whose template already quoted its values),
    /// as one word for `sh -c`.
    pub fn script(self, command: &str) -> Self {
        self.value(command)
    }

    /// A user's command that is one program with plain words ([`super::SimpleCommand`]),
    /// as code: it was checked to hold nothing a shell would expand or read as more than
    /// that program and its words.
    pub fn simple(mut self, command: &super::SimpleCommand) -> Self {
        self.0.push_str(command.as_str());
        self
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn into_string(self) -> String {
        self.0
    }
}

impl Display for ShellLine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_single_words_and_code_is_kept() {
        let l = ShellLine::new()
            .code("f=")
            .value("/x/a b; touch /tmp/m")
            .code("; echo ")
            .number(3u32);
        assert_eq!(l.as_str(), "f='/x/a b; touch /tmp/m'; echo 3");
    }

    #[test]
    fn quoted_values_survive_a_real_shell() {
        for v in [
            "a b",
            "x; touch /tmp/p",
            "$(id)",
            "`id`",
            "it's",
            "a\nb",
            "",
            "-n",
        ] {
            let l = ShellLine::new().code("printf '%s' ").value(v);
            let out = std::process::Command::new("sh")
                .arg("-c")
                .arg(l.as_str())
                .output()
                .unwrap();
            assert_eq!(String::from_utf8_lossy(&out.stdout), v, "{l}");
        }
    }
}
