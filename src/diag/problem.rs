//! A problem found in one file, before it is given a line and column.

use crate::yaml::Path;

/// Whether an error underlines a mapping key (unknown key, duplicate key) or the value
/// under it (wrong type, bad value).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    Key,
    Value,
}

/// A validation problem located by its [`Path`] in a document. Validators produce these
/// without knowing about lines; [`crate::yaml::Document`] turns them into
/// [`Diagnostic`](super::Diagnostic)s with file, line, column and source snippet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub path: Path,
    pub target: Target,
    /// What is wrong, as a lowercase sentence fragment naming the offending value.
    pub message: String,
    /// A hint: what was expected, or "did you mean ...".
    pub help: Option<String>,
    /// For a problem inside a template (a multi-line string value): the 1-based line
    /// within the template. A literal block scalar (`|`) is pointed at that line; for any
    /// other value the message says "(line N of the template)".
    pub template_line: Option<usize>,
}

impl Problem {
    /// A problem with the value at `path`.
    pub fn value(path: Path, message: impl Into<String>) -> Self {
        Problem {
            path,
            target: Target::Value,
            message: message.into(),
            help: None,
            template_line: None,
        }
    }

    /// A problem with the key at the end of `path`.
    pub fn key(path: Path, message: impl Into<String>) -> Self {
        Problem {
            path,
            target: Target::Key,
            message: message.into(),
            help: None,
            template_line: None,
        }
    }

    #[must_use]
    pub fn with_help(mut self, help: impl Into<String>) -> Self {
        self.help = Some(help.into());
        self
    }

    #[must_use]
    pub fn in_template_line(mut self, line: Option<usize>) -> Self {
        self.template_line = line;
        self
    }

    /// The same problem, located under `prefix` (for validators of a sub-document).
    #[must_use]
    pub fn under(mut self, prefix: &Path) -> Self {
        self.path = prefix.join(&self.path);
        self
    }
}
