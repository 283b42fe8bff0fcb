//! One YAML file: its text, its tree, and the way from a [`Problem`] to a [`Diagnostic`].

use std::path::Path as FsPath;

use schemars::JsonSchema;
use serde::de::DeserializeOwned;

use super::decode::decode_node;
use super::loader::{LoadError, load};
use super::node::{Node, Span};
use crate::diag::{Diagnostic, Location, Problem, Target};

/// Files larger than this are refused before they are read: drover's largest real
/// input, an inventory of 10,000 nodes, is under 2 MiB.
pub const MAX_FILE_BYTES: u64 = 8 * 1024 * 1024;

/// A loaded YAML file. Holds the source so diagnostics can quote the offending line.
#[derive(Debug, Clone)]
pub struct Document {
    /// The file name as the user should see it in messages.
    pub file: String,
    source: String,
    /// Byte ranges of the source's lines (as `str::lines` splits them), so a diagnostic
    /// finds its line without scanning the file.
    lines: Vec<std::ops::Range<usize>>,
    pub root: Node,
}

impl Document {
    /// Reads and loads a file. `display` is the name used in messages.
    pub fn read(path: &FsPath, display: &str) -> Result<(Document, Vec<Diagnostic>), Vec<Diagnostic>> {
        let meta = std::fs::metadata(path)
            .map_err(|e| vec![Diagnostic::file(display, format!("cannot read file: {e}"))])?;
        if meta.is_file() && meta.len() > MAX_FILE_BYTES {
            return Err(vec![
                Diagnostic::file(display, format!("file is too large: {} bytes", meta.len())).with_help(
                    format!(
                        "drover reads files up to {} MiB ({MAX_FILE_BYTES} bytes)",
                        MAX_FILE_BYTES / 1024 / 1024
                    ),
                ),
            ]);
        }
        let bytes = crate::bounded_read::read_regular(path, Some(MAX_FILE_BYTES))
            .map_err(|e| vec![Diagnostic::file(display, format!("cannot read file: {e}"))])?;
        let source = String::from_utf8(bytes).map_err(|e| {
            vec![Diagnostic::file(
                display,
                format!(
                    "file is not valid UTF-8 (at byte {})",
                    e.utf8_error().valid_up_to()
                ),
            )]
        })?;
        Document::parse(display, source)
    }

    /// Loads YAML text. Returns the document and the non-fatal problems (duplicate keys),
    /// or every problem if the text could not be loaded at all.
    pub fn parse(file: &str, source: String) -> Result<(Document, Vec<Diagnostic>), Vec<Diagnostic>> {
        let source = source
            .strip_prefix('\u{feff}')
            .map(str::to_owned)
            .unwrap_or(source);
        let (root, errors) = load(&source);
        let base = source.as_ptr() as usize;
        let lines = source
            .lines()
            .map(|l| {
                let start = l.as_ptr() as usize - base;
                start..start + l.len()
            })
            .collect();
        let mut doc = Document {
            file: file.to_string(),
            lines,
            source,
            root: Node {
                value: super::Value::Null,
                span: Span {
                    start: Location { line: 1, column: 1 },
                    width: 1,
                },
                style: super::Style::Plain,
            },
        };
        let diags: Vec<Diagnostic> = errors.iter().map(|e| doc.load_diagnostic(e)).collect();
        match root {
            Some(root) => {
                doc.root = root;
                Ok((doc, diags))
            }
            None => Err(diags),
        }
    }

    /// Decodes the whole document into a serde type, reporting every unknown key (with a
    /// suggestion) and the first type error, each at its line and column. Unknown keys
    /// alone do not stop decoding: the value comes back with them as diagnostics, so the
    /// file's other problems are found too.
    pub fn decode<T: DeserializeOwned + JsonSchema>(&self) -> Result<(T, Vec<Diagnostic>), Vec<Diagnostic>> {
        let all = |ps: Vec<Problem>| ps.iter().map(|p| self.diagnostic(p)).collect::<Vec<_>>();
        decode_node::<T>(&self.root)
            .map(|(v, ps)| (v, all(ps)))
            .map_err(all)
    }

    /// Locates a problem found by a validator.
    pub fn diagnostic(&self, p: &Problem) -> Diagnostic {
        let mut message = p.message.clone();
        let span = match p.target {
            Target::Key => self.root.key_span(&p.path),
            Target::Value => None,
        }
        .or_else(|| self.root.get(&p.path).map(|n| n.span))
        .unwrap_or_else(|| self.root.nearest_span(&p.path));
        let span = match p.template_line {
            Some(line) => match self.template_line_span(&p.path, line) {
                Some(exact) => exact,
                None => {
                    if line > 1 {
                        message.push_str(&format!(" (line {line} of the template)"));
                    }
                    span
                }
            },
            None => span,
        };
        self.located(span.start, span.width, message, p.help.clone())
    }

