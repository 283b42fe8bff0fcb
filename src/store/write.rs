//! What the engine records.

use std::path::Path;

use jiff::Timestamp;
use rusqlite::{Connection, ErrorCode, ffi, params};

use super::columns::{OUTPUT_TAIL_MAX, int, json_text, millis, tail};
use super::controller::Controller;
use super::discovered_host::DiscoveredHost;
use super::node_lifecycle::LifecycleState;
use super::node_state::NodeState;
use super::notice_kind::NoticeKind;
use super::notices;
use super::pause::PauseScope;
use super::run_status::RunStatus;
use super::source_commit::SourceVerdict;
use super::store_error::StoreError;
use super::wanted_rollout::WantedRollout;

/// One fact about a run. Apart from `RunCreated` (refused if the run exists), each sets
/// a row's new state rather than applying a delta, so recording one twice (a retry after
/// an error of unknown outcome) does no harm. A request's writes are applied in order.
#[derive(Debug, Clone, PartialEq)]
pub enum Write {
    /// A new run with its plan; every planned node starts Pending with its phase index.
    RunCreated {
        id: String,
        workflow: String,
        version: u32,
        commit: Option<String>,
        plan: serde_json::Value,
        options: serde_json::Value,
        controller: Controller,
        at: Timestamp,
        /// Node name and phase index, in plan order.
        nodes: Vec<(String, usize)>,
    },
    RunFinished {
        id: String,
        status: RunStatus,
        outcome: serde_json::Value,
        at: Timestamp,
    },
    /// The controller that now drives the run (on resume) and a liveness timestamp.
    Heartbeat {
        id: String,
        controller: Controller,
        at: Timestamp,
    },
    /// Who or what started the run (the service's `Trigger`, JSON), written with its
    /// `RunCreated` in the same transaction.
    RunTriggered { id: String, trigger: serde_json::Value },
    /// A finished or interrupted run taken up again: back to Running under
    /// `controller`, its finish time and outcome cleared.
    RunResumed {
        id: String,
        controller: Controller,
        at: Timestamp,
    },
    /// A node's transition. `attempt` and `step` (position in the node's step list) are
    /// where it stands; `drained_by_us` says whether this run has drained it (so a crash
    /// never forgets a drained node); `boot_id` is the boot id read before a reboot (None
    /// otherwise); `reason` is for Held/Failed/Skipped. A final state (succeeded,
    /// failed, held, skipped) also releases the run's lease on the node in the same
    /// transaction: the run is done with it, and nothing should wait for the whole run
    /// to end to use it.
    Node {
        run: String,
        node: String,
        state: NodeState,
        attempt: u32,
        step: usize,
        drained_by_us: bool,
        boot_id: Option<String>,
        reason: Option<String>,
        at: Timestamp,
    },
    /// One step attempt's result with the tail of its output (caller truncates; the store
    /// keeps at most the last 4 KiB anyway). Recording the same attempt again replaces it.
    Step {
        run: String,
        node: String,
        step: String,
        position: usize,
        attempt: u32,
        status: String,
        exit_code: Option<i32>,
        duration_ms: u64,
        output_tail: String,
        at: Timestamp,
    },
    /// No new node starts in the runs `scope` covers, until [`Write::Unpaused`]. Pausing
    /// what is paused already keeps its `since` and takes the new reason and setter.
    Paused {
        scope: PauseScope,
        reason: Option<String>,
        by: String,
        at: Timestamp,
    },
    /// Lifts the pause of `scope` (none set: nothing to do), on behalf of `by`.
    Unpaused {
        scope: PauseScope,
        by: String,
        at: Timestamp,
    },
    /// Automation off for `node`: no run starts it, no hook touches it. A node already
    /// in maintenance keeps its `since` and takes the new reason and setter.
    MaintenanceOn {
        node: String,
        reason: Option<String>,
        by: String,
        at: Timestamp,
    },
    /// Every node recorded failed in `run` goes into maintenance, set by `by`, its
    /// reason `{what}: run {run} failed on it: {the node's recorded reason}`. One
    /// statement over the run's node rows, so it holds exactly the nodes the record
    /// says failed (a resumed run's earlier failures too), in the transaction it is
    /// written with.
    HoldFailed {
        run: String,
        by: String,
        what: String,
        at: Timestamp,
    },
    /// An alarm of `trigger` started `run` (if it started) on `node` at `at`: its next
    /// alarms for the node start nothing before `until`.
    AlarmCooldown {
        trigger: String,
        node: String,
        until: Timestamp,
        run: Option<String>,
        at: Timestamp,
    },
    /// Ends `node`'s maintenance: it returns to the state it had before (or to none).
    /// A node not in maintenance is left as it is.
    MaintenanceOff { node: String },
    /// Node lifecycle (`discovered`, `commissioned`, `decommissioned`): `node` is in
    /// `state` from now on, with no state to return to.
    Lifecycle {
        node: String,
        state: LifecycleState,
        reason: Option<String>,
        by: String,
        at: Timestamp,
    },
    /// A host discovery reached, by address (a new probe replaces the old record; its
    /// `by` and `since` are who probed it and when).
    Discovered { host: DiscoveredHost },
    /// The git watcher's verdict on a commit; the commit becomes the last one seen, and
    /// when accepted the one in force, with its workflows' `fingerprints`.
    SourceCommit {
        sha: String,
        verdict: SourceVerdict,
        author: String,
        subject: String,
        detail: String,
        fingerprints: Option<serde_json::Value>,
        /// The workflows an accepted commit changed: each one's wanted version from now
        /// on, in the same transaction as the verdict, so no accepted version is lost
        /// whenever the daemon stops.
        wanted: Vec<WantedRollout>,
        at: Timestamp,
    },
    /// An event no other write records (a run waiting for its window): into the outbox
    /// as it is, with the run's workflow and version added. `key` makes it once.
    Notice {
        key: String,
        kind: NoticeKind,
        run: Option<String>,
        payload: serde_json::Value,
        at: Timestamp,
    },
    /// Sink `sink` took outbox event `outbox`; `reply` is what later messages need of its
    /// answer (a Slack message's `ts`). Recording it twice keeps the first.
    Delivered {
        outbox: i64,
        sink: String,
        reply: Option<String>,
        at: Timestamp,
    },
}

