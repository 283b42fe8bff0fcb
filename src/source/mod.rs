//! Where the daemon's site comes from: a git repository it follows (every commit
//! validated as committed, signed when required) or a directory it watches.

mod backoff;
mod commit_info;
mod fingerprint;
mod git_source;
mod git_watcher;
mod signature_check;
mod site_source;
mod site_watcher;
mod source_error;
mod source_event;
mod tree_export;
mod tree_pins;

pub use backoff::retry_delay;
pub use commit_info::CommitInfo;
pub use fingerprint::{Fingerprints, fingerprints};
pub use git_source::{FetchTrigger, GitSource, PUSH_FETCH_GAP};
pub use git_watcher::GitWatcher;
pub use signature_check::{GoodSignature, SignatureProblem, check_signature};
pub use site_source::{EDIT_DEBOUNCE, SiteSource};
pub use site_watcher::{SiteChange, SiteWatcher};
pub use source_error::SourceError;
pub use source_event::{Rejection, RolloutRequest, SiteSnapshot, SourceEvent};
pub use tree_export::export_commit;
pub use tree_pins::TreePins;

#[cfg(test)]
mod git_watcher_tests;
#[cfg(test)]
pub(crate) mod test_remote;
