//! How to take a node out of service and put it back.

use std::time::Duration;

use serde::Serialize;

use super::raw_site::{DrainMode, DrainScheduler, HookHost, OnDrainTimeout, RawDrain};
use crate::diag::Problem;
use crate::template::TemplateEngine;
use crate::units::limits;
use crate::yaml::Path;

/// Names a drain hook template may use.
pub const HOOK_SCOPE: [&str; 5] = ["node", "workflow", "run", "reason", "site"];

/// Drain hooks, checked. The site's hooks (a scheduler such as Slurm) are the default; a
/// workflow for a service outside the scheduler (an HA pair behind a VIP) brings its own.
#[derive(Debug, Clone, Serialize)]
pub struct DrainHooks {
    /// With `slurm`, the hooks are the built-in Slurm commands ([`SLURM_HOOKS`]) and the
    /// `drained`/`resumed` polls go through one shared `sinfo` per interval.
    pub scheduler: DrainScheduler,
    /// `reservation` (Slurm only): a maintenance reservation from the node's last job's
    /// time limit instead of a drain at its turn (see [`crate::slurm::Reservation`]).
    pub mode: DrainMode,
    pub run_on: HookHost,
    pub drain: String,
    pub drained: String,
    pub resume: String,
    /// Polled after `resume` until the scheduler has the node back.
    pub resumed: Option<String>,
    pub poll_interval: Duration,
    pub timeout: Duration,
    pub on_timeout: OnDrainTimeout,
}

/// `scheduler: slurm`'s commands, as hooks would say them: the drain and resume commands
/// run as hooks; the `drained` and `resumed` probes are what a site without
/// `scheduler: slurm` would poll per node (`scheduler: slurm` reads every waiting node
/// with one `sinfo` per poll instead: see [`crate::slurm::SlurmPoller`]). `drained` is
/// `drained` with any suffix (`drained*`: no job runs, slurmd does not answer);
/// `resumed` is a state that takes jobs, so `idle*`, `down`, `maint` or `reboot^` are
/// not back.
pub const SLURM_HOOKS: [(&str, &str); 4] = [
    (
        "drain",
        "scontrol update nodename={{ node.name }} state=drain reason={{ reason }}",
    ),
    (
        "drained",
        "test \"$(sinfo -h -n {{ node.name }} -o %T | tr -cd 'a-z_\\n' | sort -u)\" = drained",
    ),
    ("resume", "scontrol update nodename={{ node.name }} state=resume"),
    (
        "resumed",
        "sinfo -h -n {{ node.name }} -o %T | sort -u | grep -qx -e idle -e mixed -e allocated -e completing -e planned",
    ),
];

impl DrainHooks {
    /// Whether the hooks are Slurm's own commands.
    pub fn is_slurm(&self) -> bool {
        self.scheduler == DrainScheduler::Slurm
    }

