//! Builds a [`Node`] tree from saphyr's event stream.
//!
//! drover does its own tree building (rather than using a YAML serde deserializer
//! directly) so that every value keeps its position: errors found later, by the
//! validators, are reported at the line and column of the value they concern.

use std::collections::HashMap;

use saphyr_parser::{Event, Parser, ScalarStyle, Span as PSpan};

use super::node::{Entry, Node, Span, Value};
use super::scalar::resolve_plain;
use crate::diag::Location;

/// Deeper nesting than this is refused (no drover format needs more than ~6 levels).
const MAX_DEPTH: usize = 64;
/// Nodes in the expanded tree, aliases counted at their full size: refuses "billion
/// laughs" alias bombs before they use memory.
const MAX_NODES: usize = 5_000_000;

/// A problem found while loading, with its position.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoadError {
    pub at: Location,
    pub width: usize,
    pub message: String,
    pub help: Option<String>,
}

enum Frame {
    Seq {
        span: Span,
        anchor: usize,
        items: Vec<Node>,
    },
    Map {
        span: Span,
        anchor: usize,
        entries: Vec<Entry>,
        key: Option<(String, Span)>,
        seen: HashMap<String, Location>,
    },
}

/// Loads one YAML document. Returns the tree (None when the text is not YAML at all)
/// and every problem found; duplicate keys do not stop loading, so they are all
/// reported together with later errors.
pub fn load(src: &str) -> (Option<Node>, Vec<LoadError>) {
    let mut errors = Vec::new();
    let mut stack: Vec<Frame> = Vec::new();
    let mut anchors: HashMap<usize, Node> = HashMap::new();
    let mut root: Option<Node> = None;
    let mut nodes = 0usize;
    let mut documents = 0usize;

    for item in Parser::new_from_str(src) {
        let (event, pspan) = match item {
            Ok(ev) => ev,
            Err(e) => {
                let m = e.marker();
                errors.push(LoadError {
                    at: Location {
                        line: m.line(),
                        column: m.col() + 1,
                    },
                    width: 1,
                    message: format!("invalid YAML: {}", e.info()),
                    help: syntax_help(src, m.line()),
                });
                return (None, errors);
            }
        };
        let span = span_of(&pspan, src);
        let done: Node = match event {
            Event::StreamStart | Event::StreamEnd | Event::DocumentEnd | Event::Nothing => continue,
            Event::DocumentStart(_) => {
                documents += 1;
                if documents > 1 {
                    errors.push(LoadError {
                        at: span.start,
                        width: 3,
                        message: "a second YAML document in one file".into(),
                        help: Some("drover reads one document per file; remove the `---` separator or split the file".into()),
                    });
                    return (root, errors);
                }
                continue;
            }
            Event::SequenceStart(anchor, tag) | Event::MappingStart(anchor, tag) if tag.is_some() => {
                let _ = anchor;
                errors.push(tag_error(span));
                return (None, errors);
            }
            Event::SequenceStart(anchor, _) => {
                if stack.len() >= MAX_DEPTH {
                    errors.push(too_deep(span));
                    return (None, errors);
                }
                stack.push(Frame::Seq {
                    span,
                    anchor,
                    items: Vec::new(),
                });
                continue;
            }
            Event::MappingStart(anchor, _) => {
                if stack.len() >= MAX_DEPTH {
                    errors.push(too_deep(span));
                    return (None, errors);
                }
                stack.push(Frame::Map {
                    span,
                    anchor,
                    entries: Vec::new(),
                    key: None,
                    seen: HashMap::new(),
                });
                continue;
            }
            Event::SequenceEnd | Event::MappingEnd => match stack.pop() {
                Some(Frame::Seq { span, anchor, items }) => {
                    let n = Node {
                        value: Value::Seq(items),
                        span,
                    };
                    remember(&mut anchors, anchor, &n);
                    n
                }
                Some(Frame::Map {
                    span,
                    anchor,
                    entries,
                    ..
                }) => {
                    let n = Node {
                        value: Value::Map(entries),
                        span,
                    };
                    remember(&mut anchors, anchor, &n);
                    n
                }
                None => continue,
            },
            Event::Scalar(text, style, anchor, tag) => {
                let value = match (&tag, style) {
                    (Some(t), _) if t.handle == "tag:yaml.org,2002:" && t.suffix == "str" => {
                        Value::Str(text.to_string())
                    }
                    (Some(_), _) => {
                        errors.push(tag_error(span));
                        return (None, errors);
                    }
                    (None, ScalarStyle::Plain) => resolve_plain(&text),
                    (None, _) => Value::Str(text.to_string()),
                };
                let n = Node { value, span };
                remember(&mut anchors, anchor, &n);
                n
            }
            Event::Alias(id) => match anchors.get(&id) {
                Some(n) => {
                    nodes += count(n);
                    if nodes > MAX_NODES {
                        errors.push(LoadError {
                            at: span.start,
                            width: span.width,
                            message: format!("aliases expand to more than {MAX_NODES} values"),
                            help: Some("this looks like an alias bomb; write the values out".into()),
                        });
                        return (None, errors);
                    }
                    let mut n = n.clone();
                    n.span = span;
                    n
                }
                None => {
                    errors.push(LoadError {
                        at: span.start,
                        width: span.width,
                        message: "alias to an unknown anchor".into(),
                        help: None,
                    });
                    return (None, errors);
                }
            },
        };
        nodes += 1;
        if nodes > MAX_NODES {
            errors.push(LoadError {
                at: done.span.start,
                width: 1,
                message: format!("more than {MAX_NODES} values in one file"),
                help: None,
            });
            return (None, errors);
        }
        match stack.last_mut() {
            None => root = Some(done),
            Some(Frame::Seq { items, .. }) => items.push(done),
            Some(Frame::Map {
                entries, key, seen, ..
            }) => match key.take() {
                None => {
                    let text = match &done.value {
                        Value::Str(s) => s.clone(),
                        Value::Int(i) => i.to_string(),
                        Value::Bool(b) => b.to_string(),
                        Value::Float(f) => f.to_string(),
                        Value::Null => String::new(),
                        Value::Seq(_) | Value::Map(_) => {
                            errors.push(LoadError {
                                at: done.span.start,
                                width: 1,
                                message: "a mapping key must be a plain word, not a list or mapping".into(),
                                help: None,
                            });
                            return (None, errors);
                        }
                    };
                    *key = Some((text, done.span));
                }
                Some((k, key_span)) => {
                    if let Some(first) = seen.get(&k) {
                        errors.push(LoadError {
                            at: key_span.start,
                            width: key_span.width,
                            message: format!("duplicate key `{k}`"),
                            help: Some(format!(
                                "`{k}` is already set at line {}; a key may appear once per mapping",
                                first.line
                            )),
                        });
                    } else {
                        seen.insert(k.clone(), key_span.start);
                        entries.push(Entry {
                            key: k,
                            key_span,
                            value: done,
                        });
                    }
                }
            },
        }
    }
    let root = root.or(Some(Node {
        value: Value::Null,
        span: Span {
            start: Location { line: 1, column: 1 },
            width: 1,
        },
    }));
    (root, errors)
}

