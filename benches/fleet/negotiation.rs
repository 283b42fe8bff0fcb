//! Proof that every tool negotiated the pinned algorithms: each runs the change once on a
//! one-node testbed whose sshd logs at DEBUG1, and the sshd's own record of every
//! connection's key exchange is read back.

use std::path::Path;

use drover_testbed::{SshAlgorithms, Testbed, TestbedOptions};

use crate::fixture::{Fixture, reset, verify};
use crate::tools::Tool;

/// What sshd logged for the connections of one run.
#[derive(Debug, Default)]
struct Negotiated {
    connections: usize,
    /// Commands run (`exec` requests) and file transfer sessions (`subsystem`: sftp).
    execs: usize,
    subsystems: usize,
    kex: Vec<String>,
    host_key: Vec<String>,
    /// `cipher MAC` per direction.
    ciphers: Vec<(String, String)>,
}

/// Runs every tool in `tools` once and checks, from sshd's log, that each of its
/// connections used exactly `algorithms`. Prints one line per tool, with how many
/// commands and sftp sessions the change took on the node.
pub fn check(drover: &Path, tools: &[Tool], algorithms: &SshAlgorithms) -> Result<(), String> {
    let dir = tempfile::Builder::new()
        .prefix("drover-bench-kex")
        .tempdir()
        .map_err(|e| e.to_string())?;
    let options = TestbedOptions {
        algorithms: Some(algorithms.clone()),
        log_level: Some("DEBUG1".into()),
    };
    let bed = Testbed::start_with(&dir.path().join("bed"), 1, options).map_err(|e| e.to_string())?;
    let fx = Fixture::write(dir.path(), &bed);
    let log_path = bed.sshd_log(0).map_err(|e| e.to_string())?;
    for &tool in tools {
        reset(&bed);
        tool.prepare(drover, &fx, &bed, &dir.path().join("kex-run.log"))?;
        let start = std::fs::metadata(&log_path).map_or(0, |m| m.len());
        tool.run(drover, &fx, &bed, &dir.path().join("kex-run.log"))?;
        verify(&bed).map_err(|e| format!("{}: {e}", tool.name()))?;
        let log = std::fs::read(&log_path).map_err(|e| e.to_string())?;
        let log = String::from_utf8_lossy(log.get(usize::try_from(start).unwrap_or(0)..).unwrap_or(&[]));
        let got = parse(&log);
        let want_cipher = (algorithms.cipher.clone(), algorithms.mac.clone());
        let ok = got.connections > 0
            && got.kex.len() == got.connections
            && got.host_key.len() == got.connections
            && got.ciphers.len() == 2 * got.connections
            && got.kex.iter().all(|k| *k == algorithms.kex)
            && got.host_key.iter().all(|k| *k == algorithms.host_key)
            && got.ciphers.iter().all(|c| *c == want_cipher);
        if !ok {
            return Err(format!(
                "{} did not negotiate the pinned algorithms: {got:?}",
                tool.name()
            ));
        }
        println!(
            "  {:<17} {} connection(s), {} command(s), {} sftp session(s) on the node; each connection: \
             kex {}, host key {}, cipher {}, MAC {}",
            tool.name(),
            got.connections,
            got.execs,
            got.subsystems,
            algorithms.kex,
            algorithms.host_key,
            algorithms.cipher,
            algorithms.mac
        );
    }
    Ok(())
}

/// The key exchange of every connection in an sshd DEBUG1 log, in order.
pub fn kex_algorithms(log: &str) -> Vec<String> {
    parse(log).kex
}

/// sshd (OpenSSH 9.x) logs, per connection, at DEBUG1:
/// `kex: algorithm: K`, `kex: host key algorithm: H`, and per direction
/// `kex: client->server cipher: C MAC: M compression: none`.
fn parse(log: &str) -> Negotiated {
    let mut n = Negotiated::default();
    for line in log.lines() {
        // `session_input_channel_req: session 0 req exec` (sshd's session.c, DEBUG1).
        if line.contains("session_input_channel_req:") {
            if line.ends_with(" req exec") {
                n.execs += 1;
            } else if line.ends_with(" req subsystem") {
                n.subsystems += 1;
            }
            continue;
        }
        let Some(rest) = line.split_once("kex: ").map(|(_, r)| r) else {
            continue;
        };
        let first = |s: &str| s.split_whitespace().next().unwrap_or("").to_string();
        if let Some(k) = rest.strip_prefix("algorithm: ") {
            n.connections += 1;
            n.kex.push(first(k));
        } else if let Some(h) = rest.strip_prefix("host key algorithm: ") {
            n.host_key.push(first(h));
        } else if let Some(c) = rest
            .strip_prefix("client->server cipher: ")
            .or_else(|| rest.strip_prefix("server->client cipher: "))
        {
            let cipher = first(c);
            let mac = c.split_once("MAC: ").map(|(_, m)| first(m)).unwrap_or_default();
            n.ciphers.push((cipher, mac));
        }
    }
    n
}
