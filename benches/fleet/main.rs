//! The same 5-operation change on N real sshd nodes (loopback), done by `drover run`, by
//! `ansible-playbook`, by `pyinfra` and by plain `ssh` in parallel (`xargs -P N`, one
//! ControlMaster per node) as the floor.
//!
//! `cargo bench --bench fleet -- [N ...] [--rounds R] [--tools drover,ssh,ansible,pyinfra]`
//! (`--kex` instead measures what each key exchange costs in CPU: see `kex.rs`)
//! (default: 20 100, 3 rounds, every tool found). `bench/run` installs ansible-core and
//! pyinfra in a venv and calls this; a tool missing from PATH is skipped with a message.
//!
//! Every sshd offers one algorithm of each kind (see `SshAlgorithms::openssh_and_paramiko`),
//! so OpenSSH and paramiko negotiate the same; a one-node run per tool with sshd logging
//! at DEBUG1 checks that first. Each round then runs every tool once, in an order that
//! rotates from round to round, each on freshly reset nodes, and checks every node's files
//! after each run. Medians are printed, with each tool's ratio to drover.

mod cpu;
mod fixture;
mod kex;
mod negotiation;
mod tools;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

use drover_testbed::{SshAlgorithms, Testbed, TestbedOptions};

use cpu::{CpuMeter, CpuUse};
use fixture::{Fixture, reset, verify};
use tools::{Tool, which};

struct Args {
    /// `--kex`: the key exchange CPU bench instead of the side-by-side one.
    kex: bool,
    sizes: Vec<usize>,
    rounds: usize,
    tools: Vec<Tool>,
    /// `--kex-alg NAME`: the key exchange sshd offers instead of curve25519 (pyinfra, whose
    /// paramiko has no other, is then skipped).
    kex_alg: Option<String>,
}

fn parse_args() -> Args {
    let mut args = Args {
        kex: false,
        sizes: Vec::new(),
        rounds: 3,
        tools: Tool::ALL.to_vec(),
        kex_alg: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        match a.as_str() {
            "--rounds" => args.rounds = it.next().and_then(|r| r.parse().ok()).unwrap_or(3).max(1),
            "--tools" => {
                let list = it.next().unwrap_or_default();
                args.tools = list
                    .split(',')
                    .map(|t| Tool::parse(t.trim()).unwrap_or_else(|| panic!("unknown tool {t:?}")))
                    .collect();
            }
            "--kex" => args.kex = true,
            "--kex-alg" => args.kex_alg = it.next(),
            "--bench" => {}
            n => match n.parse::<usize>() {
                Ok(n) if n > 0 => args.sizes.push(n),
                _ => panic!("unexpected argument {n:?}"),
            },
        }
    }
    if args.sizes.is_empty() {
        args.sizes = vec![20, 100];
    }
    args
}

/// One tool's measurements at one size.
struct Series {
    tool: Tool,
    secs: Vec<f64>,
    cpu: Vec<CpuUse>,
}

fn main() {
    let started = Instant::now();
    let args = parse_args();
    let drover = PathBuf::from(env!("CARGO_BIN_EXE_drover"));
    if args.kex {
        kex::run(&drover, &args.sizes, args.rounds);
        println!(
            "\nbench took {:.0} s; load average at the end {}",
            started.elapsed().as_secs_f64(),
            load_average()
        );
        return;
    }
    let mut algorithms = SshAlgorithms::openssh_and_paramiko();
    if let Some(kex) = &args.kex_alg {
        algorithms.kex.clone_from(kex);
    }

    let mut tools = Vec::new();
    for &tool in &args.tools {
        if tool == Tool::Pyinfra && !algorithms.kex.starts_with("curve25519") {
            println!(
                "skipping pyinfra: paramiko does not implement kex {}",
                algorithms.kex
            );
            continue;
        }
        match tool.available() {
            Err(why) => println!("skipping {}: {why}", tool.name()),
            Ok(()) => tools.push(tool),
        }
    }
    print_setup(&args, &tools, &algorithms);

    println!("\nnegotiated (sshd DEBUG1 log of a one-node run per tool):");
    if let Err(e) = negotiation::check(&drover, &tools, &algorithms) {
        panic!("algorithm check failed: {e}");
    }

    let mut results = Vec::new();
    for &n in &args.sizes {
        let series = measure(&drover, n, args.rounds, &tools, &algorithms);
        print_table(n, args.rounds, &series);
        results.push((n, series));
    }
    println!("\n== summary ({} rounds, {} cores) ==", args.rounds, cores());
    for (n, series) in &results {
        print_table(*n, args.rounds, series);
        print_targets(series);
    }
    println!(
        "\nbench took {:.0} s; load average at the end {}",
        started.elapsed().as_secs_f64(),
        load_average()
    );
}

