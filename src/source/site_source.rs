//! Where the daemon takes its site from: the git repository when `git:` is set (then
//! the files on disk are not watched: git is the source of truth, and a local edit
//! must not bypass review and signatures), otherwise the site directory, watched.

use std::collections::HashMap;
use std::future::Future;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;

use super::git_source::{FetchTrigger, GitSource};
use super::git_watcher::GitWatcher;
use super::site_watcher::{SiteChange, SiteWatcher};
use super::source_error::SourceError;
use super::source_event::{SiteSnapshot, SourceEvent};
use crate::project::Project;
use crate::store::Store;

/// How long the files must be quiet before an edit is reloaded.
pub const EDIT_DEBOUNCE: Duration = Duration::from_millis(500);

pub enum SiteSource {
    Git {
        source: GitSource,
        events: mpsc::UnboundedReceiver<SourceEvent>,
        /// The site at the commit in force when the daemon started (`None` before the
        /// first good commit): what the daemon runs until the next accepted commit.
        in_force: Option<Arc<SiteSnapshot>>,
        /// The sites at the commits of `resume` (those the clone still has), by sha:
        /// a resumed run finishes its own version. Their trees are pinned.
        earlier: HashMap<String, Arc<SiteSnapshot>>,
    },
    Files {
        watcher: SiteWatcher,
        changes: mpsc::UnboundedReceiver<SiteChange>,
    },
}

impl SiteSource {
    /// `project` is the site loaded from `site_dir` (the `--site` of `drover serve`);
    /// its `git:` and `state_dir` decide. `resume`: the commits of runs the daemon is
    /// about to resume, whose sites it needs as well. The git source stops when
    /// `shutdown` completes.
    pub fn start(
        site_dir: &Path,
        project: Project,
        store: Store,
        resume: &[String],
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> Result<SiteSource, SourceError> {
        match project.site.git.clone() {
            Some(git) => {
                let watcher = GitWatcher::open(git, &project.site.state_dir, store)?;
                let in_force = watcher.in_force()?;
                let mut earlier = HashMap::new();
                for sha in resume {
                    if in_force.as_ref().is_some_and(|s| &s.commit.sha == sha) {
                        continue;
                    }
                    if let Some(s) = watcher.site_at(sha)? {
                        earlier.insert(sha.clone(), s);
                    }
                }
                let (tx, events) = mpsc::unbounded_channel();
                // Pinned before the task's first poll prunes the trees.
                let pins = super::TreePins::default();
                for s in in_force.iter().chain(earlier.values()) {
                    pins.pin(&s.commit.sha);
                }
                let source = GitSource::spawn(watcher, pins, tx, shutdown);
                Ok(SiteSource::Git {
                    source,
                    events,
                    in_force,
                    earlier,
                })
            }
            None => {
                let (tx, changes) = mpsc::unbounded_channel();
                Ok(SiteSource::Files {
                    watcher: SiteWatcher::start(site_dir, project, EDIT_DEBOUNCE, tx)?,
                    changes,
                })
            }
        }
    }

    /// The push webhook's handle (git only).
    pub fn fetch_trigger(&self) -> Option<FetchTrigger> {
        match self {
            SiteSource::Git { source, .. } => Some(source.trigger.clone()),
            SiteSource::Files { .. } => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::source::test_remote::{INVENTORY, SITE, TestRemote, workflow};

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn with_git_the_files_are_not_watched_and_without_it_they_are() {
        let (remote, _) = TestRemote::with_site();
        let local = tempfile::tempdir().unwrap();
        let write_site = |git: &str| {
            std::fs::create_dir_all(local.path().join("workflows")).unwrap();
            std::fs::write(local.path().join("drover.yml"), format!("{SITE}{git}")).unwrap();
            std::fs::write(local.path().join("inventory.yml"), INVENTORY).unwrap();
            std::fs::write(local.path().join("workflows/a.yml"), workflow("a", 1, "true")).unwrap();
        };
        write_site(&format!(
            "git:\n  remote: {}\n  poll_interval: 1h\n",
            remote.url()
        ));
        let project = Project::load(local.path()).unwrap();
        let store = Store::open(&project.site.state_dir.join("drover.db")).unwrap();
        let mut s = SiteSource::start(local.path(), project, store, &[], std::future::pending()).unwrap();
        let SiteSource::Git { events, in_force, .. } = &mut s else {
            panic!("expected the git source")
        };
        assert!(in_force.is_none(), "no commit was in force before");
        let e = tokio::time::timeout(Duration::from_secs(10), events.recv())
            .await
            .unwrap()
            .unwrap();
        assert!(
            matches!(e, SourceEvent::Accepted { ref rollouts, .. } if rollouts.len() == 2),
            "{e:?}"
        );
        // A local edit is not taken: nothing arrives but what git brings (the poll's
        // fetch time).
        std::fs::write(local.path().join("inventory.yml"), "nodes:\n  x: {}\n").unwrap();
        let quiet = tokio::time::timeout(Duration::from_millis(1500), async {
            while let Some(e) = events.recv().await {
                assert!(matches!(e, SourceEvent::Fetched { .. }), "{e:?}");
            }
        });
        assert!(quiet.await.is_err());
        assert!(s.fetch_trigger().is_some());

        write_site("");
        let project = Project::load(local.path()).unwrap();
        let store = Store::open(&project.site.state_dir.join("drover.db")).unwrap();
        let mut s = SiteSource::start(local.path(), project, store, &[], std::future::pending()).unwrap();
        let SiteSource::Files { changes, .. } = &mut s else {
            panic!("expected the file watcher")
        };
        std::fs::write(
            local.path().join("inventory.yml"),
            "canary: [n1]\nnodes:\n  n[1-9]: {}\n",
        )
        .unwrap();
        let c = tokio::time::timeout(Duration::from_secs(10), changes.recv())
            .await
            .unwrap()
            .unwrap();
        assert!(
            matches!(c, SiteChange::Reloaded(ref p) if p.inventory.nodes().len() == 9),
            "{c:?}"
        );
    }
}
