//! slurmctld RPCs per minute while N nodes wait to drain: per-node `drained` hooks (one
//! `sinfo` per node per poll) against `scheduler: slurm` (one `sinfo` per poll for all),
//! on a real one-host Slurm cluster (`drover_testbed::SlurmCluster`).
//!
//! `nice -n 19 cargo bench --profile dev --bench slurm_rpc -- N [--secs S] [--poll MS]`
//! (root, Debian's `slurm-wlm` and `munge`). Every node runs a job longer than the run,
//! so all N stay `draining`; the drain times out after S seconds (`on_timeout:
//! give_up`), and `sdiag`'s RPC counts before and after give the rate. Every node is
//! then skipped ("did not drain within S; resumed untouched"), which counts against the
//! failure budget, so drover exits 6 (`NODES_FAILED`) by design: the bench checks that
//! exit and that every node was skipped, and stops on anything else (a run that ended
//! some other way measured something else).

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use drover_testbed::{SlurmCluster, Testbed, slurm_unavailable};

fn arg(args: &[String], name: &str, default: u64) -> u64 {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let n: usize = args
        .iter()
        .find(|a| !a.starts_with('-') && a.parse::<usize>().is_ok())
        .and_then(|a| a.parse().ok())
        .unwrap_or(20);
    let secs = arg(&args, "--secs", 20);
    let poll_ms = arg(&args, "--poll", 1000);
    if let Some(why) = slurm_unavailable() {
        eprintln!("slurm_rpc: {why}");
        return;
    }
    let tmp = tempfile::tempdir().expect("tempdir");
    let tb = Testbed::start(&tmp.path().join("tb"), n).expect("testbed");
    let all: Vec<usize> = (0..n).collect();
    let slurm = SlurmCluster::start(
        &tmp.path().join("slurm"),
        &tb,
        &[("batch", all)],
        Duration::from_secs(1),
    )
    .expect("slurm");
    let drain_hooks = drover::site::SLURM_HOOKS
        .iter()
        .map(|(k, v)| format!("  {k}: {}\n", serde_json::json!(v)))
        .collect::<String>();
    println!("nodes {n}, drain wait {secs}s, poll {poll_ms}ms");
    for (label, drain) in [
        ("per-node hooks", format!("drain:\n{drain_hooks}")),
        ("scheduler: slurm", "drain:\n  scheduler: slurm\n".to_string()),
    ] {
        let site = tempfile::tempdir().expect("site");
        let write = |rel: &str, text: &str| {
            let p = site.path().join(rel);
            std::fs::create_dir_all(p.parent().expect("parent")).expect("mkdir");
            std::fs::write(p, text).expect("write");
        };
        write(
            "drover.yml",
            &format!(
                "inventory: inventory.yml\nworkflows: workflows\nenv: {{ SLURM_CONF: {} }}\n{drain}  poll_interval: {poll_ms}ms\n  timeout: {secs}s\n  on_timeout: give_up\n",
                serde_json::json!(slurm.conf().display().to_string())
            ),
        );
        write("inventory.yml", &tb.inventory_yaml_direct(true));
        write(
            "workflows/w.yml",
            &format!(
                "name: w\nversion: 1\ntargets: {{ nodes: [\"@all\"] }}\ncanary: {{ size: 0 }}\n\
                 strategy: {{ batch: [\"100%\"], max_unavailable: {n} }}\nsteps:\n  - name: patch\n    run: \"true\"\n    change: drain\n"
            ),
        );
        // A job on every node that outlasts the run: every node stays `draining`.
        for node in slurm.nodes() {
            slurm.sbatch_sleep((secs * 3) as f64, node, 10).expect("sbatch");
        }
        slurm
            .wait_until(Duration::from_secs(60), |st| {
                st.iter().all(|s| s.state == "allocated")
            })
            .expect("all busy");
        slurm.client("sdiag", &["--reset"]).expect("sdiag --reset");
        let before = slurm.rpc_count().expect("sdiag");
        let t = Instant::now();
        let out = Command::new(env!("CARGO_BIN_EXE_drover"))
            .args(["run", "w", "--yes", "--json", "--tags", "drain", "--site"])
            .arg(site.path())
            .stdin(Stdio::null())
            .output()
            .expect("drover");
        let wall = t.elapsed();
        let after = slurm.rpc_count().expect("sdiag");
        let stdout = String::from_utf8_lossy(&out.stdout);
        let summary: serde_json::Value = stdout
            .lines()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .find(|v| v["event"] == "summary")
            .unwrap_or_default();
        let skipped = summary["skipped"].as_array().map_or(0, Vec::len);
        assert!(
            out.status.code() == Some(6) && skipped == n,
            "{label}: expected exit 6 with all {n} nodes skipped after the drain timeout, got exit {:?} with {skipped} skipped: {}\n{stdout}{}",
            out.status.code(),
            summary["verdict"],
            String::from_utf8_lossy(&out.stderr)
        );
        // Minus the one sdiag call itself.
        let rpcs = after.saturating_sub(before).saturating_sub(1);
        let per_min = rpcs as f64 * 60.0 / wall.as_secs_f64();
        println!(
            "{label:>17}: {rpcs} RPCs in {:.1}s = {per_min:.0} RPCs/min ({})",
            wall.as_secs_f64(),
            summary["verdict"].as_str().unwrap_or_default()
        );
        slurm
            .client("scancel", &["--full", "-u", "root"])
            .expect("scancel");
        slurm
            .wait_until(Duration::from_secs(60), |st| st.iter().all(|s| s.state == "idle"))
            .expect("all idle");
    }
}
