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
