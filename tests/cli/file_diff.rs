//! `--diff` with the local transport: mode differences, a fleet with nothing to change,
//! and the diff shown before a real run's changes.

use std::os::unix::fs::PermissionsExt;

use crate::support::Site;

fn site() -> Site {
    Site::new().write("workflows/files/a.conf", "x = 1\ny = 2\n").write(
        "workflows/update.yml",
        "name: update\nversion: 1\ntargets: { nodes: [\"n[01-02]\"] }\ncanary: { size: 0 }\n\
         steps:\n  - name: conf\n    copy: { src: files/a.conf, dest: \"{{ site.root }}/out-{{ node.name }}.conf\", mode: \"0600\" }\n    change: hot\n",
    )
}

#[test]
fn a_mode_difference_is_named_and_a_fleet_that_is_right_says_so() {
    let s = site();
    let first = s.run(&["run", "update", "--yes", "--diff"]);
    assert_eq!(first.code, 0, "{}\n{}", first.stdout, first.stderr);
    // The diff comes with the check, before anything is written.
    let diff_at = first.stdout.find("+x = 1\n+y = 2\n").expect(&first.stdout);
    let ran_at = first
        .stdout
        .find("n01: ok (1 file changed)")
        .expect(&first.stdout);
    assert!(diff_at < ran_at, "{}", first.stdout);

    let right = s.run(&["check", "update", "--diff"]);
    assert_eq!(right.code, 0, "{}", right.stderr);
    assert!(
        right
            .stdout
            .ends_with("ERROR      0  -\ndiff: no file would change\n"),
        "{}",
        right.stdout
    );

    // Only the mode of n02's file differs: no content, only the mode.
    let p = s.path().join("out-n02.conf");
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o644)).unwrap();
    let mode = s.run(&["run", "update", "--dry-run", "--diff"]);
    assert_eq!(mode.code, 0, "{}", mode.stderr);
    assert!(
        mode.stdout.contains(&format!(
            "n02: `conf` would change {}: mode 0644 → 0600\n",
            std::fs::canonicalize(&p).unwrap().display()
        )),
        "{}",
        mode.stdout
    );
    assert!(!mode.stdout.contains("@@"), "{}", mode.stdout);
    assert!(!mode.stdout.contains("n01:"), "{}", mode.stdout);
    // A dry run changes nothing.
    assert_eq!(std::fs::metadata(&p).unwrap().permissions().mode() & 0o777, 0o644);
}

#[test]
fn without_diff_nothing_of_files_is_shown() {
    let s = site();
    let out = s.run(&["check", "update"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(
        !out.stdout.contains("would change") && !out.stdout.contains("diff:"),
        "{}",
        out.stdout
    );
}
