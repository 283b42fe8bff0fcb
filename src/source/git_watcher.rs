//! The daemon's view of the site's git repository: its own clone under the state dir,
//! fetched on the interval and on demand, followed fast-forward only, every new commit
//! validated as committed before anything of it runs.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use git2::{Oid, Repository, Sort};
use jiff::Timestamp;

use super::backoff::retry_delay;
use super::commit_info::CommitInfo;
use super::fingerprint::{Fingerprints, fingerprints};
use super::signature_check::{GoodSignature, check_signature};
use super::source_error::SourceError;
use super::source_event::{Rejection, RolloutRequest, SiteSnapshot, SourceEvent};
use super::tree_export::{export_commit, remove_dir};
use crate::diag::Diagnostic;
use crate::project::Project;
use crate::site::GitSettings;
use crate::store::{SourceVerdict, Store, Write};

/// The remote's name in the daemon's clone.
const REMOTE: &str = "origin";

/// Pack files (one per fetch) the clone may gather before they are made into one.
const MAX_PACKS: usize = 16;

pub struct GitWatcher {
    settings: GitSettings,
    /// The daemon's state dir (runs of every commit's site use it).
    state_dir: PathBuf,
    /// `<state_dir>/git`: the clone (`repo.git`) and exported trees (`trees/<sha>`).
    dir: PathBuf,
    repo: Repository,
    store: Store,
    /// The last commit looked at (accepted or not).
    seen: Option<Oid>,
    /// The commit in force and its workflows' fingerprints.
    good: Option<Oid>,
    fingerprints: Fingerprints,
    /// Consecutive failed fetches.
    failures: u32,
    /// A rewritten tip already reported, so it is said once, not on every poll.
    refused_tip: Option<Oid>,
}

impl GitWatcher {
    /// Opens (or makes) the clone under `state_dir/git` and takes up where the store says
    /// the watcher was. Fetches nothing yet.
    pub fn open(settings: GitSettings, state_dir: &Path, store: Store) -> Result<GitWatcher, SourceError> {
        let dir = state_dir.join("git");
        let repo_dir = dir.join("repo.git");
        let repo = if repo_dir.exists() {
            Repository::open_bare(&repo_dir)
                .map_err(SourceError::git(format!("open {}", repo_dir.display())))?
        } else {
            std::fs::create_dir_all(&dir).map_err(SourceError::io("create", &dir))?;
            Repository::init_bare(&repo_dir)
                .map_err(SourceError::git(format!("create {}", repo_dir.display())))?
        };
        // The remote follows the site config: a changed URL is used from now on.
        match repo.find_remote(REMOTE) {
            Ok(r) if r.url() == Some(settings.remote.as_str()) => {}
            Ok(_) => repo
                .remote_set_url(REMOTE, &settings.remote)
                .map_err(SourceError::git("set the remote's URL"))?,
            Err(_) => {
                repo.remote(REMOTE, &settings.remote)
                    .map_err(SourceError::git("add the remote"))?;
            }
        }
        let head = store.source_head()?;
        let parse = |s: &str| Oid::from_str(s).ok();
        let (seen, good, fingerprints) = match head {
            Some(h) => (
                parse(&h.seen),
                h.good.as_deref().and_then(parse),
                serde_json::from_value(h.fingerprints).unwrap_or_default(),
            ),
            None => (None, None, Fingerprints::new()),
        };
        Ok(GitWatcher {
            settings,
            state_dir: state_dir.to_path_buf(),
            dir,
            repo,
            store,
            seen,
            good,
            fingerprints,
            failures: 0,
            refused_tip: None,
        })
    }

    pub fn settings(&self) -> &GitSettings {
        &self.settings
    }

    /// The commit in force, if any.
    pub fn good(&self) -> Option<String> {
        self.good.map(|o| o.to_string())
    }

    /// How long to wait before the next poll: the interval, or longer after failures.
    pub fn next_delay(&self) -> Duration {
        retry_delay(self.settings.poll_interval, self.failures)
    }

