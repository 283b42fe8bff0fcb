//! The names a template will find when it is rendered, known before any node is touched,
//! so `{{ vars.pakage }}` fails `validate` (with "did you mean `package`?") instead of the
//! first canary node.

use std::collections::{BTreeMap, BTreeSet};

use super::template_error::TemplateError;
use super::template_error_kind::TemplateErrorKind;
use crate::diag::did_you_mean;

/// A tree of names: mappings whose keys are known, and leaves (strings, numbers, lists,
/// null) whose attributes are not checked.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Names {
    Leaf,
    Map(BTreeMap<String, Names>),
}

impl Names {
    fn of(v: &serde_json::Value) -> Names {
        match v {
            serde_json::Value::Object(m) => {
                Names::Map(m.iter().map(|(k, v)| (k.clone(), Names::of(v))).collect())
            }
            _ => Names::Leaf,
        }
    }

    /// What both have: a key present in only one goes; a mapping meets a leaf as a leaf
    /// (not checked), so a name is only refused when no render could find it.
    fn meet(self, other: &Names) -> Names {
        match (self, other) {
            (Names::Map(mut a), Names::Map(b)) => {
                a.retain(|k, _| b.contains_key(k));
                Names::Map(
                    a.into_iter()
                        .map(|(k, v)| {
                            let m = v.meet(&b[&k]);
                            (k, m)
                        })
                        .collect(),
                )
            }
            _ => Names::Leaf,
        }
    }
}

/// The names every render of a template will have: the meet of the render contexts of
/// every node it is rendered for (so `node.vars.gpu` counts only if every target has it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scope {
    names: Names,
}

impl Scope {
    /// The scope of one render context (a JSON object).
    pub fn of(context: &serde_json::Value) -> Scope {
        Scope {
            names: Names::of(context),
        }
    }

    /// The scope with top-level names added as leaves (a hook's `run` and `reason`).
    #[must_use]
    pub fn with_leaves(mut self, names: &[&str]) -> Scope {
        if let Names::Map(m) = &mut self.names {
            for n in names {
                m.insert((*n).to_string(), Names::Leaf);
            }
        }
        self
    }

    /// Only what `other` has too.
    #[must_use]
    pub fn meet(self, other: &Scope) -> Scope {
        Scope {
            names: self.names.meet(&other.names),
        }
    }

    /// Checks the dotted names a template reads (`vars.pakage`, from
    /// [`TemplateEngine::referenced_names`](super::TemplateEngine::referenced_names))
    /// against the scope. A name the template guards (`x is defined`, `x | default(..)`)
    /// may be missing. `source` is the template, to find the line.
    pub fn check(&self, names: &BTreeSet<String>, source: &str) -> Result<(), TemplateError> {
        for name in names {
            if guarded(source, name) {
                continue;
            }
            let mut node = &self.names;
            let mut seen: Vec<&str> = Vec::new();
            for part in name.split('.') {
                let Names::Map(m) = node else { break };
                match m.get(part) {
                    Some(child) => {
                        seen.push(part);
                        node = child;
                    }
                    None => return Err(unknown(name, &seen, part, m, source)),
                }
            }
        }
        Ok(())
    }
}

fn unknown(
    name: &str,
    seen: &[&str],
    part: &str,
    m: &BTreeMap<String, Names>,
    source: &str,
) -> TemplateError {
    let mut full = seen.to_vec();
    full.push(part);
    let full = full.join(".");
    let parent = seen.join(".");
    let help = match did_you_mean(part, m.keys().map(String::as_str)) {
        Some(s) => format!("did you mean `{s}`?"),
        None if m.is_empty() && parent == "vars" => {
            "the workflow defines no `vars:`; a value only `--extra-vars` gives needs a default under `vars:` (or `| default(...)`)".to_string()
        }
        None if m.is_empty() => format!("`{parent}` has no keys here"),
        None => format!(
            "`{parent}` has {}",
            m.keys().map(|k| format!("`{k}`")).collect::<Vec<_>>().join(", ")
        ),
    };
    let help = if parent == "node.vars" {
        format!("{help} (only keys that every target node has are known)")
    } else {
        help
    };
    let _ = name;
    TemplateError::found(
        TemplateErrorKind::UnknownAttribute { name: full.clone() },
        format!("`{full}` is not defined"),
        name_line(source, &full),
        Some(help),
    )
}

/// Whether some use of `name` in `source` is followed by `is defined`, `is not defined`,
/// `is undefined` or a `default`/`d` filter: the template expects it may be missing.
fn guarded(source: &str, name: &str) -> bool {
    source.match_indices(name).any(|(at, _)| {
        let rest = &source[at + name.len()..];
        if rest.starts_with(|c: char| c.is_alphanumeric() || c == '_' || c == '.') {
            return false;
        }
        let words: Vec<&str> = rest.split_whitespace().take(3).collect();
        let filter = rest.trim_start().strip_prefix('|').map(str::trim_start);
        matches!(
            words.as_slice(),
            ["is", "defined" | "undefined", ..] | ["is", "not", "defined", ..]
        ) || filter.is_some_and(|f| {
            let word: String = f
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_')
                .collect();
            word == "default" || word == "d"
        })
    })
}

/// The line where `name` first appears, if it does.
fn name_line(source: &str, name: &str) -> Option<usize> {
    source.find(name).map(|at| source[..at].matches('\n').count() + 1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn names(list: &[&str]) -> BTreeSet<String> {
        list.iter().map(|s| (*s).to_string()).collect()
    }

    #[test]
    fn unknown_attributes_get_a_suggestion_and_a_line() {
        let scope = Scope::of(&json!({"vars": {"package": "x"}, "node": {"name": "n1", "vars": {}}}));
        let src = "echo\necho {{ vars.pakage }}";
        let e = scope.check(&names(&["vars.pakage"]), src).unwrap_err();
        assert_eq!(e.message(), "`vars.pakage` is not defined");
        assert_eq!(e.help(), Some("did you mean `package`?"));
        assert_eq!(e.line(), Some(2));
        scope
            .check(&names(&["vars.package", "node.name", "vars.package.x"]), "")
            .unwrap();
        let e = scope
            .check(&names(&["node.vars.gpu"]), "{{ node.vars.gpu }}")
            .unwrap_err();
        assert!(e.help().unwrap().contains("every target node"), "{e:?}");
    }

    #[test]
    fn only_names_every_context_has_count() {
        let a = Scope::of(&json!({"node": {"vars": {"gpu": true, "rack": 1}}}));
        let b = Scope::of(&json!({"node": {"vars": {"rack": 2}}}));
        let both = a.meet(&b);
        both.check(&names(&["node.vars.rack"]), "").unwrap();
        assert!(
            both.check(&names(&["node.vars.gpu"]), "{{ node.vars.gpu }}")
                .is_err()
        );
    }

    #[test]
    fn guarded_names_may_be_missing() {
        let scope = Scope::of(&json!({"vars": {}}));
        for src in [
            "{% if vars.x is defined %}{{ vars.x }}{% endif %}",
            "{{ vars.x | default('a') }}",
            "{{ vars.x|d('a') }}",
            "{% if vars.x is not defined %}{% endif %}",
        ] {
            scope.check(&names(&["vars.x"]), src).unwrap();
        }
        assert!(
            scope
                .check(&names(&["vars.x"]), "{{ vars.xy | default(1) }}{{ vars.x }}")
                .is_err()
        );
    }
}
