//! A fleet of real sshds on loopback.

use std::fmt::Write as _;
use std::net::Ipv4Addr;
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use super::boot_files::BootFiles;
use super::known_hosts::KnownHosts;
use super::port_lease::PortLease;
use super::reboot_service::RebootService;
use super::safe_dir::check_dir;
use super::ssh_client_config::SshClientConfig;
use super::ssh_keygen::SshKeygen;
use super::sshd_fleet::SshdFleet;
use super::sshd_process::SSHD;
use super::sshd_version::SshdVersion;
use super::test_node::TestNode;
use super::testbed_error::TestbedError;
use super::testbed_options::TestbedOptions;
use super::yaml_quote::quote;

/// The most nodes one testbed can have: 250 loopback addresses in each of 256 /24s. Process
/// limits usually bite long before (each node is one sshd).
pub const MAX_NODES: usize = 250 * 256;

/// How often start-up moves to another port when another process took the leased one.
const PORT_ATTEMPTS: usize = 5;
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
/// Each state dir also holds the node's boot identity (`boot_id`, `boots`) and a `reboot`
/// script, for fake reboots: see [`Testbed::reboot_service`].
///
/// Dropping the testbed kills every sshd and every session below it, including sshds a
/// [`RebootService`] restarted, and no sshd starts after that.
#[derive(Debug)]
pub struct Testbed {
    user: String,
    /// Shared with reboot services, which stop and start nodes from their own thread.
    fleet: Arc<SshdFleet>,
    /// Held while the testbed lives; `Drop` shuts the sshds down before it is released.
    _lease: PortLease,
}

impl Testbed {
    /// Starts `n` nodes with everything generated in `dir` (created if missing; pass a
    /// fresh temp dir). Returns once every sshd answers SSH connections.
    ///
    /// sshds are started all at once and then waited for, because benchmarks start
    /// hundreds. `dir` may contain only letters, digits and `/._-+@,:`, since its paths
    /// go unquoted into ssh and sshd configs.
    pub fn start(dir: &Path, n: usize) -> Result<Testbed, TestbedError> {
        Self::start_with(dir, n, TestbedOptions::default())
    }

    /// [`Testbed::start`] with sshds set up as `options` say: pinned algorithms or
    /// another log level, for benchmarks that compare SSH clients.
    pub fn start_with(dir: &Path, n: usize, options: TestbedOptions) -> Result<Testbed, TestbedError> {
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
        let mut lease = PortLease::acquire(&addresses)?;
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
        let mut fleet = SshdFleet::new(dir.clone(), nodes, version.has_per_source_penalties(), options);
        let identity = dir.join("id_ed25519");
        let mut keys = vec![(identity.clone(), "drover-testbed-client".to_string())];
        for (i, node) in fleet.nodes().iter().enumerate() {
            let files = fleet.files(i)?;
            for d in [node.state_dir.as_path(), files.dir()] {
                std::fs::create_dir_all(d).map_err(|e| TestbedError::io("create directory", d, e))?;
            }
            BootFiles::new(&node.state_dir).init()?;
            keys.push((files.host_key(), format!("drover-testbed-{}", node.name)));
        }
        SshKeygen::generate(&keys)?;
        let authorized = format!("{} drover-testbed-client\n", SshKeygen::public_key(&identity)?);
        write(&dir.join("authorized_keys"), &authorized)?;

        let all: Vec<usize> = (0..n).collect();
        let mut attempts = 1;
        loop {
            match fleet.start(&all) {
                Ok(()) => break,
                Err(e) if e.is_address_in_use() && attempts < PORT_ATTEMPTS => {
                    // Another process bound the port after it was leased: lease another
                    // (the old lease is released only after, so it cannot come back).
                    attempts += 1;
                    lease = PortLease::acquire(&addresses)?;
                    fleet.set_port(lease.port());
                }
                // Dropping the fleet kills whatever did start.
                Err(e) => return Err(e),
            }
        }
        let testbed = Testbed {
            user,
            fleet: Arc::new(fleet),
            _lease: lease,
        };
        testbed.write_client_files()?;
        Ok(testbed)
    }

    /// The directory everything lives in (canonical form of the one given to `start`).
    pub fn dir(&self) -> &Path {
        self.fleet.dir()
    }

