//! What the hook handlers share, and their routes.

use std::sync::Arc;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::post;
use tokio::sync::{mpsc, watch};

use super::alarm_queue::AlarmQueues;
use super::replay_guard::ReplayGuard;
use super::slack_signature::MAX_BODY;
use crate::daemon::Action;
use crate::inventory::Inventory;
use crate::project::Project;
use crate::site::SlackCommandSettings;
use crate::source::FetchTrigger;
use crate::store::Store;

#[derive(Clone)]
pub struct HooksState {
    /// The signing secret (read at start) and who may do what; `None`: no Slack.
    pub slack: Option<(Arc<String>, Arc<SlackCommandSettings>)>,
    /// The push webhook's secret; `None`: no `/hooks/git`.
    pub git_secret: Option<Arc<String>>,
    pub actions: mpsc::UnboundedSender<Action>,
    pub store: Store,
    /// The inventory in force, to resolve node names and scopes.
    pub inventory: watch::Receiver<Arc<Inventory>>,
    /// The site in force: its alarm triggers and the workflows they run.
    pub site: watch::Receiver<Arc<Project>>,
    /// The alarm triggers' queues.
    pub alarms: Arc<AlarmQueues>,
    /// The git watcher's "fetch now"; `None` when the site is not in git.
    pub fetch: Option<FetchTrigger>,
    pub replay: Arc<ReplayGuard>,
    /// Posts outcomes to a command's `response_url`.
    pub client: reqwest::Client,
    /// How long a command's answer may take before it is acknowledged and posted to
    /// the `response_url` later (Slack allows 3 s).
    pub answer_within: std::time::Duration,
}

pub fn router(state: HooksState) -> Router {
    Router::new()
        .route("/hooks/slack", post(super::slack_hook::slack))
        .route("/hooks/git", post(super::git_hook::git))
        .route("/hooks/{name}", post(super::alarm_hook::alarm))
        // One byte over the limit is enough to tell a body is too large; axum refuses
        // longer ones itself (413) before reading them whole.
        .layer(DefaultBodyLimit::max(MAX_BODY + 1))
        .with_state(state)
}
