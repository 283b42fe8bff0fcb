//! From a [`Node`] tree to a serde `Raw*` type.
//!
//! Unknown keys are found by walking the tree beside the type's JSON Schema, so that
//! every misspelt key in a file is reported at once, each with a suggestion. serde then
//! decodes the values; its first type error is located by the path it failed at.

use schemars::JsonSchema;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value as J};

use super::node::{Node, Value};
use super::path::{Path, Seg};
use crate::diag::{Problem, did_you_mean};

/// Decodes, returning the value with the unknown keys (reported, then left out so the
/// rest of the file is still checked), or every problem if the value did not decode.
pub fn decode_node<T: DeserializeOwned + JsonSchema>(root: &Node) -> Result<(T, Vec<Problem>), Vec<Problem>> {
    let schema = schemars::schema_for!(T);
    let schema = schema.as_value();
    let defs = schema
        .get("$defs")
        .and_then(J::as_object)
        .cloned()
        .unwrap_or_default();
    let mut problems = Vec::new();
    unknown_keys(root, schema, &defs, &Path::root(), &mut problems);

    let mut json = root.to_json();
    for p in &problems {
        remove(&mut json, &p.path);
    }
    match serde_path_to_error::deserialize::<_, T>(json) {
        Ok(v) => Ok((v, problems)),
        Err(e) => {
            let path = convert(e.path());
            let msg = e.inner().to_string();
            // An unknown key serde stumbled on has already been reported by the walk.
            if !msg.starts_with("unknown field") || problems.is_empty() {
                problems.push(type_problem(root, path, &msg));
            }
            Err(problems)
        }
    }
}

fn remove(json: &mut J, path: &Path) {
    let Some((last, parents)) = path.segs().split_last() else {
        return;
    };
    let mut cur = json;
    for seg in parents {
        let next = match (seg, cur) {
            (Seg::Key(k), J::Object(m)) => m.get_mut(k),
            (Seg::Index(i), J::Array(a)) => a.get_mut(*i),
            _ => None,
        };
        match next {
            Some(n) => cur = n,
            None => return,
        }
    }
    if let (Seg::Key(k), J::Object(m)) = (last, cur) {
        m.shift_remove(k);
    }
}

fn convert(p: &serde_path_to_error::Path) -> Path {
    use serde_path_to_error::Segment;
    let segs = p
        .iter()
        .filter_map(|s| match s {
            Segment::Seq { index } => Some(Seg::Index(*index)),
            Segment::Map { key } => Some(Seg::Key(key.clone())),
            Segment::Enum { .. } | Segment::Unknown => None,
        })
        .collect::<Vec<_>>();
    Path::from(segs)
}

/// Turns serde's wording into drover's: names the offending value and what was wanted.
fn type_problem(root: &Node, path: Path, msg: &str) -> Problem {
    let msg = msg
        .replace("expected u32", "expected a non-negative integer")
        .replace("expected u64", "expected a non-negative integer")
        .replace("expected usize", "expected a non-negative integer")
        .replace("expected u8", "expected a small non-negative integer")
        .replace("expected i64", "expected an integer")
        .replace("expected a boolean", "expected `true` or `false`")
        .replace("a sequence", "a list")
        .replace("a map", "a mapping");
    if let Some(field) = msg.strip_prefix("missing field ") {
        let field = field.trim_matches('`');
        return Problem::value(path.clone(), format!("missing required key `{field}`"))
            .with_help(format!("add `{field}:` to {}", describe(&path)));
    }
    if let Some(rest) = msg.strip_prefix("unknown field ") {
        // Only reached when the schema walk could not see this key (a type whose schema
        // is hand-written); keep serde's list of expected fields.
        return Problem::key(path, format!("unknown key {rest}"));
    }
    let _ = root;
    Problem::value(path, msg)
}

fn describe(path: &Path) -> String {
    if path.segs().is_empty() {
        "the top level".into()
    } else {
        format!("`{path}`")
    }
}

fn resolve<'a>(mut s: &'a J, defs: &'a Map<String, J>) -> &'a J {
    for _ in 0..16 {
        match s.get("$ref").and_then(J::as_str) {
            Some(r) => match r.strip_prefix("#/$defs/").and_then(|n| defs.get(n)) {
                Some(d) => s = d,
                None => return s,
            },
            None => return s,
        }
    }
    s
}

/// The one sub-schema of an `anyOf`/`oneOf` that describes objects (or arrays), if
/// exactly one does: that is how `Option<Struct>` and `Vec<..> | null` are written.
fn pick<'a>(s: &'a J, defs: &'a Map<String, J>, want: &str) -> Option<&'a J> {
    let s = resolve(s, defs);
    let alts = s.get("anyOf").or_else(|| s.get("oneOf")).and_then(J::as_array);
    let Some(alts) = alts else {
        return Some(s);
    };
    let mut found = alts.iter().map(|a| resolve(a, defs)).filter(|a| {
        let t = a.get("type");
        t.and_then(J::as_str) == Some(want)
            || t.and_then(J::as_array)
                .is_some_and(|ts| ts.iter().any(|x| x.as_str() == Some(want)))
            || (want == "object" && a.get("properties").is_some())
    });
    let first = found.next()?;
    if found.next().is_some() {
        return None;
    }
    Some(first)
}

fn unknown_keys(node: &Node, schema: &J, defs: &Map<String, J>, path: &Path, out: &mut Vec<Problem>) {
    match &node.value {
        Value::Map(entries) => {
            let Some(s) = pick(schema, defs, "object") else {
                return;
            };
            let props = s.get("properties").and_then(J::as_object);
            let extra = s.get("additionalProperties");
            for e in entries {
                let p = path.key(e.key.clone());
                match (props.and_then(|ps| ps.get(&e.key)), extra) {
                    (Some(sub), _) => unknown_keys(&e.value, sub, defs, &p, out),
                    (None, Some(J::Bool(false))) => {
                        let names: Vec<&str> = props
                            .map(|ps| ps.keys().map(String::as_str).collect())
                            .unwrap_or_default();
                        let help = match did_you_mean(&e.key, names.iter().copied()) {
                            Some(m) => format!("did you mean `{m}`?"),
                            None => format!(
                                "expected one of {}",
                                names
                                    .iter()
                                    .map(|n| format!("`{n}`"))
                                    .collect::<Vec<_>>()
                                    .join(", ")
                            ),
                        };
                        let where_ = match path.segs() {
                            [] => String::new(),
                            _ => format!(" in `{path}`"),
                        };
                        out.push(Problem::key(p, format!("unknown key `{}`{where_}", e.key)).with_help(help));
                    }
                    (None, Some(sub @ J::Object(_))) => unknown_keys(&e.value, sub, defs, &p, out),
                    (None, _) => {}
                }
            }
        }
        Value::Seq(items) => {
            let Some(s) = pick(schema, defs, "array") else {
                return;
            };
            if let Some(item) = s.get("items") {
                for (i, n) in items.iter().enumerate() {
                    unknown_keys(n, item, defs, &path.index(i), out);
                }
            }
        }
        _ => {}
    }
}
