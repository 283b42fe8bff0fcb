//! `drover validate` on broken sites: every test freezes the exact text a user sees on
//! stderr, so a change in a message, a line, a column or a caret is a visible diff.
//!
//! Where the current output is known to be poor, the test says so in a `NOTE` comment;
//! it still freezes what drover prints today, so that improving it is a deliberate change.

use crate::support::*;

/// A site whose only workflow is `body`.
fn workflow(body: &str) -> Site {
    Site::new().write("workflows/update.yml", body)
}

/// A site whose inventory is `body`.
fn inventory(body: &str) -> Site {
    Site::new().write("inventory.yml", body)
}

// ---------------------------------------------------------------------------------------
// Unknown keys
// ---------------------------------------------------------------------------------------

#[test]
fn unknown_top_level_key_suggests_the_close_one() {
    let site = workflow(
        r#"name: update
version: 1
targets:
  nodes: ["@compute"]
stratgy:
  batch: 2
window: day
steps:
  - name: upgrade
    run: apt-get -y upgrade
    change: hot
"#,
    );
    assert_eq!(
        site.invalid(),
        r#"error: unknown key `stratgy`
 --> workflows/update.yml:5:1
  |
5 | stratgy:
  | ^^^^^^^
  |
  = help: did you mean `strategy`?

error: 1 problem in 1 file
"#
    );
}

#[test]
fn every_unknown_key_in_a_file_is_reported_nested_ones_too() {
    let site = workflow(
        r#"name: update
version: 1
targets:
  nodes: ["@compute"]
  exlude: [n01]
window: day
strategy:
  batch: 2
  retries: {count: 1, dealy: 5s}
steps:
  - name: upgrade
    run: apt-get -y upgrade
    chek: "true"
    change: hot
  - name: two
    run: "true"
    change: hot
    timout: 5m
descripton: x
"#,
    );
    assert_eq!(
        site.invalid(),
        r#"error: unknown key `exlude` in `targets`
 --> workflows/update.yml:5:3
  |
5 |   exlude: [n01]
  |   ^^^^^^
  |
  = help: did you mean `exclude`?

error: unknown key `dealy` in `strategy.retries`
 --> workflows/update.yml:9:23
  |
9 |   retries: {count: 1, dealy: 5s}
  |                       ^^^^^
  |
  = help: did you mean `delay`?

error: unknown key `chek` in `steps[0]`
  --> workflows/update.yml:13:5
   |
13 |     chek: "true"
   |     ^^^^
   |
   = help: did you mean `check`?

error: unknown key `timout` in `steps[1]`
  --> workflows/update.yml:18:5
   |
18 |     timout: 5m
   |     ^^^^^^
   |
   = help: did you mean `timeout`?

error: unknown key `descripton`
  --> workflows/update.yml:19:1
   |
19 | descripton: x
   | ^^^^^^^^^^
   |
   = help: did you mean `description`?

error: 5 problems in 1 file
"#
    );
}

#[test]
fn unknown_keys_under_optional_sections_are_found() {
    // `canary`, `drain` and the step actions are `Option<Struct>` in the schema: the walk
    // must still look inside them, block and flow style alike.
    let site = workflow(
        r#"name: update
version: 1
targets:
  nodes: ["@compute"]
canary:
  sise: 1
window: day
drain:
  drain: a
  drained: b
  resume: c
  run_onn: node
steps:
  - name: upgrade
    reboot:
      timeot: 5m
    change: drain
  - name: w
    wait_for: {command: x, intervl: 1s}
    change: hot
"#,
    );
    assert_eq!(
        site.invalid(),
        r#"error: unknown key `sise` in `canary`
 --> workflows/update.yml:6:3
  |
6 |   sise: 1
  |   ^^^^
  |
  = help: did you mean `size`?

error: unknown key `run_onn` in `drain`
  --> workflows/update.yml:12:3
   |
12 |   run_onn: node
   |   ^^^^^^^
   |
   = help: did you mean `run_on`?

error: unknown key `timeot` in `steps[0].reboot`
  --> workflows/update.yml:16:7
   |
16 |       timeot: 5m
   |       ^^^^^^
   |
   = help: did you mean `timeout`?

error: unknown key `intervl` in `steps[1].wait_for`
  --> workflows/update.yml:19:28
   |
19 |     wait_for: {command: x, intervl: 1s}
   |                            ^^^^^^^
   |
   = help: did you mean `interval`?

error: 4 problems in 1 file
"#
    );
}

#[test]
fn unknown_key_without_a_close_match_lists_the_expected_keys() {
    let site = workflow(
        r#"name: update
version: 1
targets:
  nodes: ["@compute"]
window: day
owner: alice
steps:
  - name: upgrade
    run: apt-get -y upgrade
    change: hot
    banana: 1
"#,
    );
    assert_eq!(
        site.invalid(),
        r#"error: unknown key `owner`
 --> workflows/update.yml:6:1
  |
6 | owner: alice
  | ^^^^^
  |
  = help: expected one of `name`, `version`, `description`, `tags`, `targets`, `canary`, `strategy`, `window`, `drain`, `vars`, `vars_files`, `env`, `converge`, `unreachable`, `steps`

error: unknown key `banana` in `steps[0]`
  --> workflows/update.yml:11:5
   |
11 |     banana: 1
   |     ^^^^^^
   |
   = help: expected one of `name`, `run`, `copy`, `template`, `reboot`, `wait_for`, `local`, `ansible`, `change`, `check`, `when`, `timeout`, `retries`

error: 2 problems in 1 file
"#
    );
}

#[test]
fn unknown_keys_in_drover_yml_are_all_reported() {
    let site = Site::new().write(
        "drover.yml",
        r#"inventory: inventory.yml
windows:
  day:
    timezone: Europe/Berlin
    days: [mon-fri]
    start: "08:00"
    end: "17:00"
    cutof: 1h
ssh: {forks: 3, connect_timout: 1s}
server:
  listen: 127.0.0.1:80
  token: {env: X}
  tokn: {env: Y}
"#,
    );
    assert_eq!(
        site.invalid(),
        r#"error: unknown key `cutof` in `windows.day`
 --> drover.yml:8:5
  |
8 |     cutof: 1h
  |     ^^^^^
  |
  = help: did you mean `cutoff`?

error: unknown key `connect_timout` in `ssh`
 --> drover.yml:9:17
  |
9 | ssh: {forks: 3, connect_timout: 1s}
  |                 ^^^^^^^^^^^^^^
  |
  = help: did you mean `connect_timeout`?

error: unknown key `tokn` in `server`
  --> drover.yml:13:3
   |
13 |   tokn: {env: Y}
   |   ^^^^
   |
   = help: did you mean `token`?

error: 3 problems in 1 file
"#
    );
}

// ---------------------------------------------------------------------------------------
// Wrong types and values
// ---------------------------------------------------------------------------------------

fn with_version(v: &str) -> Site {
    workflow(&WORKFLOW.replace("version: 1", &format!("version: {v}")))
}

