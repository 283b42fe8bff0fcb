//! The site config (`drover.yml`).

mod drain_hooks;
mod env_vars;
mod raw_site;
mod raw_ssh;
#[expect(clippy::module_inception, reason = "the type is named after the concept")]
mod site;

pub use drain_hooks::{DrainHooks, HOOK_SCOPE, SLURM_HOOKS};
pub use env_vars::{check_env, merge_env};
pub use raw_site::{
    DrainScheduler, HookHost, OnDrainTimeout, OnLeaseConflict, RawDrain, RawFiles, RawLeases,
    RawNotifications, RawServer, RawSite, RawSlack, SiteTransport,
};
pub use raw_ssh::{OneOrMany, RawHostKeyPolicy, RawSsh, RawSshOptions};
pub use site::{LeaseSettings, ServerSettings, Site, SlackSettings, SshSettings};
