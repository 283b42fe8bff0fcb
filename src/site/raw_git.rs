//! The `git:` section of drover.yml as written: where `drover serve` takes the site from.

use schemars::JsonSchema;
use serde::Deserialize;

use crate::units::HumanDuration;

/// The site lives in a git repository: `drover serve` keeps its own clone under
/// `state_dir`, follows `branch` fast-forward only, validates every new commit as it is
/// in the repository and rolls out the workflows whose content it changes.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawGit {
    /// The repository to fetch from: a URL (`https://...`) or a path on this machine.
    pub remote: String,
    /// The branch to follow (default `main`).
    pub branch: Option<String>,
    /// How often to fetch (default 1m). A push webhook can ask for a fetch sooner.
    pub poll_interval: Option<HumanDuration>,
    /// Where the site (its drover.yml) lives inside the repository, relative to its root
    /// (default: the root).
    pub site_path: Option<String>,
    /// Follow the branch when its history was rewritten (default false: a force-push is
    /// reported and not followed until the branch again descends from the commit in force).
    #[serde(default)]
    pub allow_force_push: bool,
    /// Run only commits with a good SSH signature from a listed key.
    pub require_signed: Option<RawRequireSigned>,
}

/// Signed commits only: git is root on the fleet.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawRequireSigned {
    /// An `allowed_signers` file (the format of `ssh-keygen -Y verify` and git's
    /// `gpg.ssh.allowedSignersFile`), relative to this file. Keys whose `namespaces=`
    /// option leaves out `git` are not accepted.
    pub allowed_signers: String,
}
