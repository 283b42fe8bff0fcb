//! A located error, ready to show to a user.

use std::fmt;

use annotate_snippets::{AnnotationKind, Group, Level, Renderer, Snippet};
use serde::Serialize;

/// A point in a source file. Lines and columns are 1-based and count characters, as
/// editors show them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct Location {
    pub line: usize,
    pub column: usize,
}

/// An error with everything a user needs to fix it: the file, the line and column, the
/// source line with the offending text underlined, what is wrong and what was expected.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Diagnostic {
    pub file: String,
    /// None for problems with the file as a whole (unreadable, too large).
    #[serde(flatten, skip_serializing_if = "Option::is_none")]
    pub location: Option<Location>,
    pub message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub help: Option<String>,
    /// The source line the location is on, for the snippet.
    #[serde(skip)]
    pub source_line: Option<String>,
    /// How many characters to underline from the column on.
    #[serde(skip)]
    pub width: usize,
    /// A warning (something accepted that may not do what was meant) rather than an
    /// error; warnings are listed apart (`"warnings"` in JSON) and never fail a command.
    #[serde(skip)]
    pub warning: bool,
}

impl Diagnostic {
    /// A problem with a file as a whole.
    pub fn file(file: impl Into<String>, message: impl Into<String>) -> Self {
        Diagnostic {
            file: file.into(),
            location: None,
            message: message.into(),
            help: None,
            source_line: None,
            width: 0,
            warning: false,
        }
    }

    /// The same diagnostic as a warning.
    #[must_use]
    pub fn as_warning(mut self) -> Self {
        self.warning = true;
        self
    }

    #[must_use]
    pub fn with_help(mut self, help: impl Into<String>) -> Self {
        self.help = Some(help.into());
        self
    }

    /// Renders in the style of rustc: title, `--> file:line:col`, the source line and a
    /// caret under the offending text, then the help.
    pub fn render(&self, color: bool) -> String {
        let renderer = if color {
            Renderer::styled()
        } else {
            Renderer::plain()
        };
        let level = if self.warning {
            Level::WARNING
        } else {
            Level::ERROR
        };
        let title = level.primary_title(self.message.as_str());
        let mut groups = Vec::new();
        match (&self.location, &self.source_line) {
            (Some(loc), Some(line)) => {
                let start: usize = line
                    .char_indices()
                    .nth(loc.column.saturating_sub(1))
                    .map_or(line.len(), |(i, _)| i);
                let end: usize = line[start..]
                    .char_indices()
                    .nth(self.width.max(1))
                    .map_or(line.len(), |(i, _)| start + i);
                let snippet = Snippet::source(line.as_str())
                    .line_start(loc.line)
                    .path(self.file.as_str())
                    .annotation(AnnotationKind::Primary.span(start..end.max(start)));
                let mut g = title.element(snippet);
                if let Some(h) = &self.help {
                    g = g.element(Level::HELP.message(h.as_str()));
                }
                groups.push(g);
            }
            _ => {
                // No line to show: rustc's layout without the snippet, so the file is
                // where it always is and nothing dangles.
                let where_ = match &self.location {
                    Some(loc) => format!("{}:{}:{}", self.file, loc.line, loc.column),
                    None => self.file.clone(),
                };
                // The styles annotate-snippets gives the same parts of a snippet.
                let (blue, bold, reset) = if color {
                    ("\x1b[1m\x1b[94m", "\x1b[1m", "\x1b[0m")
                } else {
                    ("", "", "")
                };
                let mut text = renderer.render(&[Group::with_title(title)]).to_string();
                text.push_str(&format!("\n {blue}--> {reset}{where_}"));
                if let Some(h) = &self.help {
                    text.push_str(&format!("\n  {blue}= {reset}{bold}help{reset}: {h}"));
                }
                return text;
            }
        }
        renderer.render(&groups).to_string()
    }
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.render(false))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_problem_without_a_line_names_the_file_like_rustc() {
        let d = Diagnostic::file("inventory.yml", "file is too large").with_help("smaller");
        assert_eq!(
            d.render(false),
            "error: file is too large\n --> inventory.yml\n  = help: smaller"
        );
        let d = Diagnostic::file("wf", "not found");
        assert_eq!(d.render(false), "error: not found\n --> wf");
        assert_eq!(d.as_warning().render(false), "warning: not found\n --> wf");
    }
}