    /// The span of line `line` of the template at `path`, when the template is a literal
    /// block (`|`), whose lines are lines of the file: the span starts at the block's
    /// first line that is not blank, and leading blank lines are part of the value.
    fn template_line_span(&self, path: &super::Path, line: usize) -> Option<Span> {
        let node = self.root.get(path)?;
        let super::Value::Str(text) = &node.value else {
            return None;
        };
        if node.style != super::Style::Literal {
            return None;
        }
        let blank = text.chars().take_while(|c| *c == '\n').count();
        let at = node.span.start.line + line.checked_sub(1 + blank)?;
        let source = self.line(at)?;
        let indent = source.chars().take_while(|c| c.is_whitespace()).count();
        Some(Span {
            start: Location {
                line: at,
                column: indent + 1,
            },
            width: source.trim().chars().count().max(1),
        })
    }

    fn load_diagnostic(&self, e: &LoadError) -> Diagnostic {
        self.located(e.at, e.width, e.message.clone(), e.help.clone())
    }

    /// A diagnostic at `at`, moved back into the file if it is past its end (parsers
    /// report a truncated file at the line after the last one): to the last line, after
    /// its last character, so there is still a line to show. An empty file has no line
    /// to point at, so the problem is with the file as a whole.
    fn located(&self, at: Location, width: usize, message: String, help: Option<String>) -> Diagnostic {
        let line_count = self.lines.len();
        let line = |n: usize| self.line(n).unwrap_or_default();
        let (location, width) = if line_count == 0 {
            (None, 0)
        } else if at.line == 0 || at.line > line_count {
            let end = line(line_count).chars().count() + 1;
            (
                Some(Location {
                    line: line_count,
                    column: end,
                }),
                1,
            )
        } else {
            let end = line(at.line).chars().count() + 1;
            let column = at.column.clamp(1, end);
            (
                Some(Location {
                    line: at.line,
                    column,
                }),
                if column == at.column { width } else { 1 },
            )
        };
        Diagnostic {
            file: self.file.clone(),
            location,
            message,
            help,
            source_line: location.map(|l| line(l.line).replace('\t', " ")),
            width,
            warning: false,
        }
    }

    /// Line `n` (1-based) of the source.
    fn line(&self, n: usize) -> Option<&str> {
        let range = self.lines.get(n.checked_sub(1)?)?;
        self.source.get(range.clone())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // a failed unwrap is a failed test
mod tests {
    use super::*;
    use crate::yaml::Path;

    fn doc(src: &str) -> Document {
        Document::parse("f.yml", src.to_string()).unwrap().0
    }

    #[test]
    fn errors_past_the_end_are_moved_to_the_last_character() {
        let d = Document::parse("f.yml", "a: 1\nb: [x,".into()).unwrap_err();
        assert_eq!(d[0].location, Some(Location { line: 2, column: 7 }));
        assert_eq!(d[0].source_line.as_deref(), Some("b: [x,"));
        // An empty file has no line: the problem is with the file as a whole.
        let empty = doc("");
        let d = empty.diagnostic(&Problem::value(Path::root(), "empty"));
        assert_eq!((d.location, d.source_line), (None, None));
    }

    #[test]
    fn template_lines_of_literal_blocks_are_lines_of_the_file() {
        let d = doc("run: |\n\n  echo a\n  echo {{ b }}\nfold: >\n  a\n\n  b\n");
        let at = |key: &str, line: usize| {
            d.diagnostic(&Problem::value(Path::root().key(key), "bad").in_template_line(Some(line)))
        };
        // Line 1 of the value is the blank line after `|`; line 3 is `echo {{ b }}`.
        let x = at("run", 3);
        assert_eq!(x.location, Some(Location { line: 4, column: 3 }));
        assert_eq!((x.width, x.message.as_str()), (12, "bad"));
        // A folded block's lines are not the file's: the line goes into the message.
        let x = at("fold", 2);
        assert_eq!(x.location, Some(Location { line: 6, column: 3 }));
        assert_eq!(x.message, "bad (line 2 of the template)");
        assert_eq!(at("fold", 1).message, "bad");
    }
}
