//! Command output is kept as a bounded tail: a command printing 200 MB on each of 10
//! nodes at once does not grow drover by what they print.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Peak resident set (`VmHWM`) of a running process, in KiB.
fn peak_rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

#[test]
fn ten_nodes_printing_200_mb_each_keep_drover_under_100_mb() {
    let site = tempfile::tempdir().expect("site");
    let w = |rel: &str, text: &str| {
        let p = site.path().join(rel);
        std::fs::create_dir_all(p.parent().expect("parent")).expect("mkdir");
        std::fs::write(p, text).expect("write");
    };
    w(
        "drover.yml",
        "inventory: inventory.yml\nworkflows: workflows\ntransport: local\n",
    );
    w("inventory.yml", "nodes:\n  \"n[01-10]\":\n");
    w(
        "workflows/w.yml",
        "name: w\nversion: 1\ntargets: { nodes: [\"n[01-10]\"] }\nstrategy: { batch: [\"100%\"] }\n\
         steps:\n  - name: loud\n    run: head -c 200000000 /dev/zero | tr '\\0' x; echo; echo the end\n    change: hot\n    timeout: 5m\n",
    );
    let mut child = Command::new(env!("CARGO_BIN_EXE_drover"))
        .args(["run", "w", "--yes", "--json", "--site"])
        .arg(site.path())
        .current_dir(site.path())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn drover");
    let pid = child.id();
    let t = Instant::now();
    let mut peak = 0;
    let status = loop {
        if let Some(kib) = peak_rss_kib(pid) {
            peak = peak.max(kib);
        }
        if let Some(s) = child.try_wait().expect("wait") {
            break s;
        }
        assert!(t.elapsed() < Duration::from_secs(240), "drover hung");
        std::thread::sleep(Duration::from_millis(10));
    };
    let mut out = String::new();
    use std::io::Read as _;
    child
        .stdout
        .take()
        .expect("stdout")
        .read_to_string(&mut out)
        .expect("read");
    assert!(status.success(), "{out}");
    assert_eq!(out.matches("\"step_finished\"").count(), 10, "{out}");
    assert!(peak > 0, "no RSS sample");
    assert!(peak < 100 * 1024, "drover peaked at {peak} KiB");
    eprintln!("drover peak RSS: {peak} KiB");
    // The log keeps the tail, with what was cut counted.
    let logs = site.path().join(".drover").join("logs");
    let log = std::fs::read_dir(&logs)
        .expect("logs")
        .flatten()
        .next()
        .expect("a log")
        .path();
    let text = std::fs::read_to_string(log).expect("log");
    assert!(text.contains("bytes cut ...]"), "the log holds no tail marker");
    assert!(text.contains("the end"), "the log lost the end of the output");
    assert!(text.len() < 2 * 1024 * 1024, "the log holds {} bytes", text.len());
}
