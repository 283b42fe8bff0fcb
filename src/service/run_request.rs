//! What a caller asks the service to do: which workflow, on which nodes, with which
//! steps and variables, and who asked.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use tokio::sync::{oneshot, watch};

use super::refusal::{Refusal, RefusalKind};
use super::run_state::Resume;
use super::transport_kind::TransportKind;
use super::trigger::Trigger;
use crate::inventory::NodeId;
use crate::project::Project;

/// Check only, or run (perhaps dry).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Classify every target and change nothing (`drover check`).
    Check,
    /// Check, plan and (unless `dry_run`) run.
    Run { dry_run: bool },
}

/// The nodes, steps and variables of a request, resolved against the site. Front ends
/// parse what users type (`--limit`, `--tags`, `-e`) into this; the daemon starts from
/// [`Selection::all`].
#[derive(Debug, Clone, Default)]
pub struct Selection {
    /// The limit as the user wrote it, for messages and the run's record.
    pub limit_text: Option<String>,
    /// The nodes the limit selects; `None`: every target.
    pub limit: Option<HashSet<NodeId>>,
    /// The tags as written, for the run's record.
    pub tags: Option<String>,
    /// Per workflow step, whether the tags select it.
    pub selected: Vec<bool>,
    pub extra_vars: serde_json::Map<String, serde_json::Value>,
    /// Nodes in maintenance (automation off), with why: left out of the run.
    pub maintenance: HashMap<NodeId, String>,
}

impl Selection {
    /// Every target, every step (hot and drain: recorded as the tags `hot,drain`, so a
    /// resume selects the same), no extra variables.
    pub fn all(project: &Project, workflow: usize) -> Selection {
        let steps = project.workflows.get(workflow).map_or(0, |w| w.steps.len());
        Selection {
            tags: Some("hot,drain".to_string()),
            selected: vec![true; steps],
            ..Selection::default()
        }
    }
}

/// A confirmation's answer, for a run that asks for one after its plan.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Answer {
    Yes,
    No,
    /// There is nobody to ask (not at a terminal).
    CannotAsk,
    /// Interrupted while asking.
    Interrupted,
}

pub struct RunRequest {
    pub project: Arc<Project>,
    /// Index into `project.workflows`.
    pub workflow: usize,
    pub selection: Selection,
    pub mode: Mode,
    /// The record of a run to continue (`drover runs resume`): its plan stands.
    pub resume: Option<Resume>,
    pub trigger: Trigger,
    pub transport: TransportKind,
    /// Start even though the workflow's window is closed now, and start nodes outside
    /// it. (A resumed run never refuses at a closed window; it waits for it to open.)
    pub ignore_window: bool,
    /// Ask the transport how each node was reached (`check -v`).
    pub verbose: bool,
    /// Counts stop requests: the first stops starting nodes (in-flight nodes reach
    /// their next safe point), the second aborts the steps in flight.
    pub interrupts: watch::Receiver<u32>,
    /// When set, a run with nodes to change waits for this answer after
    /// [`super::RunEvent::Planned`]; unset, it goes ahead.
    pub confirm: Option<oneshot::Receiver<Answer>>,
    /// Whether a run whose check finds nothing to do is still recorded (as `drover run`
    /// does: "nothing to do"). A converge pass sets it off: a converged fleet adds no
    /// run to the history, and the outcome is [`super::Outcome::NothingToDo`].
    pub record_when_idle: bool,
    /// `--diff`: the check says how each file step would change its file on each node
    /// ([`crate::engine::CheckResult::diffs`]).
    pub diff: bool,
    /// Whether a run refuses to begin while its window is closed (`drover run` does:
    /// someone is there to try later). The daemon sets it off: its rollout begins and
    /// waits, visibly, for the window to open, as a resumed run does.
    pub refuse_closed_window: bool,
    /// The inventory in force, when it can change during the run (the daemon's live
    /// site): nodes removed from it before their turn are not started.
    pub live_inventory: Option<watch::Receiver<Arc<crate::inventory::Inventory>>>,
    /// Put the nodes the run fails into maintenance as it ends (alarm runs).
    pub hold_failed: Option<super::FailedHold>,
}

