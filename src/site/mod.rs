//! The site config (`drover.yml`).

mod drain_hooks;
mod raw_site;
#[expect(clippy::module_inception, reason = "the type is named after the concept")]
mod site;

pub use drain_hooks::{DrainHooks, HOOK_SCOPE};
pub use raw_site::{
    HookHost, OnDrainTimeout, OnLeaseConflict, RawDrain, RawFiles, RawLeases, RawNotifications, RawServer,
    RawSite, RawSlack, RawSsh, SiteTransport,
};
pub use site::{LeaseSettings, ServerSettings, Site, SlackSettings, SshSettings};
