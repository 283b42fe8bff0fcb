//! How to take a node out of service and put it back.

use std::time::Duration;

use serde::Serialize;

use super::raw_site::{HookHost, OnDrainTimeout, RawDrain};
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

impl DrainHooks {
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
        for (key, src) in [
            ("drain", &d.drain),
            ("drained", &d.drained),
            ("resume", &d.resume),
        ]
        .into_iter()
        .chain(d.resumed.as_ref().map(|r| ("resumed", r)))
        {
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
            run_on: d.run_on,
            drain: d.drain.clone(),
            drained: d.drained.clone(),
            resume: d.resume.clone(),
            resumed: d.resumed.clone(),
            poll_interval,
            timeout,
            on_timeout: d.on_timeout,
        })
    }
}
