//! Inputs that are not files: devices, FIFOs. A size check on `metadata` sees 0 bytes
//! for `/dev/zero`, and opening a FIFO blocks, so these hung drover (reading forever,
//! or waiting for a writer) before they were refused as "not a regular file".

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::support::{Output, Site, WORKFLOW, drover_bin};

/// `drover ARGS` in the site, killed after 20 s: a hang fails the test instead of the suite.
fn run_bounded(site: &Site, args: &[&str]) -> Output {
    let mut child = Command::new(drover_bin())
        .args(args)
        .current_dir(site.path())
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run drover");
    let started = Instant::now();
    while child.try_wait().expect("wait").is_none() {
        if started.elapsed() > Duration::from_secs(20) {
            let _ = child.kill();
            let _ = child.wait();
            panic!("drover {args:?} hung");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let out = child.wait_with_output().expect("output");
    Output {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

fn mkfifo(path: &std::path::Path) {
    assert!(
        Command::new("mkfifo")
            .arg(path)
            .status()
            .expect("mkfifo")
            .success()
    );
}

#[test]
fn extra_vars_from_a_device_is_refused_not_read_forever() {
    let s = Site::new();
    let out = run_bounded(
        &s,
        &[
            "run",
            "update",
            "--site",
            ".",
            "--dry-run",
            "--yes",
            "--extra-vars",
            "@/dev/zero",
        ],
    );
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert!(
        out.stderr
            .contains("--extra-vars: cannot read /dev/zero: not a regular file"),
        "{}",
        out.stderr
    );
}

#[test]
fn extra_vars_from_a_fifo_is_refused_without_blocking() {
    let s = Site::new();
    mkfifo(&s.path().join("vars.json"));
    let out = run_bounded(
        &s,
        &[
            "run",
            "update",
            "--site",
            ".",
            "--dry-run",
            "--yes",
            "--extra-vars",
            "@vars.json",
        ],
    );
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert!(
        out.stderr.contains("vars.json: not a regular file"),
        "{}",
        out.stderr
    );
}

#[test]
fn an_inventory_that_is_a_device_is_refused() {
    let s = Site::new();
    let site = std::fs::read_to_string(s.path().join("drover.yml")).unwrap();
    let s = s.write(
        "drover.yml",
        &site.replace("inventory: inventory.yml", "inventory: /dev/zero"),
    );
    let out = run_bounded(&s, &["validate", "."]);
    assert_eq!(out.code, 3, "{}", out.stderr);
    assert!(out.stderr.contains("not a regular file"), "{}", out.stderr);
    assert!(out.stderr.contains("/dev/zero"), "{}", out.stderr);
}

#[test]
fn a_template_source_that_is_a_fifo_is_refused_at_validate() {
    let s = Site::new().write(
        "workflows/update.yml",
        &format!(
            "{WORKFLOW}  - name: motd\n    template: {{ src: motd.j2, dest: /etc/motd }}\n    change: hot\n"
        ),
    );
    mkfifo(&s.path().join("workflows/motd.j2"));
    let out = run_bounded(&s, &["validate", "."]);
    assert_eq!(out.code, 3, "{}", out.stderr);
    assert!(
        out.stderr.contains("cannot read `motd.j2`: not a regular file"),
        "{}",
        out.stderr
    );
    assert!(out.stderr.contains("workflows/update.yml:"), "{}", out.stderr);
}

/// Templates have no loader: `{% include %}` and friends compiled, passed `validate`, and
/// failed with "template not found" on the canary.
#[test]
fn templates_that_load_other_templates_are_refused_at_validate() {
    for (tag, text) in [
        ("include", "{% include \"x\" %}"),
        ("extends", "{% extends \"base\" %}"),
        ("import", "{% import \"m\" as m %}"),
        ("from", "{% from \"m\" import f %}"),
    ] {
        let s = Site::new().write(
            "workflows/update.yml",
            &WORKFLOW.replace("echo upgraded", &format!("'echo {text}'")),
        );
        let err = s.invalid();
        assert!(
            err.contains(&format!("`{{% {tag} %}}` is not supported")),
            "{tag}: {err}"
        );
        assert!(err.contains("workflows/update.yml:"), "{tag}: {err}");
    }
}