    /// For `plan` and `run`: how nodes are taken out of Slurm (`None`: hooks, which say
    /// it themselves).
    pub fn describe(&self) -> Option<&'static str> {
        match (self.is_slurm(), self.mode) {
            (false, _) => None,
            (true, DrainMode::Drain) => Some("drain: slurm, each node drained at its turn"),
            (true, DrainMode::Reservation) => Some(
                "drain: slurm, by reservation (a maintenance reservation from each node's last job's time limit; \
                 jobs that end before it still run there; drained once idle or at the reservation's start)",
            ),
        }
    }

    /// Whether nodes are drained by a maintenance reservation (Slurm only).
    pub fn by_reservation(&self) -> bool {
        self.is_slurm() && self.mode == DrainMode::Reservation
    }

    /// Every hook command with its key (`drain`, `drained`, `resume`, `resumed`): for the
    /// checks that look at every template.
    pub fn commands(&self) -> Vec<(&'static str, &str)> {
        let mut out = vec![
            ("drain", self.drain.as_str()),
            ("drained", self.drained.as_str()),
            ("resume", self.resume.as_str()),
        ];
        if let Some(r) = &self.resumed {
            out.push(("resumed", r.as_str()));
        }
        out
    }

    /// Problems are located relative to the `drain:` mapping.
    pub fn from_raw(d: &RawDrain, templates: &TemplateEngine) -> Result<DrainHooks, Vec<Problem>> {
        let mut p = Vec::new();
        let at = Path::root();
        let given = [
            ("drain", &d.drain),
            ("drained", &d.drained),
            ("resume", &d.resume),
            ("resumed", &d.resumed),
        ];
        let hook = |key: &str| -> String {
            match d.scheduler {
                DrainScheduler::Slurm => SLURM_HOOKS
                    .iter()
                    .find(|(k, _)| *k == key)
                    .map(|(_, v)| (*v).to_string())
                    .unwrap_or_default(),
                DrainScheduler::Hooks => given
                    .iter()
                    .find(|(k, _)| *k == key)
                    .and_then(|(_, v)| (*v).clone())
                    .unwrap_or_default(),
            }
        };
        let (drain, drained, resume) = (hook("drain"), hook("drained"), hook("resume"));
        let resumed = match d.scheduler {
            DrainScheduler::Slurm => Some(hook("resumed")),
            DrainScheduler::Hooks => d.resumed.clone(),
        };
        match d.scheduler {
            DrainScheduler::Slurm => {
                for (key, v) in &given {
                    if v.is_some() {
                        p.push(
                            Problem::key(
                                at.key(*key),
                                format!("`{key}` cannot be set with `scheduler: slurm`, whose commands are built in"),
                            )
                            .with_help("remove the hooks, or use `scheduler: hooks` to run your own"),
                        );
                    }
                }
                if d.run_on == HookHost::Node {
                    p.push(Problem::value(
                        at.key("run_on"),
                        "`scheduler: slurm` runs Slurm's commands on the controller, where they reach slurmctld; `run_on: node` is for hooks",
                    ));
                }
            }
            DrainScheduler::Hooks => {
                if d.mode == DrainMode::Reservation {
                    p.push(
                        Problem::value(
                            at.key("mode"),
                            "`mode: reservation` creates Slurm maintenance reservations; it needs `scheduler: slurm`",
                        )
                        .with_help("set `scheduler: slurm`, or use `mode: drain` with hooks"),
                    );
                }
                for (key, v) in &given[..3] {
                    if v.is_none() {
                        p.push(
                            Problem::value(at.clone(), format!("missing required key `{key}`")).with_help(
                                "give the drain, drained and resume hooks, or set `scheduler: slurm`",
                            ),
                        );
                    }
                }
            }
        }
        for (key, src) in [("drain", &drain), ("drained", &drained), ("resume", &resume)]
            .into_iter()
            .chain(resumed.as_ref().map(|r| ("resumed", r)))
        {
            if src.is_empty() {
                continue;
            }
            if let Err(e) = templates.check_command(src, &HOOK_SCOPE) {
                p.push(e.problem(at.key(key)));
            }
        }
        let poll_interval = d.poll_interval.map_or(Duration::from_secs(30), |x| x.get());
        let timeout = d.timeout.map_or(Duration::from_secs(4 * 3600), |x| x.get());
        limits::DRAIN_POLL_INTERVAL.check_duration(at.key("poll_interval"), poll_interval, &mut p);
        limits::DRAIN_TIMEOUT.check_duration(at.key("timeout"), timeout, &mut p);
        if poll_interval.is_zero() {
            p.push(Problem::value(
                at.key("poll_interval"),
                "a poll interval of zero would busy-loop the scheduler",
            ));
        }
        if timeout < poll_interval {
            p.push(Problem::value(
                at.key("timeout"),
                format!(
                    "drain timeout {} is shorter than the poll interval {}",
                    humantime::format_duration(timeout),
                    humantime::format_duration(poll_interval)
                ),
            ));
        }
        if !p.is_empty() {
            return Err(p);
        }
        Ok(DrainHooks {
            scheduler: d.scheduler,
            mode: d.mode,
            run_on: d.run_on,
            drain,
            drained,
            resume,
            resumed,
            poll_interval,
            timeout,
            on_timeout: d.on_timeout,
        })
    }
}
