//! A fleet of real sshds on loopback.

use std::fmt::Write as _;
use std::net::{Ipv4Addr, SocketAddr};
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use super::known_hosts::KnownHosts;
use super::port_lease::PortLease;
use super::process_tree::ProcessTree;
use super::ssh_client_config::SshClientConfig;
use super::ssh_keygen::SshKeygen;
use super::ssh_probe::SshProbe;
use super::sshd_config::SshdConfig;
use super::sshd_files::SshdFiles;
use super::sshd_process::{SSHD, SshdProcess};
use super::sshd_version::SshdVersion;
use super::test_node::TestNode;
use super::testbed_error::TestbedError;

/// The most nodes one testbed can have: 250 loopback addresses in each of 256 /24s. Process
/// limits usually bite long before (each node is one sshd).
pub const MAX_NODES: usize = 250 * 256;

/// How long every sshd together may take to accept connections, plus [`PER_NODE`] for each.
const STARTUP_TIMEOUT: Duration = Duration::from_secs(10);
/// Extra startup allowance per node, so thousands of nodes on a small CI machine are not
/// reported as failures merely for being many.
const PER_NODE: Duration = Duration::from_millis(20);
/// How often start-up moves to another port when another process took the leased one.
const PORT_ATTEMPTS: usize = 5;
/// How many readiness probes are open at once: within the common 1024 file descriptor
/// limit, with room to spare for the test itself.
const PROBES_AT_ONCE: usize = 256;
/// sshd's privilege separation directory. Packaged sshds expect systemd to create it at
/// boot, which containers and CI images without systemd never do.
const PRIVSEP_DIR: &str = "/run/sshd";

/// N real OpenSSH servers, one per node, for tests and benchmarks of drover's SSH layer.
///
/// Node `i` (0-based) is `node{i+1:03}` and runs `/usr/sbin/sshd -D -e` on its own loopback
/// address ([`TestNode::address_for`]: `127.0.0.2`, `127.0.0.3`, ...). All nodes of a
/// testbed share one port: 2222 for the first testbed of a process, the next free port
/// for testbeds running at the same time (see [`TestNode::port`]). Distinct addresses
/// rather than distinct ports on `127.0.0.1` make nodes look like a real fleet (one host
/// each, same port) and keep every port outside the ephemeral range, so an outgoing ssh
/// connection can never occupy the port a restarted node needs.
///
/// Everything lives in the directory given to [`Testbed::start`]:
///
/// - `id_ed25519`, `id_ed25519.pub`: the client key, authorized on every node
///   (`authorized_keys`);
/// - `known_hosts`, `ssh_config`: so `ssh -F <dir>/ssh_config node001 CMD` works;
/// - `nodes/node001/`: the node's state directory, `DROVER_STATE` in its sessions;
/// - `sshd/node001/`: its `sshd_config`, host key, pid file and `sshd.log` (sshd's stderr).
///
/// Sessions on a node see `DROVER_NODE=node001` and `DROVER_STATE=<state dir>`, set by
/// sshd's `SetEnv`, so commands can tell which node they run on. They log in as the user
/// running the tests ([`Testbed::user`]).
///
/// Dropping the testbed kills every sshd and every session below it.
#[derive(Debug)]
pub struct Testbed {
    dir: PathBuf,
    user: String,
    nodes: Vec<TestNode>,
    files: Vec<SshdFiles>,
    sshds: Vec<Option<SshdProcess>>,
    lease: PortLease,
    disable_penalties: bool,
}

