//! A rolling run on N real sshd nodes whose canary soak outlasts the ssh idle limit:
//! wall time, the most ssh masters alive at once, and the controller's peak resident
//! memory including its masters.
//!
//! `nice -n 19 cargo bench --profile dev --bench soak -- N --soak SECS [--persist SECS]`
//! (`--persist` sets `ssh.control_persist`, which drovers before it did not have).
//! `DROVER_BIN` runs another drover binary (an older build, to compare).

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use drover_testbed::Testbed;

struct Sample {
    masters: usize,
    rss_kib: u64,
}

fn rss_kib(pid: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmRSS:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        })
        .unwrap_or(0)
}

/// The drover process and the `ssh -M` masters whose control socket is in its
/// directory (`/tmp/drover-<pid>/`, both in drover's own launcher and in the openssh
/// crate's, which older drovers used).
fn sample(drover: u32) -> Sample {
    let dir = format!("drover-{drover}/");
    let mut s = Sample {
        masters: 0,
        rss_kib: rss_kib(&drover.to_string()),
    };
    let Ok(procs) = std::fs::read_dir("/proc") else {
        return s;
    };
    for p in procs.flatten() {
        let name = p.file_name().to_string_lossy().into_owned();
        if !name.bytes().all(|b| b.is_ascii_digit()) {
            continue;
        }
        let Ok(cmd) = std::fs::read(p.path().join("cmdline")) else {
            continue;
        };
        let args: Vec<String> = cmd
            .split(|b| *b == 0)
            .map(|a| String::from_utf8_lossy(a).into_owned())
            .collect();
        let is_master = args.first().is_some_and(|a| a == "ssh" || a.ends_with("/ssh"))
            && args.iter().any(|a| a == "-M")
            && args.iter().any(|a| a.contains(&dir));
        if is_master {
            s.masters += 1;
            s.rss_kib += rss_kib(&name);
        }
    }
    s
}

fn write(dir: &Path, rel: &str, text: &str) {
    let p = dir.join(rel);
    std::fs::create_dir_all(p.parent().expect("parent")).expect("mkdir");
    std::fs::write(p, text).expect("write");
}

fn main() {
    let mut n = 100;
    let mut soak = 65u64;
    let mut persist: Option<u64> = None;
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        match a.as_str() {
            "--soak" => soak = it.next().and_then(|v| v.parse().ok()).expect("--soak SECS"),
            "--persist" => persist = it.next().and_then(|v| v.parse().ok()),
            "--bench" => {}
            v => n = v.parse().expect("node count"),
        }
    }
    let bin = std::env::var("DROVER_BIN").unwrap_or_else(|_| env!("CARGO_BIN_EXE_drover").to_string());
    let tmp = tempfile::tempdir().expect("tempdir");
    let t = Instant::now();
    let tb = Testbed::start(&tmp.path().join("tb"), n).expect("testbed");
    eprintln!("{n} sshd nodes up in {:.1?}", t.elapsed());
    let site = tmp.path().join("site");
    let persist = persist
        .map(|p| format!(", control_persist: {p}s"))
        .unwrap_or_default();
    write(
        &site,
        "drover.yml",
        &format!(
            "inventory: inventory.yml\nworkflows: workflows\nssh: {{ config: {}, connect_timeout: 30s, forks: 100{persist} }}\n",
            serde_json::json!(tb.ssh_config().display().to_string())
        ),
    );
    write(&site, "inventory.yml", &tb.inventory_yaml());
    let step = |i: usize| {
        format!(
            "  - name: op{i}\n    run: touch {{{{ node.vars.state }}}}/op{i}\n    check: test -e {{{{ node.vars.state }}}}/op{i}\n    change: hot\n"
        )
    };
    write(
        &site,
        "workflows/w.yml",
        &format!(
            "name: w\nversion: 1\ntargets: {{ nodes: [\"@all\"] }}\ncanary: {{ nodes: [node001], soak: {soak}s }}\n\
             strategy: {{ batch: [\"100%\"] }}\nsteps:\n{}",
            (1..=3).map(step).collect::<String>()
        ),
    );
    let t = Instant::now();
    let mut child = Command::new(&bin)
        .args(["run", "w", "--yes", "--json", "--site"])
        .arg(&site)
        .current_dir(&site)
        .stdin(Stdio::null())
        // A file, not a pipe: a pipe nobody reads until the end would fill and stop
        // drover at its next event.
        .stdout(std::fs::File::create(tmp.path().join("out")).expect("stdout file"))
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn drover");
    let pid = child.id();
    let (mut max_masters, mut max_rss) = (0, 0);
    let status = loop {
        let s = sample(pid);
        max_masters = max_masters.max(s.masters);
        max_rss = max_rss.max(s.rss_kib);
        if let Some(st) = child.try_wait().expect("wait") {
            break st;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let wall = t.elapsed();
    let out = std::fs::read_to_string(tmp.path().join("out")).unwrap_or_default();
    let ok = out.matches("\"ok\":true").count();
    let failed = out.matches("\"ok\":false").count();
    let done = (0..n)
        .filter(|i| (1..=3).all(|k| tb.nodes()[*i].state_dir.join(format!("op{k}")).exists()))
        .count();
    println!(
        "nodes {n}  soak {soak}s  {}exit {}  wall {:.1}s  nodes ok {ok} failed {failed} (all 3 ops on {done})  max masters {max_masters}  peak RSS drover+masters {:.1} MiB",
        if persist.is_empty() {
            String::new()
        } else {
            format!("{} ", persist.trim_start_matches(", "))
        },
        status.code().unwrap_or(-1),
        wall.as_secs_f64(),
        max_rss as f64 / 1024.0
    );
}
