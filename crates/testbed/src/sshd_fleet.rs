//! The sshds of a testbed's nodes, shared between the testbed and its reboot service.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use super::process_tree::ProcessTree;
use super::ssh_probe::SshProbe;
use super::sshd_config::SshdConfig;
use super::sshd_files::SshdFiles;
use super::sshd_process::SshdProcess;
use super::test_node::TestNode;
use super::testbed_error::TestbedError;
use super::testbed_options::TestbedOptions;

/// How long every sshd together may take to accept connections, plus [`PER_NODE`] for each.
const STARTUP_TIMEOUT: Duration = Duration::from_secs(10);
/// Extra startup allowance per node, so thousands of nodes on a small CI machine are not
/// reported as failures merely for being many.
const PER_NODE: Duration = Duration::from_millis(20);
/// How many readiness probes are open at once: within the common 1024 file descriptor
/// limit, with room to spare for the test itself.
const PROBES_AT_ONCE: usize = 256;

/// The nodes and their sshd processes. A [`RebootService`](super::RebootService) thread
/// stops and starts nodes while the test thread keeps using its
/// [`Testbed`](super::Testbed), so the process table sits behind a mutex, and each start or
/// stop holds it throughout: nobody sees a half-started node, and a shut-down fleet cannot
/// be started again behind the testbed's back.
#[derive(Debug)]
pub(crate) struct SshdFleet {
    dir: PathBuf,
    nodes: Vec<TestNode>,
    files: Vec<SshdFiles>,
    disable_penalties: bool,
    /// Applied at every start, so restarted nodes keep them.
    options: TestbedOptions,
    table: Mutex<SshdTable>,
}

#[derive(Debug)]
struct SshdTable {
    sshds: Vec<Option<SshdProcess>>,
    /// Set by [`SshdFleet::shut_down`]: from then on nothing starts again, so no sshd can
    /// outlive the testbed, whatever threads still hold the fleet.
    shut_down: bool,
}

impl SshdFleet {
    /// A fleet with no sshd running yet.
    pub(crate) fn new(
        dir: PathBuf,
        nodes: Vec<TestNode>,
        disable_penalties: bool,
        options: TestbedOptions,
    ) -> SshdFleet {
        let files = nodes.iter().map(|n| SshdFiles::new(&dir, &n.name)).collect();
        let sshds = nodes.iter().map(|_| None).collect();
        SshdFleet {
            dir,
            nodes,
            files,
            disable_penalties,
            options,
            table: Mutex::new(SshdTable {
                sshds,
                shut_down: false,
            }),
        }
    }

    pub(crate) fn dir(&self) -> &Path {
        &self.dir
    }

    pub(crate) fn nodes(&self) -> &[TestNode] {
        &self.nodes
    }

    pub(crate) fn files(&self, index: usize) -> Result<&SshdFiles, TestbedError> {
        self.check_index(index)?;
        Ok(&self.files[index])
    }

    /// Moves every node to `port`; only while nothing runs (start-up retrying on another
    /// port), hence `&mut`.
    pub(crate) fn set_port(&mut self, port: u16) {
        self.nodes.iter_mut().for_each(|n| n.port = port);
    }

    pub(crate) fn check_index(&self, index: usize) -> Result<(), TestbedError> {
        if index < self.nodes.len() {
            Ok(())
        } else {
            Err(TestbedError::NoSuchNode {
                index,
                count: self.nodes.len(),
            })
        }
    }

    pub(crate) fn is_running(&self, index: usize) -> bool {
        self.lock().sshds.get(index).is_some_and(Option::is_some)
    }

    pub(crate) fn is_shut_down(&self) -> bool {
        self.lock().shut_down
    }

    /// Writes each node's config, spawns all their sshds, then waits for all of them; on
    /// failure, stops them again so a failed node is never mistaken for a running one. A
    /// node that runs is restarted.
    pub(crate) fn start(&self, indices: &[usize]) -> Result<(), TestbedError> {
        let mut table = self.lock();
        self.start_locked(&mut table, indices)
    }

