//! Where a command template switches shell quoting off, for review.

use serde::Serialize;

use super::references::{self, RefKind};

/// How a template opts out of shell quoting.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum OptOutKind {
    /// `{{ x | raw }}`: the value is inserted as shell code (the documented way).
    Raw,
    /// `{{ x | safe }}`: minijinja's name for `raw`; refused in commands.
    Safe,
    /// `{% autoescape false %}`: quoting off for a whole region; refused in commands.
    Autoescape,
}

/// One place a template opts out of quoting.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct OptOut {
    pub kind: OptOutKind,
    /// 1-based line within the template.
    pub line: usize,
}

/// Every opt-out in a template, in source order. Meant for templates that parse; on
/// broken syntax it returns what it can find.
pub fn opt_outs(src: &str) -> Vec<OptOut> {
    let mut out: Vec<OptOut> = references::template_references(src)
        .into_iter()
        .filter(|r| r.kind == RefKind::Filter)
        .filter_map(|r| {
            let kind = match r.name.as_str() {
                "raw" => OptOutKind::Raw,
                "safe" => OptOutKind::Safe,
                _ => return None,
            };
            Some(OptOut { kind, line: r.line })
        })
        .collect();
    out.extend(
        references::block_lines(src, "autoescape")
            .into_iter()
            .map(|line| OptOut {
                kind: OptOutKind::Autoescape,
                line,
            }),
    );
    out.sort_by_key(|o| o.line);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_opt_out_is_found_with_its_line() {
        let src = "echo {{ a | raw }}\n{% autoescape false %}{{ b }}{% endautoescape %}\n{{ c|safe }} {{ d | quote }}";
        assert_eq!(
            opt_outs(src),
            [
                OptOut {
                    kind: OptOutKind::Raw,
                    line: 1
                },
                OptOut {
                    kind: OptOutKind::Autoescape,
                    line: 2
                },
                OptOut {
                    kind: OptOutKind::Safe,
                    line: 3
                },
            ]
        );
        assert!(opt_outs("{% raw %}{{ x | raw }}{% endraw %} {# {{ y | safe }} #}").is_empty());
    }
}
