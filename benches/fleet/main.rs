//! The same 5-step change on N real sshd nodes (loopback), done by `drover run` and by
//! plain `ssh` in parallel (`xargs -P N`, one ControlMaster per node) as the floor.
//!
//! `cargo bench --bench fleet -- [N ...] [--rounds R]` (default: 20 100, 3 rounds).
//! Each round runs both tools alternately on a fresh state, and the medians are printed.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use drover::testbed::Testbed;

const CONF: &str = "listen = 8080\nworkers = 4\n";
const TEMPLATE: &str = "node {{ node.name }} runs {{ vars.app }}\n";

fn main() {
    let mut sizes = Vec::new();
    let mut rounds = 3;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--rounds" => rounds = args.next().and_then(|r| r.parse().ok()).unwrap_or(3),
            "--bench" => {}
            n => {
                if let Ok(n) = n.parse::<usize>() {
                    sizes.push(n);
                }
            }
        }
    }
    if sizes.is_empty() {
        sizes = vec![20, 100];
    }
    let drover = PathBuf::from(env!("CARGO_BIN_EXE_drover"));
    println!(
        "fleet benchmark: 5 steps per node, {rounds} rounds, {} cores",
        cores()
    );
    println!(
        "{:>5}  {:>12}  {:>12}  {:>7}",
        "nodes", "drover (s)", "ssh -P (s)", "ratio"
    );
    for n in sizes {
        let dir = tempfile::Builder::new()
            .prefix("drover-bench")
            .tempdir()
            .expect("temp dir");
        let bed = Testbed::start(dir.path(), n).expect("start sshd nodes");
        let site = write_site(dir.path(), &bed, n);
        let (mut d, mut s) = (Vec::new(), Vec::new());
        for _ in 0..rounds {
            reset(&bed);
            d.push(run_drover(&drover, &site));
            verify(&bed);
            reset(&bed);
            s.push(run_ssh(&bed, dir.path(), n));
            verify(&bed);
        }
        let (dm, sm) = (median(&mut d), median(&mut s));
        println!("{n:>5}  {dm:>12.3}  {sm:>12.3}  {:>6.2}x", dm / sm);
    }
}

fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn write_site(dir: &Path, bed: &Testbed, n: usize) -> PathBuf {
    let site = dir.join("site");
    std::fs::create_dir_all(site.join("workflows/files")).expect("mkdir");
    std::fs::write(
        site.join("drover.yml"),
        format!(
            "state_dir: state\nssh:\n  config: {}\n  forks: {n}\n",
            bed.ssh_config().display()
        ),
    )
    .expect("write");
    std::fs::write(site.join("inventory.yml"), bed.inventory_yaml()).expect("write");
    std::fs::write(site.join("workflows/files/app.conf"), CONF).expect("write");
    std::fs::write(site.join("workflows/files/motd.j2"), TEMPLATE).expect("write");
    std::fs::write(
        site.join("workflows/bench.yml"),
        "name: bench\nversion: 1\ntargets: { nodes: [\"@all\"] }\ncanary: { size: 0 }\n\
         strategy: { batch: \"100%\" }\nvars: { app: demo }\nsteps:\n\
         \x20 - name: app dir\n    run: mkdir -p {{ node.vars.state }}/app\n    check: test -d {{ node.vars.state }}/app && exit 0 || exit 1\n    change: hot\n\
         \x20 - name: config\n    copy: { src: files/app.conf, dest: \"{{ node.vars.state }}/app/app.conf\", mode: \"0644\" }\n    change: hot\n\
         \x20 - name: motd\n    template: { src: files/motd.j2, dest: \"{{ node.vars.state }}/app/motd\" }\n    change: hot\n\
         \x20 - name: kernel\n    run: uname -r | grep -q .\n    change: hot\n\
         \x20 - name: nothing to do\n    run: echo never\n    check: \"true\"\n    change: hot\n",
    )
    .expect("write");
    site
}

/// Every node back to "needs the change".
fn reset(bed: &Testbed) {
    for node in bed.nodes() {
        let _ = std::fs::remove_dir_all(node.state_dir.join("app"));
    }
}

fn verify(bed: &Testbed) {
    for node in bed.nodes() {
        let motd = std::fs::read_to_string(node.state_dir.join("app/motd")).unwrap_or_default();
        assert_eq!(
            motd,
            format!("node {} runs demo\n", node.name),
            "{} was not changed",
            node.name
        );
        assert_eq!(
            std::fs::read_to_string(node.state_dir.join("app/app.conf")).unwrap_or_default(),
            CONF
        );
    }
}

fn run_drover(drover: &Path, site: &Path) -> f64 {
    let t = Instant::now();
    let out = Command::new(drover)
        .args(["run", "bench", "--yes", "--site"])
        .arg(site)
        .stdout(Stdio::null())
        .output()
        .expect("run drover");
    let secs = t.elapsed().as_secs_f64();
    assert!(
        out.status.success(),
        "drover failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    secs
}

/// The floor: per node, the five operations as five ssh commands over one
/// ControlMaster connection, all nodes in parallel.
fn run_ssh(bed: &Testbed, dir: &Path, n: usize) -> f64 {
    let cm = tempfile::Builder::new()
        .prefix("cm")
        .tempdir_in("/tmp")
        .expect("control dir");
    let script = dir.join("node.sh");
    std::fs::write(&script, NODE_SCRIPT).expect("write");
    let conf = dir.join("app.conf");
    std::fs::write(&conf, CONF).expect("write");
    let list: String = bed
        .nodes()
        .iter()
        .map(|node| format!("{} {}\n", node.name, node.state_dir.display()))
        .collect();
    let t = Instant::now();
    let mut child = Command::new("xargs")
        .args(["-P", &n.to_string(), "-L", "1", "sh"])
        .arg(&script)
        .env("CFG", bed.ssh_config())
        .env("CM", cm.path())
        .env("CONF", &conf)
        .stdin(Stdio::piped())
        .spawn()
        .expect("xargs");
    if let Some(mut stdin) = child.stdin.take() {
        use std::io::Write;
        let _ = stdin.write_all(list.as_bytes());
    }
    let status = child.wait().expect("wait");
    let secs = t.elapsed().as_secs_f64();
    assert!(status.success(), "ssh baseline failed");
    // Close the masters so the next round starts cold, as drover does.
    for node in bed.nodes() {
        let _ = Command::new("ssh")
            .args(["-F"])
            .arg(bed.ssh_config())
            .args([
                "-o",
                &format!("ControlPath={}/%h-%p", cm.path().display()),
                "-O",
                "exit",
                &node.name,
            ])
            .stderr(Stdio::null())
            .status();
    }
    std::thread::sleep(Duration::from_millis(100));
    secs
}

const NODE_SCRIPT: &str = r#"node=$1; state=$2
s() { ssh -F "$CFG" -o ControlMaster=auto -o "ControlPath=$CM/%h-%p" -o ControlPersist=60 "$node" "$@"; }
s "test -d $state/app || mkdir -p $state/app" &&
s "cat > $state/app/app.conf && chmod 0644 $state/app/app.conf" < "$CONF" &&
printf 'node %s runs demo\n' "$node" | s "cat > $state/app/motd" &&
s "uname -r | grep -q ." &&
s "true"
"#;
