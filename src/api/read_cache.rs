//! The answers of the read routes whose size grows with the fleet (`GET /runs/{id}`,
//! `GET /nodes`, `GET /runs`), kept as the bytes sent and rebuilt only when the store
//! or the site changed.
//!
//! Without it every request read every node row through the store's one reading
//! connection and serialised megabytes: with 50 clients on a 10,000-node run that was
//! seconds per request (issue 14 §4). Now a request costs a generation check (an atomic
//! and one `PRAGMA data_version`, `Store::generation`) and a reference-counted clone of
//! the bytes; a rebuild happens once per change, one at a time per answer (requests
//! that arrive meanwhile wait for it and share its result), and never for each client.
//!
//! An answer is fresh for a request when it was built from the same store generation
//! and site the request saw on arrival, or when its build began after the request
//! arrived: either way it holds every commit made before the request, so a client
//! reads its own writes. At most [`CAPACITY`] answers are kept (least recently used
//! goes first), so the memory is bounded whatever ids or subsets clients ask for.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Instant;

use axum::body::Bytes;
use tokio::sync::Mutex as AsyncMutex;

use super::api_error::ApiError;
use crate::project::Project;
use crate::store::{Generation, Store};

/// The most answers kept. A 10,000-node run's answer is about 2 MiB, so this bounds the
/// cache near 32 MiB on such a fleet.
pub const CAPACITY: usize = 16;

/// What an answer was built from: the store's contents and the site in force.
#[derive(Clone)]
pub struct Stamp {
    generation: Generation,
    /// Held, not only compared by address, so the address cannot be reused by a newer
    /// site while this answer is kept.
    site: Arc<Project>,
}

impl Stamp {
    /// The store's generation and the site now.
    pub fn now(store: &Store, site: Arc<Project>) -> Result<Stamp, ApiError> {
        Ok(Stamp {
            generation: store.generation().map_err(super::runs_routes::store_error)?,
            site,
        })
    }

    fn same(&self, other: &Stamp) -> bool {
        self.generation == other.generation && Arc::ptr_eq(&self.site, &other.site)
    }
}

struct Built {
    stamp: Stamp,
    /// When its build began (before its stamp was taken).
    began: Instant,
    body: Bytes,
}

#[derive(Default)]
struct Slot {
    built: Arc<AsyncMutex<Option<Built>>>,
    last_used: u64,
}

#[derive(Default)]
struct Slots {
    by_key: HashMap<String, Slot>,
    tick: u64,
}

/// Answers by key (the route and its query).
#[derive(Default)]
pub struct ReadCache {
    slots: Mutex<Slots>,
    /// Builds done, for tests: how many times the store was read for an answer.
    builds: std::sync::atomic::AtomicU64,
}

impl ReadCache {
    /// The answer for `key`: the kept one if it is fresh for a request arriving with
    /// `arrived` (taken before the call), else one built by `build` (a blocking store
    /// read, run off the runtime's threads) from the store as it is when the build
    /// begins. A build runs to its end and is kept even if this request goes away.
    pub async fn get(
        &self,
        key: String,
        arrived: Stamp,
        store: Store,
        build: impl FnOnce() -> Result<Vec<u8>, ApiError> + Send + 'static,
    ) -> Result<Bytes, ApiError> {
        let arrived_at = Instant::now();
        let cell = self.slot(key);
        let mut guard = Arc::clone(&cell).lock_owned().await;
        if let Some(b) = guard.as_ref()
            && (b.stamp.same(&arrived) || b.began >= arrived_at)
        {
            return Ok(b.body.clone());
        }
        self.builds.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let site = Arc::clone(&arrived.site);
        // Detached, so a client that hangs up mid-build does not waste the build for
        // those waiting behind it.
        let task = tokio::spawn(async move {
            let began = Instant::now();
            let read = tokio::task::spawn_blocking(move || {
                let stamp = Stamp::now(&store, site)?;
                build().map(|body| (stamp, Bytes::from(body)))
            });
            let (stamp, body) = read
                .await
                .unwrap_or_else(|e| Err(ApiError::internal(format!("building the answer failed: {e}"))))?;
            *guard = Some(Built {
                stamp,
                began,
                body: body.clone(),
            });
            Ok(body)
        });
        task.await
            .unwrap_or_else(|e| Err(ApiError::internal(format!("building the answer failed: {e}"))))
    }