    /// The user every node logs in: whoever runs the tests (`id -un`). It is the only user
    /// an sshd started without root can log in, and sessions as that user can write the
    /// state dirs the tests then read.
    pub fn user(&self) -> &str {
        &self.user
    }

    /// Every node, in order: index `i` is `node{i+1:03}`.
    pub fn nodes(&self) -> &[TestNode] {
        self.fleet.nodes()
    }

    /// For `ssh -F`: every node by name, the testbed's key and `known_hosts`, batch mode.
    /// Sets no `ControlMaster`/`ControlPersist`; multiplexing is the caller's to manage.
    pub fn ssh_config(&self) -> PathBuf {
        self.dir().join("ssh_config")
    }

    /// Every node's host key as written at start (`[127.0.0.2]:2222 ssh-ed25519 ...`).
    pub fn known_hosts(&self) -> PathBuf {
        self.dir().join("known_hosts")
    }

    /// The private client key every node authorizes.
    pub fn identity(&self) -> PathBuf {
        self.dir().join("id_ed25519")
    }

    /// A known_hosts file with only node `index`'s host key as written at start.
    pub fn node_known_hosts(&self, index: usize) -> PathBuf {
        self.dir()
            .join("known_hosts.d")
            .join(self.nodes().get(index).map_or("none", |n| n.name.as_str()))
    }

    /// Node `index`'s sshd stderr across all its runs, for diagnosing a refused session.
    pub fn sshd_log(&self, index: usize) -> Result<PathBuf, TestbedError> {
        Ok(self.fleet.files(index)?.log())
    }

    /// Whether node `index` is up: started and not stopped (a crash of its sshd shows in
    /// [`Testbed::sshd_log`], not here). A node in a fake reboot is not running.
    pub fn is_running(&self, index: usize) -> bool {
        self.fleet.is_running(index)
    }

    /// Node `index`'s current boot id (`boot_id` in its state dir), which every fake
    /// reboot replaces.
    pub fn boot_id(&self, index: usize) -> Result<String, TestbedError> {
        self.fleet.check_index(index)?;
        BootFiles::new(&self.nodes()[index].state_dir).boot_id()
    }

    /// How many fake reboots node `index` has had (`boots` in its state dir).
    pub fn boots(&self, index: usize) -> Result<u32, TestbedError> {
        self.fleet.check_index(index)?;
        BootFiles::new(&self.nodes()[index].state_dir).boots()
    }

