//! `drover run --transport local`: the engine on this machine, no SSH.

use crate::support::*;

#[test]
fn a_template_destination_that_renders_relative_is_refused_on_the_node() {
    let site = Site::new()
        .write("workflows/files/a.conf", "x\n")
        .write(
            "workflows/update.yml",
            "name: update\nversion: 1\ntargets: { nodes: [n01] }\nvars: { where: relative/a.conf }\n\
             steps:\n  - name: put\n    copy: { src: files/a.conf, dest: \"{{ vars.where }}\" }\n    change: hot\n",
        );
    let out = site.run(&["run", "update", "--transport", "local", "--yes"]);
    assert_eq!(out.code, 5, "{}\n{}", out.stdout, out.stderr);
    assert!(
        out.stdout.contains(
            "n01: step `put`: exited with code 2: destination relative/a.conf is not an absolute path"
        ),
        "{}",
        out.stdout
    );
    assert!(!site.path().join("relative/a.conf").exists());
}

#[test]
fn plan_and_run_agree_on_batches() {
    let site = Site::new().write(
        "workflows/update.yml",
        "name: update\nversion: 1\ntargets: { nodes: [\"@compute\"] }\nstrategy: { batch: [1, \"50%\"] }\n\
         steps:\n  - name: s\n    run: \"true\"\n    change: hot\n",
    );
    let plan = site.run(&["plan", "update"]);
    assert_eq!(plan.code, 0, "{}", plan.stderr);
    let run = site.run(&["run", "update", "--transport", "local", "--yes"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    // No check: every target needs the step, so the run's plan is the plan's plan.
    for line in [
        "  canary: 1 n01 (no soak; any failure stops the run)",
        "  batch 1: 1 n02",
        "  batch 2: 5 n[03-07]",
        "  batch 3: 3 n[08-10]",
    ] {
        assert!(
            plan.stdout.contains(line),
            "plan lacks {line:?}:\n{}",
            plan.stdout
        );
        assert!(run.stdout.contains(line), "run lacks {line:?}:\n{}", run.stdout);
    }
}

/// A workflow whose step leaves a marker per node in the site directory.
fn marking_site(extra_steps: &str) -> Site {
    Site::new().write(
        "workflows/update.yml",
        &format!(
            "name: update\nversion: 1\ntargets: {{ nodes: [\"n[01-03]\"] }}\n\
             steps:\n  - name: mark\n    run: touch \"marks/$DROVER_NODE\"\n    change: hot\n{extra_steps}"
        ),
    )
}

fn marks(site: &Site) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(site.path().join("marks"))
        .map(|d| {
            d.filter_map(Result::ok)
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

#[test]
fn run_needs_yes_off_a_terminal_and_dry_run_changes_nothing() {
    let site = marking_site("");
    std::fs::create_dir_all(site.path().join("marks")).unwrap();
    let out = site.run(&["run", "update", "--transport", "local"]);
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert!(
        out.stderr
            .contains("pass --yes to confirm when not at a terminal"),
        "{}",
        out.stderr
    );
    let dry = site.run(&["run", "update", "--transport", "local", "--dry-run"]);
    assert_eq!(dry.code, 0, "{}", dry.stderr);
    assert!(
        dry.stdout.contains("plan for update v1: 3 nodes"),
        "{}",
        dry.stdout
    );
    assert!(marks(&site).is_empty(), "nothing may run: {:?}", marks(&site));
    let run = site.run(&["run", "update", "--transport", "local", "--yes"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(marks(&site), vec!["n01", "n02", "n03"]);
}

#[test]
fn a_closed_window_refuses_to_start_unless_overridden() {
    // A window open only on the day after today (UTC) is closed now, whatever the time.
    let tomorrow = jiff::Timestamp::now()
        .to_zoned(jiff::tz::TimeZone::UTC)
        .tomorrow()
        .unwrap();
    let day = tomorrow.strftime("%a").to_string().to_lowercase();
    let site = marking_site("").write(
        "drover.yml",
        &format!(
            "transport: local\nwindows:\n  later:\n    timezone: UTC\n    days: [{day}]\n    start: \"00:00\"\n    end: \"23:59\"\n"
        ),
    );
    let wf = std::fs::read_to_string(site.path().join("workflows/update.yml")).unwrap();
    let site = site.write(
        "workflows/update.yml",
        &wf.replace("steps:", "window: later\nsteps:"),
    );
    std::fs::create_dir_all(site.path().join("marks")).unwrap();
    let out = site.run(&["run", "update", "--transport", "local", "--yes"]);
    assert_eq!(out.code, 7, "{}\n{}", out.stdout, out.stderr);
    assert!(out.stderr.contains("window `later`"), "{}", out.stderr);
    assert!(
        out.stderr.contains("is closed; it next opens at"),
        "{}",
        out.stderr
    );
    assert!(marks(&site).is_empty());
    let forced = site.run(&[
        "run",
        "update",
        "--transport",
        "local",
        "--yes",
        "--ignore-window",
    ]);
    assert_eq!(forced.code, 0, "{}", forced.stderr);
    assert_eq!(marks(&site).len(), 3);
}

#[test]
fn tags_select_steps_by_name_and_refuse_unknown_tags() {
    let site = marking_site(
        "  - name: other\n    run: touch \"marks/other-$DROVER_NODE\"\n    change: hot\n  - name: kernel\n    run: \"true\"\n    change: drain\n",
    );
    std::fs::create_dir_all(site.path().join("marks")).unwrap();
    let out = site.run(&[
        "run",
        "update",
        "--transport",
        "local",
        "--yes",
        "--limit",
        "n01",
        "--tags",
        "other",
    ]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(
        marks(&site),
        vec!["other-n01"],
        "only the step named by --tags runs"
    );

    let bad = site.run(&["run", "update", "--transport", "local", "--yes", "--tags", "warm"]);
    assert_eq!(bad.code, 2);
    assert_eq!(
        bad.stderr,
        "error: --tags: `warm` is neither `hot`, `drain` nor a step of update\nhelp: steps: mark, other, kernel\n"
    );
    assert_eq!(marks(&site), vec!["other-n01"], "a refused run runs nothing");
}

#[test]
fn extra_vars_must_be_a_json_object() {
    let site = marking_site("");
    for (arg, want) in [
        (
            "[1, 2]",
            "error: --extra-vars: the argument must be a JSON object like {\"name\": \"value\"}\n",
        ),
        (
            "@missing.json",
            "error: --extra-vars: cannot read missing.json: No such file or directory (os error 2)\n",
        ),
    ] {
        let out = site.run(&[
            "run",
            "update",
            "--transport",
            "local",
            "--yes",
            "--extra-vars",
            arg,
        ]);
        assert_eq!(out.code, 2, "{arg}");
        assert_eq!(out.stderr, want, "{arg}");
    }
    let out = site.run(&[
        "run",
        "update",
        "--transport",
        "local",
        "--yes",
        "--extra-vars",
        "{nope",
    ]);
    assert_eq!(out.code, 2);
    assert!(
        out.stderr
            .starts_with("error: --extra-vars: invalid JSON in the argument: "),
        "{}",
        out.stderr
    );
}
