//! The local transport runs only sites that declare they are meant for it.

use crate::support::*;

fn real_site() -> Site {
    // A site of real nodes: no `transport:` key.
    Site::new().write("drover.yml", SITE).write(
        "workflows/update.yml",
        "name: update\nversion: 1\ntargets: { nodes: [\"n[01-02]\"] }\n\
             steps:\n  - name: mark\n    run: touch \"marks/$DROVER_NODE\"\n    change: hot\n",
    )
}

#[test]
fn local_transport_is_refused_on_a_site_of_real_nodes() {
    let site = real_site();
    std::fs::create_dir_all(site.path().join("marks")).unwrap();
    for args in [
        &["run", "update", "--transport", "local", "--yes"][..],
        &["check", "update", "--transport", "local"],
    ] {
        let cmd = args[0];
        let out = site.run(args);
        assert_eq!(out.code, 2, "{cmd}: {}\n{}", out.stdout, out.stderr);
        assert!(
            out.stderr
                .contains("error: --transport local would run every command of `update` on this machine ("),
            "{}",
            out.stderr
        );
        assert!(
            out.stderr.contains("does not declare `transport: local`"),
            "{}",
            out.stderr
        );
        assert!(out.stderr.contains("pass --allow-local"), "{}", out.stderr);
    }
    assert_eq!(std::fs::read_dir(site.path().join("marks")).unwrap().count(), 0);
    assert!(!site.path().join(".drover").exists(), "nothing was recorded");
}

#[test]
fn allow_local_says_what_runs_where_and_runs_it() {
    let site = real_site();
    std::fs::create_dir_all(site.path().join("marks")).unwrap();
    let out = site.run(&["run", "update", "--transport", "local", "--allow-local", "--yes"]);
    assert_eq!(out.code, 0, "{}\n{}", out.stdout, out.stderr);
    assert!(
        out.stderr.contains("warning: --allow-local: `update` runs on ")
            && out
                .stderr
                .contains("once per node: its steps, checks and hooks act on this machine"),
        "{}",
        out.stderr
    );
    assert!(site.path().join("marks/n01").exists() && site.path().join("marks/n02").exists());
}

#[test]
fn a_site_that_declares_local_uses_it_by_default() {
    // The default test site declares `transport: local`: no flag needed.
    let site = real_site().write("drover.yml", &format!("{SITE}transport: local\n"));
    std::fs::create_dir_all(site.path().join("marks")).unwrap();
    let out = site.run(&["run", "update", "--yes"]);
    assert_eq!(out.code, 0, "{}\n{}", out.stdout, out.stderr);
    assert!(!out.stderr.contains("warning"), "{}", out.stderr);
    assert!(site.path().join("marks/n01").exists());
}

#[test]
fn the_shipped_slurm_site_refuses_the_local_transport() {
    let out = Site::new().run(&[
        "run",
        "kernel-update",
        "--site",
        repo_root().join("examples/slurm-site").to_str().unwrap(),
        "--transport",
        "local",
        "--tags",
        "hot,drain",
        "--yes",
    ]);
    assert_eq!(out.code, 2, "{}\n{}", out.stdout, out.stderr);
    assert!(out.stderr.contains("kernel-update"), "{}", out.stderr);
}