    /// The site at the commit in force, for a daemon starting up (it runs nothing new:
    /// its rollouts were started when it was accepted). `None` before any good commit.
    pub fn in_force(&self) -> Result<Option<Arc<SiteSnapshot>>, SourceError> {
        let Some(good) = self.good else { return Ok(None) };
        let commit = self
            .repo
            .find_commit(good)
            .map_err(SourceError::git(format!("read commit {good}")))?;
        let info = CommitInfo::of(&commit);
        match self.load(good, &info)? {
            Ok((site, _)) => Ok(Some(Arc::new(site))),
            // It validated when it was accepted; a drover that now refuses it says so.
            Err(_) => Ok(None),
        }
    }

    /// The site at an earlier accepted commit (`sha`), for a run of it that a daemon
    /// resumes after a restart: the run finishes the version it began, with that
    /// commit's files. `None` when the clone no longer has the commit or the site there
    /// no longer loads.
    pub fn site_at(&self, sha: &str) -> Result<Option<Arc<SiteSnapshot>>, SourceError> {
        let Ok(oid) = Oid::from_str(sha) else {
            return Ok(None);
        };
        let Ok(commit) = self.repo.find_commit(oid) else {
            return Ok(None);
        };
        let info = CommitInfo::of(&commit);
        match self.load(oid, &info)? {
            Ok((site, _)) => Ok(Some(Arc::new(site))),
            Err(_) => Ok(None),
        }
    }

    /// Fetches, then looks at every new commit in order. Problems reaching the remote
    /// are events (with the retry delay), not errors: only the local clone, the state
    /// dir or the store failing is an error.
    pub fn poll(&mut self) -> Result<Vec<SourceEvent>, SourceError> {
        let mut events = Vec::new();
        match self.fetch() {
            Ok(()) => {
                if self.failures > 0 {
                    events.push(SourceEvent::FetchRecovered {
                        after_failures: self.failures,
                    });
                }
                self.failures = 0;
                self.consolidate_packs()?;
            }
            Err(e) => {
                self.failures = self.failures.saturating_add(1);
                events.push(SourceEvent::FetchFailed {
                    error: format!(
                        "fetching branch `{}` of `{}`: {}",
                        self.settings.branch,
                        self.settings.remote,
                        e.message()
                    ),
                    failures: self.failures,
                    retry_in: self.next_delay(),
                });
                return Ok(events);
            }
        }
        let Some(tip) = self.tip()? else { return Ok(events) };
        self.follow(tip, &mut events)?;
        Ok(events)
    }

    fn fetch(&self) -> Result<(), git2::Error> {
        let branch = &self.settings.branch;
        let mut remote = self.repo.find_remote(REMOTE)?;
        // Forced: the tracking ref always shows the remote's branch; whether to follow a
        // rewritten history is decided here, not by the fetch.
        let refspec = format!("+refs/heads/{branch}:refs/remotes/{REMOTE}/{branch}");
        let mut opts = git2::FetchOptions::new();
        opts.download_tags(git2::AutotagOption::None);
        remote.fetch(&[refspec.as_str()], Some(&mut opts), None)
    }

