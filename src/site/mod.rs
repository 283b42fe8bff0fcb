//! The site config (`drover.yml`).

mod raw_site;
#[expect(clippy::module_inception, reason = "the type is named after the concept")]
mod site;

pub use raw_site::{HookHost, OnDrainTimeout, RawDrain, RawNotifications, RawServer, RawSite, RawSlack, RawSsh};
pub use site::{DrainHooks, HOOK_SCOPE, ServerSettings, Site, SlackSettings, SshSettings};