impl Testbed {
    /// Starts `n` nodes with everything generated in `dir` (created if missing; pass a
    /// fresh temp dir). Returns once every sshd answers SSH connections.
    ///
    /// sshds are started all at once and then waited for, because benchmarks start
    /// hundreds. `dir` may contain only letters, digits and `/._-+@,:`, since its paths
    /// go unquoted into ssh and sshd configs.
    pub fn start(dir: &Path, n: usize) -> Result<Testbed, TestbedError> {
        if n == 0 || n > MAX_NODES {
            return Err(TestbedError::NodeCount {
                requested: n,
                max: MAX_NODES,
            });
        }
        std::fs::create_dir_all(dir).map_err(|e| TestbedError::io("create testbed dir", dir, e))?;
        let dir = std::fs::canonicalize(dir).map_err(|e| TestbedError::io("resolve testbed dir", dir, e))?;
        check_dir(&dir)?;
        ensure_privsep_dir()?;
        let version = SshdVersion::detect(SSHD)?;
        let user = run_id("-un")?;

        let addresses: Vec<Ipv4Addr> = (0..n).map(TestNode::address_for).collect();
        let lease = PortLease::acquire(&addresses)?;
        let nodes: Vec<TestNode> = addresses
            .iter()
            .enumerate()
            .map(|(i, address)| {
                let name = TestNode::name_for(i);
                TestNode {
                    host: address.to_string(),
                    port: lease.port(),
                    state_dir: dir.join("nodes").join(&name),
                    name,
                }
            })
            .collect();
        let files: Vec<SshdFiles> = nodes
            .iter()
            .map(|node| SshdFiles::new(&dir, &node.name))
            .collect();
        for (node, f) in nodes.iter().zip(&files) {
            for d in [node.state_dir.as_path(), f.dir()] {
                std::fs::create_dir_all(d).map_err(|e| TestbedError::io("create directory", d, e))?;
            }
        }

        let identity = dir.join("id_ed25519");
        let mut keys = vec![(identity.clone(), "drover-testbed-client".to_string())];
        keys.extend(
            nodes
                .iter()
                .zip(&files)
                .map(|(node, f)| (f.host_key(), format!("drover-testbed-{}", node.name))),
        );
        SshKeygen::generate(&keys)?;
        let authorized = format!("{} drover-testbed-client\n", SshKeygen::public_key(&identity)?);
        write(&dir.join("authorized_keys"), &authorized)?;

        let mut testbed = Testbed {
            sshds: nodes.iter().map(|_| None).collect(),
            dir,
            user,
            nodes,
            files,
            lease,
            disable_penalties: version.has_per_source_penalties(),
        };
        let all: Vec<usize> = (0..n).collect();
        let mut attempts = 1;
        loop {
            match testbed.start_nodes(&all) {
                Ok(()) => break,
                Err(e) if e.is_address_in_use() && attempts < PORT_ATTEMPTS => {
                    // Another process bound the port after it was leased: lease another
                    // (the old lease is released only after, so it cannot come back).
                    attempts += 1;
                    testbed.lease = PortLease::acquire(&addresses)?;
                    let port = testbed.lease.port();
                    testbed.nodes.iter_mut().for_each(|node| node.port = port);
                }
                // Dropping the testbed kills whatever did start.
                Err(e) => return Err(e),
            }
        }
        testbed.write_client_files()?;
        Ok(testbed)
    }

    /// The directory everything lives in (canonical form of the one given to `start`).
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The user every node logs in: whoever runs the tests (`id -un`). It is the only user
    /// an sshd started without root can log in, and sessions as that user can write the
    /// state dirs the tests then read.
    pub fn user(&self) -> &str {
        &self.user
    }

    /// Every node, in order: index `i` is `node{i+1:03}`.
    pub fn nodes(&self) -> &[TestNode] {
        &self.nodes
    }

    /// For `ssh -F`: every node by name, the testbed's key and `known_hosts`, batch mode.
    /// Sets no `ControlMaster`/`ControlPersist`; multiplexing is the caller's to manage.
    pub fn ssh_config(&self) -> PathBuf {
        self.dir.join("ssh_config")
    }

    /// Every node's host key as written at start (`[127.0.0.2]:2222 ssh-ed25519 ...`).
    pub fn known_hosts(&self) -> PathBuf {
        self.dir.join("known_hosts")
    }

    /// The private client key every node authorizes.
    pub fn identity(&self) -> PathBuf {
        self.dir.join("id_ed25519")
    }

    /// Node `index`'s sshd stderr across all its runs, for diagnosing a refused session.
    pub fn sshd_log(&self, index: usize) -> Result<PathBuf, TestbedError> {
        self.check_index(index)?;
        Ok(self.files[index].log())
    }

    /// Whether node `index` is up: started and not stopped (a crash of its sshd shows in
    /// [`Testbed::sshd_log`], not here).
    pub fn is_running(&self, index: usize) -> bool {
        self.sshds.get(index).is_some_and(Option::is_some)
    }

    /// A drover inventory with every node (`host`, `port`, `user`, and its state dir as
    /// `vars.state`) and a group `all`. Each node is its own entry, not a host list,
    /// because each has its own address.
    pub fn inventory_yaml(&self) -> String {
        let mut s = format!("# drover testbed in {}: generated.\nnodes:\n", self.dir.display());
        let user = quote(&self.user);
        for n in &self.nodes {
            let _ = writeln!(s, "  {}:", n.name);
            let _ = writeln!(s, "    host: {}", quote(&n.host));
            let _ = writeln!(s, "    port: {}", n.port);
            let _ = writeln!(s, "    user: {user}");
            let _ = writeln!(
                s,
                "    vars: {{ state: {} }}",
                quote(&n.state_dir.to_string_lossy())
            );
        }
        s.push_str("groups:\n  all:\n");
        for n in &self.nodes {
            let _ = writeln!(s, "    - {}", n.name);
        }
        s
    }