    /// Every fetch adds a pack file, and libgit2 keeps every pack open and searches them
    /// one by one: over thousands of commits memory and lookups would grow per commit.
    /// Past `MAX_PACKS`, the objects of the branch and of the commits seen and in force
    /// are written into one pack and the others removed (libgit2 has no `git gc`).
    fn consolidate_packs(&mut self) -> Result<(), SourceError> {
        let pack_dir = self.repo.path().join("objects").join("pack");
        let packs: Vec<PathBuf> = std::fs::read_dir(&pack_dir)
            .map_err(SourceError::io("read", &pack_dir))?
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|x| x == "pack"))
            .collect();
        if packs.len() < MAX_PACKS {
            return Ok(());
        }
        let failed = SourceError::git("consolidate the clone's pack files");
        let written = (|| -> Result<(), git2::Error> {
            let mut pb = self.repo.packbuilder()?;
            let mut walk = self.repo.revwalk()?;
            walk.push_glob(&format!("refs/remotes/{REMOTE}/*"))?;
            for oid in [self.seen, self.good].into_iter().flatten() {
                // A commit the branch no longer reaches (a refused force-push) is kept.
                let _ = walk.push(oid);
            }
            pb.insert_walk(&mut walk)?;
            let mut buf = git2::Buf::new();
            pb.write_buf(&mut buf)?;
            let odb = self.repo.odb()?;
            let mut w = odb.packwriter()?;
            std::io::Write::write_all(&mut w, &buf).map_err(|e| git2::Error::from_str(&e.to_string()))?;
            w.commit()?;
            Ok(())
        })();
        written.map_err(failed)?;
        for p in packs {
            let _ = std::fs::remove_file(p.with_extension("idx"));
            let _ = std::fs::remove_file(&p);
        }
        let path = self.repo.path().to_path_buf();
        self.repo =
            Repository::open_bare(&path).map_err(SourceError::git(format!("reopen {}", path.display())))?;
        Ok(())
    }

    /// The fetched tip of the branch (`None`: the remote has no such branch yet).
    fn tip(&self) -> Result<Option<Oid>, SourceError> {
        let name = format!("refs/remotes/{REMOTE}/{}", self.settings.branch);
        match self.repo.refname_to_id(&name) {
            Ok(id) => Ok(Some(id)),
            Err(e) if e.code() == git2::ErrorCode::NotFound => Ok(None),
            Err(e) => Err(SourceError::git(format!("read {name}"))(e)),
        }
    }

    fn follow(&mut self, tip: Oid, events: &mut Vec<SourceEvent>) -> Result<(), SourceError> {
        let Some(seen) = self.seen else {
            // The first commit this daemon sees: the branch as it is now, not its history.
            return self.consider(tip, events);
        };
        if tip == seen {
            return Ok(());
        }
        let descends = self.repo.graph_descendant_of(tip, seen).unwrap_or(false);
        if !descends {
            if self.refused_tip == Some(tip) {
                return Ok(());
            }
            let to = self.info(tip)?;
            let followed = self.settings.allow_force_push;
            events.push(SourceEvent::HistoryRewritten {
                from: seen.to_string(),
                to,
                followed,
            });
            if followed {
                // Only the new tip: the rewritten commits never were the branch here.
                return self.consider(tip, events);
            }
            self.refused_tip = Some(tip);
            return Ok(());
        }
        self.refused_tip = None;
        // The branch's own history (first parents), oldest first: each commit is a state
        // the branch had; commits merged in from elsewhere arrive with their merge.
        let mut walk = self
            .repo
            .revwalk()
            .map_err(SourceError::git("walk the history"))?;
        walk.set_sorting(Sort::TOPOLOGICAL | Sort::REVERSE)
            .map_err(SourceError::git("walk the history"))?;
        walk.simplify_first_parent()
            .map_err(SourceError::git("walk the history"))?;
        walk.push(tip).map_err(SourceError::git("walk the history"))?;
        walk.hide(seen).map_err(SourceError::git("walk the history"))?;
        let commits: Vec<Oid> = walk
            .collect::<Result<_, _>>()
            .map_err(SourceError::git("walk the history"))?;
        for c in commits {
            self.consider(c, events)?;
        }
        Ok(())
    }

    fn info(&self, oid: Oid) -> Result<CommitInfo, SourceError> {
        let c = self
            .repo
            .find_commit(oid)
            .map_err(SourceError::git(format!("read commit {oid}")))?;
        Ok(CommitInfo::of(&c))
    }

    /// One new commit: its signature (when required), then the whole site as committed;
    /// then what changed. The verdict is stored before it is reported.
    fn consider(&mut self, oid: Oid, events: &mut Vec<SourceEvent>) -> Result<(), SourceError> {
        let info = self.info(oid)?;
        let signature = match self.check_signature(oid, &info) {
            Ok(s) => s,
            Err(problem) => return self.reject(info, Rejection::Signature(problem), events),
        };
        let (site, changed) = match self.load(oid, &info)? {
            Ok(loaded) => loaded,
            Err(diags) => return self.reject(info, Rejection::Invalid(diags), events),
        };
        let rollouts: Vec<RolloutRequest> = site
            .project
            .workflows
            .iter()
            .filter(|w| changed.get(&w.name) != self.fingerprints.get(&w.name))
            .map(|w| RolloutRequest {
                workflow: w.name.clone(),
                version: w.version,
                commit: info.clone(),
            })
            .collect();
        self.store.write_blocking(vec![Write::SourceCommit {
            sha: info.sha.clone(),
            verdict: SourceVerdict::Accepted,
            author: info.author.clone(),
            subject: info.subject.clone(),
            detail: String::new(),
            fingerprints: Some(serde_json::to_value(&changed).unwrap_or_default()),
            wanted: rollouts.iter().map(RolloutRequest::wanted).collect(),
            at: Timestamp::now(),
        }])?;
        self.seen = Some(oid);
        self.good = Some(oid);
        self.fingerprints = changed;
        events.push(SourceEvent::Accepted {
            site: Arc::new(site),
            rollouts,
            signature,
        });
        Ok(())
    }

    fn reject(
        &mut self,
        info: CommitInfo,
        why: Rejection,
        events: &mut Vec<SourceEvent>,
    ) -> Result<(), SourceError> {
        self.store.write_blocking(vec![Write::SourceCommit {
            sha: info.sha.clone(),
            verdict: SourceVerdict::Rejected,
            author: info.author.clone(),
            subject: info.subject.clone(),
            detail: why.render(),
            fingerprints: None,
            wanted: Vec::new(),
            at: Timestamp::now(),
        }])?;
        if let Ok(oid) = Oid::from_str(&info.sha) {
            self.seen = Some(oid);
            remove_dir(&self.tree_dir(oid))?;
        }
        events.push(SourceEvent::Rejected { commit: info, why });
        Ok(())
    }

    fn check_signature(
        &self,
        oid: Oid,
        info: &CommitInfo,
    ) -> Result<Option<GoodSignature>, super::SignatureProblem> {
        let Some(required) = &self.settings.require_signed else {
            return Ok(None);
        };
        let (sig, signed) = match self.repo.extract_signature(&oid, None) {
            Ok((sig, signed)) => (Some(sig), signed),
            Err(e) if e.code() == git2::ErrorCode::NotFound => return Err(super::SignatureProblem::Unsigned),
            Err(e) => return Err(super::SignatureProblem::Malformed(e.message().to_string())),
        };
        check_signature(sig.as_deref(), &signed, &required.signers, info.time).map(Some)
    }

    fn tree_dir(&self, oid: Oid) -> PathBuf {
        self.dir.join("trees").join(oid.to_string())
    }

    /// Exports the commit's tree and loads the site in it: the snapshot and its
    /// fingerprints, or every diagnostic (paths relative to the repository).
    fn load(
        &self,
        oid: Oid,
        info: &CommitInfo,
    ) -> Result<Result<(SiteSnapshot, Fingerprints), Vec<Diagnostic>>, SourceError> {
        let tree = self.tree_dir(oid);
        export_commit(&self.repo, oid, &tree)?;
        let tree = std::fs::canonicalize(&tree).map_err(SourceError::io("resolve", &tree))?;
        let site_dir = tree.join(&self.settings.site_path);
        match Project::load(&site_dir) {
            Ok(mut project) => {
                project.site.state_dir = self.state_dir.clone();
                let prints = fingerprints(&project, &tree);
                Ok(Ok((
                    SiteSnapshot {
                        commit: info.clone(),
                        tree,
                        project: Arc::new(project),
                    },
                    prints,
                )))
            }
            Err(diags) => {
                let prefix = format!("{}/", tree.display());
                Ok(Err(diags
                    .into_iter()
                    .map(|mut d| {
                        if let Some(rest) = d.file.strip_prefix(&prefix) {
                            d.file = rest.to_string();
                        }
                        d.message = d.message.replace(&prefix, "");
                        d
                    })
                    .collect()))
            }
        }
    }

    /// Removes exported trees other than those of `keep` (the commit in force is always
    /// kept): the daemon calls it with the commits its active runs use.
    pub fn prune_trees(&self, keep: &[String]) -> Result<(), SourceError> {
        let trees = self.dir.join("trees");
        let Ok(entries) = std::fs::read_dir(&trees) else {
            return Ok(());
        };
        let good = self.good();
        for e in entries.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if good.as_deref() == Some(name.as_str()) || keep.contains(&name) {
                continue;
            }
            remove_dir(&e.path())?;
        }
        Ok(())
    }
}
