//! The loaded YAML tree: every value remembers where it was written.

use super::{Path, Seg};
use crate::diag::Location;

/// Where a node or key was written: start position and, for underlining, how many
/// characters it spans on its first line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Span {
    pub start: Location,
    pub width: usize,
}

/// A YAML value with its position. Scalars are resolved with the YAML 1.2 core schema
/// (`yes`/`on` are strings, not booleans; `0644` is the integer 644), so what a user
/// reads in the file is what drover sees.
#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    pub value: Value,
    pub span: Span,
    /// How the value was written, for pointing inside it (a line of a `|` block).
    pub style: Style,
}

/// How a value was written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Style {
    /// A plain scalar, or a value with no text of its own (an alias, an empty document).
    #[default]
    Plain,
    /// `'...'` or `"..."`.
    Quoted,
    /// A `|` block: each line of the value is a line of the file, from the span's line on.
    Literal,
    /// A `>` block, whose lines are folded.
    Folded,
    /// `[...]` or `{...}`.
    Flow,
    /// A block list (`- a`) or mapping (`a: 1`).
    Block,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
    Seq(Vec<Node>),
    Map(Vec<Entry>),
}

/// A mapping entry; keys are always scalars, kept as their source text.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    pub key: String,
    pub key_span: Span,
    pub value: Node,
}

impl Node {
    /// The node at `path`, if the document has one there.
    pub fn get(&self, path: &Path) -> Option<&Node> {
        let mut cur = self;
        for seg in path.segs() {
            cur = match (seg, &cur.value) {
                (Seg::Key(k), Value::Map(entries)) => &entries.iter().find(|e| &e.key == k)?.value,
                (Seg::Index(i), Value::Seq(items)) => items.get(*i)?,
                _ => return None,
            };
        }
        Some(cur)
    }

    /// The span of the key at the end of `path` (for "unknown key" errors).
    pub fn key_span(&self, path: &Path) -> Option<Span> {
        let parent = self.get(&path.parent()?)?;
        let key = path.last_key()?;
        match &parent.value {
            Value::Map(entries) => entries.iter().find(|e| e.key == key).map(|e| e.key_span),
            _ => None,
        }
    }

    /// The deepest span along `path` that exists, so an error about something missing
    /// still points at the nearest thing that is there.
    pub fn nearest_span(&self, path: &Path) -> Span {
        let mut cur = self;
        for seg in path.segs() {
            let next = match (seg, &cur.value) {
                (Seg::Key(k), Value::Map(entries)) => entries.iter().find(|e| &e.key == k).map(|e| &e.value),
                (Seg::Index(i), Value::Seq(items)) => items.get(*i),
                _ => None,
            };
            match next {
                Some(n) => cur = n,
                None => break,
            }
        }
        cur.span
    }

    /// The value as JSON, the form the serde `Raw*` types are decoded from.
    pub fn to_json(&self) -> serde_json::Value {
        use serde_json::Value as J;
        match &self.value {
            Value::Null => J::Null,
            Value::Bool(b) => J::Bool(*b),
            Value::Int(i) => J::from(*i),
            Value::Float(f) => serde_json::Number::from_f64(*f).map_or(J::Null, J::Number),
            Value::Str(s) => J::String(s.clone()),
            Value::Seq(items) => J::Array(items.iter().map(Node::to_json).collect()),
            Value::Map(entries) => J::Object(
                entries
                    .iter()
                    .map(|e| (e.key.clone(), e.value.to_json()))
                    .collect(),
            ),
        }
    }

    /// A short description of the node's kind, for "expected X, found Y" messages.
    pub fn kind(&self) -> &'static str {
        match self.value {
            Value::Null => "null",
            Value::Bool(_) => "a boolean",
            Value::Int(_) => "an integer",
            Value::Float(_) => "a number",
            Value::Str(_) => "a string",
            Value::Seq(_) => "a list",
            Value::Map(_) => "a mapping",
        }
    }
}
