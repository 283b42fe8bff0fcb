//! The site config (`drover.yml`).

mod allowed_signers;
mod drain_hooks;
mod env_vars;
mod git_settings;
mod hook_settings;
mod notification_settings;
mod raw_git;
mod raw_hooks;
mod raw_site;
mod raw_ssh;
mod raw_trigger;
#[expect(clippy::module_inception, reason = "the type is named after the concept")]
mod site;

pub use allowed_signers::{AllowedSigner, AllowedSigners, SignersLineError};
pub use drain_hooks::{DrainHooks, HOOK_SCOPE, SLURM_HOOKS};
pub use env_vars::{check_env, merge_env};
pub use git_settings::{GitSettings, SignedCommits};
pub use hook_settings::{HookSettings, SlackCommandSettings};
pub use notification_settings::{
    NotificationSettings, SLACK_API_URL, SlackDelivery, SlackSettings, WebhookSettings,
};
pub use raw_git::{RawGit, RawRequireSigned};
pub use raw_hooks::{RawGitHook, RawHooks, RawSlackAllowed, RawSlackCommands};
pub use raw_site::{
    ApiRole, DrainMode, DrainScheduler, HookHost, OnDrainTimeout, OnLeaseConflict, RawApiToken, RawDiscover,
    RawDrain, RawFiles, RawLeases, RawLifecycle, RawNotifications, RawServer, RawSite, RawSlack, RawWebhook,
    SiteTransport,
};
pub use raw_ssh::{OneOrMany, RawHostKeyPolicy, RawSsh, RawSshOptions};
pub use raw_trigger::{RawQuiesce, RawTrigger};
pub use site::{
    ApiTokenSettings, DiscoverSettings, LeaseSettings, LifecycleWorkflows, ServerSettings, Site, SshSettings,
};
