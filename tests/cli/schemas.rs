//! The committed JSON Schemas are what the code generates.

use crate::support::*;

#[test]
fn committed_schemas_match_the_types() {
    for (name, text) in drover::schemas::generate() {
        let path = repo_root().join("schemas").join(name);
        let committed = std::fs::read_to_string(&path).unwrap_or_default();
        assert!(
            committed == text,
            "schemas/{name} is out of date with the Rust types: run `cargo run -- schema --out schemas` and commit the result"
        );
    }
}

#[test]
fn schema_check_command_detects_a_stale_file() {
    let site = Site::new();
    let ok = site.run(&["schema", "--out", "s"]);
    assert_eq!(ok.code, 0, "{}", ok.stderr);
    assert_eq!(site.run(&["schema", "--out", "s", "--check"]).code, 0);
    let site = site.write("s/workflow.schema.json", "{}\n");
    let stale = site.run(&["schema", "--out", "s", "--check"]);
    assert_eq!(stale.code, 4);
    assert_eq!(
        stale.stderr,
        "error: out of date: s/workflow.schema.json\nhelp: run `drover schema --out s`\n"
    );
}

#[test]
fn schemas_describe_every_top_level_key() {
    // What an editor offers must be what drover accepts: spot-check the workflow schema.
    let (_, text) = drover::schemas::generate()
        .into_iter()
        .find(|(n, _)| *n == "workflow.schema.json")
        .expect("workflow schema");
    let v: serde_json::Value = serde_json::from_str(&text).expect("json");
    let props = v["properties"].as_object().expect("properties");
    for key in [
        "name",
        "version",
        "description",
        "tags",
        "targets",
        "canary",
        "strategy",
        "window",
        "drain",
        "vars",
        "steps",
    ] {
        assert!(props.contains_key(key), "missing {key}");
    }
    assert_eq!(v["additionalProperties"], serde_json::Value::Bool(false));
}
