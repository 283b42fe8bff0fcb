//! Regression tests for the "safety and truth" validation issue: drain steps without
//! drain hooks, limits on every duration and count, file sources outside the site, the
//! node-count cap, and reporting every problem of a file in one pass.

use std::time::{Duration, Instant};

use drover::exit_code;

use crate::support::*;

/// The default site without the site's drain hooks.
fn site_without_drain() -> Site {
    let text: String = SITE
        .lines()
        .filter(|l| !l.starts_with("drain:") && !l.starts_with("  drain") && !l.starts_with("  resume"))
        .map(|l| format!("{l}\n"))
        .collect();
    assert!(!text.contains("scontrol"), "{text}");
    Site::new().write("drover.yml", &format!("{text}transport: local\n"))
}

const DRAIN_WORKFLOW: &str = "\
name: update
version: 1
targets:
  nodes: [\"@compute\"]
steps:
  - name: kernel
    run: \"true\"
    change: drain
";

#[test]
fn a_drain_step_without_drain_hooks_is_refused_everywhere() {
    let site = site_without_drain().write("workflows/update.yml", DRAIN_WORKFLOW);
    assert_eq!(
        site.invalid(),
        r#"error: step `kernel` is `change: drain`, but no drain hooks are configured
 --> workflows/update.yml:8:13
  |
8 |     change: drain
  |             ^^^^^
  |
  = help: add `drain:` hooks to drover.yml or to this workflow, or declare that its nodes need no drain: `drain: { none: "the reason" }`

error: 1 problem in 1 file
"#
    );
    let plan = site.run(&["plan", "update"]);
    assert_eq!(plan.code, exit_code::INVALID_CONFIG, "{}", plan.stderr);
    let run = site.run(&[
        "run",
        "update",
        "--tags",
        "drain",
        "--transport",
        "local",
        "--yes",
    ]);
    assert_eq!(run.code, exit_code::INVALID_CONFIG, "{}", run.stderr);
    assert!(
        run.stderr.contains("no drain hooks are configured"),
        "{}",
        run.stderr
    );
}

#[test]
fn a_workflow_may_declare_that_its_nodes_need_no_drain() {
    let wf = DRAIN_WORKFLOW.replace(
        "steps:",
        "drain: { none: \"stateless VMs; the load balancer takes them out\" }\nsteps:",
    );
    let site = site_without_drain().write("workflows/update.yml", &wf);
    let out = site.run(&["validate", "."]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let run = site.run(&[
        "run",
        "update",
        "--tags",
        "drain",
        "--transport",
        "local",
        "--yes",
    ]);
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);

    // The reason is required, and `none` takes no hooks beside it.
    let site = site_without_drain().write(
        "workflows/update.yml",
        &DRAIN_WORKFLOW.replace("steps:", "drain: { none: \"\" }\nsteps:"),
    );
    assert!(site.invalid().contains("needs the reason as a non-empty string"));
    let site = site_without_drain().write(
        "workflows/update.yml",
        &DRAIN_WORKFLOW.replace("steps:", "drain: { none: x, drain: \"true\" }\nsteps:"),
    );
    assert!(site.invalid().contains("takes no other key"));
}

#[test]
fn durations_and_counts_above_their_limits_are_refused_with_value_and_limit() {
    let site = Site::new()
        .write(
            "workflows/update.yml",
            "name: update\nversion: 1\ntargets: { nodes: [\"@compute\"] }\n\
             steps:\n  - name: s\n    run: \"true\"\n    change: hot\n    timeout: 3000000000000000h\n",
        )
        .write(
            "workflows/b.yml",
            "name: b\nversion: 1\ntargets: { nodes: [\"@compute\"] }\n\
             canary: { soak: 30d }\nstrategy: { retries: { count: 4294967295, delay: 2d } }\n\
             steps:\n  - name: s\n    run: \"true\"\n    change: hot\n    retries: 1000\n\
             \x20 - name: w\n    wait_for: { command: \"true\", interval: 2h, timeout: 25h }\n    change: hot\n",
        )
        .write(
            "workflows/c.yml",
            "name: c\nversion: 1\ntargets: { nodes: [\"@compute\"] }\ncanary: { soak: 1000000h }\n\
             strategy: { batch: 4294967295 }\nsteps:\n  - name: s\n    run: \"true\"\n    change: hot\n",
        );
    let err = site.invalid();
    for expected in [
        "error: duration `3000000000000000h` is too large: no setting accepts more than 1year\n --> workflows/update.yml:8:14",
        "error: 30days is above the limit of 7days\n --> workflows/b.yml:4:17",
        "= help: `canary.soak` may be at most 7days",
        "error: 4294967295 is above the limit of 100\n --> workflows/b.yml:5:31",
        "error: 2days is above the limit of 1day",
        "error: 1000 is above the limit of 100",
        "error: 2h is above the limit of 1h",
        "error: 1day 1h is above the limit of 1day",
        "error: duration `1000000h` is too large",
        "error: amount `4294967295` is above the limit of 100000 nodes",
    ] {
        assert!(err.contains(expected), "missing {expected:?} in:\n{err}");
    }

    let site = Site::new().write(
        "drover.yml",
        &format!(
            "{}ssh: {{ forks: 100000, connect_timeout: 1h }}\nleases: {{ ttl: 2d, wait_timeout: 8d }}\n",
            SITE.replace("windows:", "  poll_interval: 2h\n  timeout: 15d\nwindows:")
        ),
    );
    let err = site.invalid();
    for expected in [
        "2h is above the limit of 1h",
        "15days is above the limit of 14days",
        "100000 is above the limit of 10000",
        "1h is above the limit of 10m",
        "2days is above the limit of 1day",
        "8days is above the limit of 7days",
    ] {
        assert!(err.contains(expected), "missing {expected:?} in:\n{err}");
    }
}

#[test]
fn the_readme_lists_every_limit() {
    let readme = std::fs::read_to_string(repo_root().join("README.md")).unwrap();
    for row in drover::units::limits::readme_rows() {
        assert!(readme.contains(&row), "README.md lacks the row\n{row}");
    }
}

#[test]
fn file_sources_outside_the_site_are_refused_with_the_resolved_path() {
    let site = Site::new().write("files/motd", "hi\n");
    std::os::unix::fs::symlink("/etc/hostname", site.path().join("files/link")).unwrap();
    let copy = |n: u8, src: &str| {
        format!("  - name: c{n}\n    copy: {{ src: \"{src}\", dest: /etc/x }}\n    change: hot\n")
    };
    let wf = format!(
        "{WORKFLOW}{}{}{}{}",
        copy(1, "/etc/hostname"),
        copy(2, "../../../../../../../../etc/passwd"),
        copy(3, "../files/link"),
        copy(4, "../files/motd"),
    );
    let site = site.write("workflows/update.yml", &wf);
    let err = site.invalid();
    assert!(
        err.contains("error: `/etc/hostname` resolves to `/etc/hostname`, outside the site"),
        "{err}"
    );
    assert!(
        err.contains(
            "error: `../../../../../../../../etc/passwd` resolves to `/etc/passwd`, outside the site"
        ),
        "{err}"
    );
    assert!(
        err.contains("error: `../files/link` resolves to `/etc/hostname`, outside the site"),
        "{err}"
    );
    assert!(err.contains("extra_roots"), "{err}");
    assert!(err.contains("error: 3 problems in 1 file"), "{err}");

    // A root listed in the site config allows its files; a root must exist.
    let site = site.write("drover.yml", &format!("{SITE}files:\n  extra_roots: [/etc]\n"));
    let out = site.run(&["validate", "."]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let site = site.write("drover.yml", &format!("{SITE}files:\n  extra_roots: [nope]\n"));
    assert!(site.invalid().contains("cannot use `nope` as a file root"));
}

#[test]
fn the_node_count_is_capped_before_host_lists_are_expanded() {
    let site = Site::new().write(
        "inventory.yml",
        "nodes:\n  a[1-600000]: {}\n  b[1-600000]: {}\ngroups:\n  compute: [a1]\n",
    );
    let started = Instant::now();
    let err = site.invalid();
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(
        err,
        "error: the inventory defines 1200000 nodes: the limit is 100000
 --> inventory.yml:1:1
  |
1 | nodes:
  | ^^^^^
  |
  = help: a count this large is almost always a typo in a host list range, like `n[1-1000000]`

error: 1 problem in 1 file
"
    );
    // Under a 256 MiB address-space limit too (the lists would take about 780 MB).
    if std::process::Command::new("prlimit")
        .arg("--version")
        .output()
        .is_ok()
    {
        let out = std::process::Command::new("prlimit")
            .args(["--as=268435456", "--"])
            .arg(drover_bin())
            .args(["validate", "."])
            .current_dir(site.path())
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(exit_code::INVALID_CONFIG));
        assert!(String::from_utf8_lossy(&out.stderr).contains("the limit is 100000"));
    }
}

#[test]
fn every_decoding_problem_of_a_file_is_reported_in_one_pass() {
    let site = Site::new().write(
        "workflows/update.yml",
        "name: update\nsteps:\n  - name: s\n    run: x\n    chekc: \"true\"\n    change: hott\n\
         \x20 - run: y\n    change: hot\n    timeout: 30\n",
    );
    let err = site.invalid();
    for expected in [
        "error: missing required key `version`",
        "error: missing required key `targets`",
        "error: unknown key `chekc` in `steps[0]`",
        "error: unknown variant `hott`, expected `hot` or `drain`",
        "error: missing required key `name`\n --> workflows/update.yml:7:5",
        "error: invalid duration `30`: a bare number has no unit",
        "error: 6 problems in 1 file",
    ] {
        assert!(err.contains(expected), "missing {expected:?} in:\n{err}");
    }
}

/// Defense in depth: a workflow that somehow reaches the engine with a drain step, no
/// hooks and no `drain: { none }` fails the node instead of running the step undrained.
#[test]
fn the_engine_fails_a_drain_step_without_hooks_instead_of_running_it() {
    use drover::engine::{Journal, NodeCycle, NodeEnd, NodeJob, template_context};
    use drover::template::TemplateEngine;
    use drover::transport::{Connector, LocalConnector};

    let marker = tempfile::tempdir().unwrap();
    let ran = marker.path().join("ran");
    let wf = DRAIN_WORKFLOW
        .replace("steps:", "drain: { none: \"test\" }\nsteps:")
        .replace("run: \"true\"", &format!("run: touch {}", ran.display()));
    let site = site_without_drain().write("workflows/update.yml", &wf);
    let project = drover::project::Project::load(site.path()).unwrap();
    let mut workflow = project.workflows[0].clone();
    let node = project.inventory.nodes()[0].clone();
    let templates = TemplateEngine::new();
    let (events, _rx) = drover::engine::event_channel(64);
    let files = drover::engine::FileSources::default();
    let locks = drover::transport::NodeLocks::default();
    let journal = Journal::new(None, "test".into());
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let run = |workflow: &drover::workflow::Workflow| {
        let cycle = NodeCycle {
            job: NodeJob {
                node: &node,
                workflow,
                templates: &templates,
                context: template_context(&node, workflow, &serde_json::Map::new(), &serde_json::json!({})),
                log: None,
                files: &files,
                locks: &locks,
                diff: false,
                groups: Vec::new(),
            },
            connector: &LocalConnector,
            hooks: None,
            journal: &journal,
            events: &events,
            reason: "test",
            slurm: None,
        };
        let mut conn = Some(rt.block_on(LocalConnector.connect(&node)).unwrap());
        rt.block_on(cycle.run(&mut conn, &[0], 0, 1, false))
    };
    // Declared: the step runs.
    assert_eq!(run(&workflow), NodeEnd::Done);
    assert!(ran.exists());
    std::fs::remove_file(&ran).unwrap();
    // Not declared: the node fails and the step never runs.
    workflow.no_drain = None;
    match run(&workflow) {
        NodeEnd::Failed { error, .. } => assert!(error.contains("no drain hooks are configured"), "{error}"),
        other => panic!("expected a failure, got {other:?}"),
    }
    assert!(!ran.exists(), "the drain step ran without a drain");
}

#[test]
fn quoting_can_only_be_switched_off_with_raw_and_validate_json_lists_every_raw() {
    let site = Site::new().write(
        "workflows/update.yml",
        &format!(
            "{WORKFLOW}  - name: block\n    run: \"{{% autoescape false %}}{{{{ node.name }}}}{{% endautoescape %}}\"\n    change: hot\n\
             \x20 - name: safe\n    run: \"echo {{{{ node.name | safe }}}}\"\n    change: hot\n"
        ),
    );
    assert_eq!(
        site.invalid(),
        r#"error: invalid template: `{% autoescape %}` switches shell quoting off in a command
  --> workflows/update.yml:11:10
   |
11 |     run: "{% autoescape false %}{{ node.name }}{% endautoescape %}"
   |          ^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^
   |
   = help: a block would switch quoting off for everything in it; mark each value that is shell code with `| raw`

error: invalid template: `| safe` switches shell quoting off in a command
  --> workflows/update.yml:14:10
   |
14 |     run: "echo {{ node.name | safe }}"
   |          ^^^^^^^^^^^^^^^^^^^^^^^^^^^^^
   |
   = help: write `| raw`: it does the same, and is the one opt-out drover documents and lists for review

error: 2 problems in 1 file
"#
    );

    // `raw` stays, and every use is listed with file, line, step and key.
    let site = Site::new()
        .write(
            "drover.yml",
            &SITE.replace("reason={{ reason }}", "reason={{ reason | raw }}"),
        )
        .write(
            "workflows/update.yml",
            &format!(
                "{WORKFLOW}  - name: script\n    run: |\n      set -e\n      {{{{ node.name | raw }}}}\n    check: \"test {{{{ node.name|raw }}}}\"\n    change: hot\n"
            ),
        );
    let out = site.run(&["validate", ".", "--json"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let v: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(
        v["quoting_opt_outs"],
        serde_json::json!([
            {"file": "drover.yml", "line": 4, "column": 10, "key": "drain.drain", "what": "raw"},
            {"file": "workflows/update.yml", "line": 13, "column": 7, "step": "script", "key": "steps[1].run", "what": "raw"},
            {"file": "workflows/update.yml", "line": 14, "column": 12, "step": "script", "key": "steps[1].check", "what": "raw"},
        ])
    );
}

#[test]
fn undefined_template_names_fail_validation_with_a_suggestion() {
    let site = Site::new()
        .write(
            "inventory.yml",
            &INVENTORY.replace("  n[01-10]: {}\n", "  n[01-05]: { vars: { gpu: a100, rack: r1 } }\n  n[06-10]: { vars: { rack: r2 } }\n"),
        )
        .write("workflows/templates/motd.j2", "welcome\nto {{ node.vars.rakc }}\n")
        .write(
            "workflows/update.yml",
            "name: update\nversion: 1\ntargets:\n  nodes: [\"@compute\"]\nvars:\n  package: nginx\n\
             steps:\n  - name: install\n    run: apt-get install {{ vars.pakage }}\n    change: hot\n\
             \x20 - name: gpu\n    run: nvidia-smi -i {{ node.vars.gpu }}\n    change: hot\n\
             \x20 - name: guarded\n    run: echo {{ node.vars.gpu | default('none') }}\n    when: node.vars.gpu is defined\n    change: hot\n\
             \x20 - name: motd\n    template: { src: templates/motd.j2, dest: /etc/motd }\n    change: hot\n",
        );
    let err = site.invalid();
    for expected in [
        "error: invalid template: `vars.pakage` is not defined\n --> workflows/update.yml:9:10",
        "= help: did you mean `package`?",
        "error: invalid template: `node.vars.gpu` is not defined\n  --> workflows/update.yml:12:10",
        "(only keys that every target node has are known)",
        "error: invalid template file: `node.vars.rakc` is not defined (line 2 of the file)\n  --> workflows/update.yml:19:22",
        "= help: did you mean `rack`? (only keys that every target node has are known)",
        "error: 3 problems in 1 file",
    ] {
        assert!(err.contains(expected), "missing {expected:?} in:\n{err}");
    }
}

#[test]
fn run_checks_template_names_again_with_extra_vars_before_touching_a_node() {
    let marker = tempfile::tempdir().unwrap();
    let ran = marker.path().join("ran");
    let site = Site::new().write(
        "workflows/update.yml",
        &format!(
            "name: update\nversion: 1\ntargets:\n  nodes: [\"@compute\"]\nvars:\n  cfg: {{ port: 80 }}\n\
             steps:\n  - name: s\n    run: touch {}; echo {{{{ vars.cfg.port }}}}\n    change: hot\n",
            ran.display()
        ),
    );
    let ok = site.run(&[
        "run",
        "update",
        "--transport",
        "local",
        "--yes",
        "--extra-vars",
        r#"{"cfg": {"port": 8080}}"#,
    ]);
    assert_eq!(ok.code, 0, "{}", ok.stderr);
    assert!(ran.exists());
    std::fs::remove_file(&ran).unwrap();
    let out = site.run(&[
        "run",
        "update",
        "--transport",
        "local",
        "--yes",
        "--extra-vars",
        r#"{"cfg": {"prot": 1}}"#,
    ]);
    assert_eq!(
        out.code,
        exit_code::INVALID_CONFIG,
        "{}\n{}",
        out.stdout,
        out.stderr
    );
    assert!(
        out.stderr.contains("with --extra-vars, workflows/update.yml `steps[0].run`: invalid template: `vars.cfg.port` is not defined"),
        "{}",
        out.stderr
    );
    assert!(out.stderr.contains("did you mean `prot`?"), "{}", out.stderr);
    assert!(!ran.exists(), "a node was touched");
}

#[test]
fn canary_nodes_outside_the_targets_are_a_warning_and_a_plan_line() {
    let site = Site::new().write(
        "workflows/update.yml",
        &WORKFLOW.replace("window: day\n", "window: day\ncanary: { nodes: [n01, login1] }\n"),
    );
    let out = site.run(&["validate", "."]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(
        out.stderr,
        "warning: canary node `login1` is not among the targets and left out of the canary phase
 --> workflows/update.yml:6:18
  |
6 | canary: { nodes: [n01, login1] }
  |                  ^^^^^^^^^^^^^^
  |
  = help: canary nodes are taken from the targets; add them to `targets` or drop them here

"
    );
    let plan = site.run(&["plan", "update"]);
    assert_eq!(plan.code, 0, "{}", plan.stderr);
    assert!(
        plan.stdout
            .contains("  canary nodes not among the targets, left out: 1 login1\n"),
        "{}",
        plan.stdout
    );
}

/// `server.slack_signing_secret` was warned about as "not in effect: there is no Slack
/// endpoint yet" after `/hooks/slack` had landed and used it as its default secret: a
/// warning that says the opposite of what happens. Every setting is in effect now.
#[test]
fn notification_server_and_slack_settings_raise_no_not_in_effect_warning() {
    let site = Site::new().write(
        "drover.yml",
        &format!(
            "{SITE}notifications:\n  slack: {{ webhook_url: {{ env: HOOK }} }}\nserver:\n  listen: 127.0.0.1:8080\n  token: {{ env: TOKEN }}\n  slack_signing_secret: {{ env: SLACK }}\n"
        ),
    );
    let out = site.run(&["validate", "."]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(!out.stderr.contains("not in effect"), "{}", out.stderr);
    assert!(!out.stderr.contains("warning"), "{}", out.stderr);
    let json = site.run(&["validate", ".", "--json"]);
    let v: serde_json::Value = serde_json::from_str(&json.stdout).unwrap();
    assert_eq!(v["warnings"].as_array().map(Vec::len), Some(0), "{v}");
}

#[test]
fn a_broken_other_workflow_is_a_warning_for_plan_and_run_but_not_for_validate() {
    let site = Site::new().write("workflows/broken.yml", "name: broken\nsteps: 3\n");
    assert!(site.invalid().contains("workflows/broken.yml"));
    let plan = site.run(&["plan", "update"]);
    assert_eq!(plan.code, 0, "{}", plan.stderr);
    assert!(
        plan.stderr.contains(
            "warning: missing required key `version` (in another workflow; `update` goes on without it)"
        ),
        "{}",
        plan.stderr
    );
    let run = site.run(&[
        "run",
        "update",
        "--transport",
        "local",
        "--yes",
        "--ignore-window",
    ]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    // The chosen workflow itself, the site and the inventory still block everything.
    let plan = site.run(&["plan", "broken"]);
    assert_eq!(plan.code, exit_code::INVALID_CONFIG, "{}", plan.stderr);
    let site = site.write("inventory.yml", "nodes: [\n");
    let plan = site.run(&["plan", "update"]);
    assert_eq!(plan.code, exit_code::INVALID_CONFIG, "{}", plan.stderr);
}

#[test]
fn ssh_settings_for_a_group_the_inventory_lacks_are_an_error_with_a_suggestion() {
    let site = Site::new()
        .write(
            "drover.yml",
            &format!("{SITE}ssh:\n  groups:\n    compte:\n      user: admin\n"),
        )
        .write("workflows/update.yml", WORKFLOW);
    let out = site.invalid();
    assert!(
        out.contains("error: `compte` is not a group of the inventory"),
        "{out}"
    );
    assert!(out.contains("did you mean `compute`?"), "{out}");
    assert!(out.contains("drover.yml:"), "{out}");
}