    /// Makes node `index` unreachable, like a reboot: its sshd and every session it
    /// serves (open connections included) are killed. Stopping a stopped node is a no-op.
    pub fn stop_node(&mut self, index: usize) -> Result<(), TestbedError> {
        self.check_index(index)?;
        self.stop_nodes(&[index])
    }

    /// Starts node `index` again, with the same address, port and host key; returns once
    /// it accepts connections. Starting a running node is a no-op; one whose sshd died on
    /// its own is started afresh.
    pub fn start_node(&mut self, index: usize) -> Result<(), TestbedError> {
        self.check_index(index)?;
        if let Some(sshd) = self.sshds[index].as_mut() {
            if sshd.exit_status()?.is_none() {
                return Ok(());
            }
            self.stop_nodes(&[index])?;
        }
        self.start_nodes(&[index])
    }

    /// Gives node `index` a new host key and restarts it, leaving `known_hosts` alone: the
    /// way to test that drover refuses a node whose identity changed.
    pub fn replace_host_key(&mut self, index: usize) -> Result<(), TestbedError> {
        self.check_index(index)?;
        self.stop_nodes(&[index])?;
        let key = (
            self.files[index].host_key(),
            format!("drover-testbed-{}-replaced", self.nodes[index].name),
        );
        SshKeygen::generate(&[key])?;
        self.start_nodes(&[index])
    }

    /// Stops every node (what dropping the testbed does), reporting failures that `Drop`
    /// would have to swallow.
    pub fn stop_all(&mut self) -> Result<(), TestbedError> {
        let all: Vec<usize> = (0..self.nodes.len()).collect();
        self.stop_nodes(&all)
    }

    fn check_index(&self, index: usize) -> Result<(), TestbedError> {
        if index < self.nodes.len() {
            Ok(())
        } else {
            Err(TestbedError::NoSuchNode {
                index,
                count: self.nodes.len(),
            })
        }
    }

    /// Writes each node's config, spawns all their sshds, then waits for all of them; on
    /// failure, stops them again so a failed node is never mistaken for a running one.
    fn start_nodes(&mut self, indices: &[usize]) -> Result<(), TestbedError> {
        let result = self
            .spawn_nodes(indices)
            .and_then(|()| self.wait_listening(indices));
        if result.is_err() {
            // The startup error is the one worth reporting.
            let _ = self.stop_nodes(indices);
        }
        result
    }

    fn spawn_nodes(&mut self, indices: &[usize]) -> Result<(), TestbedError> {
        let authorized_keys = self.dir.join("authorized_keys");
        for &i in indices {
            let (node, files) = (&self.nodes[i], &self.files[i]);
            let config = SshdConfig {
                node: &node.name,
                address: TestNode::address_for(i),
                port: node.port,
                host_key: &files.host_key(),
                pid_file: &files.pid_file(),
                authorized_keys: &authorized_keys,
                state_dir: &node.state_dir,
                disable_penalties: self.disable_penalties,
            };
            write(&files.config(), &config.render())?;
            self.sshds[i] = Some(SshdProcess::spawn(files)?);
        }
        Ok(())
    }

    /// Polls until every sshd in `indices` answers an SSH connection, failing as soon as
    /// one exits (with its stderr) or when the deadline passes.
    fn wait_listening(&mut self, indices: &[usize]) -> Result<(), TestbedError> {
        let count = u32::try_from(indices.len()).unwrap_or(u32::MAX);
        let limit = STARTUP_TIMEOUT.saturating_add(PER_NODE.saturating_mul(count));
        let started = Instant::now();
        let mut pending = indices.to_vec();
        loop {
            let mut still = Vec::new();
            // Chunks bound the connections open at once, since each is a file descriptor.
            for chunk in pending.chunks(PROBES_AT_ONCE) {
                let mut probes = Vec::with_capacity(chunk.len());
                for &i in chunk {
                    let Some(sshd) = self.sshds[i].as_mut() else {
                        continue;
                    };
                    if let Some(status) = sshd.exit_status()? {
                        return Err(TestbedError::SshdExited {
                            node: self.nodes[i].name.clone(),
                            status: status.to_string(),
                            stderr: sshd.stderr(),
                        });
                    }
                    let address = SocketAddr::from((TestNode::address_for(i), self.nodes[i].port));
                    match SshProbe::connect(address) {
                        Some(probe) => probes.push((i, probe)),
                        None => still.push(i),
                    }
                }
                for (i, probe) in probes {
                    if !probe.answered() {
                        still.push(i);
                    }
                }
            }
            let Some(&first) = still.first() else {
                return Ok(());
            };
            if started.elapsed() > limit {
                let node = &self.nodes[first];
                return Err(TestbedError::SshdNotListening {
                    node: node.name.clone(),
                    address: format!("{}:{}", node.host, node.port),
                    waited: started.elapsed(),
                    stderr: self.sshds[first]
                        .as_ref()
                        .map(SshdProcess::stderr)
                        .unwrap_or_default(),
                });
            }
            std::thread::sleep(Duration::from_millis(10));
            pending = still;
        }
    }

