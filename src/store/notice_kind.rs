//! What a notification tells: the events operators want to hear about, by the name
//! `notifications.webhooks[].events` and the webhook body use.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum NoticeKind {
    /// A run was recorded: workflow, version, commit and author, trigger, node counts.
    RunStarted,
    /// A run left unfinished was taken up again.
    RunResumed,
    /// Every canary node succeeded: the bulk may start.
    CanaryPassed,
    /// A run ended stopped (a failure budget, a failed canary, a blocked budget, an
    /// operator): which nodes, the step, the last output lines, how to resume.
    RunStopped,
    /// A node was left for a human (drain timeout, failed after its drain).
    NodeHeld,
    Paused,
    Resumed,
    /// A run starts no new node until its maintenance window opens.
    WaitingForWindow,
    /// A commit of the followed repository did not validate (or was not signed).
    CommitRejected,
    /// A run ended otherwise (succeeded, completed with failures, interrupted,
    /// cancelled): a summary and its duration.
    RunFinished,
}

impl NoticeKind {
    pub const ALL: [NoticeKind; 10] = [
        NoticeKind::RunStarted,
        NoticeKind::RunResumed,
        NoticeKind::CanaryPassed,
        NoticeKind::RunStopped,
        NoticeKind::NodeHeld,
        NoticeKind::Paused,
        NoticeKind::Resumed,
        NoticeKind::WaitingForWindow,
        NoticeKind::CommitRejected,
        NoticeKind::RunFinished,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            NoticeKind::RunStarted => "run_started",
            NoticeKind::RunResumed => "run_resumed",
            NoticeKind::CanaryPassed => "canary_passed",
            NoticeKind::RunStopped => "run_stopped",
            NoticeKind::NodeHeld => "node_held",
            NoticeKind::Paused => "paused",
            NoticeKind::Resumed => "resumed",
            NoticeKind::WaitingForWindow => "waiting_for_window",
            NoticeKind::CommitRejected => "commit_rejected",
            NoticeKind::RunFinished => "run_finished",
        }
    }

    pub fn parse(s: &str) -> Option<NoticeKind> {
        NoticeKind::ALL.into_iter().find(|k| k.as_str() == s)
    }
}

impl std::fmt::Display for NoticeKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}
