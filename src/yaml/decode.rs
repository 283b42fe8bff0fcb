//! From a [`Node`] tree to a serde `Raw*` type.
//!
//! Unknown keys are found by walking the tree beside the type's JSON Schema, so that
//! every misspelt key in a file is reported at once, each with a suggestion. serde then
//! decodes the values; its first type error is located by the path it failed at and
//! reworded for people who write YAML, not Rust: no type names (`struct RawWorkflow`,
//! `u16`), and allowed values taken from the schema.

use schemars::JsonSchema;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value as J};

use super::node::{Node, Style, Value};
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
    // An empty file or a list at the top level is one clear problem, not serde's.
    if let Some(p) = top_level(root, schema) {
        return Err(vec![p]);
    }
    let mut problems = Vec::new();
    let mut shapes = Vec::new();
    unknown_keys(root, schema, &defs, &Path::root(), &mut problems, &mut shapes);
    if !shapes.is_empty() {
        problems.extend(shapes);
        return Err(problems);
    }

    let mut json = root.to_json();
    for p in &problems {
        remove(&mut json, &p.path);
    }
    // serde stops at its first error. To report every problem of a file in one pass, each
    // bad value is taken out (or, where the key is required, replaced by a placeholder the
    // schema allows) and the file is decoded again, until it decodes or nothing more can be
    // repaired. The repaired value is never used: any such problem fails the file.
    let unknown = problems.len();
    let mut repaired: Vec<Path> = Vec::new();
    for _ in 0..MAX_DECODE_ROUNDS {
        let e = match serde_path_to_error::deserialize::<_, T>(json.clone()) {
            Ok(v) if problems.len() == unknown => return Ok((v, problems)),
            Ok(_) => return Err(problems),
            Err(e) => e,
        };
        let path = convert(e.path());
        let msg = e.inner().to_string();
        // An unknown key serde stumbled on has already been reported by the walk.
        if msg.starts_with("unknown field") && !problems.is_empty() {
            break;
        }
        // A placeholder that serde refuses, or an error inside one, ends the repairs.
        if repaired.iter().any(|r| path.starts_with(r)) {
            break;
        }
        problems.push(type_problem(root, schema, &defs, path.clone(), &msg));
        let fixed = match msg.strip_prefix("missing field ") {
            Some(field) => {
                let at = path.key(field.trim_matches('`').to_string());
                let fixed = schema_at(schema, &defs, &at)
                    .and_then(|s| placeholder(s, &defs, 0))
                    .is_some_and(|v| insert(&mut json, &at, v));
                repaired.push(at);
                fixed
            }
            None => {
                let fixed = match schema_at(schema, &defs, &path).and_then(|s| placeholder(s, &defs, 0)) {
                    Some(v) if is_required(schema, &defs, &path) => insert(&mut json, &path, v),
                    _ => !path.segs().is_empty() && remove(&mut json, &path),
                };
                repaired.push(path);
                fixed
            }
        };
        if !fixed {
            break;
        }
    }
    Err(problems)
}

/// More type errors than this in one file are not worth decoding again for.
const MAX_DECODE_ROUNDS: usize = 100;

/// Whether the last key of `path` is required by its parent's schema (list items are).
fn is_required(schema: &J, defs: &Map<String, J>, path: &Path) -> bool {
    let Some((last, parents)) = path.segs().split_last() else {
        return true;
    };
    let Seg::Key(k) = last else { return true };
    let parent = Path::from(parents.to_vec());
    schema_at(schema, defs, &parent)
        .and_then(|s| pick(s, defs, "object"))
        .and_then(|s| s.get("required"))
        .and_then(J::as_array)
        .is_some_and(|r| r.iter().any(|x| x.as_str() == Some(k)))
}

