//! Running Slurm's commands on the controller.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use indexmap::IndexMap;

use super::node_status::{NodeStatus, parse_sinfo};
use super::reservation::{Reservation, parse_reservations};
use super::slurm_error::SlurmError;
use crate::hostlist::compress;
use crate::transport::{Connection, LocalConnection, ShellLine};

/// How long one Slurm command may take (slurmctld answers in milliseconds; a busy one in
/// seconds, and `MessageTimeout` defaults to 10s).
const COMMAND_TIMEOUT: Duration = Duration::from_secs(60);

/// `sinfo`/`squeue`/`scontrol` with the site's controller environment (`SLURM_CONF`),
/// every value quoted. Counts the queries it makes, for tests and benchmarks.
#[derive(Debug, Clone, Default)]
pub struct SlurmClient {
    env: IndexMap<String, String>,
    queries: Arc<AtomicU64>,
    /// Per command; `None`: [`COMMAND_TIMEOUT`].
    timeout: Option<Duration>,
}

impl SlurmClient {
    pub fn new(env: IndexMap<String, String>) -> SlurmClient {
        SlurmClient {
            env,
            queries: Arc::default(),
            timeout: None,
        }
    }

    /// With a shorter time limit per command: `drover plan` does not wait a minute for
    /// a `sinfo` that cannot find its slurm.conf (it retries for 60s).
    pub fn with_timeout(mut self, t: Duration) -> SlurmClient {
        self.timeout = Some(t);
        self
    }

    /// `sinfo` runs so far.
    pub fn queries(&self) -> u64 {
        self.queries.load(Ordering::Relaxed)
    }

    /// Runs `line` on the controller; its stdout.
    pub async fn run(&self, line: ShellLine) -> Result<String, SlurmError> {
        let command = line.into_string();
        let out = LocalConnection::new("slurm")
            .with_env(&self.env)
            .exec(&command, None, self.timeout.unwrap_or(COMMAND_TIMEOUT))
            .await
            .map_err(|e| SlurmError::Spawn {
                command: command.clone(),
                error: e.to_string(),
            })?;
        if !out.success() {
            return Err(SlurmError::Failed {
                status: match out.code {
                    _ if out.timed_out => "timed out".into(),
                    Some(c) => format!("exit {c}"),
                    None => "killed".into(),
                },
                stderr: out.last_lines(3).lines().collect::<Vec<_>>().join("; "),
                command,
            });
        }
        Ok(out.stdout)
    }

    /// Every node's state and partitions, or only `nodes`' (one `sinfo`, whatever their
    /// number: the node list goes compressed into `-n`).
    pub async fn sinfo(&self, nodes: Option<&[String]>) -> Result<BTreeMap<String, NodeStatus>, SlurmError> {
        self.queries.fetch_add(1, Ordering::Relaxed);
        let mut line = ShellLine::new().code("sinfo -h -N -o '%N|%P|%T|%E'");
        if let Some(n) = nodes {
            line = line.code(" -n ").value(compress(n));
        }
        Ok(parse_sinfo(&self.run(line).await?))
    }

    /// `squeue` of running and completing jobs: `id|nodes|end time`.
    pub async fn squeue(&self) -> Result<String, SlurmError> {
        self.run(ShellLine::new().code("squeue -h -t R,CG -o '%i|%N|%e'"))
            .await
    }

    /// Drains `node` with `reason` (on a drained node: replaces the reason).
    pub async fn drain(&self, node: &str, reason: &str) -> Result<(), SlurmError> {
        self.run(
            ShellLine::new()
                .code("scontrol update nodename=")
                .value(node)
                .code(" state=drain reason=")
                .value(reason),
        )
        .await
        .map(drop)
    }

    /// Asks slurmctld to reboot `node` with the site's `RebootProgram` as soon as it is
    /// idle (`ASAP`: drained meanwhile), and to leave it `down` once it is back, so it
    /// takes no job before drover's health checks pass and drover resumes it.
    pub async fn reboot(&self, node: &str, reason: &str) -> Result<(), SlurmError> {
        self.run(
            ShellLine::new()
                .code("scontrol reboot ASAP nextstate=DOWN reason=")
                .value(reason)
                .code(" ")
                .value(node),
        )
        .await
        .map(drop)
    }

    /// Every reservation slurmctld has.
    pub async fn reservations(&self) -> Result<Vec<Reservation>, SlurmError> {
        let text = self
            .run(ShellLine::new().code("scontrol show reservation -o"))
            .await?;
        Ok(parse_reservations(&text))
    }

    /// A maintenance reservation `name` of `node` alone from `start` (`now`, or a time
    /// as `squeue %e` prints it) with no end: drover deletes it when the node's turn
    /// ends. `MAINT` and no `IGNORE_JOBS`: Slurm refuses a start before a running job's
    /// time limit, and starts no job there that would not end before it.
    pub async fn create_reservation(&self, name: &str, node: &str, start: &str) -> Result<(), SlurmError> {
        self.run(
            ShellLine::new()
                .code("scontrol create reservation reservationname=")
                .value(name)
                .code(" nodes=")
                .value(node)
                .code(" starttime=")
                .value(start)
                .code(" duration=UNLIMITED flags=maint users=root"),
        )
        .await
        .map(drop)
    }

    /// Deletes reservation `name`; one that is gone already is no error.
    pub async fn delete_reservation(&self, name: &str) -> Result<(), SlurmError> {
        let r = self
            .run(
                ShellLine::new()
                    .code("scontrol delete reservationname=")
                    .value(name),
            )
            .await;
        match r {
            // Slurm 22.05: "Requested reservation is invalid".
            Err(e @ SlurmError::Failed { .. }) if e.to_string().contains("reservation is invalid") => Ok(()),
            r => r.map(drop),
        }
    }

    /// Deletes every reservation run `run` made that is still there (its nodes' turns
    /// are over: at the run's end, or when it is cancelled); their names.
    pub async fn delete_reservations_of(&self, run: &str) -> Result<Vec<String>, SlurmError> {
        let mut gone = Vec::new();
        for r in self.reservations().await? {
            if r.of_run(run) {
                self.delete_reservation(&r.name).await?;
                gone.push(r.name);
            }
        }
        Ok(gone)
    }

    /// Puts `node` back into service.
    pub async fn resume(&self, node: &str) -> Result<(), SlurmError> {
        self.run(
            ShellLine::new()
                .code("scontrol update nodename=")
                .value(node)
                .code(" state=resume"),
        )
        .await
        .map(drop)
    }
}
