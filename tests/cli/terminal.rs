//! What an operator reads: grouped errors, timestamps, colour, plurals.

use crate::support::*;

fn site(check: &str) -> Site {
    Site::new().write(
        "workflows/update.yml",
        &format!(
            "name: update\nversion: 1\ntargets: {{ nodes: [\"@compute\"] }}\n\
             steps:\n  - name: probe\n    run: \"true\"\n    check: {check}\n    change: hot\n"
        ),
    )
}

#[test]
fn identical_check_errors_print_once_with_a_host_list() {
    // Each node's message names the node itself; they are still the same error.
    let s = site("'echo \"connect to host $DROVER_NODE: connection refused\" >&2; exit 3'");
    let out = s.run(&["check", "update"]);
    assert_eq!(out.code, 6, "{}\n{}", out.stdout, out.stderr);
    let errors: Vec<&str> = out.stdout.lines().filter(|l| l.contains("refused")).collect();
    assert_eq!(
        errors,
        [
            "  n[01-10]: check of step `probe` exited with code 3 (expected 0 = done or 1 = needed): \
             connect to host <node>: connection refused"
        ],
        "{}",
        out.stdout
    );
}

#[test]
fn different_errors_stay_apart_and_a_lone_error_keeps_its_node_name() {
    let s = site(
        "if [ \"$DROVER_NODE\" = n03 ]; then echo \"disk full on n03\" >&2; exit 4; fi; \
         echo \"refused by $DROVER_NODE\" >&2; exit 3",
    );
    let out = s.run(&["check", "update"]);
    let errors: Vec<&str> = out.stdout.lines().filter(|l| l.starts_with("  ")).collect();
    assert_eq!(
        errors,
        [
            "  n[01-02,04-10]: check of step `probe` exited with code 3 (expected 0 = done or 1 = needed): \
             refused by <node>",
            "  n03: check of step `probe` exited with code 4 (expected 0 = done or 1 = needed): disk full on n03",
        ],
        "{}",
        out.stdout
    );
}

#[test]
fn timestamps_on_terminal_lines_and_in_the_run_log() {
    let s = site("exit 1");
    let out = s.run(&["run", "update", "--yes", "--timestamps"]);
    assert_eq!(out.code, 0, "{}\n{}", out.stdout, out.stderr);
    let stamped = |l: &str| {
        let b = l.as_bytes();
        b.len() > 9
            && b[2] == b':'
            && b[5] == b':'
            && b[8] == b' '
            && l[..8].replace(':', "").bytes().all(|c| c.is_ascii_digit())
    };
    let progress: Vec<&str> = out.stdout.lines().filter(|l| l.contains("n05: ok")).collect();
    assert_eq!(progress.len(), 1, "{}", out.stdout);
    assert!(stamped(progress[0]), "{progress:?}");
    assert!(
        out.stdout
            .lines()
            .any(|l| stamped(l) && l.ends_with("checking 10 nodes")),
        "{}",
        out.stdout
    );

    let log = std::fs::read_dir(s.path().join(".drover/logs"))
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let text = std::fs::read_to_string(log).unwrap();
    let entry = text
        .lines()
        .find(|l| l.starts_with("n05: ") && l.contains("== step `probe`"))
        .unwrap_or_else(|| panic!("{text}"));
    let stamp = entry["n05: ".len()..].split(' ').next().unwrap();
    assert!(stamp.parse::<jiff::Timestamp>().is_ok(), "{entry}");
}

#[test]
fn states_are_coloured_only_when_colour_is_on() {
    let s = site("exit 1");
    let plain = s.run(&["run", "update", "--yes"]);
    assert!(
        plain.stdout.contains("  n01: ok\n") && !plain.stdout.contains('\x1b'),
        "{}",
        plain.stdout
    );
    let s = site("exit 1");
    let coloured = s.run(&["--color", "always", "run", "update", "--yes"]);
    assert!(
        coloured.stdout.contains("  n01: \x1b[32mok\x1b[0m"),
        "{:?}",
        coloured.stdout
    );
}

#[test]
fn one_node_is_one_node() {
    let s = site("exit 1");
    let out = s.run(&["run", "update", "--yes", "--limit", "n01"]);
    assert!(out.stdout.contains("checking 1 node\n"), "{}", out.stdout);
    let plan = s.run(&["plan", "update"]);
    assert!(
        plan.stdout.contains("    - probe (run, hot, checked)"),
        "{}",
        plan.stdout
    );
}

#[test]
fn plan_shows_how_a_percentage_budget_was_rounded_down() {
    let s = Site::new().write(
        "workflows/update.yml",
        "name: update\nversion: 1\ntargets: { nodes: [\"@compute\"] }\n\
         strategy: { max_unavailable: \"25%\", max_unavailable_per_group: { compute: \"15%\" } }\n\
         steps:\n  - name: s\n    run: \"true\"\n    change: drain\n",
    );
    let plan = s.run(&["plan", "update"]);
    assert_eq!(plan.code, 0, "{}", plan.stderr);
    assert!(
        plan.stdout
            .contains("  max unavailable: at most 2 at once (25% of 10 = 2.5 → 2)\n"),
        "{}",
        plan.stdout
    );
    assert!(
        plan.stdout
            .contains("  group `compute`: at most 1 at once (15% of 10 = 1.5 → 1)\n"),
        "{}",
        plan.stdout
    );
}

#[test]
fn plan_says_whether_the_window_is_open_now() {
    // The default test workflow uses window `day` (Mon-Fri 08:00-17:00 Berlin).
    let plan = Site::new().run(&["plan", "update"]);
    assert_eq!(plan.code, 0, "{}", plan.stderr);
    let line = plan
        .stdout
        .lines()
        .find(|l| l.starts_with("  window: day ("))
        .unwrap_or_else(|| panic!("{}", plan.stdout));
    assert!(
        line.contains("; open now; closes ") || line.contains("; closed now; opens "),
        "{line}"
    );
}

#[test]
fn file_steps_report_changed_then_unchanged_per_node_and_per_step() {
    let s = Site::new()
        .write("workflows/files/a.conf", "x = 1\n")
        .write(
            "workflows/update.yml",
            "name: update\nversion: 1\ntargets: { nodes: [\"n[01-02]\"] }\ncanary: { size: 0 }\n\
             steps:\n  - name: always\n    run: \"true\"\n    check: exit 1\n    change: hot\n\
             \x20 - name: conf\n    copy: { src: files/a.conf, dest: \"{{ site.root }}/out-{{ node.name }}.conf\" }\n    change: hot\n",
        );
    let first = s.run(&["run", "update", "--yes"]);
    assert_eq!(first.code, 0, "{}\n{}", first.stdout, first.stderr);
    assert!(
        first.stdout.contains("  n01: ok (1 file changed)\n"),
        "{}",
        first.stdout
    );
    assert!(
        first
            .stdout
            .contains("steps:\n  always  ok 2\n  conf    changed 2\n"),
        "{}",
        first.stdout
    );
    assert_eq!(
        std::fs::read_to_string(s.path().join("out-n02.conf")).unwrap(),
        "x = 1\n"
    );
    let again = s.run(&["run", "update", "--yes"]);
    assert!(
        again.stdout.contains("  n01: ok (1 file unchanged)\n"),
        "{}",
        again.stdout
    );
    assert!(
        again.stdout.contains("  conf    unchanged 2\n"),
        "{}",
        again.stdout
    );
}
