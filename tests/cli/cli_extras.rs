//! `-e key=value`, `runs logs`, `--version`.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::support::*;

fn greeting_site(step_extra: &str) -> Site {
    let site = Site::new().write(
        "workflows/update.yml",
        &format!(
            "name: update\nversion: 1\ntargets: {{ nodes: [\"n[01-03]\"] }}\nvars: {{ greeting: hello, who: world }}\n\
             steps:\n  - name: greet\n    run: {step_extra}echo {{{{ vars.greeting }}}} {{{{ vars.who }}}} > \"marks/$DROVER_NODE\"\n    change: hot\n"
        ),
    );
    std::fs::create_dir_all(site.path().join("marks")).expect("mkdir");
    site
}

fn run_id(stdout: &str) -> String {
    stdout
        .lines()
        .find_map(|l| {
            l.strip_prefix("run ")
                .and_then(|r| r.split_once(':'))
                .map(|(id, _)| id.to_string())
        })
        .unwrap_or_else(|| panic!("no run id in:\n{stdout}"))
}

#[test]
fn extra_vars_in_ansible_key_value_form_with_the_short_flag() {
    let site = greeting_site("");
    let out = site.run(&[
        "run",
        "update",
        "--yes",
        "-e",
        r#"{"greeting": "hi", "who": "json"}"#,
        "-e",
        "who='the operators'",
    ]);
    assert_eq!(out.code, 0, "{}\n{}", out.stdout, out.stderr);
    let mark = std::fs::read_to_string(site.path().join("marks/n02")).expect("mark");
    assert_eq!(mark, "hi the operators\n");

    let bad = site.run(&["run", "update", "--yes", "-e", "who"]);
    assert_eq!(bad.code, 2, "{}", bad.stderr);
    let bad = site.run(&["run", "update", "--yes", "-e", "who=x 2x=y"]);
    assert_eq!(bad.code, 2);
    assert!(
        bad.stderr.contains("error: --extra-vars: `2x` is not a var name"),
        "{}",
        bad.stderr
    );
}

#[test]
fn runs_logs_prints_a_run_log_whole_or_for_one_node() {
    let site = greeting_site("");
    let out = site.run(&["run", "update", "--yes"]);
    assert_eq!(out.code, 0, "{}\n{}", out.stdout, out.stderr);
    let id = run_id(&out.stdout);

    let all = site.run(&["runs", "logs", &id]);
    assert_eq!(all.code, 0, "{}", all.stderr);
    for n in ["n01", "n02", "n03"] {
        assert!(
            all.stdout
                .lines()
                .any(|l| l.starts_with(&format!("{n}: ")) && l.ends_with("== step `greet`")),
            "{}",
            all.stdout
        );
    }
    let one = site.run(&["runs", "logs", &id, "--node", "n02"]);
    assert_eq!(one.code, 0, "{}", one.stderr);
    assert!(!one.stdout.is_empty());
    assert!(
        one.stdout.lines().all(|l| l.starts_with("n02: ")),
        "{}",
        one.stdout
    );
    assert!(one.stdout.contains("n02: [exit 0]"), "{}", one.stdout);

    let typo = site.run(&["runs", "logs", &id, "--node", "n2"]);
    assert_eq!(typo.code, 2);
    assert!(
        typo.stderr
            .contains(&format!("error: node `n2` is not in run {id}")),
        "{}",
        typo.stderr
    );
    let none = site.run(&["runs", "logs", "nope"]);
    assert_eq!(none.code, 2);
    assert!(none.stderr.contains("error: no run `nope`"), "{}", none.stderr);
}

#[test]
fn runs_logs_of_a_site_without_runs_creates_no_state() {
    let site = greeting_site("");
    let out = site.run(&["runs", "logs", "nope"]);
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert!(out.stderr.contains("error: no run `nope`"), "{}", out.stderr);
    assert!(!site.path().join(".drover").exists(), "nothing was created");
}

#[test]
fn runs_logs_follow_prints_until_the_run_ends() {
    let site = greeting_site("sleep 1; ");
    // One node at a time, so the run lasts a few seconds.
    let site = site.write(
        "drover.yml",
        &format!("{SITE}transport: local\nssh: {{ forks: 1 }}\n"),
    );
    let run = Command::new(drover_bin())
        .args(["run", "update", "--yes"])
        .current_dir(site.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start the run");
    // Wait for the run record.
    let deadline = Instant::now() + Duration::from_secs(20);
    let id = loop {
        let l = site.run(&["runs", "list"]);
        if let Some(row) = l.stdout.lines().find(|r| r.contains("update v1")) {
            break row.split_whitespace().next().unwrap().to_string();
        }
        assert!(Instant::now() < deadline, "no run recorded");
        std::thread::sleep(Duration::from_millis(100));
    };
    let follow = site.run(&["runs", "logs", &id, "--follow", "--node", "n03"]);
    let finished = run.wait_with_output().expect("run ends");
    assert!(finished.status.success());
    assert_eq!(follow.code, 0, "{}", follow.stderr);
    // It saw the last node's step, which ran after it started following.
    assert!(follow.stdout.contains("n03: [exit 0]"), "{}", follow.stdout);
}

#[test]
fn version_names_the_commit() {
    let out = Site::new().run(&["--version"]);
    assert_eq!(out.code, 0);
    let head = Command::new("git")
        .args(["rev-parse", "--short=12", "HEAD"])
        .current_dir(repo_root())
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string());
    let want = match head {
        Some(h) => format!("drover {} (commit {h})\n", env!("CARGO_PKG_VERSION")),
        None => format!(
            "drover {} (commit unknown: not built from a git checkout)\n",
            env!("CARGO_PKG_VERSION")
        ),
    };
    assert_eq!(out.stdout, want);
}
