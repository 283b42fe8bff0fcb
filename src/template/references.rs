//! What a template refers to by name (filters, tests, variables), and on which line.
//!
//! minijinja looks filters and tests up only when a render reaches them, so a template
//! with `{{ x | nosuchfilter }}` compiles and fails on the first node. minijinja 3 has no
//! public API listing the names a template uses: its AST is behind the forever-unstable
//! `unstable_machinery` feature (exempt from semver, so a `cargo update` could break the
//! build). Rendering once against a permissive probe context was the other option, but a
//! render only visits the branches it takes and stops at its first runtime error, so a typo
//! in an `{% else %}` branch, or after a filter that rejects the probe value, would still
//! pass validation.
//!
//! So this module reads the tags of a template with the rules of minijinja's lexer for
//! the default syntax (the only one drover uses): `{{ }}`, `{% %}`, `{# #}` comments,
//! `{% raw %}` blocks, `-`/`+` whitespace markers, quoted strings with escapes, and
//! brackets, inside which a `}}` does not end a tag. It is only run on templates that
//! minijinja has already parsed, so it never has to deal with broken syntax. In a tag,
//! a filter is the (possibly dotted) name after `|` or after `{% filter`, and a test
//! the name after `is` or `is not`, exactly where minijinja's parser looks for them.

/// Whether a reference is to a filter or to a test.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RefKind {
    Filter,
    Test,
}

/// A filter or test named in a template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Reference {
    pub kind: RefKind,
    pub name: String,
    /// 1-based line of the name within the template.
    pub line: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Tok<'a> {
    Ident(&'a str),
    Pipe,
    Dot,
    /// `(`, `[` or `{`.
    Open,
    /// `)`, `]` or `}`.
    Close,
    /// A string or a number.
    Literal,
    /// Any other operator; `=` is kept apart to tell keyword arguments from names.
    Assign,
    Other,
}

#[derive(Debug, Clone, Copy)]
struct Token<'a> {
    tok: Tok<'a>,
    /// Byte offset in the source.
    at: usize,
}

/// The tokens of one tag, and whether it is a `{% %}` block (for `{% filter name %}`).
struct Tag<'a> {
    block: bool,
    tokens: Vec<Token<'a>>,
}

/// Filters and tests named in a template, in source order.
pub(crate) fn template_references(src: &str) -> Vec<Reference> {
    let lines = LineIndex::new(src);
    let mut out = Vec::new();
    for tag in tags(src) {
        references_in(&tag, &lines, &mut out);
    }
    out
}

/// Filters and tests named in an expression (a `when:` condition).
pub(crate) fn expression_references(src: &str) -> Vec<Reference> {
    let lines = LineIndex::new(src);
    let mut out = Vec::new();
    let (tokens, _) = lex_tag(src, 0, None);
    references_in(&Tag { block: false, tokens }, &lines, &mut out);
    out
}

/// The lines of every `{% keyword ... %}` block tag (`autoescape`), in source order.
pub(crate) fn block_lines(src: &str, keyword: &str) -> Vec<usize> {
    let lines = LineIndex::new(src);
    tags(src)
        .iter()
        .filter(|t| t.block)
        .filter_map(|t| match t.tokens.first() {
            Some(Token {
                tok: Tok::Ident(w),
                at,
            }) if *w == keyword => Some(lines.line_of(*at)),
            _ => None,
        })
        .collect()
}

/// The line where a template first reads the top-level name `name`, if it can be found.
pub(crate) fn template_name_line(src: &str, name: &str) -> Option<usize> {
    let lines = LineIndex::new(src);
    tags(src)
        .iter()
        .find_map(|t| name_in(&t.tokens, name))
        .map(|at| lines.line_of(at))
}

/// The line where an expression first reads the top-level name `name`.
pub(crate) fn expression_name_line(src: &str, name: &str) -> Option<usize> {
    let (tokens, _) = lex_tag(src, 0, None);
    name_in(&tokens, name).map(|at| LineIndex::new(src).line_of(at))
}