/// The simplest value a schema allows, to stand in for a bad or missing required value.
fn placeholder(s: &J, defs: &Map<String, J>, depth: usize) -> Option<J> {
    if depth > 16 {
        return None;
    }
    let s = resolve(s, defs);
    if let Some(v) = s.get("const") {
        return Some(v.clone());
    }
    if let Some(v) = s.get("enum").and_then(J::as_array).and_then(|a| a.first()) {
        return Some(v.clone());
    }
    if let Some(alts) = s.get("anyOf").or_else(|| s.get("oneOf")).and_then(J::as_array) {
        return alts
            .iter()
            .filter(|a| resolve(a, defs).get("type").and_then(J::as_str) != Some("null"))
            .find_map(|a| placeholder(a, defs, depth + 1));
    }
    let ty = match s.get("type") {
        Some(J::String(t)) => t.as_str(),
        Some(J::Array(ts)) => ts.iter().filter_map(J::as_str).find(|t| *t != "null")?,
        _ if s.get("properties").is_some() => "object",
        _ => return None,
    };
    Some(match ty {
        "string" if s.get("pattern").is_some() => return None,
        "string" => J::String(String::new()),
        "integer" | "number" => s.get("minimum").cloned().unwrap_or(J::from(1)),
        "boolean" => J::Bool(false),
        "array" => J::Array(Vec::new()),
        "object" => {
            let mut m = Map::new();
            let props = s.get("properties").and_then(J::as_object);
            for k in s.get("required").and_then(J::as_array).into_iter().flatten() {
                let k = k.as_str()?;
                let sub = props.and_then(|p| p.get(k))?;
                m.insert(k.to_string(), placeholder(sub, defs, depth + 1)?);
            }
            J::Object(m)
        }
        _ => return None,
    })
}

/// Sets the value at `path` (its parent must exist); whether it could.
fn insert(json: &mut J, path: &Path, v: J) -> bool {
    let Some((last, parents)) = path.segs().split_last() else {
        return false;
    };
    let Some(cur) = walk(json, parents) else {
        return false;
    };
    match (last, cur) {
        (Seg::Key(k), J::Object(m)) => {
            m.insert(k.clone(), v);
            true
        }
        (Seg::Index(i), J::Array(a)) if *i < a.len() => {
            a[*i] = v;
            true
        }
        _ => false,
    }
}

fn walk<'a>(json: &'a mut J, segs: &[Seg]) -> Option<&'a mut J> {
    let mut cur = json;
    for seg in segs {
        cur = match (seg, cur) {
            (Seg::Key(k), J::Object(m)) => m.get_mut(k)?,
            (Seg::Index(i), J::Array(a)) => a.get_mut(*i)?,
            _ => return None,
        };
    }
    Some(cur)
}

