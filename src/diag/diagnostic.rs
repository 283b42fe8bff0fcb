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
        }
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
        let title = Level::ERROR.primary_title(self.message.as_str());
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
                let where_ = match &self.location {
                    Some(loc) => format!("{}:{}:{}", self.file, loc.line, loc.column),
                    None => self.file.clone(),
                };
                let mut g =
                    Group::with_title(title).element(Level::NOTE.no_name().message(format!("--> {where_}")));
                if let Some(h) = &self.help {
                    g = g.element(Level::HELP.message(h.as_str()));
                }
                groups.push(g);
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