impl Write {
    /// Applies the write inside the writer's open transaction. `path` names the database
    /// in errors.
    pub(super) fn apply(&self, conn: &Connection, path: &Path) -> Result<(), StoreError> {
        if let Write::RunCreated { id, .. } = self {
            let exists = conn
                .prepare_cached("SELECT 1 FROM runs WHERE id = ?1")
                .and_then(|mut s| s.exists([id]))
                .map_err(|e| StoreError::database(path, self.describe(), e))?;
            if exists {
                return Err(StoreError::RunExists { run: id.clone() });
            }
        }
        match self.execute(conn) {
            Ok(0) if self.is_gate() => self.tell(conn, path, 0),
            Ok(0) => Err(self.missing()),
            Ok(n) => {
                self.release_finished(conn, path)?;
                self.tell(conn, path, n)
            }
            // The only foreign key a write can break is a step's reference to its node.
            Err(e) if is_constraint(&e, ffi::SQLITE_CONSTRAINT_FOREIGNKEY) => Err(self.missing()),
            Err(e) => Err(StoreError::database(path, self.describe(), e)),
        }
    }

    /// The event the write makes, into the outbox in the same savepoint.
    fn tell(&self, conn: &Connection, path: &Path, changed: usize) -> Result<(), StoreError> {
        notices::record(conn, self, changed)
            .map_err(|e| StoreError::database(path, format!("{} (its notification)", self.describe()), e))
    }

    /// A node the run is done with is free for other runs at once.
    fn release_finished(&self, conn: &Connection, path: &Path) -> Result<(), StoreError> {
        if let Write::Node { run, node, state, .. } = self
            && state.is_final()
        {
            conn.prepare_cached("DELETE FROM leases WHERE run = ?1 AND node = ?2")
                .and_then(|mut s| s.execute([run, node]))
                .map_err(|e| StoreError::database(path, self.describe(), e))?;
        }
        Ok(())
    }

    /// A pause or maintenance change: it names no run, and finding nothing to change
    /// (lifting a pause that is not set) is not an error.
    fn is_gate(&self) -> bool {
        matches!(
            self,
            Write::Paused { .. }
                | Write::Unpaused { .. }
                | Write::MaintenanceOn { .. }
                | Write::HoldFailed { .. }
                | Write::MaintenanceOff { .. }
                | Write::AlarmCooldown { .. }
                | Write::Lifecycle { .. }
                | Write::Discovered { .. }
                | Write::Notice { .. }
                | Write::Delivered { .. }
        )
    }