/// Takes the key at `path` out; whether there was one.
fn remove(json: &mut J, path: &Path) -> bool {
    let Some((last, parents)) = path.segs().split_last() else {
        return false;
    };
    match (last, walk(json, parents)) {
        (Seg::Key(k), Some(J::Object(m))) => m.shift_remove(k).is_some(),
        _ => false,
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

/// An empty document, or one that is not a mapping.
fn top_level(root: &Node, schema: &J) -> Option<Problem> {
    match &root.value {
        Value::Map(_) => None,
        Value::Null => {
            let props: Vec<&str> = schema
                .get("properties")
                .and_then(J::as_object)
                .map(|m| m.keys().map(String::as_str).collect())
                .unwrap_or_default();
            let required: Vec<&str> = schema
                .get("required")
                .and_then(J::as_array)
                .map(|r| r.iter().filter_map(J::as_str).collect())
                .unwrap_or_default();
            let keys = if required.is_empty() {
                format!(" with keys such as {}", and_list(&props[..props.len().min(3)]))
            } else {
                format!(" with at least {}", and_list(&required))
            };
            Some(Problem::value(
                Path::root(),
                format!("the file is empty: expected {}{keys}", document_kind(schema)),
            ))
        }
        _ => Some(Problem::value(
            Path::root(),
            format!(
                "expected a mapping (key: value pairs) at the top level, found {}",
                found_node(root)
            ),
        )),
    }
}

/// "a workflow", from the schema's title ("drover workflow").
fn document_kind(schema: &J) -> String {
    let title = schema.get("title").and_then(J::as_str).unwrap_or("drover file");
    let noun = title.strip_prefix("drover ").unwrap_or(title);
    let noun = noun.split(" (").next().unwrap_or(noun);
    let article = if noun.starts_with(['a', 'e', 'i', 'o', 'u']) {
        "an"
    } else {
        "a"
    };
    format!("{article} {noun}")
}

/// `` `a` ``, `` `a` and `b` ``, `` `a`, `b` and `c` ``.
fn and_list(names: &[&str]) -> String {
    joined(names, "and")
}

fn joined(names: &[&str], word: &str) -> String {
    let ticked: Vec<String> = names.iter().map(|n| format!("`{n}`")).collect();
    match ticked.split_last() {
        None => String::new(),
        Some((last, [])) => last.clone(),
        Some((last, rest)) => format!("{} {word} {last}", rest.join(", ")),
    }
}

/// What a value is, for "found ..." (the YAML value, not its Rust type).
fn found_node(n: &Node) -> String {
    match &n.value {
        Value::Null => "no value".into(),
        Value::Bool(b) => format!("`{b}`"),
        Value::Int(i) => format!("`{i}`"),
        Value::Float(f) => format!("`{f}`"),
        Value::Str(s) => format!("the string {s:?}"),
        Value::Seq(_) => "a list".into(),
        Value::Map(_) => "a mapping".into(),
    }
}

/// Turns serde's wording into drover's: what was expected (in YAML terms, with the
/// allowed values from the schema where it has them) and what was found.
fn type_problem(root: &Node, schema: &J, defs: &Map<String, J>, path: Path, msg: &str) -> Problem {
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
    let here = schema_at(schema, defs, &path);
    let expected = |serde: &str| expected(serde, here, defs, &path);
    // serde's messages are "invalid type: FOUND, expected EXPECTED" and the like; the
    // found part may quote the user's string, so split at the last ", expected ".
    let parts = |rest: &str| {
        rest.rsplit_once(", expected ")
            .map(|(f, e)| (f.to_string(), e.to_string()))
    };
    if let Some((found, exp)) = msg.strip_prefix("invalid type: ").and_then(parts) {
        // An unquoted number too large for a YAML integer is loaded as a string.
        if let Some(digits) = found.strip_prefix("string \"").and_then(|f| f.strip_suffix('"'))
            && is_integer_text(digits)
            && root.get(&path).is_some_and(|n| n.style == Style::Plain)
            && let Some(range) = integer_range(&exp, &path)
        {
            return Problem::value(path, format!("`{digits}` is out of range: expected {range}"));
        }
        let p = Problem::value(
            path.clone(),
            format!("expected {}, found {}", expected(&exp), found_text(&found)),
        );
        let yaml11 = ["\"yes\"", "\"no\"", "\"on\"", "\"off\"", "\"y\"", "\"n\""];
        if exp == "a boolean" && yaml11.iter().any(|w| found.to_ascii_lowercase().ends_with(w)) {
            return p.with_help("drover reads YAML 1.2, where `yes`, `no`, `on` and `off` are strings: write `true` or `false`");
        }
        return p;
    }
    if let Some((found, exp)) = msg.strip_prefix("invalid value: ").and_then(parts) {
        let value = found.strip_prefix("integer ").unwrap_or(&found);
        if let Some(range) = integer_range(&exp, &path) {
            return Problem::value(path, format!("{value} is out of range: expected {range}"));
        }
        return Problem::value(
            path.clone(),
            format!("expected {}, found {}", expected(&exp), found_text(&found)),
        );
    }
    if let Some((_, exp)) = msg.strip_prefix("invalid length ").and_then(parts) {
        return Problem::value(path.clone(), format!("expected {}, found a list", expected(&exp)));
    }
    Problem::value(path, without_rust_names(msg))
}

fn is_integer_text(s: &str) -> bool {
    let digits = s.strip_prefix(['-', '+']).unwrap_or(s);
    !digits.is_empty() && digits.chars().all(|c| c.is_ascii_digit())
}

/// For serde's integer types, the range in words: ports are 1 to 65535.
fn integer_range(serde: &str, path: &Path) -> Option<String> {
    let max = match serde {
        "u8" => u64::from(u8::MAX),
        "u16" if path.last_key() == Some("port") => return Some("a port number between 1 and 65535".into()),
        "u16" => u64::from(u16::MAX),
        "u32" => u64::from(u32::MAX),
        "u64" | "usize" => u64::MAX,
        "i64" | "isize" => return Some(format!("an integer between {} and {}", i64::MIN, i64::MAX)),
        "i32" => return Some(format!("an integer between {} and {}", i32::MIN, i32::MAX)),
        _ => return None,
    };
    Some(format!("a whole number between 0 and {max}"))
}

/// What serde expected, in drover's words.
fn expected(serde: &str, here: Option<&J>, defs: &Map<String, J>, path: &Path) -> String {
    if let Some(values) = here.and_then(|s| allowed_values(s, defs)) {
        let values: Vec<&str> = values.iter().map(String::as_str).collect();
        return joined(&values, "or");
    }
    match serde {
        // Signed fields (`version`) check their own range, with their own words.
        "i8" | "i16" | "i32" | "i64" | "isize" => "an integer".into(),
        "f32" | "f64" => "a number".into(),
        "a boolean" => "`true` or `false`".into(),
        "a sequence" => "a list".into(),
        "a map" => "a mapping".into(),
        s if s.starts_with("struct ") => "a mapping (key: value pairs)".into(),
        "string or map" | "variant identifier" | "enum" => "one of the allowed values".into(),
        other => integer_range(other, path).unwrap_or_else(|| without_rust_names(other)),
    }
}

/// What serde found, in drover's words.
fn found_text(serde: &str) -> String {
    match serde {
        "null" | "unit value" => return "no value".into(),
        "sequence" => return "a list".into(),
        "map" => return "a mapping".into(),
        _ => {}
    }
    for prefix in ["boolean ", "integer ", "floating point "] {
        if let Some(v) = serde.strip_prefix(prefix) {
            return v.to_string();
        }
    }
    match serde.strip_prefix("string ") {
        Some(s) => format!("the string {s}"),
        None => serde.to_string(),
    }
}

/// `struct RawWorkflow with 11 elements` and the like, in a message not otherwise
/// reworded, as "a mapping".
fn without_rust_names(msg: &str) -> String {
    let mut out = String::new();
    let mut rest = msg;
    while let Some(i) = rest.find("struct ") {
        out.push_str(&rest[..i]);
        let after = &rest[i + "struct ".len()..];
        let name_len = after
            .find(|c: char| !(c.is_alphanumeric() || c == '_'))
            .unwrap_or(after.len());
        let mut tail = &after[name_len..];
        if let Some(t) = tail.strip_prefix(" with ") {
            let n = t.find(" element").map_or(0, |k| k + " element".len());
            tail = t[n..].strip_prefix('s').unwrap_or(&t[n..]);
        }
        out.push_str("a mapping");
        rest = tail;
    }
    out.push_str(rest);
    out
}

/// The sub-schema at `path`, through `$ref`s, `anyOf`s and `oneOf`s.
fn schema_at<'a>(schema: &'a J, defs: &'a Map<String, J>, path: &Path) -> Option<&'a J> {
    let mut cur = schema;
    for seg in path.segs() {
        cur = child(cur, defs, seg)?;
    }
    Some(cur)
}

fn child<'a>(s: &'a J, defs: &'a Map<String, J>, seg: &Seg) -> Option<&'a J> {
    let s = resolve(s, defs);
    if let Some(alts) = s.get("anyOf").or_else(|| s.get("oneOf")).and_then(J::as_array) {
        return alts.iter().find_map(|a| child(a, defs, seg));
    }
    match seg {
        Seg::Key(k) => s
            .get("properties")
            .and_then(|p| p.get(k))
            .or_else(|| s.get("additionalProperties").filter(|a| a.is_object())),
        Seg::Index(_) => s.get("items"),
    }
}

/// The values an enum-like schema allows (`hot`, `drain`), if that is what it is.
fn allowed_values(s: &J, defs: &Map<String, J>) -> Option<Vec<String>> {
    let s = resolve(s, defs);
    if let Some(values) = s.get("enum").and_then(J::as_array) {
        return values.iter().map(|v| v.as_str().map(str::to_owned)).collect();
    }
    if let Some(c) = s.get("const") {
        return c.as_str().map(|c| vec![c.to_owned()]);
    }
    let alts = s.get("anyOf").or_else(|| s.get("oneOf")).and_then(J::as_array)?;
    let mut out = Vec::new();
    for a in alts {
        if resolve(a, defs).get("type").and_then(J::as_str) == Some("null") {
            continue;
        }
        out.extend(allowed_values(a, defs)?);
    }
    (!out.is_empty()).then_some(out)
}

/// Whether a schema allows values of JSON type `want` (`object`, `array`).
fn accepts(s: &J, defs: &Map<String, J>, want: &str) -> bool {
    let s = resolve(s, defs);
    let Some(obj) = s.as_object() else {
        return s.as_bool().unwrap_or(true);
    };
    if let Some(alts) = obj
        .get("anyOf")
        .or_else(|| obj.get("oneOf"))
        .and_then(J::as_array)
    {
        return alts.iter().any(|a| accepts(a, defs, want));
    }
    match obj.get("type") {
        Some(J::String(t)) => t == want,
        Some(J::Array(ts)) => ts.iter().any(|t| t.as_str() == Some(want)),
        _ if obj.contains_key("properties") => want == "object",
        _ if obj.contains_key("items") => want == "array",
        _ => !(obj.contains_key("const") || obj.contains_key("enum")),
    }
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

/// Of several mapping alternatives (a workflow's `drain:` is hooks or `{ none }`), the one
/// that knows strictly more of the keys written than any other, so the rest are reported
/// as unknown against it. On a tie nothing is chosen (serde then says what is wrong).
fn best_object<'a>(s: &'a J, defs: &'a Map<String, J>, entries: &[super::node::Entry]) -> Option<&'a J> {
    let mut alts = Vec::new();
    object_alternatives(s, defs, &mut alts, 0);
    let known = |a: &J| {
        let props = a.get("properties").and_then(J::as_object);
        entries
            .iter()
            .filter(|e| props.is_some_and(|p| p.contains_key(&e.key)))
            .count()
    };
    let mut scored: Vec<(usize, &J)> = alts.into_iter().map(|a| (known(a), a)).collect();
    scored.sort_by_key(|(n, _)| std::cmp::Reverse(*n));
    match scored.as_slice() {
        [(n, a), rest @ ..] if *n > 0 && rest.iter().all(|(m, _)| m < n) => Some(*a),
        _ => None,
    }
}

/// The mapping schemas among the (nested) `anyOf`/`oneOf` alternatives of `s`.
fn object_alternatives<'a>(s: &'a J, defs: &'a Map<String, J>, out: &mut Vec<&'a J>, depth: usize) {
    let s = resolve(s, defs);
    if depth > 8 {
        return;
    }
    match s.get("anyOf").or_else(|| s.get("oneOf")).and_then(J::as_array) {
        Some(alts) => {
            for a in alts {
                object_alternatives(a, defs, out, depth + 1);
            }
        }
        None if s.get("properties").is_some() => out.push(s),
        None => {}
    }
}

/// Reports unknown keys into `out`, and lists where a mapping was expected into `shapes`
/// (serde would otherwise fill a struct from a list's items by position).
fn unknown_keys(
    node: &Node,
    schema: &J,
    defs: &Map<String, J>,
    path: &Path,
    out: &mut Vec<Problem>,
    shapes: &mut Vec<Problem>,
) {
    match &node.value {
        Value::Map(entries) => {
            let Some(s) = pick(schema, defs, "object").or_else(|| best_object(schema, defs, entries)) else {
                return;
            };
            let props = s.get("properties").and_then(J::as_object);
            let extra = s.get("additionalProperties");
            for e in entries {
                let p = path.key(e.key.clone());
                match (props.and_then(|ps| ps.get(&e.key)), extra) {
                    (Some(sub), _) => unknown_keys(&e.value, sub, defs, &p, out, shapes),
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
                    (None, Some(sub @ J::Object(_))) => unknown_keys(&e.value, sub, defs, &p, out, shapes),
                    (None, _) => {}
                }
            }
        }
        Value::Seq(items) => {
            if accepts(schema, defs, "object") && !accepts(schema, defs, "array") {
                let p = Problem::value(
                    path.clone(),
                    "expected a mapping (key: value pairs), found a list",
                );
                let keys: Vec<&str> = pick(schema, defs, "object")
                    .and_then(|s| s.get("properties"))
                    .and_then(J::as_object)
                    .map(|m| m.keys().map(String::as_str).collect())
                    .unwrap_or_default();
                shapes.push(match keys.as_slice() {
                    [] => p,
                    _ => p.with_help(format!("`{path}` takes the keys {}", and_list(&keys))),
                });
                return;
            }
            let Some(s) = pick(schema, defs, "array") else {
                return;
            };
            if let Some(item) = s.get("items") {
                for (i, n) in items.iter().enumerate() {
                    unknown_keys(n, item, defs, &path.index(i), out, shapes);
                }
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rust_names_and_serde_words_are_reworded() {
        assert_eq!(
            without_rust_names("invalid length 1, expected struct RawWorkflow with 11 elements"),
            "invalid length 1, expected a mapping"
        );
        assert_eq!(
            without_rust_names("expected struct RawSite"),
            "expected a mapping"
        );
        assert_eq!(found_text("sequence"), "a list");
        assert_eq!(found_text("unit value"), "no value");
        assert_eq!(found_text("integer `-5`"), "`-5`");
        assert_eq!(found_text("string \"x\""), "the string \"x\"");
        assert_eq!(
            integer_range("u16", &Path::root().key("port")).as_deref(),
            Some("a port number between 1 and 65535")
        );
        assert_eq!(
            integer_range("u8", &Path::root()).as_deref(),
            Some("a whole number between 0 and 255")
        );
        assert_eq!(and_list(&["a", "b", "c"]), "`a`, `b` and `c`");
        assert_eq!(joined(&["hot", "drain"], "or"), "`hot` or `drain`");
    }
}
