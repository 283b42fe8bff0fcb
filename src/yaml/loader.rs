//! Builds a [`Node`] tree from saphyr's event stream.
//!
//! drover does its own tree building (rather than using a YAML serde deserializer
//! directly) so that every value keeps its position: errors found later, by the
//! validators, are reported at the line and column of the value they concern.

use std::collections::HashMap;

use saphyr_parser::{Event, Parser, ScalarStyle, Span as PSpan};

use super::node::{Entry, Node, Span, Style, Value};
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
        start: Start,
        anchor: usize,
        items: Vec<Node>,
    },
    Map {
        span: Span,
        start: Start,
        anchor: usize,
        entries: Vec<Entry>,
        key: Option<(String, Span)>,
        seen: HashMap<String, Location>,
    },
}

/// Where a collection starts, to underline a flow collection to its closing bracket.
#[derive(Clone, Copy)]
struct Start {
    /// Character offset of the `[` or `{`; None for block collections.
    flow_at: Option<usize>,
    line: usize,
}

impl Start {
    fn of(p: &PSpan) -> Start {
        Start {
            // A flow collection's start event spans its bracket; a block one's is empty.
            flow_at: (p.end.index() > p.start.index()).then(|| p.start.index()),
            line: p.start.line(),
        }
    }

    /// The collection's node, its span widened to the closing bracket when that is on
    /// the same line, so an error about a whole flow list underlines all of it.
    fn close(self, value: Value, mut span: Span, end: &PSpan) -> Node {
        let style = match self.flow_at {
            Some(at) => {
                if end.end.line() == self.line && end.end.index() > at {
                    span.width = end.end.index() - at;
                }
                Style::Flow
            }
            None => Style::Block,
        };
        Node { value, span, style }
    }
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
                let at = Location {
                    line: m.line(),
                    column: m.col() + 1,
                };
                errors.push(syntax_error(src, at, m.index(), e.info()));
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
            Event::SequenceStart(_, Some(_)) | Event::MappingStart(_, Some(_)) => {
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
                    start: Start::of(&pspan),
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
                    start: Start::of(&pspan),
                    anchor,
                    entries: Vec::new(),
                    key: None,
                    seen: HashMap::new(),
                });
                continue;
            }
            Event::SequenceEnd | Event::MappingEnd => match stack.pop() {
                Some(Frame::Seq {
                    span,
                    start,
                    anchor,
                    items,
                }) => {
                    let n = start.close(Value::Seq(items), span, &pspan);
                    remember(&mut anchors, anchor, &n);
                    n
                }
                Some(Frame::Map {
                    span,
                    start,
                    anchor,
                    entries,
                    ..
                }) => {
                    let n = start.close(Value::Map(entries), span, &pspan);
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
                    // Ansible Vault's inline value: handed on as Ansible's own JSON
                    // form, `{ __ansible_vault: TEXT }`, for the workflow to decrypt.
                    (Some(t), _) if t.handle == "!" && t.suffix == "vault" => {
                        Value::Map(vec![super::Entry {
                            key: crate::vault::VAULT_KEY.to_string(),
                            key_span: span,
                            value: Node {
                                value: Value::Str(text.to_string()),
                                span,
                                style: Style::Literal,
                            },
                        }])
                    }
                    (Some(_), _) => {
                        errors.push(tag_error(span));
                        return (None, errors);
                    }
                    (None, ScalarStyle::Plain) => resolve_plain(&text),
                    (None, _) => Value::Str(text.to_string()),
                };
                let style = match style {
                    ScalarStyle::Plain => Style::Plain,
                    ScalarStyle::SingleQuoted | ScalarStyle::DoubleQuoted => Style::Quoted,
                    ScalarStyle::Literal => Style::Literal,
                    ScalarStyle::Folded => Style::Folded,
                };
                let n = Node { value, span, style };
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
                    // The span is the alias's `*name`, not the anchored text.
                    n.style = Style::Plain;
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
        style: Style::Plain,
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
        help: Some(
            "remove the `!tag`; drover files are plain YAML (the one tag read is Ansible Vault's `!vault |`)"
                .into(),
        ),
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

/// A parser error, with the explanations of the syntax errors people actually make.
fn syntax_error(src: &str, at: Location, index: usize, info: &str) -> LoadError {
    let mut e = LoadError {
        at,
        width: 1,
        message: format!("invalid YAML: {info}"),
        help: None,
    };
    // `nodes: [@compute]`: `@` (and `` ` ``) are reserved and cannot start a plain value.
    if let Some(c @ ('@' | '`')) = src.chars().nth(index) {
        let word: String = src
            .chars()
            .skip(index)
            .take_while(|ch| !matches!(ch, ',' | ']' | '}' | '#') && !ch.is_whitespace())
            .collect();
        e.message = format!("invalid YAML: a plain value cannot start with `{c}`");
        e.width = word.chars().count().max(1);
        e.help = Some(format!("quote values that start with {c}: \"{word}\""));
        return e;
    }
    // A tab is often reported on a neighbouring line (the one whose value the parser
    // was still reading), so look a little around the error.
    let lines: Vec<&str> = src.lines().collect();
    let first = at.line.saturating_sub(3).min(lines.len());
    let last = (at.line + 2).min(lines.len());
    let tab_indented = |l: &&str| {
        let indent = l.len() - l.trim_start_matches([' ', '\t']).len();
        indent < l.len() && l[..indent].contains('\t')
    };
    if lines[first..last].iter().any(tab_indented) {
        e.help = Some("YAML does not allow tabs for indentation; indent with spaces".into());
    }
    e
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Ansible Vault's `!vault` is the one tag read: handed on as `{ __ansible_vault: TEXT }`.
    /// Any other tag is refused.
    #[test]
    fn the_vault_tag_is_read_and_others_are_refused() {
        let (root, errors) = load("pw: !vault |\n  $ANSIBLE_VAULT;1.1;AES256\n  6162\n");
        assert!(errors.is_empty(), "{errors:?}");
        assert_eq!(
            root.unwrap().to_json(),
            serde_json::json!({ "pw": { "__ansible_vault": "$ANSIBLE_VAULT;1.1;AES256\n6162\n" } })
        );
        for text in ["pw: !secret x\n", "pw: !!binary aGk=\n", "pw: !vault [a]\n"] {
            let (_, errors) = load(text);
            assert_eq!(errors.len(), 1, "{text}");
            assert!(
                errors[0].message.contains("YAML tags are not supported"),
                "{text}"
            );
        }
    }

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
    fn flow_collections_span_to_their_closing_bracket() {
        let n = ok("a: [x, y]\nb: {k: v}\nc: [\n  x]\nd:\n  - x\nr: |\n  t\n");
        let Value::Map(e) = &n.value else { panic!() };
        let spans: Vec<(usize, Style)> = e.iter().map(|e| (e.value.span.width, e.value.style)).collect();
        assert_eq!(
            spans,
            [
                (6, Style::Flow),
                (6, Style::Flow),
                (1, Style::Flow),
                (3, Style::Block),
                (1, Style::Literal)
            ]
        );
    }

    #[test]
    fn syntax_errors_people_make_get_help() {
        let (_, errs) = load("nodes: [@compute, n1]\n");
        assert_eq!(
            errs[0].message,
            "invalid YAML: a plain value cannot start with `@`"
        );
        assert_eq!(errs[0].width, 8);
        assert_eq!(
            errs[0].help.as_deref(),
            Some("quote values that start with @: \"@compute\"")
        );
        // The tab is on the line after the one the parser complains about.
        let (_, errs) = load("a:\n  b: x\n\tc: y\n");
        assert_eq!(errs[0].at.line, 2, "{errs:?}");
        assert!(
            errs[0].help.as_deref().is_some_and(|h| h.contains("tabs")),
            "{errs:?}"
        );
        // A tab further away (here one YAML accepts, in a block's text) is no explanation.
        let (_, errs) = load("a: |\n  x\n  \ty\nb: 1\nc: 2\nd: 3\ne: \"open\n");
        assert_eq!(errs.len(), 1, "{errs:?}");
        assert!(errs[0].at.line >= 6 && errs[0].help.is_none(), "{errs:?}");
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
