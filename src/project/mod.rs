//! Loading a whole site at once.

mod alarm_trigger;
mod name_scope;
#[expect(clippy::module_inception, reason = "the type is named after the concept")]
mod project;
mod quoting_opt_out;

pub use alarm_trigger::{AlarmNodesError, AlarmTrigger, DEFAULT_COOLDOWN};
pub use name_scope::workflow_scopes;
pub use project::{Project, SITE_FILE, display};
pub use quoting_opt_out::QuotingOptOut;
