//! A site that is not in git: its files watched, so an edited inventory or site config
//! takes effect without a restart — and a broken edit never does.
//!
//! The directories are watched, not the files: editors save by writing a new file and
//! renaming it over the old one, which a watch on the file itself would lose. Events
//! are debounced (an editor's save is several), and only YAML files (and the inventory,
//! whatever its name) count, so the state database and editors' swap files never
//! trigger a reload. When the site is in git, the git watcher is the source of truth and
//! this is not used.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use notify::{RecursiveMode, Watcher};

use super::source_error::SourceError;
use crate::diag::Diagnostic;
use crate::project::{Project, SITE_FILE};

/// What a reload found.
#[derive(Debug, Clone)]
pub enum SiteChange {
    /// The site as it now is on disk: in force from now on.
    Reloaded(Arc<Project>),
    /// The edit does not validate: every diagnostic; the previous site stays in force.
    Rejected(Vec<Diagnostic>),
}

/// Watches a site directory until dropped.
pub struct SiteWatcher {
    current: Arc<Mutex<Arc<Project>>>,
    // Dropping the watcher closes its channel, which ends the debounce thread.
    _watcher: notify::RecommendedWatcher,
}

impl SiteWatcher {
    /// Starts watching the site `project` was loaded from (`site_dir`). Every reload is
    /// sent to `changes`; `current` always gives the site in force.
    pub fn start(
        site_dir: &Path,
        project: Project,
        debounce: Duration,
        changes: tokio::sync::mpsc::UnboundedSender<SiteChange>,
    ) -> Result<SiteWatcher, SourceError> {
        let site_dir = std::fs::canonicalize(site_dir).map_err(SourceError::io("resolve", site_dir))?;
        let inventory =
            std::fs::canonicalize(&project.site.inventory).unwrap_or(project.site.inventory.clone());
        let mut dirs: BTreeSet<PathBuf> = BTreeSet::new();
        dirs.insert(site_dir.clone());
        for d in [
            inventory.parent().map(Path::to_path_buf),
            Some(project.site.workflows.clone()),
        ]
        .into_iter()
        .flatten()
        {
            if let Ok(d) = std::fs::canonicalize(&d) {
                dirs.insert(d);
            }
        }
        let current = Arc::new(Mutex::new(Arc::new(project)));

        let (tx, rx) = mpsc::channel::<notify::Result<notify::Event>>();
        let mut watcher = notify::recommended_watcher(tx).map_err(|e| notify_error(&site_dir, e))?;
        for d in &dirs {
            watcher
                .watch(d, RecursiveMode::NonRecursive)
                .map_err(|e| notify_error(d, e))?;
        }

        let shared = current.clone();
        let relevant = move |p: &Path| {
            p == inventory
                || p.file_name().is_some_and(|n| n == SITE_FILE)
                || (matches!(p.extension().and_then(|x| x.to_str()), Some("yml" | "yaml"))
                    && !p
                        .file_name()
                        .is_some_and(|n| n.to_string_lossy().starts_with('.')))
        };
        std::thread::Builder::new()
            .name("drover-site-watch".into())
            .spawn(move || {
                while let Ok(first) = rx.recv() {
                    let mut changed = touches(&first, &relevant);
                    // Quiet for `debounce`: the edit is complete.
                    loop {
                        match rx.recv_timeout(debounce) {
                            Ok(e) => changed |= touches(&e, &relevant),
                            Err(mpsc::RecvTimeoutError::Timeout) => break,
                            Err(mpsc::RecvTimeoutError::Disconnected) => return,
                        }
                    }
                    if !changed {
                        continue;
                    }
                    let change = match Project::load(&site_dir) {
                        Ok(p) => {
                            let p = Arc::new(p);
                            *shared.lock().unwrap_or_else(PoisonError::into_inner) = p.clone();
                            SiteChange::Reloaded(p)
                        }
                        Err(diags) => SiteChange::Rejected(diags),
                    };
                    if changes.send(change).is_err() {
                        return;
                    }
                }
            })
            .map_err(SourceError::io(
                "start the watch thread for",
                PathBuf::from(SITE_FILE),
            ))?;
        Ok(SiteWatcher {
            current,
            _watcher: watcher,
        })
    }

    /// The site in force: the last one that validated.
    pub fn current(&self) -> Arc<Project> {
        self.current
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

fn touches(e: &notify::Result<notify::Event>, relevant: &dyn Fn(&Path) -> bool) -> bool {
    match e {
        Ok(e) => !e.kind.is_access() && e.paths.iter().any(|p| relevant(p)),
        // An overflow of the kernel's queue: something changed, reload to be sure.
        Err(_) => true,
    }
}

fn notify_error(path: &Path, e: notify::Error) -> SourceError {
    SourceError::Io {
        action: "watch",
        path: path.to_path_buf(),
        source: std::io::Error::other(e.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::source::test_remote::{INVENTORY, SITE, workflow};

    fn site() -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("workflows")).unwrap();
        std::fs::write(dir.path().join("drover.yml"), SITE).unwrap();
        std::fs::write(dir.path().join("inventory.yml"), INVENTORY).unwrap();
        std::fs::write(dir.path().join("workflows/a.yml"), workflow("a", 1, "true")).unwrap();
        dir
    }

    /// Saves the way editors do: a new file renamed over the old one.
    fn save(path: &Path, text: &str) {
        let tmp = path.with_file_name(".save.tmp");
        std::fs::write(&tmp, text).unwrap();
        std::fs::rename(&tmp, path).unwrap();
    }

    async fn next(rx: &mut tokio::sync::mpsc::UnboundedReceiver<SiteChange>) -> SiteChange {
        tokio::time::timeout(Duration::from_secs(10), rx.recv())
            .await
            .expect("a reload within 10s")
            .expect("watcher alive")
    }

    #[tokio::test]
    async fn a_valid_edit_takes_effect_and_an_invalid_one_is_reported_and_ignored() {
        let dir = site();
        let project = Project::load(dir.path()).unwrap();
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        let w = SiteWatcher::start(dir.path(), project, Duration::from_millis(100), tx).unwrap();
        assert_eq!(w.current().inventory.nodes().len(), 4);

        let inv = dir.path().join("inventory.yml");
        save(&inv, "canary: [n1]\nnodes:\n  n[1-6]: {}\n");
        let SiteChange::Reloaded(p) = next(&mut rx).await else {
            panic!("expected a reload")
        };
        assert_eq!(p.inventory.nodes().len(), 6);
        assert_eq!(w.current().inventory.nodes().len(), 6);

        save(&inv, "canary: [n9]\nnodes:\n  n[1-6]: {}\n");
        let SiteChange::Rejected(diags) = next(&mut rx).await else {
            panic!("expected a rejection")
        };
        assert!(
            diags
                .iter()
                .any(|d| d.file.ends_with("inventory.yml") && d.message.contains("n9")),
            "{diags:?}"
        );
        assert_eq!(
            w.current().inventory.nodes().len(),
            6,
            "the old inventory stays in force"
        );

        // The state database and files that are not the site's change nothing.
        std::fs::create_dir_all(dir.path().join(".drover")).unwrap();
        std::fs::write(dir.path().join("notes.txt"), "x").unwrap();
        std::fs::write(dir.path().join(".inventory.yml.swp"), "x").unwrap();
        assert!(
            tokio::time::timeout(Duration::from_millis(600), rx.recv())
                .await
                .is_err(),
            "no reload for unrelated files"
        );
    }
}
