//! Incoming hooks on the daemon's listener: Slack slash commands (`POST /hooks/slack`),
//! the git push webhook (`POST /hooks/git`) and alarm triggers (`POST /hooks/{name}`). Every request is verified (signature,
//! age, replay, size) before anything is parsed; a rejection runs nothing and logs why,
//! never the secret.

mod alarm_hook;
mod alarm_queue;
mod git_hook;
mod hook_rejection;
mod hooks_state;
mod replay_guard;
mod slack_command;
mod slack_hook;
mod slack_signature;

pub use alarm_hook::{SIGNATURE_HEADER, TIMESTAMP_HEADER};
pub use alarm_queue::{AlarmQueues, Offered};
pub use hook_rejection::HookRejection;
pub use hooks_state::{HooksState, router};
pub use replay_guard::ReplayGuard;
pub use slack_command::{HELP, SlackCommand};
pub use slack_signature::{MAX_BODY, MAX_SKEW_SECS, slack_signature, verify_slack};