    /// How many answers were built (store reads) since the start.
    pub fn builds(&self) -> u64 {
        self.builds.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// The slot for `key`, made if need be; the least recently used one goes when
    /// there are more than [`CAPACITY`].
    fn slot(&self, key: String) -> Arc<AsyncMutex<Option<Built>>> {
        let mut slots = self.slots.lock().unwrap_or_else(PoisonError::into_inner);
        slots.tick += 1;
        let tick = slots.tick;
        let cell = {
            let slot = slots.by_key.entry(key).or_default();
            slot.last_used = tick;
            Arc::clone(&slot.built)
        };
        if slots.by_key.len() > CAPACITY
            && let Some(oldest) = slots
                .by_key
                .iter()
                .min_by_key(|(_, s)| s.last_used)
                .map(|(k, _)| k.clone())
        {
            slots.by_key.remove(&oldest);
        }
        cell
    }

    /// How many answers are kept.
    pub fn kept(&self) -> usize {
        self.slots
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .by_key
            .len()
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;
    use std::sync::atomic::{AtomicU64, Ordering};

    use tempfile::TempDir;

    use super::*;
    use crate::store::{Controller, Write};

    fn project(dir: &Path) -> Arc<Project> {
        for (name, text) in [
            ("drover.yml", "inventory: inventory.yml\nworkflows: workflows\n"),
            ("inventory.yml", "nodes:\n  n[1-3]: {}\n"),
        ] {
            std::fs::create_dir_all(dir.join("workflows")).unwrap();
            std::fs::write(dir.join(name), text).unwrap();
        }
        Arc::new(Project::load(dir).unwrap())
    }

    fn run_created(id: &str) -> Write {
        Write::RunCreated {
            id: id.to_string(),
            workflow: "w".to_string(),
            version: 1,
            commit: None,
            plan: serde_json::json!({}),
            options: serde_json::json!({}),
            controller: Controller::this(),
            at: jiff::Timestamp::UNIX_EPOCH,
            nodes: vec![("n1".to_string(), 0)],
        }
    }

    /// An answer built from the store: the ids of its runs, counting builds.
    fn runs_answer(
        store: &Store,
        builds: &Arc<AtomicU64>,
    ) -> impl FnOnce() -> Result<Vec<u8>, ApiError> + Send + 'static {
        let store = store.clone();
        let builds = Arc::clone(builds);
        move || {
            builds.fetch_add(1, Ordering::SeqCst);
            let ids: Vec<String> = store.runs().unwrap().into_iter().map(|r| r.id).collect();
            Ok(ids.join(",").into_bytes())
        }
    }

    async fn get(cache: &ReadCache, store: &Store, site: &Arc<Project>, builds: &Arc<AtomicU64>) -> Bytes {
        let stamp = Stamp::now(store, Arc::clone(site)).unwrap();
        cache
            .get("runs".into(), stamp, store.clone(), runs_answer(store, builds))
            .await
            .unwrap()
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn an_answer_is_kept_until_the_store_or_the_site_changes() {
        let dir = TempDir::new().unwrap();
        let site = project(dir.path());
        let store = Store::open(&dir.path().join(".drover/drover.db")).unwrap();
        let cache = ReadCache::default();
        let builds = Arc::new(AtomicU64::new(0));
        assert_eq!(get(&cache, &store, &site, &builds).await, "");
        assert_eq!(get(&cache, &store, &site, &builds).await, "");
        assert_eq!(builds.load(Ordering::SeqCst), 1, "nothing changed: kept");

        // A write through this store (the daemon's own writer).
        store.write(vec![run_created("r1")]).await.unwrap();
        assert_eq!(get(&cache, &store, &site, &builds).await, "r1");
        assert_eq!(builds.load(Ordering::SeqCst), 2);

        // A write through another connection to the file (another process's).
        let other = Store::open(&dir.path().join(".drover/drover.db")).unwrap();
        other.write(vec![run_created("r2")]).await.unwrap();
        let after = get(&cache, &store, &site, &builds).await;
        assert!(after == "r2,r1" || after == "r1,r2", "{after:?}");
        assert_eq!(builds.load(Ordering::SeqCst), 3);

        // A new site in force (same contents, another load).
        let reloaded = Arc::new(Project::load(dir.path()).unwrap());
        get(&cache, &store, &reloaded, &builds).await;
        assert_eq!(builds.load(Ordering::SeqCst), 4);
        get(&cache, &store, &reloaded, &builds).await;
        assert_eq!(builds.load(Ordering::SeqCst), 4);
    }

    /// Requests that arrive while an answer is being rebuilt wait for that one build
    /// (or one more, if the store changed after it began) and all get the same answer;
    /// no request is answered from before a write that committed before it arrived.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn requests_during_a_rebuild_share_one_build_and_one_answer() {
        let dir = TempDir::new().unwrap();
        let site = project(dir.path());
        let store = Store::open(&dir.path().join(".drover/drover.db")).unwrap();
        let cache = Arc::new(ReadCache::default());
        let builds = Arc::new(AtomicU64::new(0));
        // The first build is held until the test lets it go.
        let (entered_tx, entered_rx) = std::sync::mpsc::channel::<()>();
        let (release_tx, release_rx) = std::sync::mpsc::channel::<()>();
        let first = {
            let (cache, store, site) = (Arc::clone(&cache), store.clone(), Arc::clone(&site));
            let inner = runs_answer(&store, &builds);
            tokio::spawn(async move {
                let stamp = Stamp::now(&store, site).unwrap();
                cache
                    .get("runs".into(), stamp, store.clone(), move || {
                        entered_tx.send(()).unwrap();
                        release_rx.recv().unwrap();
                        inner()
                    })
                    .await
                    .unwrap()
            })
        };
        tokio::task::spawn_blocking(move || entered_rx.recv().unwrap())
            .await
            .unwrap();
        // Committed while the first build is in its read, before these requests.
        store.write(vec![run_created("r1")]).await.unwrap();
        let waiting: Vec<_> = (0..20)
            .map(|_| {
                let (cache, store, site, builds) = (
                    Arc::clone(&cache),
                    store.clone(),
                    Arc::clone(&site),
                    Arc::clone(&builds),
                );
                tokio::spawn(async move { get(&cache, &store, &site, &builds).await })
            })
            .collect();
        release_tx.send(()).unwrap();
        let first = first.await.unwrap();
        let mut answers = Vec::new();
        for w in waiting {
            answers.push(w.await.unwrap());
        }
        assert!(first.is_empty() || first == "r1", "{first:?}");
        assert!(
            answers.iter().all(|a| a == "r1"),
            "every later request sees the write before it: {answers:?}"
        );
        assert!(
            builds.load(Ordering::SeqCst) <= 2,
            "one build, and at most one more after the write: {}",
            builds.load(Ordering::SeqCst)
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn at_most_capacity_answers_are_kept() {
        let dir = TempDir::new().unwrap();
        let site = project(dir.path());
        let store = Store::open(&dir.path().join(".drover/drover.db")).unwrap();
        let cache = ReadCache::default();
        for i in 0..CAPACITY * 3 {
            let stamp = Stamp::now(&store, Arc::clone(&site)).unwrap();
            cache
                .get(format!("k{i}"), stamp, store.clone(), move || {
                    Ok(vec![b'x'; 1000])
                })
                .await
                .unwrap();
        }
        assert_eq!(cache.kept(), CAPACITY);
        assert_eq!(cache.builds(), (CAPACITY * 3) as u64);
    }
}