fn remember(anchors: &mut HashMap<usize, Node>, anchor: usize, n: &Node) {
    if anchor > 0 {
        anchors.insert(anchor, n.clone());
    }
}

fn count(n: &Node) -> usize {
    1 + match &n.value {
        Value::Seq(items) => items.iter().map(count).sum(),
        Value::Map(entries) => entries.iter().map(|e| 1 + count(&e.value)).sum(),
        _ => 0,
    }
}

fn span_of(s: &PSpan, src: &str) -> Span {
    let start = Location {
        line: s.start.line(),
        column: s.start.col() + 1,
    };
    let width = if s.end.line() == s.start.line() && s.end.index() > s.start.index() {
        s.end.index() - s.start.index()
    } else {
        // Multi-line values underline to the end of their first line.
        src.lines()
            .nth(start.line.saturating_sub(1))
            .map_or(1, |l| l.chars().count().saturating_sub(s.start.col()).max(1))
    };
    Span { start, width }
}

fn tag_error(span: Span) -> LoadError {
    LoadError {
        at: span.start,
        width: span.width,
        message: "YAML tags are not supported here".into(),
        help: Some("remove the `!tag`; drover files are plain YAML".into()),
    }
}

fn too_deep(span: Span) -> LoadError {
    LoadError {
        at: span.start,
        width: 1,
        message: format!("nesting deeper than {MAX_DEPTH} levels"),
        help: None,
    }
}

/// Explains the syntax errors people actually make.
fn syntax_help(src: &str, line: usize) -> Option<String> {
    let text = src.lines().nth(line.saturating_sub(1))?;
    let prev = line.checked_sub(2).and_then(|i| src.lines().nth(i)).unwrap_or("");
    if text.starts_with([' ', '\t']) && text.trim_start_matches(' ').starts_with('\t')
        || prev.trim_start_matches(' ').starts_with('\t')
    {
        return Some("YAML does not allow tabs for indentation; indent with spaces".into());
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(src: &str) -> Node {
        let (n, errs) = load(src);
        assert!(errs.is_empty(), "{errs:?}");
        n.expect("a node")
    }

    #[test]
    fn positions_are_one_based() {
        let n = ok("a: 1\nbb:\n  - x\n  - 'y'\n");
        let Value::Map(e) = &n.value else { panic!() };
        assert_eq!(e[1].key, "bb");
        assert_eq!(e[1].key_span.start, Location { line: 2, column: 1 });
        let Value::Seq(items) = &e[1].value.value else {
            panic!()
        };
        assert_eq!(items[1].span.start, Location { line: 4, column: 5 });
        assert_eq!(items[1].value, Value::Str("y".into()));
    }

    #[test]
    fn duplicates_are_all_reported_and_loading_goes_on() {
        let (n, errs) = load("a: 1\nb: 2\na: 3\nb: 4\n");
        assert!(n.is_some());
        assert_eq!(errs.len(), 2);
        assert_eq!(errs[0].message, "duplicate key `a`");
        assert_eq!(errs[1].at, Location { line: 4, column: 1 });
    }

    #[test]
    fn aliases_expand_and_bombs_are_refused() {
        let n = ok("x: &a [1, 2]\ny: *a\n");
        assert_eq!(n.to_json(), serde_json::json!({"x": [1, 2], "y": [1, 2]}));
        let mut bomb = String::from("a: &a [x, x, x, x, x, x, x, x, x, x]\n");
        let mut prev = 'a';
        for c in 'b'..='k' {
            bomb.push_str(&format!("{c}: &{c} [*{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}]\n"));
            prev = c;
        }
        let (_, errs) = load(&bomb);
        assert!(
            errs[0].message.starts_with("aliases expand to more than"),
            "{errs:?}"
        );
    }
}
