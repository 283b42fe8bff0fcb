//! The checked `git:` section: what `drover serve` follows.

use std::path::{Component, Path as FsPath, PathBuf};
use std::time::Duration;

use super::allowed_signers::AllowedSigners;
use super::raw_git::RawGit;
use crate::diag::Problem;
use crate::units::limits;
use crate::yaml::Path;

/// Default time between fetches.
pub const DEFAULT_POLL_INTERVAL: Duration = Duration::from_secs(60);

#[derive(Debug, Clone)]
pub struct GitSettings {
    /// A URL, or an absolute path (a relative one is resolved against the site directory).
    pub remote: String,
    pub branch: String,
    pub poll_interval: Duration,
    /// The site's directory inside the repository; empty for its root.
    pub site_path: PathBuf,
    pub allow_force_push: bool,
    pub require_signed: Option<SignedCommits>,
}

#[derive(Debug, Clone)]
pub struct SignedCommits {
    pub allowed_signers_file: PathBuf,
    pub signers: AllowedSigners,
}

impl GitSettings {
    pub fn from_raw(raw: &RawGit, root: &FsPath) -> Result<GitSettings, Vec<Problem>> {
        let at = Path::root().key("git");
        let mut p = Vec::new();
        let remote = raw.remote.trim();
        let remote = if remote.is_empty() {
            p.push(Problem::value(
                at.key("remote"),
                "the remote is empty: expected a URL or a path",
            ));
            String::new()
        } else if let Some(scheme) = remote.split_once("://").map(|(s, _)| s) {
            if !matches!(scheme, "https" | "http" | "file" | "git") {
                p.push(
                    Problem::value(
                        at.key("remote"),
                        format!("`{remote}`: the `{scheme}://` transport is not supported"),
                    )
                    .with_help(
                        "use an https:// URL, a file:// URL or a path on this machine (a mirror kept by git)",
                    ),
                );
            }
            remote.to_string()
        } else if looks_like_scp(remote) {
            p.push(
                Problem::value(
                    at.key("remote"),
                    format!("`{remote}`: ssh remotes are not supported"),
                )
                .with_help(
                    "use an https:// URL, a file:// URL or a path on this machine (a mirror kept by git)",
                ),
            );
            remote.to_string()
        } else {
            root.join(remote).to_string_lossy().into_owned()
        };

        let branch = raw.branch.clone().unwrap_or_else(|| "main".into());
        if !git2::Reference::is_valid_name(&format!("refs/heads/{branch}")) {
            p.push(Problem::value(
                at.key("branch"),
                format!("`{branch}` is not a valid branch name"),
            ));
        }

        let poll_interval = raw.poll_interval.map_or(DEFAULT_POLL_INTERVAL, |d| d.get());
        if poll_interval < Duration::from_secs(1) {
            p.push(Problem::value(
                at.key("poll_interval"),
                format!(
                    "`poll_interval: {}` is out of range: expected 1s to 1day",
                    humantime::format_duration(poll_interval)
                ),
            ));
        }
        limits::GIT_POLL_INTERVAL.check_duration(at.key("poll_interval"), poll_interval, &mut p);

        let site_path = PathBuf::from(raw.site_path.as_deref().unwrap_or(""));
        if site_path
            .components()
            .any(|c| !matches!(c, Component::Normal(_) | Component::CurDir))
        {
            p.push(
                Problem::value(
                    at.key("site_path"),
                    format!("`{}` leaves the repository", site_path.display()),
                )
                .with_help("a directory inside the repository, relative to its root, without `..`"),
            );
        }
        let site_path: PathBuf = site_path
            .components()
            .filter(|c| matches!(c, Component::Normal(_)))
            .collect();

        let require_signed = raw.require_signed.as_ref().and_then(|r| {
            let key = at.key("require_signed").key("allowed_signers");
            let file = root.join(&r.allowed_signers);
            let text = match crate::bounded_read::read_regular_text(&file, None) {
                Ok(text) => text,
                Err(e) => {
                    p.push(Problem::value(
                        key,
                        format!("cannot read `{}`: {e}", crate::project::display(&file)),
                    ));
                    return None;
                }
            };
            match AllowedSigners::parse(&text) {
                Ok(signers) if signers.signers.is_empty() => {
                    p.push(Problem::value(
                        key,
                        format!(
                            "`{}` lists no key: no commit could run",
                            crate::project::display(&file)
                        ),
                    ));
                    None
                }
                Ok(signers) => Some(SignedCommits {
                    allowed_signers_file: file,
                    signers,
                }),
                Err(errors) => {
                    for e in errors {
                        p.push(Problem::value(
                            key.clone(),
                            format!("{}:{}: {}", crate::project::display(&file), e.line, e.message),
                        ));
                    }
                    None
                }
            }
        });

        if !p.is_empty() {
            return Err(p);
        }
        Ok(GitSettings {
            remote,
            branch,
            poll_interval,
            site_path,
            allow_force_push: raw.allow_force_push,
            require_signed,
        })
    }
}

/// `user@host:path` or `host:path` (git's scp-like syntax), but not a path with a colon
/// after a slash.
fn looks_like_scp(remote: &str) -> bool {
    match remote.split_once(':') {
        Some((host, _)) => !host.is_empty() && !host.contains('/'),
        None => false,
    }
}
