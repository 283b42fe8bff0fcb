//! What the git watcher reports: each for the daemon to act on and for operators to see.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use super::commit_info::CommitInfo;
use super::signature_check::{GoodSignature, SignatureProblem};
use crate::diag::Diagnostic;
use crate::project::Project;
use crate::store::WantedRollout;

/// A site as it is at one commit, exported under the state dir and loaded.
#[derive(Debug)]
pub struct SiteSnapshot {
    pub commit: CommitInfo,
    /// Where the commit's tree is written (the repository's root).
    pub tree: PathBuf,
    /// The loaded site. Its `state_dir` is the daemon's, not one inside the export.
    pub project: Arc<Project>,
}

/// "Roll out this workflow at this commit": one per workflow whose effective content the
/// commit changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RolloutRequest {
    pub workflow: String,
    pub version: u32,
    pub commit: CommitInfo,
}

impl RolloutRequest {
    /// As the store keeps it, so a restarted daemon still rolls it out.
    pub fn wanted(&self) -> WantedRollout {
        WantedRollout {
            workflow: self.workflow.clone(),
            version: self.version,
            sha: self.commit.sha.clone(),
            author: self.commit.author.clone(),
            subject: self.commit.subject.clone(),
            commit_time: self.commit.time,
        }
    }

    /// What the store kept back as a request.
    pub fn from_wanted(w: WantedRollout) -> RolloutRequest {
        RolloutRequest {
            workflow: w.workflow,
            version: w.version,
            commit: CommitInfo {
                sha: w.sha,
                author: w.author,
                subject: w.subject,
                time: w.commit_time,
            },
        }
    }
}

impl std::fmt::Display for RolloutRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "rollout {} v{} at commit {}",
            self.workflow, self.version, self.commit
        )
    }
}

/// Why a commit does not run.
#[derive(Debug, Clone)]
pub enum Rejection {
    /// The site at that commit does not validate: every diagnostic, paths relative to the
    /// repository.
    Invalid(Vec<Diagnostic>),
    /// Signed commits are required and this one's signature is refused.
    Signature(SignatureProblem),
}

impl Rejection {
    /// The text operators see (and the store keeps): the diagnostics as `drover
    /// validate` prints them, or the signature's problem.
    pub fn render(&self) -> String {
        match self {
            Rejection::Invalid(diags) => {
                let mut out = String::new();
                for d in diags {
                    out.push_str(&d.render(false));
                    out.push_str("\n\n");
                }
                out.truncate(out.trim_end().len());
                out
            }
            Rejection::Signature(p) => p.to_string(),
        }
    }
}

#[derive(Debug, Clone)]
pub enum SourceEvent {
    /// The commit is valid: its site is in force, and `rollouts` are the workflows whose
    /// effective content it changed (empty for, say, an inventory-only commit).
    Accepted {
        site: Arc<SiteSnapshot>,
        rollouts: Vec<RolloutRequest>,
        signature: Option<GoodSignature>,
    },
    /// Nothing of the commit runs; the commit in force stays.
    Rejected { commit: CommitInfo, why: Rejection },
    /// The branch no longer descends from the last commit seen (a force-push). Unless
    /// `allow_force_push`, it is not followed (`followed: false`) until it does again.
    HistoryRewritten {
        from: String,
        to: CommitInfo,
        followed: bool,
    },
    /// The fetch failed; the watcher retries after `retry_in`. Runs go on.
    FetchFailed {
        error: String,
        failures: u32,
        retry_in: Duration,
    },
    /// A fetch worked again after failures.
    FetchRecovered { after_failures: u32 },
    /// A poll fetched the branch (whether or not it brought new commits): the time of
    /// the last good fetch, for `/metrics`.
    Fetched { at: jiff::Timestamp },
}