#[test]
fn version_written_as_a_string_is_a_type_error() {
    assert_eq!(
        with_version(r#""three""#).invalid(),
        r#"error: expected an integer, found the string "three"
 --> workflows/update.yml:2:10
  |
2 | version: "three"
  |          ^^^^^^^

error: 1 problem in 1 file
"#
    );
}

#[test]
fn version_written_as_a_float_is_a_type_error() {
    assert_eq!(
        with_version("1.5").invalid(),
        r#"error: expected an integer, found `1.5`
 --> workflows/update.yml:2:10
  |
2 | version: 1.5
  |          ^^^

error: 1 problem in 1 file
"#
    );
}

#[test]
fn yes_is_a_string_in_yaml_1_2_not_a_boolean() {
    let site = workflow(
        r#"name: update
version: 1
targets:
  nodes: ["@compute"]
strategy:
  all_at_once: yes
window: day
steps:
  - name: upgrade
    run: apt-get -y upgrade
    change: hot
"#,
    );
    assert_eq!(
        site.invalid(),
        r#"error: expected `true` or `false`, found the string "yes"
 --> workflows/update.yml:6:16
  |
6 |   all_at_once: yes
  |                ^^^
  |
  = help: drover reads YAML 1.2, where `yes`, `no`, `on` and `off` are strings: write `true` or `false`

error: 1 problem in 1 file
"#
    );
}

#[test]
fn version_zero_and_negative_are_refused() {
    assert_eq!(
        with_version("0").invalid(),
        r#"error: workflow version must be a positive integer, found `0`
 --> workflows/update.yml:2:10
  |
2 | version: 0
  |          ^
  |
  = help: start at 1 and raise it with every change to the steps

error: 1 problem in 1 file
"#
    );
    assert_eq!(
        with_version("-2").invalid(),
        r#"error: workflow version must be a positive integer, found `-2`
 --> workflows/update.yml:2:10
  |
2 | version: -2
  |          ^^
  |
  = help: start at 1 and raise it with every change to the steps

error: 1 problem in 1 file
"#
    );
}

#[test]
fn a_type_error_and_unknown_keys_in_one_file_are_reported_together() {
    let site = workflow(
        r#"name: update
version: "three"
targets:
  nodes: ["@compute"]
stratgy: {}
window: day
window: night
steps:
  - name: upgrade
    run: apt-get -y upgrade
    change: hot
"#,
    );
    assert_eq!(
        site.invalid(),
        r#"error: expected an integer, found the string "three"
 --> workflows/update.yml:2:10
  |
2 | version: "three"
  |          ^^^^^^^

error: unknown key `stratgy`
 --> workflows/update.yml:5:1
  |
5 | stratgy: {}
  | ^^^^^^^
  |
  = help: did you mean `strategy`?

error: duplicate key `window`
 --> workflows/update.yml:7:1
  |
7 | window: night
  | ^^^^^^
  |
  = help: `window` is already set at line 6; a key may appear once per mapping

error: 3 problems in 1 file
"#
    );
}

#[test]
fn missing_required_key_points_at_the_mapping_it_belongs_to() {
    let site = workflow(
        r#"name: update
version: 1
targets: {}
steps:
  - name: upgrade
    run: apt-get -y upgrade
    change: hot
"#,
    );
    assert_eq!(
        site.invalid(),
        r#"error: missing required key `nodes`
 --> workflows/update.yml:3:10
  |
3 | targets: {}
  |          ^^
  |
  = help: add `nodes:` to `targets`

error: 1 problem in 1 file
"#
    );
}

#[test]
fn ssh_port_out_of_range() {
    let site = inventory(&INVENTORY.replace("  mgmt01: {}", "  mgmt01: {port: 70000}"));
    assert_eq!(
        site.invalid(),
        r#"error: `70000` is out of range: expected a port number between 1 and 65535
 --> inventory.yml:4:18
  |
4 |   mgmt01: {port: 70000}
  |                  ^^^^^

error: 1 problem in 1 file
"#
    );
}

// ---------------------------------------------------------------------------------------
// YAML syntax
// ---------------------------------------------------------------------------------------

#[test]
fn duplicate_keys_are_all_reported() {
    let site = workflow(
        r#"name: update
version: 1
name: update2
targets:
  nodes: ["@compute"]
window: day
steps:
  - name: upgrade
    run: apt-get -y upgrade
    change: hot
    run: echo
name: update3
"#,
    );
    assert_eq!(
        site.invalid(),
        r#"error: duplicate key `name`
 --> workflows/update.yml:3:1
  |
3 | name: update2
  | ^^^^
  |
  = help: `name` is already set at line 1; a key may appear once per mapping

error: duplicate key `run`
  --> workflows/update.yml:11:5
   |
11 |     run: echo
   |     ^^^
   |
   = help: `run` is already set at line 9; a key may appear once per mapping

error: duplicate key `name`
  --> workflows/update.yml:12:1
   |
12 | name: update3
   | ^^^^
   |
   = help: `name` is already set at line 1; a key may appear once per mapping

error: 3 problems in 1 file
"#
    );
}

#[test]
fn file_truncated_inside_a_flow_sequence() {
    // The parser reports the line after the last one (5:1 of a 4-line file); the error is
    // moved back to the end of the last line, so the snippet shows.
    let site = workflow("name: update\nversion: 1\ntargets:\n  nodes: [\"@compute\",");
    assert_eq!(
        site.invalid(),
        r#"error: invalid YAML: while parsing a node, did not find expected node content
 --> workflows/update.yml:4:22
  |
4 |   nodes: ["@compute",
  |                      ^

error: 1 problem in 1 file
"#
    );
}

#[test]
fn file_truncated_inside_a_quoted_string() {
    let site = workflow("name: \"upd\n");
    assert_eq!(
        site.invalid(),
        r#"error: invalid YAML: while scanning a quoted scalar, found unexpected end of stream
 --> workflows/update.yml:1:7
  |
1 | name: "upd
  |       ^

error: 1 problem in 1 file
"#
    );
}

#[test]
fn tab_indentation_gets_the_tab_help() {
    // The tab is shown as a space in the snippet. NOTE: the caret is at column 2 (the
    // first character after the tab), not under the tab itself.
    let site = workflow(
        "name: update\nversion: 1\ntargets:\n\tnodes: [\"@compute\"]\nwindow: day\nsteps:\n  - name: upgrade\n    run: apt-get -y upgrade\n    change: hot\n",
    );
    assert_eq!(
        site.invalid(),
        r#"error: invalid YAML: tabs disallowed within this context (block indentation)
 --> workflows/update.yml:4:2
  |
4 |  nodes: ["@compute"]
  |  ^
  |
  = help: YAML does not allow tabs for indentation; indent with spaces

error: 1 problem in 1 file
"#
    );
}

#[test]
fn tab_on_a_continuation_line_gets_the_tab_help() {
    // The parser reports the line before the tab (it was still reading `run:`'s value);
    // the help looks at the lines around the error.
    let site = one_step("  - name: upgrade\n    run: apt-get -y upgrade\n\tchange: hot\n");
    assert_eq!(
        site.invalid(),
        r#"error: invalid YAML: while scanning a plain scalar, found a tab
 --> workflows/update.yml:8:10
  |
8 |     run: apt-get -y upgrade
  |          ^
  |
  = help: YAML does not allow tabs for indentation; indent with spaces

error: 1 problem in 1 file
"#
    );
}

#[test]
fn unquoted_at_group_is_a_yaml_error() {
    // `@` cannot start a plain YAML scalar: the most common drover typo gets a hint.
    let site = workflow(&WORKFLOW.replace(r#"["@compute"]"#, "[@compute]"));
    assert_eq!(
        site.invalid(),
        r#"error: invalid YAML: a plain value cannot start with `@`
 --> workflows/update.yml:4:11
  |
4 |   nodes: [@compute]
  |           ^^^^^^^^
  |
  = help: quote values that start with @: "@compute"

error: 1 problem in 1 file
"#
    );
}

#[test]
fn empty_workflow_file() {
    let site = workflow("");
    assert_eq!(
        site.invalid(),
        r#"error: the file is empty: expected a workflow with at least `name`, `version`, `targets` and `steps`
 --> workflows/update.yml

error: 1 problem in 1 file
"#
    );
}

#[test]
fn empty_documents_and_files_of_each_kind() {
    // A file with only `---` is pointed at after its last character, not past its end.
    assert_eq!(
        workflow("---\n").invalid(),
        r#"error: the file is empty: expected a workflow with at least `name`, `version`, `targets` and `steps`
 --> workflows/update.yml:1:4
  |
1 | ---
  |    ^

error: 1 problem in 1 file
"#
    );
    // The required keys come from each format's schema.
    assert_eq!(
        inventory("# no nodes yet\n").invalid(),
        r#"error: the file is empty: expected an inventory with at least `nodes`
 --> inventory.yml:1:1
  |
1 | # no nodes yet
  | ^

error: 1 problem in 1 file
"#
    );
    assert_eq!(
        Site::new().write("drover.yml", "").invalid(),
        r#"error: the file is empty: expected a site config with keys such as `inventory`, `workflows` and `state_dir`
 --> drover.yml

error: 1 problem in 1 file
"#
    );
}

#[test]
fn type_errors_say_what_was_expected_in_yaml_terms() {
    assert_eq!(
        workflow(&WORKFLOW.replace("change: hot", "change: true")).invalid(),
        r#"error: expected `hot` or `drain`, found `true`
 --> workflows/update.yml:9:13
  |
9 |     change: true
  |             ^^^^

error: 1 problem in 1 file
"#
    );
    // A list where a mapping belongs is not decoded item by item into its keys.
    assert_eq!(
        workflow(&WORKFLOW.replace("targets:\n  nodes: [\"@compute\"]", "targets: [\"@compute\"]")).invalid(),
        r#"error: expected a mapping (key: value pairs), found a list
 --> workflows/update.yml:3:10
  |
3 | targets: ["@compute"]
  |          ^^^^^^^^^^^^
  |
  = help: `targets` takes the keys `nodes` and `exclude`

error: 1 problem in 1 file
"#
    );
    assert_eq!(
        workflow(&WORKFLOW.replace("name: upgrade", "name:")).invalid(),
        r#"error: expected a string, found no value
 --> workflows/update.yml:7:9
  |
7 |   - name:
  |         ^

error: 1 problem in 1 file
"#
    );
    assert_eq!(
        workflow("\"update\"\n").invalid(),
        r#"error: expected a mapping (key: value pairs) at the top level, found the string "update"
 --> workflows/update.yml:1:1
  |
1 | "update"
  | ^^^^^^^^

error: 1 problem in 1 file
"#
    );
}

#[test]
fn workflow_file_that_is_a_list() {
    let site = workflow("- a\n");
    assert_eq!(
        site.invalid(),
        r#"error: expected a mapping (key: value pairs) at the top level, found a list
 --> workflows/update.yml:1:1
  |
1 | - a
  | ^^^

error: 1 problem in 1 file
"#
    );
}

#[test]
fn two_documents_in_one_file() {
    let site = workflow("name: x\n---\nname: y\n");
    assert_eq!(
        site.invalid(),
        r#"error: missing required key `version`
 --> workflows/update.yml:1:1
  |
1 | name: x
  | ^^^^^^^
  |
  = help: add `version:` to the top level

error: missing required key `targets`
 --> workflows/update.yml:1:1
  |
1 | name: x
  | ^^^^^^^
  |
  = help: add `targets:` to the top level

error: missing required key `steps`
 --> workflows/update.yml:1:1
  |
1 | name: x
  | ^^^^^^^
  |
  = help: add `steps:` to the top level

error: a second YAML document in one file
 --> workflows/update.yml:2:1
  |
2 | ---
  | ^^^
  |
  = help: drover reads one document per file; remove the `---` separator or split the file

error: 4 problems in 1 file
"#
    );
}

#[test]
fn file_that_is_not_utf8() {
    let site = Site::new().write_bytes("workflows/update.yml", b"\xff\xfename: x\n");
    assert_eq!(
        site.invalid(),
        r#"error: file is not valid UTF-8 (at byte 0)
 --> workflows/update.yml

error: 1 problem in 1 file
"#
    );
}

// ---------------------------------------------------------------------------------------
// Large files
// ---------------------------------------------------------------------------------------

#[test]
fn five_megabyte_inventory_with_one_error_near_the_end() {
    let mut text = String::from("nodes:\n");
    for i in 1..=5000 {
        text.push_str(&format!(
            "  c{i:05}: {{vars: {{rack: r{:02}, note: {}}}}}\n",
            i % 40,
            "x".repeat(1000)
        ));
    }
    text.push_str("  last01: {vars: {a: 1}, hots: x}\n");
    text.push_str(
        INVENTORY
            .strip_prefix("nodes:\n")
            .expect("INVENTORY starts with nodes:"),
    );
    assert!(text.len() > 5_000_000, "{} bytes", text.len());
    let site = inventory(&text);
    // No time limit here: speed belongs in a benchmark, and a debug build on a loaded
    // CI machine is not one.
    assert_eq!(
        site.invalid(),
        r#"error: unknown key `hots` in `nodes.last01`
    --> inventory.yml:5002:26
     |
5002 |   last01: {vars: {a: 1}, hots: x}
     |                          ^^^^
     |
     = help: did you mean `host`?

error: 1 problem in 1 file
"#
    );
}

#[test]
fn file_over_8_mib_is_refused_before_it_is_read() {
    let mut text = String::from("nodes:\n");
    text.push_str(&"#".repeat(8 * 1024 * 1024));
    let site = inventory(&text);
    assert_eq!(
        site.invalid(),
        r#"error: file is too large: 8388615 bytes
 --> inventory.yml
  = help: drover reads files up to 8 MiB (8388608 bytes)

error: 1 problem in 1 file
"#
    );
}

// ---------------------------------------------------------------------------------------
// Node selection
// ---------------------------------------------------------------------------------------

#[test]
fn unknown_group_suggests_the_close_one() {
    let site = workflow(&WORKFLOW.replace("@compute", "@compte"));
    assert_eq!(
        site.invalid(),
        r#"error: unknown group `@compte`
 --> workflows/update.yml:4:11
  |
4 |   nodes: ["@compte"]
  |           ^^^^^^^^^
  |
  = help: did you mean `@compute`?

error: 1 problem in 1 file
"#
    );
}

#[test]
fn unknown_group_without_a_close_match_lists_the_known_ones() {
    // Groups in file order, then the named lists the inventory defines (it has no
    // whitelist): the same on every run.
    let site = workflow(&WORKFLOW.replace("@compute", "@zzz"));
    let expected = r#"error: unknown group `@zzz`
 --> workflows/update.yml:4:11
  |
4 |   nodes: ["@zzz"]
  |           ^^^^^^
  |
  = help: known groups: @compute, @canary, @blacklist

error: 1 problem in 1 file
"#;
    for _ in 0..3 {
        assert_eq!(site.invalid(), expected);
    }
    let site = workflow(&WORKFLOW.replace("@compute", "@zzz")).write(
        "inventory.yml",
        &INVENTORY
            .replace("\ngroups:\n", "\ngroups:\n  gpu: [n01]\n")
            .replace(
                "blacklist: [mgmt01]\n",
                "blacklist: []\nwhitelist: [\"@compute\"]\n",
            ),
    );
    let stderr = site.invalid();
    assert!(
        stderr.contains("  = help: known groups: @gpu, @compute, @canary, @whitelist\n"),
        "{stderr}"
    );
    // A group per rack: the first twelve, then how many more.
    let racks: String = (1..=20).map(|r| format!("  rack{r:02}: [n01]\n")).collect();
    let site = workflow(&WORKFLOW.replace("@compute", "@zzz")).write(
        "inventory.yml",
        &INVENTORY.replace("\ngroups:\n", &format!("\ngroups:\n{racks}")),
    );
    let stderr = site.invalid();
    assert!(
        stderr.contains("  = help: known groups: @rack01, @rack02, @rack03, @rack04, @rack05, @rack06, @rack07, @rack08, @rack09, @rack10, @rack11, @rack12 and 11 more\n"),
        "{stderr}"
    );
}

#[test]
fn unknown_nodes_in_host_lists_and_names() {
    let site = workflow(&WORKFLOW.replace(r#""@compute""#, r#""n[01-12]", "n11", "n3""#));
    assert_eq!(
        site.invalid(),
        r#"error: 2 of the 12 nodes in `n[01-12]` are not in the inventory: n[11-12]
 --> workflows/update.yml:4:11
  |
4 |   nodes: ["n[01-12]", "n11", "n3"]
  |           ^^^^^^^^^^

error: unknown node `n11`
 --> workflows/update.yml:4:23
  |
4 |   nodes: ["n[01-12]", "n11", "n3"]
  |                       ^^^^^
  |
  = help: did you mean `n10`?

error: unknown node `n3`
 --> workflows/update.yml:4:30
  |
4 |   nodes: ["n[01-12]", "n11", "n3"]
  |                              ^^^^
  |
  = help: nodes must be defined under `nodes:` in the inventory

error: 3 problems in 1 file
"#
    );
}

#[test]
fn bad_host_list_syntax_in_a_workflow_and_in_the_inventory() {
    let site = workflow(&WORKFLOW.replace(r#""@compute""#, r#""n[1-", "n[5-1]", "n[]", "n1]""#));
    assert_eq!(
        site.invalid(),
        r#"error: unclosed `[` in host list `n[1-`: expected a `]` to end the range list
 --> workflows/update.yml:4:11
  |
4 |   nodes: ["n[1-", "n[5-1]", "n[]", "n1]"]
  |           ^^^^^^

error: reversed range `5-1` in host list `n[5-1]`: expected the start to be no greater than the end, as in `1-5`
 --> workflows/update.yml:4:19
  |
4 |   nodes: ["n[1-", "n[5-1]", "n[]", "n1]"]
  |                   ^^^^^^^^

error: empty brackets in host list `n[]`: expected numbers or ranges inside, as in `n[1-4]`
 --> workflows/update.yml:4:29
  |
4 |   nodes: ["n[1-", "n[5-1]", "n[]", "n1]"]
  |                             ^^^^^

error: stray `]` in host list `n1]`: expected it to close an earlier `[`
 --> workflows/update.yml:4:36
  |
4 |   nodes: ["n[1-", "n[5-1]", "n[]", "n1]"]
  |                                    ^^^^^

error: 4 problems in 1 file
"#
    );

    let site = inventory(
        r#"nodes:
  n[01-10]: {}
  n[1-: {}
  m[5-1]: {}
  mgmt01: {}
groups:
  compute: ["n[01-10]", "x[3-"]
canary: [n01]
blacklist: [mgmt01]
"#,
    );
    assert_eq!(
        site.invalid(),
        r#"error: unclosed `[` in host list `n[1-`: expected a `]` to end the range list
 --> inventory.yml:3:3
  |
3 |   n[1-: {}
  |   ^^^^

error: reversed range `5-1` in host list `m[5-1]`: expected the start to be no greater than the end, as in `1-5`
 --> inventory.yml:4:3
  |
4 |   m[5-1]: {}
  |   ^^^^^^

error: unclosed `[` in host list `x[3-`: expected a `]` to end the range list
 --> inventory.yml:7:25
  |
7 |   compute: ["n[01-10]", "x[3-"]
  |                         ^^^^^^

error: 3 problems in 1 file
"#
    );
}

#[test]
fn invalid_node_host_user_and_group_names() {
    let site = inventory(
        r#"nodes:
  n[01-10]: {}
  bad;name: {}
  "-rf": {}
  ok1: {host: "a b", user: "r;m"}
  mgmt01: {}
groups:
  compute: ["n[01-10]"]
  bad group: [n01]
  canary: [n02]
canary: [n01]
blacklist: [mgmt01]
"#,
    );
    assert_eq!(
        site.invalid(),
        r#"error: invalid node name `bad;name`: use letters, digits, `-`, `_` and `.`, starting with a letter or digit
 --> inventory.yml:3:3
  |
3 |   bad;name: {}
  |   ^^^^^^^^

error: invalid node name `-rf`: use letters, digits, `-`, `_` and `.`, starting with a letter or digit
 --> inventory.yml:4:3
  |
4 |   "-rf": {}
  |   ^^^^^

error: invalid host `a b`: expected a host name or an IP address
 --> inventory.yml:5:15
  |
5 |   ok1: {host: "a b", user: "r;m"}
  |               ^^^^^

error: invalid user `r;m`: expected a login name like `root` or `deploy`
 --> inventory.yml:5:28
  |
5 |   ok1: {host: "a b", user: "r;m"}
  |                            ^^^^^

error: invalid group name `bad group`: use letters, digits, `-`, `_` and `.`, starting with a letter or digit
 --> inventory.yml:9:3
  |
9 |   bad group: [n01]
  |   ^^^^^^^^^

error: `canary` cannot be a group name
  --> inventory.yml:10:3
   |
10 |   canary: [n02]
   |   ^^^^^^
   |
   = help: `@canary` is the inventory's top-level `canary:` list

error: 6 problems in 1 file
"#
    );
}

#[test]
fn node_defined_twice() {
    // One error per entry, naming its nodes as a host list.
    let site = inventory(
        r#"nodes:
  n[01-10]: {}
  n05: {}
  n[06-08]: {}
  n[1-3,3]: {}
  mgmt01: {}
groups:
  compute: ["n[01-10]"]
canary: [n01]
blacklist: [mgmt01]
"#,
    );
    assert_eq!(
        site.invalid(),
        r#"error: node `n05` is defined twice
 --> inventory.yml:3:3
  |
3 |   n05: {}
  |   ^^^
  |
  = help: it is defined also by `n[01-10]`; a node is defined once

error: nodes `n[06-08]` are defined twice
 --> inventory.yml:4:3
  |
4 |   n[06-08]: {}
  |   ^^^^^^^^
  |
  = help: they are defined also by `n[01-10]`; a node is defined once

error: node `n3` is defined twice
 --> inventory.yml:5:3
  |
5 |   n[1-3,3]: {}
  |   ^^^^^^^^
  |
  = help: it is defined more than once in the same host list; a node is defined once

error: 3 problems in 1 file
"#
    );
}

#[test]
fn a_host_list_of_bad_names_is_one_error() {
    // 90,000 invalid names, and 999 nodes defined twice: one error per entry each.
    let site = inventory(&INVENTORY.replace(
        "  mgmt01: {}\n",
        "  mgmt01: {}\n  \"x[1-90000];\": {}\n  m[001-999]: {}\n  m[001-999,1000]: {}\n",
    ));
    assert_eq!(
        site.invalid(),
        r#"error: 90000 invalid node names in `x[1-90000];` (the first is `x1;`): use letters, digits, `-`, `_` and `.`, starting with a letter or digit
 --> inventory.yml:5:3
  |
5 |   "x[1-90000];": {}
  |   ^^^^^^^^^^^^^

error: nodes `m[001-999]` are defined twice
 --> inventory.yml:7:3
  |
7 |   m[001-999,1000]: {}
  |   ^^^^^^^^^^^^^^^
  |
  = help: they are defined also by `m[001-999]`; a node is defined once

error: 2 problems in 1 file
"#
    );
}

#[test]
fn blacklist_overlapping_canary_and_whitelist() {
    let site = inventory(
        r#"nodes:
  n[01-10]: {}
  mgmt01: {}
groups:
  compute: ["n[01-10]"]
canary: [n01, n02]
whitelist: ["@compute", mgmt01]
blacklist: [mgmt01, "n[01-03]"]
"#,
    );
    assert_eq!(
        site.invalid(),
        r#"error: node `mgmt01` is on the blacklist and on the whitelist
 --> inventory.yml:8:13
  |
8 | blacklist: [mgmt01, "n[01-03]"]
  |             ^^^^^^
  |
  = help: a blacklisted node must never be touched; remove it from the blacklist or the whitelist

error: nodes `n[01-02]` are on the blacklist and on the canary list
 --> inventory.yml:8:21
  |
8 | blacklist: [mgmt01, "n[01-03]"]
  |                     ^^^^^^^^^^
  |
  = help: a blacklisted node must never be touched; remove it from the blacklist or the canary list

error: nodes `n[01-03]` are on the blacklist and on the whitelist
 --> inventory.yml:8:21
  |
8 | blacklist: [mgmt01, "n[01-03]"]
  |                     ^^^^^^^^^^
  |
  = help: a blacklisted node must never be touched; remove it from the blacklist or the whitelist

error: 3 problems in 1 file
"#
    );
}

// ---------------------------------------------------------------------------------------
// Topology: HA groups, group and hosting cycles
// ---------------------------------------------------------------------------------------

#[test]
fn node_in_two_ha_groups() {
    // The whole members list is underlined, not just its `[`.
    let site = inventory(
        r#"nodes:
  n[01-10]: {}
  login[1-3]: {}
  mgmt01: {}
groups:
  compute: ["n[01-10]"]
canary: [n01]
blacklist: [mgmt01]
ha_groups:
  login:
    members: ["login[1-2]"]
  frontends:
    members: [login2, login3]
"#,
    );
    assert_eq!(
        site.invalid(),
        r#"error: node `login2` is in two HA groups: `login` and `frontends`
  --> inventory.yml:13:14
   |
13 |     members: [login2, login3]
   |              ^^^^^^^^^^^^^^^^
   |
   = help: a node is in at most one HA group

error: 1 problem in 1 file
"#
    );
}

#[test]
fn ha_groups_declared_on_nodes_must_agree() {
    let site = inventory(
        r#"nodes:
  n[01-10]: {}
  mgmt01: {}
  db1:
    ha_group: {name: database, members: [db1, db2]}
  db2:
    ha_group: {name: database, members: [db1, db2, db3]}
  db3: {}
  q1:
    ha_group: {name: queue, members: [q1, q2]}
  q2: {}
  r1:
    ha_group: {name: redis, members: [r2, r3]}
  r2: {}
  r3: {}
groups:
  compute: ["n[01-10]"]
canary: [n01]
blacklist: [mgmt01]
"#,
    );
    assert_eq!(
        site.invalid(),
        r#"error: node `db2` lists HA group `database` as `db[1-3]`, but node `db1` lists it as `db[1-2]`
 --> inventory.yml:7:41
  |
7 |     ha_group: {name: database, members: [db1, db2, db3]}
  |                                         ^^^^^^^^^^^^^^^
  |
  = help: every member of an HA group must list the same members

error: HA group `queue` lists `q2`, which does not declare it
  --> inventory.yml:10:38
   |
10 |     ha_group: {name: queue, members: [q1, q2]}
   |                                      ^^^^^^^^
   |
   = help: every member of an HA group must declare the group with the same members

error: node `r1` declares HA group `redis` but is not in its members
  --> inventory.yml:13:38
   |
13 |     ha_group: {name: redis, members: [r2, r3]}
   |                                      ^^^^^^^^

error: 3 problems in 1 file
"#
    );
}

#[test]
fn group_cycles_are_reported_once_each() {
    let site = inventory(
        r#"nodes:
  n[01-10]: {}
  mgmt01: {}
groups:
  compute: ["n[01-10]"]
  a: ["@b"]
  b: ["@c", n01]
  c: ["@a"]
  d: ["@d"]
  e: ["@a"]
canary: [n01]
blacklist: [mgmt01]
"#,
    );
    assert_eq!(
        site.invalid(),
        r#"error: group cycle: @a -> @b -> @c -> @a
 --> inventory.yml:6:3
  |
6 |   a: ["@b"]
  |   ^

error: group cycle: @d -> @d
 --> inventory.yml:9:3
  |
9 |   d: ["@d"]
  |   ^

error: 2 problems in 1 file
"#
    );
}

#[test]
fn hosting_cycles_and_unknown_hypervisors() {
    let site = inventory(
        r#"nodes:
  n[01-10]: {}
  mgmt01: {}
  hv1: {hosted_on: vm1}
  vm1: {hosted_on: hv1}
  self1: {hosted_on: self1}
  vm2: {hosted_on: hv9}
groups:
  compute: ["n[01-10]"]
canary: [n01]
blacklist: [mgmt01]
"#,
    );
    assert_eq!(
        site.invalid(),
        r#"error: hosting cycle: hv1 is hosted on vm1 is hosted on hv1
 --> inventory.yml:4:20
  |
4 |   hv1: {hosted_on: vm1}
  |                    ^^^

error: node `self1` is hosted on itself
 --> inventory.yml:6:22
  |
6 |   self1: {hosted_on: self1}
  |                      ^^^^^

error: unknown node `hv9`
 --> inventory.yml:7:20
  |
7 |   vm2: {hosted_on: hv9}
  |                    ^^^
  |
  = help: did you mean `hv1`?

error: 3 problems in 1 file
"#
    );
}

// ---------------------------------------------------------------------------------------
// Windows
// ---------------------------------------------------------------------------------------

#[test]
fn unknown_window_lists_the_defined_ones() {
    let site = workflow(&WORKFLOW.replace("window: day", "window: nite"));
    assert_eq!(
        site.invalid(),
        r#"error: unknown window `nite`
 --> workflows/update.yml:5:9
  |
5 | window: nite
  |         ^^^^
  |
  = help: windows defined in drover.yml: day

error: 1 problem in 1 file
"#
    );
}

#[test]
fn bad_window_time_zone_days_times_and_dates() {
    let site = Site::new().write(
        "drover.yml",
        r#"inventory: inventory.yml
windows:
  day:
    timezone: Europe/Berln
    days: [mon-fri, funday]
    start: "25:00"
    end: "17:61"
    exclude: [2026-13-01, "xmas"]
  night:
    timezone: UTC
    days: [sat]
    start: 8:00
    end: "08:00"
"#,
    );
    assert_eq!(
        site.invalid(),
        r#"error: unknown time zone `Europe/Berln`
 --> drover.yml:4:15
  |
4 |     timezone: Europe/Berln
  |               ^^^^^^^^^^^^
  |
  = help: did you mean `Europe/Berlin`?

error: invalid day `funday`: expected a weekday (`mon`..`sun` or `monday`..`sunday`) or a range like `mon-fri`
 --> drover.yml:5:21
  |
5 |     days: [mon-fri, funday]
  |                     ^^^^^^

error: invalid time `25:00`: expected HH:MM between 00:00 and 23:59
 --> drover.yml:6:12
  |
6 |     start: "25:00"
  |            ^^^^^^^

error: invalid time `17:61`: expected HH:MM between 00:00 and 23:59
 --> drover.yml:7:10
  |
7 |     end: "17:61"
  |          ^^^^^^^

error: invalid date `2026-13-01`: there is no month 13
 --> drover.yml:8:15
  |
8 |     exclude: [2026-13-01, "xmas"]
  |               ^^^^^^^^^^

error: invalid date `xmas`: expected YYYY-MM-DD
 --> drover.yml:8:27
  |
8 |     exclude: [2026-13-01, "xmas"]
  |                           ^^^^^^

error: `start` and `end` are both 08:00: the window would be empty
  --> drover.yml:13:10
   |
13 |     end: "08:00"
   |          ^^^^^^^
   |
   = help: an `end` earlier than `start` runs over midnight, like 22:00-06:00

error: 7 problems in 1 file
"#
    );
}

// ---------------------------------------------------------------------------------------
// Templates
// ---------------------------------------------------------------------------------------

fn one_step(step: &str) -> Site {
    workflow(&format!(
        "name: update\nversion: 1\ntargets:\n  nodes: [\"@compute\"]\nwindow: day\nsteps:\n{step}"
    ))
}

#[test]
fn template_syntax_error_in_run() {
    let site = one_step("  - name: bad syntax\n    run: \"{% if %}echo{% endif %}\"\n    change: hot\n");
    assert_eq!(
        site.invalid(),
        r#"error: invalid template: unexpected end of block
 --> workflows/update.yml:8:10
  |
8 |     run: "{% if %}echo{% endif %}"
  |          ^^^^^^^^^^^^^^^^^^^^^^^^^

error: 1 problem in 1 file
"#
    );
}

#[test]
fn unknown_template_variable() {
    let site = one_step("  - name: unknown var\n    run: echo {{ nod.name }}\n    change: hot\n");
    assert_eq!(
        site.invalid(),
        r#"error: invalid template: unknown variable `nod` in template; available: node, vars, workflow, site
 --> workflows/update.yml:8:10
  |
8 |     run: echo {{ nod.name }}
  |          ^^^^^^^^^^^^^^^^^^^

error: 1 problem in 1 file
"#
    );
}

#[test]
fn template_error_in_a_block_scalar() {
    // The error is on the 4th line of the block: the caret is on that line of the file.
    let site = one_step(
        "  - name: multiline\n    run: |\n      echo ok\n      echo ok2\n      {% if node.name %}\n      echo {{ node.name }\n      {% endif %}\n    change: hot\n",
    );
    assert_eq!(
        site.invalid(),
        r#"error: invalid template: unexpected `}`, expected end of variable block
  --> workflows/update.yml:12:7
   |
12 |       echo {{ node.name }
   |       ^^^^^^^^^^^^^^^^^^^

error: 1 problem in 1 file
"#
    );
}

#[test]
fn template_file_not_found_and_bad_template_file() {
    let site = one_step(
        "  - name: t1\n    template: {src: missing.j2, dest: /etc/motd}\n    change: hot\n  - name: t2\n    template: {src: t/bad.j2, dest: /etc/a}\n    change: hot\n",
    )
    .write("workflows/t/bad.j2", "hello {{ node.name }\n");
    assert_eq!(
        site.invalid(),
        r#"error: file `missing.j2` not found
 --> workflows/update.yml:8:21
  |
8 |     template: {src: missing.j2, dest: /etc/motd}
  |                     ^^^^^^^^^^
  |
  = help: paths are relative to the workflow's directory, `./workflows`

error: invalid template in `t/bad.j2`: unexpected `}`, expected end of variable block (line 1 of `t/bad.j2`)
  --> workflows/update.yml:11:21
   |
11 |     template: {src: t/bad.j2, dest: /etc/a}
   |                     ^^^^^^^^

error: 2 problems in 1 file
"#
    );
}

/// The lists of minijinja's built-in filters and tests in help lines, cut after their
/// first three names: the rest is minijinja's to change.
fn short_lists(stderr: &str) -> String {
    stderr
        .lines()
        .map(
            |l| match l.find("the built-in ").or_else(|| l.find("available tests: ")) {
                Some(i) if l.contains("= help: available ") => {
                    let (head, list) = l.split_at(i);
                    let names: Vec<&str> = list.splitn(4, ", ").take(3).collect();
                    format!("{head}{}, ...\n", names.join(", "))
                }
                _ => format!("{l}\n"),
            },
        )
        .collect()
}

#[test]
fn unknown_template_filter_and_test() {
    // minijinja only looks filters and tests up when a render reaches them; validation
    // finds them anyway, with a suggestion or the list of what exists.
    let site = one_step(
        "  - name: f\n    run: \"echo {{ node.name | nosuchfilter }}\"\n    check: \"{{ vars.x is nosuchtest }}\"\n    change: hot\n  - name: g\n    run: echo {{ node.name | uper }}\n    when: node.vars.gpu is defind\n    change: hot\n",
    );
    assert_eq!(
        short_lists(&site.invalid()),
        r#"error: invalid template: unknown filter `nosuchfilter` in template
 --> workflows/update.yml:8:10
  |
8 |     run: "echo {{ node.name | nosuchfilter }}"
  |          ^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^
  |
  = help: available filters: drover's `raw` and `quote`, and the built-in abs, attr, batch, ...

error: invalid template: unknown test `nosuchtest` in template
 --> workflows/update.yml:9:12
  |
9 |     check: "{{ vars.x is nosuchtest }}"
  |            ^^^^^^^^^^^^^^^^^^^^^^^^^^^^
  |
  = help: available tests: boolean, defined, divisibleby, ...

error: invalid template: unknown filter `uper` in template
  --> workflows/update.yml:12:10
   |
12 |     run: echo {{ node.name | uper }}
   |          ^^^^^^^^^^^^^^^^^^^^^^^^^^^
   |
   = help: did you mean `upper`?

error: invalid template: unknown test `defind` in template
  --> workflows/update.yml:13:11
   |
13 |     when: node.vars.gpu is defind
   |           ^^^^^^^^^^^^^^^^^^^^^^^
   |
   = help: did you mean `defined`?

error: 4 problems in 1 file
"#
    );
}

#[test]
fn template_error_lines_in_block_scalars() {
    // Unknown names point at their line too; leading blank lines of the block count, and
    // a folded block (`>`), whose lines are joined, keeps the line in the message.
    let site = one_step(
        "  - name: a\n    run: |\n\n      echo ok\n      echo {{ nod }}\n    check: >\n      test\n\n      {{ node.name | nope }}\n    change: hot\n",
    );
    assert_eq!(
        short_lists(&site.invalid()),
        r#"error: invalid template: unknown variable `nod` in template; available: node, vars, workflow, site
  --> workflows/update.yml:11:7
   |
11 |       echo {{ nod }}
   |       ^^^^^^^^^^^^^^

error: invalid template: unknown filter `nope` in template (line 2 of the template)
  --> workflows/update.yml:13:7
   |
13 |       test
   |       ^^^^
   |
   = help: available filters: drover's `raw` and `quote`, and the built-in abs, attr, batch, ...

error: 2 problems in 1 file
"#
    );
}

#[test]
fn template_files_are_checked_for_names_and_filters() {
    let site = one_step(
        "  - name: t1\n    template: {src: t/a.j2, dest: /etc/a}\n    change: hot\n  - name: t2\n    template: {src: t/b.j2, dest: /etc/b}\n    change: hot\n  - name: t3\n    copy: {src: t, dest: /etc/c}\n    change: hot\n",
    )
    .write("workflows/t/a.j2", "# managed by drover\nhost={{ nod.name }}\n")
    .write("workflows/t/b.j2", "host={{ node.name }}\nrack={{ node.vars.rack | uper }}\n");
    assert_eq!(
        site.invalid(),
        r#"error: invalid template in `t/a.j2`: unknown variable `nod` in template; available: node, vars, workflow, site (line 2 of `t/a.j2`)
 --> workflows/update.yml:8:21
  |
8 |     template: {src: t/a.j2, dest: /etc/a}
  |                     ^^^^^^

error: invalid template in `t/b.j2`: unknown filter `uper` in template (line 2 of `t/b.j2`)
  --> workflows/update.yml:11:21
   |
11 |     template: {src: t/b.j2, dest: /etc/b}
   |                     ^^^^^^
   |
   = help: did you mean `upper`?

error: `t` is a directory, not a file
  --> workflows/update.yml:14:17
   |
14 |     copy: {src: t, dest: /etc/c}
   |                 ^
   |
   = help: `src` names one file, relative to the workflow's directory, `./workflows`

error: 3 problems in 1 file
"#
    );
}

// ---------------------------------------------------------------------------------------
// Strategy, durations, file modes
// ---------------------------------------------------------------------------------------

fn with_strategy(s: &str) -> Site {
    workflow(&WORKFLOW.replace("window: day\n", &format!("window: day\nstrategy:\n  {s}\n")))
}

#[test]
fn percentage_over_100() {
    assert_eq!(
        with_strategy(r#"max_unavailable: "150%""#).invalid(),
        r#"error: invalid percentage `150%`: must be between 0% and 100%
 --> workflows/update.yml:7:20
  |
7 |   max_unavailable: "150%"
  |                    ^^^^^^

error: 1 problem in 1 file
"#
    );
}

#[test]
fn empty_batch_list_and_batch_zero() {
    assert_eq!(
        with_strategy("batch: []").invalid(),
        r#"error: `batch` is an empty list
 --> workflows/update.yml:7:10
  |
7 |   batch: []
  |          ^^
  |
  = help: give at least one size, like `[1, "10%"]`

error: 1 problem in 1 file
"#
    );
    assert_eq!(
        with_strategy("batch: 0").invalid(),
        r#"error: batch size `0` would never start a node
 --> workflows/update.yml:7:10
  |
7 |   batch: 0
  |          ^
  |
  = help: batch sizes must be at least 1 node

error: 1 problem in 1 file
"#
    );
    assert_eq!(
        with_strategy(r#"batch: [1, 0, "0%"]"#).invalid(),
        r#"error: batch size `0` would never start a node
 --> workflows/update.yml:7:14
  |
7 |   batch: [1, 0, "0%"]
  |              ^
  |
  = help: batch sizes must be at least 1 node

error: batch size `0%` would never start a node
 --> workflows/update.yml:7:17
  |
7 |   batch: [1, 0, "0%"]
  |                 ^^^^
  |
  = help: batch sizes must be at least 1 node

error: 2 problems in 1 file
"#
    );
}

fn with_step_line(line: &str) -> Site {
    workflow(&WORKFLOW.replace("    change: hot\n", &format!("    change: hot\n    {line}\n")))
}

#[test]
fn durations_need_a_unit() {
    assert_eq!(
        with_step_line("timeout: 30").invalid(),
        r#"error: invalid duration `30`: a bare number has no unit; write `30s` or `30m`
  --> workflows/update.yml:10:14
   |
10 |     timeout: 30
   |              ^^

error: 1 problem in 1 file
"#
    );
    assert_eq!(
        with_step_line("timeout: 5 mins please").invalid(),
        r#"error: invalid duration `5 mins please`: expected a number with a unit, like `30s`, `5m` or `2h`
  --> workflows/update.yml:10:14
   |
10 |     timeout: 5 mins please
   |              ^^^^^^^^^^^^^

error: 1 problem in 1 file
"#
    );
    assert_eq!(
        with_step_line("timeout: 0s").invalid(),
        r#"error: a timeout of zero would fail every node
  --> workflows/update.yml:10:14
   |
10 |     timeout: 0s
   |              ^^

error: 1 problem in 1 file
"#
    );
    // `5 minutes` is a duration humantime understands: accepted.
    let ok = with_step_line("timeout: 5 minutes").run(&["validate", "."]);
    assert_eq!(ok.code, 0, "{}", ok.stderr);
}

#[test]
fn negative_bare_duration() {
    assert_eq!(
        with_step_line("timeout: -5").invalid(),
        r#"error: invalid duration `-5`: a duration cannot be negative
  --> workflows/update.yml:10:14
   |
10 |     timeout: -5
   |              ^^

error: 1 problem in 1 file
"#
    );
}

#[test]
fn numbers_too_large() {
    assert_eq!(
        with_version("99999999999").invalid(),
        r#"error: workflow version `99999999999` is too large: versions go up to 4294967295
 --> workflows/update.yml:2:10
  |
2 | version: 99999999999
  |          ^^^^^^^^^^^

error: 1 problem in 1 file
"#
    );
    assert_eq!(
        with_step_line("timeout: 99999999999999999999s").invalid(),
        r#"error: duration `99999999999999999999s` is too large
  --> workflows/update.yml:10:14
   |
10 |     timeout: 99999999999999999999s
   |              ^^^^^^^^^^^^^^^^^^^^^

error: 1 problem in 1 file
"#
    );
    assert_eq!(
        with_step_line("retries: 99999999999999999999").invalid(),
        r#"error: `99999999999999999999` is out of range: expected a whole number between 0 and 4294967295
  --> workflows/update.yml:10:14
   |
10 |     retries: 99999999999999999999
   |              ^^^^^^^^^^^^^^^^^^^^

error: 1 problem in 1 file
"#
    );
    let site = Site::new().write("drover.yml", &format!("{SITE}ssh: {{forks: 5000000000}}\n"));
    assert_eq!(
        site.invalid(),
        r#"error: `5000000000` is out of range: expected a whole number between 0 and 4294967295
  --> drover.yml:13:14
   |
13 | ssh: {forks: 5000000000}
   |              ^^^^^^^^^^

error: 1 problem in 1 file
"#
    );
    let site = inventory(&INVENTORY.replace("  mgmt01: {}", "  mgmt01: {port: 0}"));
    assert_eq!(
        site.invalid(),
        r#"error: `0` is not a port: expected a port number between 1 and 65535
 --> inventory.yml:4:18
  |
4 |   mgmt01: {port: 0}
  |                  ^

error: 1 problem in 1 file
"#
    );
}

fn copy_with_mode(mode: &str) -> Site {
    one_step(&format!(
        "  - name: cp\n    copy:\n      src: f.txt\n      dest: /etc/f\n      mode: {mode}\n    change: hot\n"
    ))
    .write("workflows/f.txt", "x\n")
}

#[test]
fn file_mode_written_as_a_number() {
    assert_eq!(
        copy_with_mode("0644").invalid(),
        r#"error: file mode written as a number: write file modes as quoted octal strings, like "0644" (YAML reads an unquoted 0644 as the decimal number 644)
  --> workflows/update.yml:11:13
   |
11 |       mode: 0644
   |             ^^^^

error: 1 problem in 1 file
"#
    );
    assert_eq!(
        copy_with_mode(r#""0999""#).invalid(),
        r#"error: invalid file mode `0999`: expected 3 or 4 octal digits, like "0644"
  --> workflows/update.yml:11:13
   |
11 |       mode: "0999"
   |             ^^^^^^

error: 1 problem in 1 file
"#
    );
}

#[test]
fn file_mode_written_as_a_yaml_octal_number() {
    // YAML 1.2 reads `0o644` as 420: the message neither quotes that number nor derives
    // a mode from it.
    assert_eq!(
        copy_with_mode("0o644").invalid(),
        r#"error: file mode written as a number: write file modes as quoted octal strings, like "0644" (YAML reads an unquoted 0644 as the decimal number 644)
  --> workflows/update.yml:11:13
   |
11 |       mode: 0o644
   |             ^^^^^

error: 1 problem in 1 file
"#
    );
}

#[test]
fn negative_file_mode() {
    assert_eq!(
        copy_with_mode("-644").invalid(),
        r#"error: file mode written as a number: write file modes as quoted octal strings, like "0644" (YAML reads an unquoted 0644 as the decimal number 644)
  --> workflows/update.yml:11:13
   |
11 |       mode: -644
   |             ^^^^

error: 1 problem in 1 file
"#
    );
}

// ---------------------------------------------------------------------------------------
// Steps
// ---------------------------------------------------------------------------------------

#[test]
fn step_with_no_action() {
    assert_eq!(
        one_step("  - name: nothing\n    change: hot\n").invalid(),
        r#"error: step `nothing` has no action
 --> workflows/update.yml:7:5
  |
7 |   - name: nothing
  |     ^^^^^^^^^^^^^
  |
  = help: give exactly one of `run`, `copy`, `template`, `reboot`, `wait_for`, `local`, `ansible`

error: 1 problem in 1 file
"#
    );
}

#[test]
fn step_with_several_actions() {
    let site =
        one_step("  - name: two\n    run: echo a\n    local: echo b\n    reboot:\n    change: drain\n");
    assert_eq!(
        site.invalid(),
        r#"error: step `two` has more than one action: `run`, `local`, `reboot`
 --> workflows/update.yml:9:5
  |
9 |     local: echo b
  |     ^^^^^
  |
  = help: a step does exactly one thing; split it into several steps

error: 1 problem in 1 file
"#
    );
}

#[test]
fn reboot_step_marked_hot() {
    let site = one_step(
        "  - name: reboot hot\n    reboot:\n    change: hot\n  - name: reboot hot2\n    reboot: {timeout: 5m}\n    change: hot\n",
    );
    assert_eq!(
        site.invalid(),
        r#"error: step `reboot hot` reboots the node but is marked `change: hot`
 --> workflows/update.yml:9:13
  |
9 |     change: hot
  |             ^^^
  |
  = help: a reboot takes the node out of service: use `change: drain`

error: step `reboot hot2` reboots the node but is marked `change: hot`
  --> workflows/update.yml:12:13
   |
12 |     change: hot
   |             ^^^
   |
   = help: a reboot takes the node out of service: use `change: drain`

error: 2 problems in 1 file
"#
    );
}

#[test]
fn unknown_change_kind() {
    let site = workflow(&WORKFLOW.replace("change: hot", "change: warm"));
    assert_eq!(
        site.invalid(),
        r#"error: unknown variant `warm`, expected `hot` or `drain`
 --> workflows/update.yml:9:13
  |
9 |     change: warm
  |             ^^^^

error: 1 problem in 1 file
"#
    );
}

// ---------------------------------------------------------------------------------------
// Secrets
// ---------------------------------------------------------------------------------------

#[test]
fn secret_written_inline_is_refused_without_echoing_it() {
    let site = Site::new().write(
        "drover.yml",
        &format!("{SITE}server:\n  listen: 127.0.0.1:8080\n  token: abc\n"),
    );
    let stderr = site.invalid();
    assert_eq!(
        stderr,
        r#"error: secrets are never written inline: use `{ env: VARIABLE }` or `{ file: /path/to/secret }`
  --> drover.yml:15:10
   |
15 |   token: abc
   |          ^^^

error: 1 problem in 1 file
"#
    );
    let site = Site::new().write(
        "drover.yml",
        &format!("{SITE}server:\n  listen: 127.0.0.1:8080\n  token: {{env: A, file: /b}}\n"),
    );
    assert_eq!(
        site.invalid(),
        r#"error: a secret reference takes exactly one of `env` or `file`
  --> drover.yml:15:10
   |
15 |   token: {env: A, file: /b}
   |          ^^^^^^^^^^^^^^^^^^

error: 1 problem in 1 file
"#
    );
}

// ---------------------------------------------------------------------------------------
// Output formats, several files, missing files
// ---------------------------------------------------------------------------------------

#[test]
fn json_output_for_an_invalid_site() {
    let site = workflow(&WORKFLOW.replace("window: day", "stratgy: {}\nwindow: nite")).write(
        "inventory.yml",
        &INVENTORY.replace("  mgmt01: {}", "  mgmt01: {hots: x}"),
    );
    let out = site.run(&["validate", "--json", "."]);
    assert_eq!(out.code, 3, "{}", out.stderr);
    assert_eq!(out.stderr, "");
    let v: serde_json::Value = serde_json::from_str(&out.stdout).expect("stdout is JSON");
    assert_eq!(v["ok"], false);
    assert_eq!(
        v["errors"],
        serde_json::json!([
            {
                "file": "inventory.yml",
                "line": 4,
                "column": 12,
                "message": "unknown key `hots` in `nodes.mgmt01`",
                "help": "did you mean `host`?"
            },
            {
                "file": "workflows/update.yml",
                "line": 5,
                "column": 1,
                "message": "unknown key `stratgy`",
                "help": "did you mean `strategy`?"
            },
            {
                "file": "workflows/update.yml",
                "line": 6,
                "column": 9,
                "message": "unknown window `nite`",
                "help": "windows defined in drover.yml: day"
            }
        ])
    );
    for e in v["errors"].as_array().expect("an errors array") {
        assert!(
            e["file"].is_string() && e["line"].is_u64() && e["column"].is_u64() && e["message"].is_string(),
            "{e}"
        );
    }
}

#[test]
fn json_output_for_a_missing_site_file() {
    let site = Site::new();
    std::fs::remove_file(site.path().join("drover.yml")).expect("rm drover.yml");
    let out = site.run(&["validate", "--json", "."]);
    assert_eq!(out.code, 3);
    let v: serde_json::Value = serde_json::from_str(&out.stdout).expect("stdout is JSON");
    assert_eq!(
        v,
        serde_json::json!({
            "ok": false,
            "errors": [{"file": "drover.yml", "message": "no drover.yml in the current directory: a site is a directory with a drover.yml"}],
            "warnings": []
        })
    );
}

#[test]
fn errors_in_several_files_are_all_reported() {
    let site = Site::new()
        .write(
            "drover.yml",
            &SITE.replace("    end: \"17:00\"\n", "    end: \"17:00\"\n    cutof: 1h\n"),
        )
        .write(
            "inventory.yml",
            &INVENTORY.replace("  mgmt01: {}", "  mgmt01: {}\n  bad;name: {}"),
        )
        .write(
            "workflows/update.yml",
            &WORKFLOW.replace("version: 1", "version: 1\ndescripton: x"),
        )
        .write(
            "workflows/other.yml",
            &WORKFLOW
                .replace("name: update", "name: other")
                .replace("window: day", "window: [day]"),
        );
    assert_eq!(
        site.invalid(),
        r#"error: unknown key `cutof` in `windows.day`
  --> drover.yml:13:5
   |
13 |     cutof: 1h
   |     ^^^^^
   |
   = help: did you mean `cutoff`?

error: invalid node name `bad;name`: use letters, digits, `-`, `_` and `.`, starting with a letter or digit
 --> inventory.yml:5:3
  |
5 |   bad;name: {}
  |   ^^^^^^^^

error: expected a string, found a list
 --> workflows/other.yml:5:9
  |
5 | window: [day]
  |         ^^^^^

error: unknown key `descripton`
 --> workflows/update.yml:3:1
  |
3 | descripton: x
  | ^^^^^^^^^^
  |
  = help: did you mean `description`?

error: 4 problems in 4 files
"#
    );
}

#[test]
fn an_inventory_typo_does_not_hide_workflow_problems() {
    // An invalid inventory sets aside only what needs it (resolving targets); the
    // unknown window and the unknown template variable are still reported.
    let site = workflow(
        &WORKFLOW
            .replace("window: day", "window: nite")
            .replace("run: echo upgraded", "run: echo {{ nod }}"),
    )
    .write(
        "inventory.yml",
        &INVENTORY.replace("  mgmt01: {}", "  mgmt01: {hots: x}"),
    );
    assert_eq!(
        site.invalid(),
        r#"error: unknown key `hots` in `nodes.mgmt01`
 --> inventory.yml:4:12
  |
4 |   mgmt01: {hots: x}
  |            ^^^^
  |
  = help: did you mean `host`?

error: unknown window `nite`
 --> workflows/update.yml:5:9
  |
5 | window: nite
  |         ^^^^
  |
  = help: windows defined in drover.yml: day

error: invalid template: unknown variable `nod` in template; available: node, vars, workflow, site
 --> workflows/update.yml:8:10
  |
8 |     run: echo {{ nod }}
  |          ^^^^^^^^^^^^^^

error: 3 problems in 2 files
"#
    );
}

#[test]
fn missing_drover_yml() {
    let site = Site::new();
    std::fs::remove_file(site.path().join("drover.yml")).expect("rm drover.yml");
    assert_eq!(
        site.invalid(),
        r#"error: no drover.yml in the current directory: a site is a directory with a drover.yml
 --> drover.yml

error: 1 problem in 1 file
"#
    );
}

#[test]
fn a_directory_without_drover_yml() {
    let site = Site::new().write("somedir/notes.txt", "x\n");
    let out = site.run(&["validate", "somedir"]);
    assert_eq!(out.code, 3, "{}", out.stderr);
    assert_eq!(
        out.stderr,
        r#"error: no drover.yml in `somedir`: a site is a directory with a drover.yml
 --> somedir/drover.yml

error: 1 problem in 1 file
"#
    );
}

#[test]
fn problems_in_drover_yml_are_in_file_order() {
    // A duplicate key (found while loading) after a bad value (found when checking):
    // shown in the order of the file, not the order they were found in.
    let site = Site::new().write(
        "drover.yml",
        &format!("ssh: {{forks: 0}}\n{SITE}inventory: other.yml\n"),
    );
    assert_eq!(
        site.invalid(),
        r#"error: `forks: 0` would never start a node
 --> drover.yml:1:14
  |
1 | ssh: {forks: 0}
  |              ^

error: duplicate key `inventory`
  --> drover.yml:14:1
   |
14 | inventory: other.yml
   | ^^^^^^^^^
   |
   = help: `inventory` is already set at line 2; a key may appear once per mapping

error: 2 problems in 1 file
"#
    );
}

#[test]
fn without_a_valid_inventory_host_list_syntax_is_still_checked() {
    let site = workflow(&WORKFLOW.replace(r#"["@compute"]"#, r#"["@compute", "n[1-"]"#)).write(
        "inventory.yml",
        &INVENTORY.replace("  mgmt01: {}", "  mgmt01: {hots: x}"),
    );
    assert_eq!(
        site.invalid(),
        r#"error: unknown key `hots` in `nodes.mgmt01`
 --> inventory.yml:4:12
  |
4 |   mgmt01: {hots: x}
  |            ^^^^
  |
  = help: did you mean `host`?

error: unclosed `[` in host list `n[1-`: expected a `]` to end the range list
 --> workflows/update.yml:4:23
  |
4 |   nodes: ["@compute", "n[1-"]
  |                       ^^^^^^

error: 2 problems in 2 files
"#
    );
}

#[test]
fn nonexistent_path_and_missing_referenced_files() {
    let site = Site::new();
    let out = site.run(&["validate", "no/such/dir"]);
    assert_eq!(out.code, 3, "{}", out.stderr);
    assert_eq!(
        out.stderr,
        r#"error: `no/such/dir` does not exist
 --> no/such/dir
  = help: give a site directory (a directory with a drover.yml) or its drover.yml

error: 1 problem in 1 file
"#
    );

    let site = Site::new().write("drover.yml", "inventory: inv.yml\nworkflows: wf\n");
    assert_eq!(
        site.invalid(),
        r#"error: inventory file not found
 --> inv.yml
  = help: `inventory:` in drover.yml names it (default `inventory.yml`), relative to the site directory

error: workflow directory not found
 --> wf
  = help: `workflows:` in drover.yml names it (default `workflows`), relative to the site directory

error: 2 problems in 2 files
"#
    );
}

// ---------------------------------------------------------------------------------------
// Robustness: mutated copies of the shipped example never crash drover
// ---------------------------------------------------------------------------------------

/// xorshift64*: deterministic, no dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            0
        } else {
            (self.next() % n as u64) as usize
        }
    }
}

fn mutate(text: &[u8], rng: &mut Rng) -> Vec<u8> {
    let mut t = text.to_vec();
    match rng.below(6) {
        // Delete a random line.
        0 => {
            let mut lines: Vec<&[u8]> = text.split(|b| *b == b'\n').collect();
            let i = rng.below(lines.len());
            lines.remove(i);
            t = lines.join(&b'\n');
        }
        // Swap two neighbouring bytes.
        1 if t.len() > 1 => {
            let i = rng.below(t.len() - 1);
            t.swap(i, i + 1);
        }
        // Truncate at a random offset (possibly inside a multi-byte character).
        2 => t.truncate(rng.below(t.len() + 1)),
        // Insert a YAML indicator or whitespace.
        3 => {
            let chars = b"[]{}:-,#&*!|>'\"%@`\t \n0";
            let c = chars[rng.below(chars.len())];
            t.insert(rng.below(t.len() + 1), c);
        }
        // Delete a byte.
        4 if !t.is_empty() => {
            t.remove(rng.below(t.len()));
        }
        // Duplicate a random line somewhere else.
        _ => {
            let lines: Vec<&[u8]> = text.split(|b| *b == b'\n').collect();
            let dup = lines[rng.below(lines.len())].to_vec();
            let mut lines: Vec<Vec<u8>> = lines.into_iter().map(<[u8]>::to_vec).collect();
            let at = rng.below(lines.len() + 1);
            lines.insert(at, dup);
            t = lines.join(&b'\n');
        }
    }
    t
}

#[test]
fn mutated_example_files_never_panic() {
    let root = repo_root();
    let read = |p: &str| std::fs::read(root.join(p)).unwrap_or_else(|e| panic!("{p}: {e}"));
    let site_yml = String::from_utf8(read("examples/slurm-site/drover.yml"))
        .expect("utf-8")
        .replace("workflows: ../../workflows", "workflows: workflows")
        .into_bytes();
    let files: Vec<(&str, Vec<u8>)> = vec![
        ("drover.yml", site_yml),
        ("inventory.yml", read("examples/slurm-site/inventory.yml")),
        ("workflows/kernel-update.yml", read("workflows/kernel-update.yml")),
        (
            "workflows/login-ha-upgrade.yml",
            read("workflows/login-ha-upgrade.yml"),
        ),
        (
            "workflows/security-updates.yml",
            read("workflows/security-updates.yml"),
        ),
    ];
    let motd = String::from_utf8(read("workflows/templates/motd.j2")).expect("utf-8");

    let fresh = || {
        let mut s = Site::new();
        std::fs::remove_file(s.path().join("workflows/update.yml")).expect("rm the default workflow");
        s = s.write("workflows/templates/motd.j2", &motd);
        for (name, text) in &files {
            s = s.write_bytes(name, text);
        }
        s
    };
    // The unmutated copy is valid, so every failure below comes from a mutation.
    let out = fresh().run(&["validate", "."]);
    assert_eq!(out.code, 0, "{}", out.stderr);

    let mut rng = Rng(0x5EED_D20E_2025_0001);
    let mut invalid = 0;
    for round in 0..24 {
        let (name, text) = &files[rng.below(files.len())];
        let mut mutated = text.clone();
        for _ in 0..=rng.below(3) {
            mutated = mutate(&mutated, &mut rng);
        }
        let site = fresh().write_bytes(name, &mutated);
        let out = site.run(&["validate", "."]);
        let shown = String::from_utf8_lossy(&mutated);
        assert!(
            out.code == 0 || out.code == 3,
            "round {round}, {name}: exit {}\nstderr:\n{}\nfile:\n{shown}",
            out.code,
            out.stderr
        );
        assert!(
            !out.stderr.contains("panicked"),
            "round {round}, {name}:\n{}\nfile:\n{shown}",
            out.stderr
        );
        if out.code == 3 {
            invalid += 1;
            assert!(
                out.stderr.contains("error: "),
                "round {round}: exit 3 without a message"
            );
        }
    }
    // The mutations must actually break things, or this test checks nothing.
    assert!(invalid >= 8, "only {invalid} of 24 mutations were invalid");
}

// ---------------------------------------------------------------------------------------
// scheduler: slurm
// ---------------------------------------------------------------------------------------

/// A site with `drain:` replaced by `drain`.
fn site_drain(drain: &str) -> Site {
    let site = SITE.replace(
        &SITE[SITE.find("drain:").expect("drain")..SITE.find("windows:").expect("windows")],
        drain,
    );
    Site::new().write("drover.yml", &format!("{site}transport: local\n"))
}

#[test]
fn slurm_scheduler_refuses_hooks_and_node_side_commands() {
    let site = site_drain("drain:\n  scheduler: slurm\n  run_on: node\n  drained: \"true\"\n");
    let err = site.invalid();
    assert!(
        err.contains("error: `drained` cannot be set with `scheduler: slurm`, whose commands are built in"),
        "{err}"
    );
    assert!(err.contains("drover.yml:6:3"), "{err}");
    assert!(err.contains("`run_on: node` is for hooks"), "{err}");
}

#[test]
fn hooks_scheduler_still_needs_its_three_hooks() {
    let site = site_drain("drain:\n  resume: scontrol update nodename={{ node.name }} state=resume\n");
    let err = site.invalid();
    assert!(err.contains("missing required key `drain`"), "{err}");
    assert!(err.contains("missing required key `drained`"), "{err}");
    assert!(!err.contains("missing required key `resume`"), "{err}");
    assert!(err.contains("or set `scheduler: slurm`"), "{err}");
}

#[test]
fn partition_budgets_and_soonest_idle_need_slurm() {
    let wf = WORKFLOW.replace(
        "window: day\n",
        "window: day\nstrategy: { max_unavailable_per_partition: 2, order: soonest_idle }\n",
    );
    let err = Site::new().write("workflows/update.yml", &wf).invalid();
    assert!(
        err.contains("`max_unavailable_per_partition` needs `drain: { scheduler: slurm }`"),
        "{err}"
    );
    assert!(
        err.contains("`order: soonest_idle` needs `drain: { scheduler: slurm }`"),
        "{err}"
    );
    let ok = site_drain("drain:\n  scheduler: slurm\n").write("workflows/update.yml", &wf);
    let out = ok.run(&["validate", "."]);
    assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);
    let zero = site_drain("drain:\n  scheduler: slurm\n").write(
        "workflows/update.yml",
        &wf.replace("per_partition: 2", "per_partition: 0"),
    );
    assert!(
        zero.invalid()
            .contains("`max_unavailable_per_partition: 0` would never let a node be changed")
    );
}

/// `reboot: { via: slurm }` asks slurmctld for the reboot: refused where it is written
/// unless the node's drain is Slurm's, and `command` (what SSH would run) is refused
/// with it.
#[test]
fn a_reboot_via_slurm_needs_the_slurm_scheduler() {
    let wf = format!("{WORKFLOW}  - name: reboot\n    reboot:\n      via: slurm\n    change: drain\n");
    let err = Site::new().write("workflows/update.yml", &wf).invalid();
    assert!(
        err.contains("step `reboot` reboots with `via: slurm`, which needs `drain: { scheduler: slurm }`"),
        "{err}"
    );
    assert!(err.contains("update.yml:12:12"), "{err}");
    assert!(err.contains("or use `via: ssh` with a `command`"), "{err}");
    let slurm = || site_drain("drain:\n  scheduler: slurm\n");
    let out = slurm().write("workflows/update.yml", &wf).run(&["validate", "."]);
    assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);
    let with_command = wf.replace("via: slurm\n", "via: slurm\n      command: systemctl reboot\n");
    let err = slurm().write("workflows/update.yml", &with_command).invalid();
    assert!(
        err.contains("`command` is not used with `via: slurm`: slurmctld runs the site's `RebootProgram`"),
        "{err}"
    );
    assert!(err.contains("update.yml:13:7"), "{err}");
    // A workflow that declares its nodes need no drain has no Slurm to ask.
    let none = wf.replace("steps:\n", "drain: { none: \"outside Slurm\" }\nsteps:\n");
    let err = slurm().write("workflows/update.yml", &none).invalid();
    assert!(err.contains("reboots with `via: slurm`"), "{err}");
    let bad = wf.replace("via: slurm", "via: ipmi");
    let err = slurm().write("workflows/update.yml", &bad).invalid();
    assert!(err.contains("ipmi"), "{err}");
}

// ---------------------------------------------------------------------------------------
// Ansible Vault values where they are not read
// ---------------------------------------------------------------------------------------

/// A `!vault |` value in the inventory would otherwise reach templates and Ansible as an
/// undecrypted mapping: refused where it was written, saying where vault values go.
#[test]
fn a_vault_value_in_the_inventory_is_refused_saying_where_they_go() {
    let site = inventory(
        "nodes:\n  n01:\n    vars:\n      bmc_password: !vault |\n        $ANSIBLE_VAULT;1.1;AES256\n        6162\n",
    );
    assert_eq!(
        site.invalid(),
        r#"error: a `!vault` value at `nodes.n01.vars.bmc_password`: the inventory does not read Ansible Vault values
 --> inventory.yml:4:21
  |
4 |       bmc_password: !vault |
  |                     ^^^^^^^^
  |
  = help: vault values are read in a workflow's `vars:` and `vars_files:`, and steps use them as `{{ vars.NAME }}`; a per-node secret: a var keyed by node name (`{{ vars.NAME[node.name] }}`); an `ansible:` playbook's own host_vars are decrypted by Ansible

error: 1 problem in 1 file
"#
    );
}

/// In drover.yml it was a type error ("expected a string, found a mapping").
#[test]
fn a_vault_value_in_drover_yml_or_outside_a_workflows_vars_is_refused() {
    let vault = "!vault |\n    $ANSIBLE_VAULT;1.1;AES256\n    6162\n";
    let site = Site::new().write(
        "drover.yml",
        &format!("{SITE}transport: local\nserver:\n  listen: 127.0.0.1:8080\n  token: {vault}"),
    );
    assert_eq!(
        site.invalid(),
        r#"error: a `!vault` value at `server.token`: drover.yml does not read Ansible Vault values
  --> drover.yml:16:10
   |
16 |   token: !vault |
   |          ^^^^^^^^
   |
   = help: vault values are read in a workflow's `vars:` and `vars_files:`, and steps use them as `{{ vars.NAME }}`; drover.yml's own secrets are `{ env: VAR }` or `{ file: PATH }`

error: 1 problem in 1 file
"#
    );
    // In a workflow, `vars:` decrypts them (tests/cli/vault.rs); `env:` does not.
    let site = workflow(&format!(
        "name: update\nversion: 1\ntargets:\n  nodes: [\"@compute\"]\nenv:\n  TOKEN: {vault}steps:\n  - {{ name: a, run: echo, change: hot }}\n"
    ));
    assert_eq!(
        site.invalid(),
        r#"error: a `!vault` value at `env.TOKEN`: this key of a workflow does not read Ansible Vault values
 --> workflows/update.yml:6:10
  |
6 |   TOKEN: !vault |
  |          ^^^^^^^^
  |
  = help: vault values are read in a workflow's `vars:` and `vars_files:`, and steps use them as `{{ vars.NAME }}`; move it into `vars:` and write `{{ vars.NAME }}` here

error: 1 problem in 1 file
"#
    );
}

/// A lifecycle operation naming a workflow the site does not have fails validation at
/// its line, listing the workflows there are; before, it passed and only the first API
/// request found it (a 422).
#[test]
fn a_lifecycle_operation_naming_no_workflow_is_refused_with_the_names_there_are() {
    let site = Site::new().write(
        "drover.yml",
        &format!("{SITE}transport: local\nlifecycle:\n  commission: update\n  decommission: retire\n"),
    );
    let err = site.invalid();
    assert!(
        err.contains("error: no workflow named `retire` for the decommission operation"),
        "{err}"
    );
    assert!(err.contains("--> drover.yml:"), "{err}");
    assert!(err.contains("help: the site's workflows: `update`"), "{err}");
    assert!(!err.contains("`update` for the commission"), "{err}");
    assert!(err.contains("error: 1 problem in 1 file"), "{err}");
}

/// `drain.mode: reservation` makes Slurm reservations: with hooks it is refused at the
/// key, with `scheduler: slurm` it is accepted, and an unknown mode is named.
#[test]
fn drain_by_reservation_needs_the_slurm_scheduler() {
    let hooks = "drain:\n  mode: reservation\n  drain: \"true\"\n  drained: \"true\"\n  resume: \"true\"\n";
    let err = site_drain(hooks).invalid();
    assert!(
        err.contains(
            "`mode: reservation` creates Slurm maintenance reservations; it needs `scheduler: slurm`"
        ),
        "{err}"
    );
    assert!(err.contains("drover.yml:4:9"), "{err}");
    assert!(err.contains("set `scheduler: slurm`"), "{err}");
    let out = site_drain("drain:\n  scheduler: slurm\n  mode: reservation\n").run(&["validate", "."]);
    assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);
    let err = site_drain("drain:\n  scheduler: slurm\n  mode: reserve\n").invalid();
    assert!(err.contains("reserve"), "{err}");
    assert!(err.contains("drover.yml:5:9"), "{err}");
}
