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
    pub root: Node,
}

impl Document {
    /// Reads and loads a file. `display` is the name used in messages.
    pub fn read(path: &FsPath, display: &str) -> Result<(Document, Vec<Diagnostic>), Vec<Diagnostic>> {
        let meta = std::fs::metadata(path)
            .map_err(|e| vec![Diagnostic::file(display, format!("cannot read file: {e}"))])?;
        if meta.len() > MAX_FILE_BYTES {
            return Err(vec![
                Diagnostic::file(
                    display,
                    format!(
                        "file is too large: {} bytes, drover reads at most {} bytes ({} MiB)",
                        meta.len(),
                        MAX_FILE_BYTES,
                        MAX_FILE_BYTES / 1024 / 1024
                    ),
                )
                .with_help("split the inventory into several files listed under `inventory:` in drover.yml"),
            ]);
        }
        let bytes = std::fs::read(path)
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
        let mut doc = Document {
            file: file.to_string(),
            source,
            root: Node {
                value: super::Value::Null,
                span: Span {
                    start: Location { line: 1, column: 1 },
                    width: 1,
                },
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
        let span = match p.target {
            Target::Key => self.root.key_span(&p.path),
            Target::Value => None,
        }
        .or_else(|| self.root.get(&p.path).map(|n| n.span))
        .unwrap_or_else(|| self.root.nearest_span(&p.path));
        Diagnostic {
            file: self.file.clone(),
            location: Some(span.start),
            message: p.message.clone(),
            help: p.help.clone(),
            source_line: self.line(span.start.line),
            width: span.width,
        }
    }

    fn load_diagnostic(&self, e: &LoadError) -> Diagnostic {
        Diagnostic {
            file: self.file.clone(),
            location: Some(e.at),
            message: e.message.clone(),
            help: e.help.clone(),
            source_line: self.line(e.at.line),
            width: e.width,
        }
    }

    fn line(&self, n: usize) -> Option<String> {
        self.source
            .lines()
            .nth(n.checked_sub(1)?)
            .map(|l| l.replace('\t', " "))
    }
}
