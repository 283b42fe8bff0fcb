//! What the API's handlers share with the daemon: the tokens, the site in force, the
//! store, the live runs, and the daemon's action channel (runs the API asks for are
//! started by the daemon's loop, so the one-rollout-per-workflow rule and the graceful
//! stop cover them too).

use std::sync::Arc;

use tokio::sync::{mpsc, watch};

use super::live_runs::LiveRuns;
use super::read_cache::ReadCache;
use super::token_set::TokenSet;
use crate::daemon::Action;
use crate::project::Project;
use crate::store::Store;

pub struct ApiContext {
    pub tokens: TokenSet,
    /// The site in force (the daemon sends each new one).
    pub site: watch::Receiver<Arc<Project>>,
    pub store: Store,
    pub live: LiveRuns,
    pub actions: mpsc::UnboundedSender<Action>,
    /// The read routes' answers, kept until the store or the site changes.
    pub reads: ReadCache,
}

impl ApiContext {
    pub fn project(&self) -> Arc<Project> {
        Arc::clone(&self.site.borrow())
    }
}
