//! What the daemon is asked to do, by its timers and its sources (the git watcher).

use std::sync::Arc;

use super::run_order::RunOrder;
use crate::project::Project;
use crate::service::Trigger;

#[derive(Debug)]
pub enum Action {
    /// Roll `workflow` out as it is in `site`, the snapshot of the site to run (a
    /// commit's tree, or the files): from now on the snapshot in force. While a rollout
    /// of the workflow is active, the action waits for it to end (the newest waiting one
    /// replaces an older one).
    Rollout {
        site: Arc<Project>,
        workflow: String,
        trigger: Trigger,
    },
    /// A converge pass of `workflow`: check its targets again and roll out to the nodes
    /// that drifted or joined. Skipped while a rollout of the workflow is active, and
    /// while its last rollout at this version was stopped by a budget (it waits for a
    /// human: a resume, or a new version).
    Converge { workflow: String },
    /// A run the API asked for (`POST /api/v1/runs`, the node lifecycle operations):
    /// started now, unless a rollout of its workflow is active (then refused, not queued:
    /// the caller is waiting for an answer).
    Run(Box<RunOrder>),
    /// Start `workflow` now with the site in force (a slash command), on `limit`'s nodes
    /// (a selector list; `None`: every target), or only plan it (`dry_run`). Refused
    /// while a rollout of the workflow is active, or when the nodes it would touch are
    /// not all in `scope` (node names; `None`: every node). `reply` gets a sentence for
    /// the one who asked (the run id, the plan, or why not) and the id of the run started.
    RunNow {
        workflow: String,
        limit: Option<String>,
        dry_run: bool,
        scope: Option<std::collections::HashSet<String>>,
        trigger: Trigger,
        reply: tokio::sync::oneshot::Sender<super::RunNowAnswer>,
    },
    /// Stop run `run` (an active rollout of this daemon): no new node starts, the nodes
    /// in flight finish their cycle; it ends stopped, resumable. `reply`: whether it was
    /// found.
    Abort {
        run: String,
        reply: tokio::sync::oneshot::Sender<bool>,
    },
}