fn measure(
    drover: &Path,
    n: usize,
    rounds: usize,
    tools: &[Tool],
    algorithms: &SshAlgorithms,
) -> Vec<Series> {
    // Kept when a round fails (the panic below names a log in it); removed at the end.
    let dir = tempfile::Builder::new()
        .prefix("drover-bench")
        .tempdir()
        .expect("temp dir")
        .keep();
    let options = TestbedOptions {
        algorithms: Some(algorithms.clone()),
        log_level: None,
    };
    let bed = Testbed::start_with(&dir.as_path().join("bed"), n, options).expect("start sshd nodes");
    let fx = Fixture::write(dir.as_path(), &bed);
    let meter = CpuMeter::new(&bed);
    let mut series: Vec<Series> = tools
        .iter()
        .map(|&tool| Series {
            tool,
            secs: Vec::new(),
            cpu: Vec::new(),
        })
        .collect();
    println!("\n{n} nodes:");
    for round in 0..rounds {
        let mut line = format!("  round {}:", round + 1);
        for k in 0..series.len() {
            // Rotate the order so no tool always runs first (or right after another).
            let s = &mut series[(round + k) % tools.len()];
            reset(&bed);
            let log = dir
                .as_path()
                .join(format!("{}-{}.log", s.tool.name().replace(' ', "-"), round + 1));
            s.tool
                .prepare(drover, &fx, &bed, &log)
                .unwrap_or_else(|e| panic!("{n} nodes, round {}: {e}", round + 1));
            let before = meter.sample();
            let (secs, tool_cpu) = s
                .tool
                .run(drover, &fx, &bed, &log)
                .unwrap_or_else(|e| panic!("{n} nodes, round {}: {e}", round + 1));
            let cpu = CpuUse {
                tool: tool_cpu,
                ..meter.since(before)
            };
            if let Err(e) = verify(&bed) {
                panic!("{} left the nodes unchanged: {e}", s.tool.name());
            }
            line.push_str(&format!("  {} {secs:.2}s", s.tool.name()));
            s.secs.push(secs);
            s.cpu.push(cpu);
        }
        println!("{line}  (load average {})", load_average());
    }
    // Keep the logs of a bench that failed above; this one passed.
    drop(bed);
    let _ = std::fs::remove_dir_all(&dir);
    series
}

fn print_table(n: usize, rounds: usize, series: &[Series]) {
    let drover = series
        .iter()
        .find(|s| s.tool == Tool::Drover)
        .map(|s| median(&s.secs));
    println!(
        "\n{:>5}  {:<17} {:>10} {:>8} {:>8} {:>10}  {:>13} {:>9} {:>8} {:>8}",
        "nodes", "tool", "median (s)", "min", "max", "vs drover", "CPU total (s)", "nodes", "tool", "rest"
    );
    for s in series {
        let m = median(&s.secs);
        let ratio = drover.map_or("-".to_string(), |d| format!("{:.2}x", m / d));
        let total = median(&s.cpu.iter().map(|c| c.machine).collect::<Vec<_>>());
        let nodes = median(&s.cpu.iter().map(|c| c.nodes).collect::<Vec<_>>());
        let tool = median(&s.cpu.iter().map(|c| c.tool).collect::<Vec<_>>());
        let rest = median(&s.cpu.iter().map(CpuUse::rest).collect::<Vec<_>>());
        println!(
            "{n:>5}  {:<17} {m:>10.3} {:>8.3} {:>8.3} {ratio:>10}  {total:>13.2} {nodes:>9.2} {tool:>8.2} {rest:>8.2}",
            s.tool.name(),
            s.secs.iter().copied().fold(f64::INFINITY, f64::min),
            s.secs.iter().copied().fold(0.0, f64::max),
        );
    }
    for floor in [Tool::Ssh, Tool::Script, Tool::DroverBefore] {
        let f = series.iter().find(|s| s.tool == floor).map(|s| median(&s.secs));
        if let (Some(d), Some(f)) = (drover, f) {
            println!(
                "{n:>5}  drover / {} = {:.2}x  (medians of {rounds} rounds)",
                floor.name(),
                d / f
            );
        }
    }
}

