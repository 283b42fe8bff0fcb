//! Incoming hooks on the daemon's listener: Slack slash commands (`POST /hooks/slack`)
//! and the git push webhook (`POST /hooks/git`). Every request is verified (signature,
//! age, replay, size) before anything is parsed; a rejection runs nothing and logs why,
//! never the secret.

mod git_hook;
mod hook_rejection;
mod hooks_state;
mod replay_guard;
mod slack_command;
mod slack_hook;
mod slack_signature;

pub use hook_rejection::HookRejection;
pub use hooks_state::{HooksState, router};
pub use replay_guard::ReplayGuard;
pub use slack_command::{HELP, SlackCommand};
pub use slack_signature::{MAX_BODY, MAX_SKEW_SECS, slack_signature, verify_slack};
