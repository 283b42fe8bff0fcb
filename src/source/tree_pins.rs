//! Which exported commit trees are in use, so pruning never removes one a run or the
//! site in force reads its files from.
//!
//! The git task pins a commit before it reports it accepted; the daemon unpins it once
//! neither the site in force nor a run of it uses it. Between polls the task removes
//! every tree that is not pinned (the commit in force always stays), so a tree is never
//! removed while its commit is on its way to the daemon.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex, PoisonError};

#[derive(Clone, Debug, Default)]
pub struct TreePins(Arc<Mutex<BTreeSet<String>>>);

impl TreePins {
    pub fn pin(&self, sha: &str) {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(sha.to_string());
    }

    pub fn unpin(&self, sha: &str) {
        self.0.lock().unwrap_or_else(PoisonError::into_inner).remove(sha);
    }

    pub fn list(&self) -> Vec<String> {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .cloned()
            .collect()
    }
}