    /// The rows written; 0 means the run or node to update does not exist.
    fn execute(&self, conn: &Connection) -> rusqlite::Result<usize> {
        match self {
            Write::RunCreated {
                id,
                workflow,
                version,
                commit,
                plan,
                options,
                controller,
                at,
                nodes,
            } => {
                let mut rows = conn
                    .prepare_cached(
                        "INSERT INTO runs (id, workflow, version, git_commit, status, plan, options,
                                           controller_host, controller_pid, started_at, heartbeat_at)
                         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?10)",
                    )?
                    .execute(params![
                        id,
                        workflow,
                        version,
                        commit,
                        RunStatus::Running,
                        json_text(plan)?,
                        json_text(options)?,
                        controller.host,
                        controller.pid,
                        millis(*at),
                    ])?;
                let mut insert = conn.prepare_cached(
                    "INSERT INTO nodes (run, node, seq, phase, state, attempt, step, drained_by_us,
                                        updated_at)
                     VALUES (?1, ?2, ?3, ?4, ?5, 0, 0, 0, ?6)",
                )?;
                for (seq, (node, phase)) in nodes.iter().enumerate() {
                    let (seq, phase) = (int(seq)?, int(*phase)?);
                    rows += insert.execute(params![id, node, seq, phase, NodeState::Pending, millis(*at)])?;
                }
                Ok(rows)
            }

            Write::RunFinished {
                id,
                status,
                outcome,
                at,
            } => conn
                .prepare_cached("UPDATE runs SET status = ?2, outcome = ?3, finished_at = ?4 WHERE id = ?1")?
                .execute(params![id, status, json_text(outcome)?, millis(*at)]),

            Write::Heartbeat { id, controller, at } => conn
                .prepare_cached(
                    "UPDATE runs SET controller_host = ?2, controller_pid = ?3, heartbeat_at = ?4
                     WHERE id = ?1",
                )?
                .execute(params![id, controller.host, controller.pid, millis(*at)]),

            Write::RunTriggered { id, trigger } => conn
                .prepare_cached("UPDATE runs SET trigger = ?2 WHERE id = ?1")?
                .execute(params![id, json_text(trigger)?]),

            Write::RunResumed { id, controller, at } => conn
                .prepare_cached(
                    "UPDATE runs SET status = ?2, controller_host = ?3, controller_pid = ?4,
                                     heartbeat_at = ?5, finished_at = NULL, outcome = NULL
                     WHERE id = ?1",
                )?
                .execute(params![
                    id,
                    RunStatus::Running,
                    controller.host,
                    controller.pid,
                    millis(*at)
                ]),

            Write::Node {
                run,
                node,
                state,
                attempt,
                step,
                drained_by_us,
                boot_id,
                reason,
                at,
            } => conn
                .prepare_cached(
                    "UPDATE nodes SET state = ?3, attempt = ?4, step = ?5, drained_by_us = ?6,
                                      boot_id = ?7, reason = ?8, updated_at = ?9
                     WHERE run = ?1 AND node = ?2",
                )?
                .execute(params![
                    run,
                    node,
                    state,
                    attempt,
                    int(*step)?,
                    drained_by_us,
                    boot_id,
                    reason,
                    millis(*at)
                ]),

            Write::SourceCommit {
                sha,
                verdict,
                author,
                subject,
                detail,
                fingerprints,
                wanted,
                at,
            } => {
                let rows = conn
                    .prepare_cached(
                        "INSERT INTO source_commits (sha, verdict, author, subject, detail, at)
                         VALUES (?1, ?2, ?3, ?4, ?5, ?6)
                         ON CONFLICT (sha) DO UPDATE SET verdict = excluded.verdict,
                             detail = excluded.detail, at = excluded.at",
                    )?
                    .execute(params![sha, verdict, author, subject, detail, millis(*at)])?;
                let fingerprints = fingerprints.as_ref().map(json_text).transpose()?;
                // A rejected commit leaves the commit in force (and its fingerprints) as
                // they were; a first commit rejected leaves none in force.
                conn.prepare_cached(
                    "INSERT INTO source_head (id, seen, good, fingerprints)
                     VALUES (1, ?1, CASE WHEN ?2 IS NULL THEN NULL ELSE ?1 END, COALESCE(?2, '{}'))
                     ON CONFLICT (id) DO UPDATE SET seen = excluded.seen,
                         good = CASE WHEN ?2 IS NULL THEN good ELSE excluded.good END,
                         fingerprints = CASE WHEN ?2 IS NULL THEN fingerprints ELSE excluded.fingerprints END",
                )?
                .execute(params![sha, fingerprints])?;
                for w in wanted {
                    w.upsert(conn, *at)?;
                }
                Ok(rows)
            }

            Write::Step {
                run,
                node,
                step,
                position,
                attempt,
                status,
                exit_code,
                duration_ms,
                output_tail,
                at,
            } => conn
                .prepare_cached(
                    "INSERT INTO steps (run, node, position, attempt, step, status, exit_code,
                                        duration_ms, output_tail, at)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)
                     ON CONFLICT (run, node, position, attempt) DO UPDATE SET
                         step = excluded.step, status = excluded.status, exit_code = excluded.exit_code,
                         duration_ms = excluded.duration_ms, output_tail = excluded.output_tail,
                         at = excluded.at",
                )?
                .execute(params![
                    run,
                    node,
                    int(*position)?,
                    attempt,
                    step,
                    status,
                    exit_code,
                    int(*duration_ms)?,
                    tail(output_tail, OUTPUT_TAIL_MAX),
                    millis(*at)
                ]),

            Write::Paused {
                scope,
                reason,
                by,
                at,
            } => conn
                .prepare_cached(
                    "INSERT INTO pauses (scope, reason, set_by, since) VALUES (?1, ?2, ?3, ?4)
                     ON CONFLICT (scope) DO UPDATE SET reason = excluded.reason, set_by = excluded.set_by",
                )?
                .execute(params![scope.key(), reason, by, millis(*at)]),

            Write::Unpaused { scope, .. } => conn
                .prepare_cached("DELETE FROM pauses WHERE scope = ?1")?
                .execute([scope.key()]),

            Write::AlarmCooldown {
                trigger,
                node,
                until,
                run,
                at,
            } => conn
                .prepare_cached(
                    "INSERT INTO alarm_cooldowns (trigger, node, until, run, at) VALUES (?1, ?2, ?3, ?4, ?5)
                     ON CONFLICT (trigger, node) DO UPDATE SET
                         until = excluded.until, run = excluded.run, at = excluded.at",
                )?
                .execute(params![trigger, node, millis(*until), run, millis(*at)]),

            Write::HoldFailed { run, by, what, at } => conn
                .prepare_cached(
                    "INSERT INTO node_lifecycle (node, state, previous, reason, set_by, since)
                     SELECT node, 'maintenance', NULL,
                            ?2 || ': run ' || ?1 || ' failed on it: ' || COALESCE(reason, 'see the run'),
                            ?3, ?4
                     FROM nodes WHERE run = ?1 AND state = 'failed'
                     ON CONFLICT (node) DO UPDATE SET
                         previous = CASE WHEN state = 'maintenance' THEN previous ELSE state END,
                         since = CASE WHEN state = 'maintenance' THEN since ELSE excluded.since END,
                         state = 'maintenance', reason = excluded.reason, set_by = excluded.set_by",
                )?
                .execute(params![run, what, by, millis(*at)]),

            Write::MaintenanceOn { node, reason, by, at } => conn
                .prepare_cached(
                    "INSERT INTO node_lifecycle (node, state, previous, reason, set_by, since)
                     VALUES (?1, 'maintenance', NULL, ?2, ?3, ?4)
                     ON CONFLICT (node) DO UPDATE SET
                         previous = CASE WHEN state = 'maintenance' THEN previous ELSE state END,
                         since = CASE WHEN state = 'maintenance' THEN since ELSE excluded.since END,
                         state = 'maintenance', reason = excluded.reason, set_by = excluded.set_by",
                )?
                .execute(params![node, reason, by, millis(*at)]),

            Write::Lifecycle {
                node,
                state,
                reason,
                by,
                at,
            } => conn
                .prepare_cached(
                    "INSERT INTO node_lifecycle (node, state, previous, reason, set_by, since)
                     VALUES (?1, ?2, NULL, ?3, ?4, ?5)
                     ON CONFLICT (node) DO UPDATE SET state = excluded.state, previous = NULL,
                         reason = excluded.reason, set_by = excluded.set_by, since = excluded.since",
                )?
                .execute(params![node, state, reason, by, millis(*at)]),

            Write::Discovered { host: h } => conn
                .prepare_cached(
                    "INSERT INTO discovered_hosts
                         (address, hostname, cpus, host_key, set_by, since, memory_mib, os, kernel, arch)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)
                     ON CONFLICT (address) DO UPDATE SET hostname = excluded.hostname, cpus = excluded.cpus,
                         host_key = excluded.host_key, set_by = excluded.set_by, since = excluded.since,
                         memory_mib = excluded.memory_mib, os = excluded.os, kernel = excluded.kernel,
                         arch = excluded.arch",
                )?
                .execute(params![
                    h.address,
                    h.hostname,
                    h.cpus,
                    h.host_key,
                    h.by,
                    millis(h.since),
                    h.memory_mib.map(|m| i64::try_from(m).unwrap_or(i64::MAX)),
                    h.os,
                    h.kernel,
                    h.arch
                ]),

            Write::MaintenanceOff { node } => {
                let gone = conn
                    .prepare_cached(
                        "DELETE FROM node_lifecycle WHERE node = ?1 AND state = 'maintenance' AND previous IS NULL",
                    )?
                    .execute([node])?;
                let back = conn
                    .prepare_cached(
                        "UPDATE node_lifecycle SET state = previous, previous = NULL, reason = NULL
                         WHERE node = ?1 AND state = 'maintenance'",
                    )?
                    .execute([node])?;
                Ok(gone + back)
            }

            // `notices::record` inserts it.
            Write::Notice { .. } => Ok(1),

            Write::Delivered {
                outbox,
                sink,
                reply,
                at,
            } => conn
                .prepare_cached(
                    "INSERT INTO outbox_sent (outbox_id, sink, reply, at) VALUES (?1, ?2, ?3, ?4)
                     ON CONFLICT (outbox_id, sink) DO NOTHING",
                )?
                .execute(params![outbox, sink, reply, millis(*at)]),
        }
    }

    /// What the write was doing, for an error message.
    fn describe(&self) -> String {
        match self {
            Write::RunCreated { id, .. } => format!("record the new run `{id}`"),
            Write::RunFinished { id, .. } => format!("record the end of run `{id}`"),
            Write::Heartbeat { id, .. } => format!("record a heartbeat of run `{id}`"),
            Write::RunTriggered { id, .. } => format!("record what started run `{id}`"),
            Write::RunResumed { id, .. } => format!("record the resumption of run `{id}`"),
            Write::Node { run, node, .. } => format!("record node `{node}` of run `{run}`"),
            Write::Step { run, node, step, .. } => format!("record step `{step}` on `{node}` of run `{run}`"),
            Write::Paused { scope, .. } => format!("record the pause of {}", scope_text(scope)),
            Write::Unpaused { scope, .. } => format!("lift the pause of {}", scope_text(scope)),
            Write::MaintenanceOn { node, .. } => format!("put node `{node}` into maintenance"),
            Write::MaintenanceOff { node } => format!("take node `{node}` out of maintenance"),
            Write::HoldFailed { run, .. } => format!("put the nodes run `{run}` failed into maintenance"),
            Write::AlarmCooldown { trigger, node, .. } => {
                format!("record the cooldown of trigger `{trigger}` on node `{node}`")
            }
            Write::Lifecycle { node, state, .. } => format!("record node `{node}` as {state:?}"),
            Write::Discovered { host } => format!("record the discovered host `{}`", host.address),
            Write::SourceCommit { sha, .. } => format!("record commit {sha}"),
            Write::Notice { key, .. } => format!("record notification `{key}`"),
            Write::Delivered { outbox, sink, .. } => {
                format!("record notification {outbox} as sent to {sink}")
            }
        }
    }

    /// The error for a write whose run or node is not recorded.
    fn missing(&self) -> StoreError {
        match self {
            Write::RunCreated { id, .. }
            | Write::RunFinished { id, .. }
            | Write::Heartbeat { id, .. }
            | Write::RunTriggered { id, .. }
            | Write::RunResumed { id, .. } => StoreError::UnknownRun { run: id.clone() },
            Write::HoldFailed { run, .. } => StoreError::UnknownRun { run: run.clone() },
            Write::Paused { scope, .. } | Write::Unpaused { scope, .. } => StoreError::UnknownRun {
                run: scope.key().to_string(),
            },
            Write::MaintenanceOn { node, .. }
            | Write::MaintenanceOff { node }
            | Write::AlarmCooldown { node, .. }
            | Write::Lifecycle { node, .. } => StoreError::UnknownNode {
                run: String::new(),
                node: node.clone(),
            },
            Write::Discovered { host } => StoreError::UnknownNode {
                run: String::new(),
                node: host.address.clone(),
            },
            Write::Node { run, node, .. } | Write::Step { run, node, .. } => StoreError::UnknownNode {
                run: run.clone(),
                node: node.clone(),
            },
            // An upsert always writes a row.
            Write::SourceCommit { sha, .. } => StoreError::UnknownRun { run: sha.clone() },
            Write::Notice { key, .. } => StoreError::UnknownRun { run: key.clone() },
            Write::Delivered { outbox, .. } => StoreError::UnknownRun {
                run: outbox.to_string(),
            },
        }
    }
}

fn scope_text(scope: &PauseScope) -> String {
    match scope {
        PauseScope::All => "all runs".into(),
        PauseScope::Run(id) => format!("run `{id}`"),
    }
}

fn is_constraint(e: &rusqlite::Error, extended: std::ffi::c_int) -> bool {
    e.sqlite_error_code() == Some(ErrorCode::ConstraintViolation)
        && e.sqlite_extended_error_code() == Some(extended)
}