/// A name read as a variable: not an attribute (`x.name`), not a filter or test name,
/// not a keyword argument (`f(name=1)`).
fn name_in(tokens: &[Token<'_>], name: &str) -> Option<usize> {
    tokens.iter().enumerate().find_map(|(i, t)| {
        let before = |n: usize| i.checked_sub(n).map(|j| tokens[j].tok);
        let next = tokens.get(i + 1).map(|t| t.tok);
        let test_name = before(1) == Some(Tok::Ident("is"))
            || (before(1) == Some(Tok::Ident("not")) && before(2) == Some(Tok::Ident("is")));
        let is_name = t.tok == Tok::Ident(name)
            && !matches!(before(1), Some(Tok::Dot | Tok::Pipe))
            && !test_name
            && next != Some(Tok::Assign);
        is_name.then_some(t.at)
    })
}

/// Words after which `is` cannot be the test operator, because no expression ends there.
const NOT_AN_OPERAND: [&str; 8] = ["and", "or", "not", "in", "if", "elif", "else", "is"];

fn references_in(tag: &Tag<'_>, lines: &LineIndex, out: &mut Vec<Reference>) {
    let t = &tag.tokens;
    let mut push = |kind: RefKind, from: usize| {
        if let Some((name, at)) = dotted_name(t, from) {
            out.push(Reference {
                kind,
                name,
                line: lines.line_of(at),
            });
        }
    };
    if tag.block && matches!(t.first().map(|x| x.tok), Some(Tok::Ident("filter"))) {
        push(RefKind::Filter, 1);
    }
    for (i, token) in t.iter().enumerate() {
        match token.tok {
            Tok::Pipe => push(RefKind::Filter, i + 1),
            Tok::Ident("is") => {
                let operand_before = match i.checked_sub(1).map(|j| t[j].tok) {
                    Some(Tok::Ident(w)) => !NOT_AN_OPERAND.contains(&w),
                    Some(Tok::Close | Tok::Literal) => true,
                    _ => false,
                };
                // After a `.` (`x.is`) or at the start (`{{ is }}`), `is` is a name.
                if operand_before {
                    let from = if t.get(i + 1).map(|x| x.tok) == Some(Tok::Ident("not")) {
                        i + 2
                    } else {
                        i + 1
                    };
                    push(RefKind::Test, from);
                }
            }
            _ => {}
        }
    }
}

/// `name` or `a.b.c` starting at token `from`, with the offset of its first part.
fn dotted_name(t: &[Token<'_>], from: usize) -> Option<(String, usize)> {
    let Tok::Ident(first) = t.get(from)?.tok else {
        return None;
    };
    let mut name = first.to_string();
    let mut i = from + 1;
    while let (Some(Tok::Dot), Some(Tok::Ident(part))) =
        (t.get(i).map(|x| x.tok), t.get(i + 1).map(|x| x.tok))
    {
        name.push('.');
        name.push_str(part);
        i += 2;
    }
    Some((name, t[from].at))
}

/// Every `{{ }}` and `{% %}` tag of a template, comments and raw blocks skipped.
fn tags(src: &str) -> Vec<Tag<'_>> {
    let b = src.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while let Some(off) = src[i..].find('{') {
        let start = i + off;
        let kind = b.get(start + 1).copied();
        let mut body = start + 2;
        if matches!(b.get(body), Some(b'-' | b'+')) && kind != Some(b'#') {
            body += 1;
        }
        i = match kind {
            Some(b'#') => match src[start + 2..].find("#}") {
                Some(end) => start + 2 + end + 2,
                None => return out,
            },
            Some(b'%') if basic_tag(&src[start + 2..], "raw").is_some() => {
                match find_endraw(src, start + 2) {
                    Some(after) => after,
                    None => return out,
                }
            }
            Some(b'{') => {
                let (tokens, end) = lex_tag(src, body, Some("}}"));
                out.push(Tag { block: false, tokens });
                end
            }
            Some(b'%') => {
                let (tokens, end) = lex_tag(src, body, Some("%}"));
                out.push(Tag { block: true, tokens });
                end
            }
            _ => start + 1,
        };
    }
    out
}

/// If `rest` (what follows `{%`) is `[-+]? name [-+]? %}`, the length up to after `%}`.
fn basic_tag(rest: &str, name: &str) -> Option<usize> {
    let mut p = rest.strip_prefix(['-', '+']).unwrap_or(rest);
    p = p.trim_start_matches(|c: char| c.is_ascii_whitespace());
    p = p.strip_prefix(name)?;
    p = p.trim_start_matches(|c: char| c.is_ascii_whitespace());
    p = p.strip_prefix(['-', '+']).unwrap_or(p);
    p = p.strip_prefix("%}")?;
    Some(rest.len() - p.len())
}

/// The offset after the `{% endraw %}` that closes a raw block opened before `from`.
fn find_endraw(src: &str, from: usize) -> Option<usize> {
    let mut i = from;
    while let Some(off) = src[i..].find("{%") {
        let at = i + off + 2;
        if let Some(len) = basic_tag(&src[at..], "endraw") {
            return Some(at + len);
        }
        i = at;
    }
    None
}

/// Tokens from `from` up to the closing delimiter (`end`, optionally preceded by `-` or
/// `+`, outside brackets), or to the end of the source for an expression. Returns the
/// tokens and the offset after the tag.
fn lex_tag<'a>(src: &'a str, from: usize, end: Option<&str>) -> (Vec<Token<'a>>, usize) {
    let b = src.as_bytes();
    let mut tokens = Vec::new();
    let mut depth: isize = 0;
    let mut i = from;
    loop {
        while b.get(i).is_some_and(u8::is_ascii_whitespace) {
            i += 1;
        }
        let Some(&c) = b.get(i) else {
            return (tokens, i);
        };
        let rest = &src[i..];
        if let Some(end) = end
            && depth <= 0
        {
            if rest.starts_with(end) {
                return (tokens, i + end.len());
            }
            if matches!(c, b'-' | b'+') && rest[1..].starts_with(end) {
                return (tokens, i + 1 + end.len());
            }
        }
        let at = i;
        let tok = match c {
            b'\'' | b'"' => {
                i += 1;
                let mut escaped = false;
                while let Some(&x) = b.get(i) {
                    i += 1;
                    match (escaped, x) {
                        (true, _) => escaped = false,
                        (false, b'\\') => escaped = true,
                        (false, x) if x == c => break,
                        _ => {}
                    }
                }
                Tok::Literal
            }
            b'0'..=b'9' => {
                while let Some(&x) = b.get(i) {
                    let digit_after_dot = x == b'.' && b.get(i + 1).is_some_and(u8::is_ascii_digit);
                    if x.is_ascii_alphanumeric() || x == b'_' || digit_after_dot {
                        i += 1;
                    } else {
                        break;
                    }
                }
                Tok::Literal
            }
            _ if rest.starts_with(|ch: char| ch == '_' || ch.is_alphabetic()) => {
                let len: usize = rest
                    .chars()
                    .take_while(|ch| *ch == '_' || ch.is_alphanumeric())
                    .map(char::len_utf8)
                    .sum();
                i += len;
                Tok::Ident(&src[at..i])
            }
            _ if ["//", "**", "==", "!=", ">=", "<="]
                .iter()
                .any(|op| rest.starts_with(op)) =>
            {
                i += 2;
                Tok::Other
            }
            b'(' | b'[' | b'{' => {
                depth += 1;
                i += 1;
                Tok::Open
            }
            b')' | b']' | b'}' => {
                depth -= 1;
                i += 1;
                Tok::Close
            }
            b'|' => {
                i += 1;
                Tok::Pipe
            }
            b'.' => {
                i += 1;
                Tok::Dot
            }
            b'=' => {
                i += 1;
                Tok::Assign
            }
            _ => {
                i += rest.chars().next().map_or(1, char::len_utf8);
                Tok::Other
            }
        };
        tokens.push(Token { tok, at });
    }
}

