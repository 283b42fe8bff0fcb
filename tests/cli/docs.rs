//! Generated documentation stays in step with the code: the key tables of
//! `docs/workflows.md` come from the committed JSON Schemas (whose descriptions are the
//! `Raw*` types' doc comments), and `docs/man/drover.1` from the command line.
//! `DROVER_BLESS=1 cargo test --test cli docs::` rewrites them.

use std::fmt::Write as _;

use serde_json::Value;

use crate::support::*;

const BEGIN: &str = "<!-- BEGIN KEY TABLES: generated from schemas/workflow.schema.json by tests/cli/docs.rs; DROVER_BLESS=1 cargo test --test cli docs:: rewrites them -->\n";
const END: &str = "<!-- END KEY TABLES -->\n";

fn bless() -> bool {
    std::env::var_os("DROVER_BLESS").is_some()
}

fn def_name(r: &str) -> &str {
    r.rsplit('/').next().unwrap_or(r)
}

/// `Raw` dropped: `RawStep` is "step".
fn title(def: &str) -> String {
    def.strip_prefix("Raw").unwrap_or(def).to_string()
}

fn type_of(v: &Value) -> String {
    if let Some(r) = v.get("$ref").and_then(Value::as_str) {
        return format!("[{}](#{})", title(def_name(r)), title(def_name(r)).to_lowercase());
    }
    if let Some(alts) = v
        .get("anyOf")
        .or_else(|| v.get("oneOf"))
        .and_then(Value::as_array)
    {
        let parts: Vec<String> = alts
            .iter()
            .filter(|a| a.get("type").and_then(Value::as_str) != Some("null"))
            .map(type_of)
            .collect();
        return parts.join(" or ");
    }
    if let Some(e) = v.get("enum").and_then(Value::as_array) {
        return e
            .iter()
            .map(|x| format!("`{}`", x.as_str().unwrap_or_default()))
            .collect::<Vec<_>>()
            .join(", ");
    }
    let t = match v.get("type") {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Array(a)) => a
            .iter()
            .filter_map(Value::as_str)
            .filter(|s| *s != "null")
            .collect::<Vec<_>>()
            .join(" or "),
        _ => String::new(),
    };
    match (t.as_str(), v.get("items"), v.get("additionalProperties")) {
        ("array", Some(items), _) => format!("list of {}", type_of(items)),
        ("object", _, Some(ap)) if ap.is_object() => format!("map of {}", type_of(ap)),
        ("", _, _) => "any".into(),
        _ => t,
    }
}

fn one_line(s: &str) -> String {
    s.split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .replace('|', "\\|")
}

fn table(o: &mut String, heading: &str, schema: &Value) {
    let Some(props) = schema.get("properties").and_then(Value::as_object) else {
        return;
    };
    let required: Vec<&str> = schema
        .get("required")
        .and_then(Value::as_array)
        .map(|r| r.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    let _ = writeln!(o, "### {heading}\n");
    if let Some(d) = schema.get("description").and_then(Value::as_str) {
        let _ = writeln!(o, "{}\n", one_line(d));
    }
    let _ = writeln!(o, "| key | type | required | what it is (default) |");
    let _ = writeln!(o, "|---|---|---|---|");
    for (k, v) in props {
        let desc = v.get("description").and_then(Value::as_str).unwrap_or("");
        let req = if required.contains(&k.as_str()) { "yes" } else { "" };
        let _ = writeln!(o, "| `{k}` | {} | {req} | {} |", type_of(v), one_line(desc));
    }
    let _ = writeln!(o);
}

/// The tables: the workflow file's top level, then every object it uses, then the
/// value types (durations, amounts) with their descriptions.
fn key_tables() -> String {
    let text = std::fs::read_to_string(repo_root().join("schemas/workflow.schema.json")).expect("schema");
    let s: Value = serde_json::from_str(&text).expect("json");
    let mut o = String::new();
    table(&mut o, "Workflow (top level)", &s);
    let defs = s.get("$defs").and_then(Value::as_object).expect("defs");
    for (name, d) in defs {
        if d.get("properties").is_some() {
            table(&mut o, &title(name), d);
        }
    }
    let _ = writeln!(o, "### Value types\n");
    let _ = writeln!(o, "| type | what it is |");
    let _ = writeln!(o, "|---|---|");
    for (name, d) in defs {
        if d.get("properties").is_none() {
            let desc = d.get("description").and_then(Value::as_str).unwrap_or("");
            let _ = writeln!(
                o,
                "| <a id=\"{}\"></a>{} | {} |",
                title(name).to_lowercase(),
                title(name),
                one_line(desc)
            );
        }
    }
    o
}

#[test]
fn workflow_reference_key_tables_match_the_schemas() {
    let path = repo_root().join("docs/workflows.md");
    let doc = std::fs::read_to_string(&path).expect("docs/workflows.md");
    let (head, rest) = doc
        .split_once(BEGIN)
        .expect("docs/workflows.md has the BEGIN marker");
    let (_, tail) = rest
        .split_once(END)
        .expect("docs/workflows.md has the END marker");
    let want = format!("{head}{BEGIN}\n{}{END}{tail}", key_tables());
    if bless() {
        std::fs::write(&path, &want).expect("write");
        return;
    }
    assert!(
        doc == want,
        "docs/workflows.md's key tables are out of date: run `DROVER_BLESS=1 cargo test --test cli docs::`"
    );
}

/// Every exit code `src/exit_code.rs` defines is in the README's table and in the
/// codes `--help` and the man page show, so a new code cannot go undocumented.
#[test]
fn every_exit_code_is_documented_in_the_readme_and_the_help() {
    let src = std::fs::read_to_string(repo_root().join("src/exit_code.rs")).expect("exit_code.rs");
    let readme = std::fs::read_to_string(repo_root().join("README.md")).expect("README");
    let codes: Vec<(String, String)> = src
        .lines()
        .filter_map(|l| l.strip_prefix("pub const "))
        .filter_map(|l| l.split_once(": i32 = "))
        .map(|(name, v)| (name.to_string(), v.trim_end_matches(';').to_string()))
        .collect();
    assert!(codes.len() >= 17, "{codes:?}");
    for (name, v) in &codes {
        assert!(
            readme.contains(&format!("\n| {v} | ")),
            "README's exit code table has no row for {v} ({name})"
        );
        assert!(
            drover::exit_code::HELP
                .lines()
                .any(|l| l.trim_start().starts_with(&format!("{v}  "))),
            "exit_code::HELP does not list {v} ({name})"
        );
    }
}