    /// A drover inventory with every node (`host`, `port`, `user`, and its state dir as
    /// `vars.state`) and a group `all`. Each node is its own entry, not a host list,
    /// because each has its own address.
    pub fn inventory_yaml(&self) -> String {
        let mut s = format!(
            "# drover testbed in {}: generated.\nnodes:\n",
            self.dir().display()
        );
        let user = quote(&self.user);
        for n in self.nodes() {
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
        for n in self.nodes() {
            let _ = writeln!(s, "    - {}", n.name);
        }
        s
    }

    /// Like [`Testbed::inventory_yaml`], for a site without an ssh_config file: every node
    /// also carries its own `ssh: { identity_file, known_hosts }` (its own known_hosts
    /// file, [`Testbed::node_known_hosts`]), or only `identity_file` when
    /// `known_hosts` is false (for sites that record keys with `accept-new`).
    pub fn inventory_yaml_direct(&self, known_hosts: bool) -> String {
        let mut s = format!(
            "# drover testbed in {}: generated, no ssh_config needed.\nnodes:\n",
            self.dir().display()
        );
        let user = quote(&self.user);
        let identity = quote(&self.identity().to_string_lossy());
        for (i, n) in self.nodes().iter().enumerate() {
            let _ = writeln!(s, "  {}:", n.name);
            let _ = writeln!(s, "    host: {}", quote(&n.host));
            let _ = writeln!(s, "    port: {}", n.port);
            let _ = writeln!(s, "    user: {user}");
            let _ = write!(s, "    ssh: {{ identity_file: {identity}");
            if known_hosts {
                let _ = write!(
                    s,
                    ", known_hosts: {}",
                    quote(&self.node_known_hosts(i).to_string_lossy())
                );
            }
            let _ = writeln!(s, " }}");
            let _ = writeln!(
                s,
                "    vars: {{ state: {} }}",
                quote(&n.state_dir.to_string_lossy())
            );
        }
        s.push_str("groups:\n  all:\n");
        for n in self.nodes() {
            let _ = writeln!(s, "    - {}", n.name);
        }
        s
    }

    /// Makes node `index` unreachable, like a reboot: its sshd and every session it
    /// serves (open connections included) are killed. Stopping a stopped node is a no-op.
    pub fn stop_node(&mut self, index: usize) -> Result<(), TestbedError> {
        self.fleet.check_index(index)?;
        self.fleet.stop(&[index])
    }

    /// Starts node `index` again, with the same address, port and host key; returns once
    /// it accepts connections. Starting a running node is a no-op; one whose sshd died on
    /// its own is started afresh.
    pub fn start_node(&mut self, index: usize) -> Result<(), TestbedError> {
        self.fleet.ensure_running(index)
    }

    /// Gives node `index` a new host key and restarts it, leaving `known_hosts` alone: the
    /// way to test that drover refuses a node whose identity changed.
    pub fn replace_host_key(&mut self, index: usize) -> Result<(), TestbedError> {
        self.fleet.check_index(index)?;
        self.fleet.stop(&[index])?;
        let key = (
            self.fleet.files(index)?.host_key(),
            format!("drover-testbed-{}-replaced", self.nodes()[index].name),
        );
        SshKeygen::generate(&[key])?;
        self.fleet.start(&[index])
    }

    /// Stops every node (what dropping the testbed does), reporting failures that `Drop`
    /// would have to swallow. Unlike dropping, nodes may be started again after.
    pub fn stop_all(&mut self) -> Result<(), TestbedError> {
        let all: Vec<usize> = (0..self.nodes().len()).collect();
        self.fleet.stop(&all)
    }

    /// Starts fake reboots: a thread that watches every node's state dir for a
    /// `reboot-requested` file and then reboots that node. A reboot stops the node's sshd
    /// (cutting its sessions and connections), keeps it down for `down_for`, gives it a new
    /// `boot_id`, counts it in `boots`, and starts its sshd again on the same address, port
    /// and host key. Nodes reboot independently, several at once if asked together.
    ///
    /// The node-side reboot command for a workflow's reboot step is
    /// `{{ node.vars.state }}/reboot` (it asks and returns, like `systemctl reboot`;
    /// `{{ node.vars.state }}/reboot --wait` waits to be cut off instead), or equivalently
    /// `touch {{ node.vars.state }}/reboot-requested`; the boot id command is
    /// `cat {{ node.vars.state }}/boot_id`. Over plain ssh, `$DROVER_STATE` is the state
    /// dir. Run one service per testbed at a time.
    pub fn reboot_service(&self, down_for: Duration) -> Result<RebootService, TestbedError> {
        RebootService::start(Arc::clone(&self.fleet), down_for)
    }

    fn write_client_files(&self) -> Result<(), TestbedError> {
        let mut known = KnownHosts::default();
        let own_dir = self.dir().join("known_hosts.d");
        std::fs::create_dir_all(&own_dir).map_err(|e| TestbedError::io("create directory", &own_dir, e))?;
        for (i, node) in self.nodes().iter().enumerate() {
            let host_key = self.fleet.files(i)?.host_key();
            let public = SshKeygen::public_key(&host_key)?;
            known.add(&node.host, node.port, &public);
            let mut own = KnownHosts::default();
            own.add(&node.host, node.port, &public);
            write(&self.node_known_hosts(i), own.render())?;
        }
        write(&self.known_hosts(), known.render())?;
        let config = SshClientConfig {
            nodes: self.nodes(),
            identity: &self.identity(),
            known_hosts: &self.known_hosts(),
            user: &self.user,
        };
        write(&self.ssh_config(), &config.render())
    }
}

impl Drop for Testbed {
    /// No sshd may outlive its test: it would hold the address and port, and keep serving
    /// a directory that is about to be deleted. Shutting the fleet down (rather than just
    /// stopping it) also keeps a reboot service that outlives the testbed from starting a
    /// node again.
    fn drop(&mut self) {
        let _ = self.fleet.shut_down();
    }
}

fn write(path: &Path, text: &str) -> Result<(), TestbedError> {
    std::fs::write(path, text).map_err(|e| TestbedError::io("write", path, e))
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