impl RunRequest {
    /// The continuation of a recorded run: its workflow (which must still be at the
    /// run's version: a resumed run finishes the change it began), steps and variables
    /// as recorded, its plan replayed. The window was checked when the run began.
    /// `trigger` says who resumes; the run keeps the trigger it was created with.
    pub fn resume(
        project: Arc<Project>,
        detail: crate::store::RunDetail,
        trigger: Trigger,
        interrupts: watch::Receiver<u32>,
    ) -> Result<RunRequest, Refusal> {
        let r = &detail.run;
        let Some(wi) = project.workflows.iter().position(|w| w.name == r.workflow) else {
            return Err(Refusal::new(
                RefusalKind::InvalidConfig,
                format!("workflow `{}` is no longer in the site", r.workflow),
            ));
        };
        let wf = &project.workflows[wi];
        if wf.version != r.version {
            return Err(Refusal::new(
                RefusalKind::OutOfDate,
                format!(
                    "run {} was of {} v{}, and the workflow is now v{}: a resumed run finishes the change it began\n\
                     help: start a new run of v{} instead",
                    r.id, r.workflow, r.version, wf.version, wf.version
                ),
            ));
        }
        let tags = detail
            .options
            .get("tags")
            .and_then(|v| v.as_str())
            .map(String::from);
        let extra_vars = detail
            .options
            .get("extra_vars")
            .and_then(|v| v.as_object())
            .cloned()
            .unwrap_or_default();
        // A resumed run does not refuse at a closed window (it finishes what it began),
        // but it starts no new node outside it, unless it was begun with --ignore-window.
        let ignore_window = detail
            .options
            .get("ignore_window")
            .and_then(serde_json::Value::as_bool)
            .unwrap_or(false);
        let selection = Selection {
            limit_text: None,
            limit: None,
            selected: super::selected_steps(wf, tags.as_deref())?,
            tags,
            extra_vars,
            maintenance: super::in_maintenance(&project)?,
        };
        let hold_failed = super::FailedHold::from_options(&detail.options);
        let resume = Resume::from_detail(detail, &project.inventory);
        let mut req = RunRequest::new(
            Arc::clone(&project),
            &project.workflows[wi].name,
            trigger,
            interrupts,
        )?;
        req.selection = selection;
        req.resume = Some(resume);
        req.ignore_window = ignore_window;
        req.hold_failed = hold_failed;
        Ok(req)
    }

    /// A run of `workflow` (by name) on every target with every step; change the
    /// fields for more.
    pub fn new(
        project: Arc<Project>,
        workflow: &str,
        trigger: Trigger,
        interrupts: watch::Receiver<u32>,
    ) -> Result<RunRequest, Refusal> {
        let Some(wi) = project.workflows.iter().position(|w| w.name == workflow) else {
            return Err(Refusal::new(
                RefusalKind::InvalidConfig,
                format!("no workflow `{workflow}` in the site"),
            ));
        };
        let transport = match project.site.transport {
            crate::site::SiteTransport::Ssh => TransportKind::Ssh,
            crate::site::SiteTransport::Local => TransportKind::Local,
        };
        let mut selection = Selection::all(&project, wi);
        selection.maintenance = super::in_maintenance(&project)?;
        Ok(RunRequest {
            selection,
            project,
            workflow: wi,
            mode: Mode::Run { dry_run: false },
            resume: None,
            trigger,
            transport,
            ignore_window: false,
            verbose: false,
            interrupts,
            confirm: None,
            record_when_idle: true,
            diff: false,
            refuse_closed_window: true,
            live_inventory: None,
            hold_failed: None,
        })
    }
}
