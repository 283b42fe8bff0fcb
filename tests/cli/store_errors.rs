//! The state database as an operator meets it: missing, not drover's, read-only.

use std::os::unix::fs::PermissionsExt;
use std::process::Command;

use drover::exit_code;

use crate::support::{Site, drover_bin, repo_root};

fn state_db(site: &Site) -> std::path::PathBuf {
    site.path().join(".drover/drover.db")
}

#[test]
fn runs_list_on_a_site_without_state_says_so_and_creates_nothing() {
    let site = Site::new();
    let out = site.run(&["runs", "list"]);
    assert_eq!(out.code, exit_code::OK, "{}", out.stderr);
    assert!(
        out.stdout.contains("no runs yet: the state directory")
            && out.stdout.contains(".drover` does not exist"),
        "{}",
        out.stdout
    );
    assert!(!site.path().join(".drover").exists(), "nothing was created");
    let show = site.run(&["runs", "show", "r1"]);
    assert_eq!(show.code, exit_code::USAGE, "{}", show.stderr);
    assert!(
        show.stderr.contains("no run `r1`: the state directory"),
        "{}",
        show.stderr
    );
    assert!(!site.path().join(".drover").exists(), "nothing was created");
    let json = site.run(&["runs", "list", "--json"]);
    assert_eq!(json.stdout.trim(), "[]");
}

/// The shipped Slurm site keeps the real `state_dir: /var/lib/drover`; an operator trying
/// `runs list` on it as a normal user (or before the first run) must get a plain answer and
/// no directory made behind their back.
#[test]
fn runs_list_on_the_shipped_slurm_site_says_the_state_dir_is_missing_and_creates_nothing() {
    let state = std::path::Path::new("/var/lib/drover");
    if state.exists() {
        eprintln!("skipped: {} exists on this machine", state.display());
        return;
    }
    let site = repo_root().join("examples/slurm-site");
    let out = Site::new().run(&["runs", "list", "--site", site.to_str().unwrap()]);
    assert_eq!(out.code, exit_code::OK, "{}\n{}", out.stdout, out.stderr);
    assert!(
        out.stdout.contains("no runs yet: the state directory")
            && out.stdout.contains("/var/lib/drover` does not exist"),
        "{}",
        out.stdout
    );
    assert!(!state.exists(), "runs list created {}", state.display());
}

#[test]
fn a_database_that_is_not_drovers_is_refused_in_one_line_untouched() {
    let site = Site::new();
    std::fs::create_dir_all(site.path().join(".drover")).unwrap();
    let db = state_db(&site);
    let status = Command::new("python3")
        .args([
            "-c",
            "import sqlite3,sys; c=sqlite3.connect(sys.argv[1]); \
             c.execute('CREATE TABLE runs (id INTEGER PRIMARY KEY, owner TEXT)'); c.commit()",
        ])
        .arg(&db)
        .status();
    if !status.is_ok_and(|s| s.success()) {
        // No python3 with sqlite3: build the foreign file with drover's own SQLite.
        let conn = rusqlite::Connection::open(&db).unwrap();
        conn.execute_batch("CREATE TABLE runs (id INTEGER PRIMARY KEY, owner TEXT)")
            .unwrap();
    }
    let before = std::fs::read(&db).unwrap();
    for args in [
        vec!["runs", "list"],
        vec![
            "run",
            "update",
            "--transport",
            "local",
            "--yes",
            "--ignore-window",
        ],
    ] {
        let out = site.run(&args);
        assert_eq!(out.code, exit_code::FAILURE, "{args:?}: {}", out.stderr);
        let first = out.stderr.lines().next().unwrap_or_default();
        assert!(
            first.contains(".drover/drover.db` is not a drover state database")
                && first.contains("another application's tables (runs)"),
            "{args:?}: {}",
            out.stderr
        );
        assert!(!out.stderr.contains("CREATE"), "{}", out.stderr);
        assert!(out.stderr.lines().count() <= 3, "{}", out.stderr);
    }
    assert_eq!(std::fs::read(&db).unwrap(), before, "the file is unchanged");

    std::fs::write(&db, "").unwrap();
    let out = site.run(&["runs", "list"]);
    assert_eq!(out.code, exit_code::FAILURE);
    assert!(out.stderr.contains("it is empty (0 bytes)"), "{}", out.stderr);
}

/// `runs list` and `runs show` work for a user who may only read the state dir. As root
/// (where permissions do not bind) the commands run as `nobody`.
#[test]
fn runs_list_and_show_work_on_a_read_only_state_dir() {
    let site = Site::new().write(
        "workflows/update.yml",
        "name: update\nversion: 1\ntargets: { nodes: [n01] }\nsteps:\n  - name: s\n    run: \"true\"\n    change: hot\n",
    );
    let run = site.run(&["run", "update", "--transport", "local", "--yes"]);
    assert_eq!(run.code, exit_code::OK, "{}\n{}", run.stdout, run.stderr);
    let dir = site.path().join(".drover");
    let before: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    let root = is_root();
    // The temp dir is private to its owner; `nobody` needs to walk into it.
    std::fs::set_permissions(site.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    for p in [site.path().join("workflows"), dir.clone()] {
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o555)).unwrap();
    }
    for f in std::fs::read_dir(&dir).unwrap() {
        let f = f.unwrap().path();
        if f.is_file() {
            std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o444)).unwrap();
        }
    }
    let as_reader = |args: &[&str]| {
        let mut cmd = if root {
            let mut c = Command::new("setpriv");
            c.args(["--reuid=65534", "--regid=65534", "--clear-groups"])
                .arg(drover_bin());
            c
        } else {
            Command::new(drover_bin())
        };
        let out = cmd
            .args(args)
            .current_dir(site.path())
            .env("NO_COLOR", "1")
            .output()
            .unwrap();
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (code, stdout, stderr) = as_reader(&["runs", "list"]);
    assert_eq!(code, exit_code::OK, "{stdout}\n{stderr}");
    let id = stdout
        .lines()
        .nth(1)
        .and_then(|l| l.split_whitespace().next())
        .unwrap_or_else(|| panic!("a run is listed: {stdout}"))
        .to_string();
    assert!(stdout.contains("succeeded"), "{stdout}");
    let (code, stdout, stderr) = as_reader(&["runs", "show", &id]);
    assert_eq!(code, exit_code::OK, "{stdout}\n{stderr}");
    assert!(stdout.contains("n01"), "{stdout}");
    let after: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(before, after, "nothing was created in the state dir");
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::set_permissions(
        site.path().join("workflows"),
        std::fs::Permissions::from_mode(0o755),
    )
    .unwrap();
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

#[test]
fn runs_list_on_an_unreadable_state_dir_says_so_and_creates_nothing() {
    let site = Site::new();
    let dir = site.path().join(".drover");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::set_permissions(site.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::set_permissions(
        site.path().join("workflows"),
        std::fs::Permissions::from_mode(0o755),
    )
    .unwrap();
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o000)).unwrap();
    let mut cmd = if is_root() {
        let mut c = Command::new("setpriv");
        c.args(["--reuid=65534", "--regid=65534", "--clear-groups"])
            .arg(drover_bin());
        c
    } else {
        Command::new(drover_bin())
    };
    let out = cmd
        .args(["runs", "list"])
        .current_dir(site.path())
        .env("NO_COLOR", "1")
        .output()
        .unwrap();
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(exit_code::FAILURE), "{stderr}");
    assert!(
        stderr.contains("cannot read the state directory `./.drover`") && stderr.contains("ermission denied"),
        "{stderr}"
    );
    assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 0, "nothing was created");
}