    /// Kills the sshds of `indices` and their sessions in one sweep, then reaps them.
    fn stop_nodes(&mut self, indices: &[usize]) -> Result<(), TestbedError> {
        let roots: Vec<u32> = indices
            .iter()
            .filter_map(|&i| self.sshds.get(i)?.as_ref()?.pid())
            .collect();
        let mut result = ProcessTree::kill_all(&roots);
        for &i in indices {
            if let Some(sshd) = self.sshds.get_mut(i).and_then(Option::take) {
                let reaped = sshd.reap().map(|_| ());
                result = result.and(reaped);
                // Killed sshds leave their pid file behind; a stale one would mislead.
                let _ = std::fs::remove_file(self.files[i].pid_file());
            }
        }
        result
    }

    fn write_client_files(&self) -> Result<(), TestbedError> {
        let mut known = KnownHosts::default();
        for (node, files) in self.nodes.iter().zip(&self.files) {
            known.add(&node.host, node.port, &SshKeygen::public_key(&files.host_key())?);
        }
        write(&self.known_hosts(), known.render())?;
        let config = SshClientConfig {
            nodes: &self.nodes,
            identity: &self.identity(),
            known_hosts: &self.known_hosts(),
            user: &self.user,
        };
        write(&self.ssh_config(), &config.render())
    }
}

impl Drop for Testbed {
    /// No sshd may outlive its test: it would hold the address and port, and keep serving
    /// a directory that is about to be deleted.
    fn drop(&mut self) {
        let _ = self.stop_all();
    }
}

fn write(path: &Path, text: &str) -> Result<(), TestbedError> {
    std::fs::write(path, text).map_err(|e| TestbedError::io("write", path, e))
}

/// A YAML double-quoted scalar (a JSON string is one), so paths and user names with any
/// characters stay strings.
fn quote(s: &str) -> String {
    serde_json::Value::from(s).to_string()
}

/// Refuses paths that configs would misread: unquoted whitespace splits arguments, `%`
/// and `~` are expanded by ssh, `#` may start a comment, quotes change parsing.
fn check_dir(dir: &Path) -> Result<(), TestbedError> {
    let unsupported = |reason: String| TestbedError::UnsupportedDir {
        path: dir.to_path_buf(),
        reason,
    };
    let Some(text) = dir.to_str() else {
        return Err(unsupported("the path is not UTF-8".to_string()));
    };
    match text
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '/' | '.' | '_' | '-' | '+' | '@' | ',' | ':')))
    {
        Some(c) => Err(unsupported(format!("it contains {c:?}"))),
        None => Ok(()),
    }
}

/// Creates sshd's privilege separation directory if missing. Only a root sshd needs it,
/// so failing to create it is only an error for root.
fn ensure_privsep_dir() -> Result<(), TestbedError> {
    let path = Path::new(PRIVSEP_DIR);
    if path.is_dir() {
        return Ok(());
    }
    let created = std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o755)
        .create(path)
        // The mode given to mkdir is reduced by the umask; sshd insists on exactly this.
        .and_then(|()| std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)));
    match created {
        Ok(()) => Ok(()),
        Err(_) if run_id("-u")? != "0" => Ok(()),
        Err(e) => Err(TestbedError::io("create sshd privilege separation dir", path, e)),
    }
}

/// `id ARG`, trimmed.
fn run_id(arg: &str) -> Result<String, TestbedError> {
    let out = Command::new("id")
        .arg(arg)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| TestbedError::spawn("id", "coreutils", e))?;
    if !out.status.success() {
        return Err(TestbedError::CommandFailed {
            command: format!("id {arg}"),
            status: out.status.to_string(),
            stderr: String::from_utf8_lossy(&out.stderr).trim().to_string(),
        });
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_dirs_configs_would_misread() {
        assert!(check_dir(Path::new("/tmp/.tmpAbC123/x-y_z")).is_ok());
        for bad in ["/tmp/a b", "/tmp/100%", "/tmp/#x", "/tmp/\"q\""] {
            let err = check_dir(Path::new(bad)).expect_err(bad).to_string();
            assert!(err.contains(bad), "{err}");
        }
    }

    #[test]
    fn quotes_yaml_strings() {
        assert_eq!(quote("root"), "\"root\"");
        assert_eq!(quote("a\"b"), "\"a\\\"b\"");
    }
}
