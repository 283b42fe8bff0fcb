//! The README's first command: `drover run demo --site examples/demo`, on a copy of the
//! shipped demo site, end to end on the local transport.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::Command;

use crate::support::*;

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("mkdir");
    for e in std::fs::read_dir(from).expect("read dir") {
        let e = e.expect("entry");
        let name = e.file_name();
        // A demo run in the repository leaves its state there; the copy starts clean.
        if name == "state" {
            continue;
        }
        let ty = e.file_type().expect("type");
        if ty.is_dir() {
            copy_dir(&e.path(), &to.join(&name));
        } else {
            std::fs::copy(e.path(), to.join(&name)).expect("copy");
        }
    }
}

/// Every file under `dir`, relative to it, skipping `skip` (a top-level name).
fn files(dir: &Path, skip: &str) -> BTreeSet<String> {
    fn walk(root: &Path, dir: &Path, skip: &str, out: &mut BTreeSet<String>) {
        for e in std::fs::read_dir(dir).expect("read dir").flatten() {
            let rel = e.path().strip_prefix(root).expect("prefix").display().to_string();
            if rel == skip {
                continue;
            }
            if e.file_type().expect("type").is_dir() {
                walk(root, &e.path(), skip, out);
            } else {
                out.insert(rel);
            }
        }
    }
    let mut out = BTreeSet::new();
    walk(dir, dir, skip, &mut out);
    out
}

fn drover(cwd: &Path, args: &[&str]) -> Output {
    let out = Command::new(drover_bin())
        .args(args)
        .current_dir(cwd)
        .env("NO_COLOR", "1")
        .output()
        .expect("run drover");
    Output {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

const NODES: [&str; 12] = [
    "r1n01", "r1n02", "r1n03", "r1n04", "r2n01", "r2n02", "r2n03", "r2n04", "r3n01", "r3n02", "r3n03",
    "r3n04",
];

#[test]
fn the_readme_demo_rolls_the_whole_simulated_cluster_within_its_budgets() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let site = tmp.path().join("demo");
    copy_dir(&repo_root().join("examples/demo"), &site);
    let before = files(&site, "state");

    let run = drover(
        tmp.path(),
        &["run", "demo", "--site", "demo", "--tags", "hot,drain", "--yes"],
    );
    assert_eq!(run.code, 0, "stdout:\n{}\nstderr:\n{}", run.stdout, run.stderr);
    let o = &run.stdout;
    for want in [
        "DRAIN     12  r1n[01-04],r2n[01-04],r3n[01-04]",
        "  canary: 1 r1n01 (then soak 2s; any failure stops the run)",
        "  batch 1: 2 r1n[02-03]",
        "  batch 2: 6 r1n04,r2n[01-04],r3n01",
        "  batch 3: 3 r3n[02-04]",
        "canary passed; soaking for 2s",
        "  r2n04: drained",
        "  r2n04: rebooting",
        "  r2n04: resumed",
        "  succeeded       12  r1n[01-04],r2n[01-04],r3n[01-04]",
        "  r2n04: ok (1 file changed)",
        "steps:\n  install kernel package      ok 12\n  login banner                changed 12\n  reboot into the new kernel  ok 12\n",
    ] {
        assert!(o.contains(want), "the run's output lacks {want:?}:\n{o}");
    }
    let id = o
        .lines()
        .find_map(|l| l.strip_prefix("run ").and_then(|r| r.strip_suffix(": succeeded")))
        .unwrap_or_else(|| panic!("no `run ID: succeeded` line:\n{o}"))
        .to_string();

    // Every node has its own root: each banner names its own node, and each node
    // rebooted into the new kernel with a new boot id.
    let state = site.join("state");
    for n in NODES {
        let root = state.join("nodes").join(n);
        let motd = std::fs::read_to_string(root.join("etc/motd")).expect("motd");
        assert!(motd.starts_with(&format!("{n}: a compute node")), "{n}: {motd}");
        let kernel = std::fs::read_to_string(root.join("running-kernel")).expect("kernel");
        assert_eq!(kernel.trim(), "6.1.0-28-amd64");
        assert!(
            std::fs::read_to_string(root.join("boot_id"))
                .expect("boot id")
                .starts_with("boot-")
        );
        assert_eq!(
            std::fs::read_to_string(state.join("scheduler").join(n))
                .expect("scheduler state")
                .trim(),
            "idle",
            "{n} is back in service"
        );
    }
    // Nothing outside the state dir was written.
    assert_eq!(files(&site, "state"), before);

    // The scheduler's log, in order: never more than 2 nodes out, one per rack, and
    // never both members of the HA pair.
    let log = std::fs::read_to_string(state.join("scheduler/log")).expect("scheduler log");
    let mut out: BTreeSet<String> = BTreeSet::new();
    let mut drained: BTreeMap<String, usize> = BTreeMap::new();
    let mut most = 0;
    for l in log.lines() {
        let f: Vec<&str> = l.split(' ').collect();
        let node = f[2].to_string();
        if f[1] == "drain" {
            *drained.entry(node.clone()).or_default() += 1;
            out.insert(node);
        } else {
            out.remove(&node);
        }
        most = most.max(out.len());
        for rack in ["r1", "r2", "r3"] {
            assert!(
                out.iter().filter(|n| n.starts_with(rack)).count() <= 1,
                "rack {rack}: {out:?}"
            );
        }
        assert!(
            !(out.contains("r2n04") && out.contains("r3n04")),
            "HA pair both out: {out:?}"
        );
    }
    assert_eq!(most, 2, "max_unavailable is 2 and the run uses it:\n{log}");
    assert!(out.is_empty(), "every node was resumed: {out:?}");
    assert_eq!(drained.len(), 12, "{log}");
    assert!(
        drained.values().all(|n| *n == 1),
        "each node drained once: {drained:?}"
    );

    // The README's second command shows the stored run.
    let list = drover(tmp.path(), &["runs", "list", "--site", "demo"]);
    assert_eq!(list.code, 0, "{}", list.stderr);
    let row = list
        .stdout
        .lines()
        .find(|l| l.starts_with(&id))
        .expect("the run is listed");
    assert!(
        row.contains("demo v1") && row.contains("succeeded") && row.contains(" 12 "),
        "{row}"
    );
    let show = drover(tmp.path(), &["runs", "show", &id, "--site", "demo"]);
    assert_eq!(show.code, 0, "{}", show.stderr);
    assert!(
        show.stdout.contains(&format!("run {id}: demo v1, succeeded")),
        "{}",
        show.stdout
    );
    for n in NODES {
        assert!(
            show.stdout
                .lines()
                .any(|l| l.starts_with(&format!("  {n}")) && l.ends_with("succeeded")),
            "{n} not shown succeeded:\n{}",
            show.stdout
        );
    }

    // A second run finds nothing to do.
    let again = drover(tmp.path(), &["check", "demo", "--site", "demo"]);
    assert_eq!(again.code, 0, "{}", again.stderr);
    assert!(again.stdout.contains("GOOD      12"), "{}", again.stdout);
}