/// Issue 5's targets (set for 100 nodes): drover within 1.3x of the floor, at least 2x
/// faster than pyinfra and 30x faster than ansible-playbook.
fn print_targets(series: &[Series]) {
    let m = |tool: Tool| series.iter().find(|s| s.tool == tool).map(|s| median(&s.secs));
    let Some(drover) = m(Tool::Drover) else {
        return;
    };
    let verdict = |ratio: f64, ok: bool, by: f64| {
        if ok {
            format!("{ratio:.2}x, met")
        } else {
            format!("{ratio:.2}x, missed by {:.0}%", by * 100.0)
        }
    };
    let mut parts = Vec::new();
    if let Some(f) = m(Tool::Ssh) {
        let r = drover / f;
        parts.push(format!(
            "drover/floor {} (target <= 1.3x)",
            verdict(r, r <= 1.3, r / 1.3 - 1.0)
        ));
    }
    for (tool, target) in [(Tool::Pyinfra, 2.0), (Tool::Ansible, 30.0)] {
        if let Some(t) = m(tool) {
            let r = t / drover;
            parts.push(format!(
                "{}/drover {} (target >= {target}x)",
                tool.name(),
                verdict(r, r >= target, 1.0 - r / target)
            ));
        }
    }
    println!(
        "       targets (issue 5, set for 100 nodes): {}",
        parts.join("; ")
    );
    let mut parts = Vec::new();
    if let Some(f) = m(Tool::Script) {
        let r = drover / f;
        parts.push(format!(
            "drover/one script {} (target <= 1.3x)",
            verdict(r, r <= 1.3, r / 1.3 - 1.0)
        ));
    }
    if let Some(t) = m(Tool::Pyinfra) {
        let r = t / drover;
        parts.push(format!(
            "pyinfra/drover {} (target >= 3x)",
            verdict(r, r >= 3.0, 1.0 - r / 3.0)
        ));
    }
    if !parts.is_empty() {
        println!("       targets (issue 18): {}", parts.join("; "));
    }
}

fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .unwrap_or_default()
        .split_whitespace()
        .take(3)
        .collect::<Vec<_>>()
        .join(" ")
}

fn print_setup(args: &Args, tools: &[Tool], a: &SshAlgorithms) {
    println!(
        "fleet benchmark: 5 operations per node, sizes {:?}, {} rounds, tools: {}",
        args.sizes,
        args.rounds,
        tools.iter().map(|t| t.name()).collect::<Vec<_>>().join(", ")
    );
    let mut date = Command::new("date");
    date.args(["-u", "+%Y-%m-%d %H:%M UTC"]);
    println!(
        "date: {}; machine: {} cores (nproc {}), {}, load average {}",
        first_line(date),
        cores(),
        first_line(Command::new("nproc")),
        cpu_model(),
        load_average()
    );
    let mut git = Command::new("git");
    git.args(["describe", "--always", "--dirty", "--abbrev=12"])
        .current_dir(env!("CARGO_MANIFEST_DIR"));
    println!("drover: {} (release build)", first_line(git));
    let mut ssh = Command::new("ssh");
    ssh.arg("-V");
    println!("ssh client and sshd: {}", first_line(ssh));
    if tools.contains(&Tool::Ansible) {
        let mut c = Command::new("ansible-playbook");
        c.arg("--version");
        println!("ansible-playbook: {}", first_line(c));
    }
    if tools.contains(&Tool::Pyinfra) {
        let mut c = Command::new("pyinfra");
        c.arg("--version");
        println!("pyinfra: {}, paramiko {}", first_line(c), paramiko_version());
    }
    println!(
        "sshd offers only: kex {}, host key {}, cipher {}, MAC {}; no compression",
        a.kex, a.host_key, a.cipher, a.mac
    );
    println!(
        "clients: OpenSSH with the testbed's ssh_config (key, known_hosts, StrictHostKeyChecking yes) for \
         drover (openssh crate, one ControlMaster per node), ansible (ssh_args -F ... -o ControlMaster=auto \
         -o ControlPersist=60s, pipelining = True, forks = N, gather_facts: false) and the floor \
         (ControlMaster=auto, ControlPersist=60s); paramiko for pyinfra (--parallel N, same key, \
         known_hosts, strict checking; one connection per node)"
    );
}

fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

fn cpu_model() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .unwrap_or_default()
        .lines()
        .find_map(|l| {
            l.strip_prefix("model name")
                .map(|m| m.trim_start_matches([' ', '\t', ':']).to_string())
        })
        .unwrap_or_else(|| "unknown CPU".into())
}

/// paramiko's version, from the Python that runs pyinfra (the venv's).
fn paramiko_version() -> String {
    let python = which("pyinfra")
        .and_then(|p| p.parent().map(|d| d.join("python")))
        .filter(|p| p.is_file())
        .unwrap_or_else(|| PathBuf::from("python3"));
    let mut c = Command::new(python);
    c.args(["-c", "import paramiko; print(paramiko.__version__)"]);
    first_line(c)
}

/// The first non-empty line a command prints (stdout, else stderr).
fn first_line(mut cmd: Command) -> String {
    match cmd.stdin(Stdio::null()).output() {
        Ok(out) => {
            let text = format!(
                "{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
            text.lines()
                .map(str::trim)
                .find(|l| !l.is_empty())
                .unwrap_or("?")
                .to_string()
        }
        Err(e) => format!("? ({e})"),
    }
}

fn median(v: &[f64]) -> f64 {
    let mut v = v.to_vec();
    v.sort_by(f64::total_cmp);
    v.get(v.len() / 2).copied().unwrap_or(f64::NAN)
}
