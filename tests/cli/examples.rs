//! The shipped example site and every shipped workflow validate.

use std::process::Command;

use crate::support::*;

#[test]
fn shipped_example_site_validates() {
    let out = Command::new(drover_bin())
        .args(["validate", "examples/slurm-site"])
        .current_dir(repo_root())
        .output()
        .expect("run");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout
            .starts_with("examples/slurm-site/drover.yml: ok: 138 nodes, 5 groups, 2 HA groups, 1 window, "),
        "{stdout}"
    );
    // Every workflow file in workflows/ is part of the example site and passed.
    for entry in std::fs::read_dir(repo_root().join("workflows")).expect("workflows/") {
        let path = entry.expect("entry").path();
        if path.extension().is_some_and(|e| e == "yml") {
            let shown = format!(
                "(workflows/{}, ",
                path.file_name().unwrap_or_default().to_string_lossy()
            );
            assert!(stdout.contains(&shown), "{shown} missing from:\n{stdout}");
        }
    }
}

#[test]
fn shipped_example_uses_slurms_own_commands() {
    let site = std::fs::read_to_string(repo_root().join("examples/slurm-site/drover.yml")).expect("read");
    assert!(site.contains("  scheduler: slurm\n"), "{site}");
    let hook = |k: &str| {
        drover::site::SLURM_HOOKS
            .iter()
            .find(|(key, _)| *key == k)
            .map(|(_, v)| *v)
            .unwrap_or_default()
    };
    assert!(hook("drain").starts_with("scontrol update nodename={{ node.name }} state=drain reason="));
    assert!(hook("drained").contains("sinfo -h -n {{ node.name }} -o %T"));
    assert_eq!(
        hook("resume"),
        "scontrol update nodename={{ node.name }} state=resume"
    );
}

#[test]
fn validate_json_reports_success() {
    let out = Command::new(drover_bin())
        .args(["validate", "--json", "examples/slurm-site"])
        .current_dir(repo_root())
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(0));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(v["ok"], true);
    assert_eq!(v["nodes"], 138);
    assert_eq!(v["workflows"].as_array().map(Vec::len), Some(3));
}

/// The Slurm `drained` and `resumed` probes (what a site without `scheduler: slurm`
/// polls per node), run by `sh` against a fake `sinfo` printing what Slurm 22.05 prints:
/// one line per partition, with state suffixes. (`slurm::the_slurm_hook_commands_work_against_slurmctld`
/// runs them against a real slurmctld.)
#[test]
fn shipped_slurm_probes_read_real_sinfo_output() {
    let hook = |key: &str| {
        drover::site::SLURM_HOOKS
            .iter()
            .find(|(k, _)| *k == key)
            .map(|(_, v)| v.replace("{{ node.name }}", "n001"))
            .unwrap_or_else(|| panic!("no `{key}` hook"))
    };
    let bin = tempfile::tempdir().expect("bin dir");
    let probe = |cmd: &str, sinfo_prints: &str| {
        let sinfo = bin.path().join("sinfo");
        std::fs::write(&sinfo, format!("#!/bin/sh\nprintf '{sinfo_prints}'\n")).expect("sinfo");
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&sinfo, std::fs::Permissions::from_mode(0o755)).expect("chmod");
        let path = format!(
            "{}:{}",
            bin.path().display(),
            std::env::var("PATH").unwrap_or_default()
        );
        Command::new("sh")
            .args(["-c", cmd])
            .env("PATH", path)
            .status()
            .expect("sh")
            .success()
    };
    let drained = hook("drained");
    for (prints, want) in [
        ("drained\\n", true),
        ("drained*\\n", true),
        ("drained\\ndrained\\n", true),
        ("drained@\\n", true),
        ("draining\\n", false),
        ("draining\\ndraining\\n", false),
        ("idle\\n", false),
        ("", false),
    ] {
        assert_eq!(probe(&drained, prints), want, "drained with sinfo {prints:?}");
    }
    let resumed = hook("resumed");
    for (prints, want) in [
        ("idle\\n", true),
        ("mixed\\nmixed\\n", true),
        ("idle*\\n", false),
        ("drained\\n", false),
        ("down\\n", false),
        ("maint\\n", false),
        ("reboot^\\n", false),
        ("down*\\n", false),
        ("", false),
    ] {
        assert_eq!(probe(&resumed, prints), want, "resumed with sinfo {prints:?}");
    }
}

#[test]
fn the_lifecycle_example_validates_with_its_three_workflows() {
    let out = Command::new(drover_bin())
        .args(["validate", "examples/lifecycle"])
        .current_dir(repo_root())
        .output()
        .expect("run");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("6 nodes, 3 groups, 0 HA groups, 0 windows, 3 workflows"),
        "{stdout}"
    );
    assert!(
        out.stderr.is_empty(),
        "no warning: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn the_alarm_example_validates() {
    let out = Command::new(drover_bin())
        .args(["validate", "examples/alarm"])
        .current_dir(repo_root())
        .output()
        .expect("run");
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.stderr.is_empty(),
        "no warning: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}