    /// Starts node `index` unless it runs: one whose sshd died on its own is started afresh.
    pub(crate) fn ensure_running(&self, index: usize) -> Result<(), TestbedError> {
        self.check_index(index)?;
        let mut table = self.lock();
        if let Some(sshd) = table.sshds[index].as_mut() {
            if sshd.exit_status()?.is_none() {
                return Ok(());
            }
            self.stop_locked(&mut table, &[index])?;
        }
        self.start_locked(&mut table, &[index])
    }

    /// Kills the sshds of `indices` and their sessions in one sweep, then reaps them.
    pub(crate) fn stop(&self, indices: &[usize]) -> Result<(), TestbedError> {
        let mut table = self.lock();
        self.stop_locked(&mut table, indices)
    }

    /// Stops every node for good: later starts fail with [`TestbedError::ShutDown`].
    pub(crate) fn shut_down(&self) -> Result<(), TestbedError> {
        let mut table = self.lock();
        table.shut_down = true;
        let all: Vec<usize> = (0..self.nodes.len()).collect();
        self.stop_locked(&mut table, &all)
    }

    /// A panic elsewhere while holding the lock leaves the table consistent (every change
    /// to it is a single assignment), so a poisoned lock is used as is.
    fn lock(&self) -> MutexGuard<'_, SshdTable> {
        self.table.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn start_locked(&self, table: &mut SshdTable, indices: &[usize]) -> Result<(), TestbedError> {
        if table.shut_down {
            return Err(TestbedError::ShutDown);
        }
        // Whatever still runs is stopped first: replacing a process in the table would
        // lose track of it, and it would outlive the testbed.
        let running: Vec<usize> = indices
            .iter()
            .copied()
            .filter(|&i| table.sshds[i].is_some())
            .collect();
        self.stop_locked(table, &running)?;
        let result = self
            .spawn(table, indices)
            .and_then(|()| self.wait_listening(table, indices));
        if result.is_err() {
            // The startup error is the one worth reporting.
            let _ = self.stop_locked(table, indices);
        }
        result
    }

    fn spawn(&self, table: &mut SshdTable, indices: &[usize]) -> Result<(), TestbedError> {
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
                algorithms: self.options.algorithms.as_ref(),
                log_level: self.options.log_level.as_deref().unwrap_or("ERROR"),
            };
            let path = files.config();
            std::fs::write(&path, config.render()).map_err(|e| TestbedError::io("write", &path, e))?;
            table.sshds[i] = Some(SshdProcess::spawn(files)?);
        }
        Ok(())
    }

    /// Polls until every sshd in `indices` answers an SSH connection, failing as soon as
    /// one exits (with its stderr) or when the deadline passes.
    fn wait_listening(&self, table: &mut SshdTable, indices: &[usize]) -> Result<(), TestbedError> {
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
                    let Some(sshd) = table.sshds[i].as_mut() else {
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
                    stderr: table.sshds[first]
                        .as_ref()
                        .map(SshdProcess::stderr)
                        .unwrap_or_default(),
                });
            }
            std::thread::sleep(Duration::from_millis(10));
            pending = still;
        }
    }

    fn stop_locked(&self, table: &mut SshdTable, indices: &[usize]) -> Result<(), TestbedError> {
        let roots: Vec<u32> = indices
            .iter()
            .filter_map(|&i| table.sshds.get(i)?.as_ref()?.pid())
            .collect();
        let mut result = ProcessTree::kill_all(&roots);
        for &i in indices {
            if let Some(sshd) = table.sshds.get_mut(i).and_then(Option::take) {
                let reaped = sshd.reap().map(|_| ());
                result = result.and(reaped);
                // Killed sshds leave their pid file behind; a stale one would mislead.
                let _ = std::fs::remove_file(self.files[i].pid_file());
            }
        }
        result
    }
}

impl Drop for SshdFleet {
    /// The last line of defence, for a fleet dropped before a testbed owned it (start-up
    /// failed): no sshd may outlive its fleet.
    fn drop(&mut self) {
        let _ = self.shut_down();
    }
}