/// Byte offsets to 1-based line numbers.
struct LineIndex {
    starts: Vec<usize>,
}

impl LineIndex {
    fn new(src: &str) -> Self {
        let starts = std::iter::once(0)
            .chain(src.match_indices('\n').map(|(i, _)| i + 1))
            .collect();
        LineIndex { starts }
    }

    fn line_of(&self, offset: usize) -> usize {
        self.starts.partition_point(|s| *s <= offset)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refs(src: &str) -> Vec<(RefKind, String, usize)> {
        template_references(src)
            .into_iter()
            .map(|r| (r.kind, r.name, r.line))
            .collect()
    }

    use RefKind::{Filter, Test};

    #[test]
    fn filters_and_tests_with_lines() {
        assert_eq!(
            refs("a {{ x | upper | replace('|', 'is y') }}\n{% if x is not defined %}{% endif %}"),
            [
                (Filter, "upper".into(), 1),
                (Filter, "replace".into(), 1),
                (Test, "defined".into(), 2)
            ]
        );
        assert_eq!(
            refs("{% filter upper | trim %}x{% endfilter %}{{ a is divisibleby 3 }}"),
            [
                (Filter, "upper".into(), 1),
                (Filter, "trim".into(), 1),
                (Test, "divisibleby".into(), 1)
            ]
        );
        assert_eq!(
            refs("{{- x|a.b -}}{%+ set y = z|c +%}"),
            [(Filter, "a.b".into(), 1), (Filter, "c".into(), 1)]
        );
    }

    #[test]
    fn strings_comments_and_raw_blocks_are_skipped() {
        assert_eq!(refs("{{ \"a | b\" ~ 'it\\'s | c' }}"), []);
        assert_eq!(
            refs("{# {{ x | nope }} #}{% raw %}{{ x | nope }}{% endraw %}{{ y | ok }}"),
            [(Filter, "ok".into(), 1)]
        );
        assert_eq!(refs("text | with pipes is fine {{ x }}"), []);
        // `}}` inside brackets does not end the tag.
        assert_eq!(
            refs("{{ {'a': {'b': 1}} | tojson }}"),
            [(Filter, "tojson".into(), 1)]
        );
    }

    #[test]
    fn is_as_a_name_or_attribute_is_not_a_test() {
        assert_eq!(refs("{{ x.is }}{{ a if is else b }}{% set is = 1 %}"), []);
        assert_eq!(
            refs("{{ (a) is odd }}{{ 'x' is string }}{{ a.b is even }}"),
            [
                (Test, "odd".into(), 1),
                (Test, "string".into(), 1),
                (Test, "even".into(), 1)
            ]
        );
    }

    #[test]
    fn expressions_and_names() {
        let r: Vec<_> = expression_references("node.vars.gpu is defined and vars.x | length > 1")
            .into_iter()
            .map(|r| (r.kind, r.name))
            .collect();
        assert_eq!(r, [(Test, "defined".into()), (Filter, "length".into())]);
        assert_eq!(
            template_name_line("a\n{{ x.nod }}\n{{ f(nod=1) }}\n{{ nod }}", "nod"),
            Some(4)
        );
        assert_eq!(expression_name_line("a and\n nod", "nod"), Some(2));
        assert_eq!(template_name_line("{{ x }}", "nod"), None);
        assert_eq!(
            template_name_line("{% if x is not nod %}{% elif not nod %}{% endif %}", "nod"),
            Some(1)
        );
        assert_eq!(template_name_line("{{ x is nod }}", "nod"), None);
    }
}
