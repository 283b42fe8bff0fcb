//! The git watcher as a task: polls on its interval (longer after failed fetches) and
//! whenever asked (the push webhook), each poll on a blocking thread so git and the
//! file system never stall the runtime, and sends what it finds to the daemon.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::sync::{Notify, mpsc};
use tokio::task::JoinHandle;

use super::git_watcher::GitWatcher;
use super::source_error::SourceError;
use super::source_event::SourceEvent;
use super::tree_pins::TreePins;

/// The shortest time between the end of a fetch and a fetch a push asked for. A storm
/// of pushes (a merge train, a script pushing branch after branch) is then one fetch
/// at once and at most one more per gap, however many pushes come, so the git server
/// is not fetched from once per push; a push after a quiet spell is fetched at once.
pub const PUSH_FETCH_GAP: Duration = Duration::from_secs(1);

/// Asks the watcher to fetch now rather than at its next interval. Cheap to clone; asks
/// made while a fetch is under way make one more fetch after it, not one each.
#[derive(Clone, Debug, Default)]
pub struct FetchTrigger(Arc<Asked>);

#[derive(Debug, Default)]
struct Asked {
    /// Pushes so far: a fetch covers those counted before it began.
    pushes: AtomicU64,
    wake: Notify,
}

impl FetchTrigger {
    pub fn fetch_now(&self) {
        self.0.pushes.fetch_add(1, Ordering::SeqCst);
        self.0.wake.notify_one();
    }

    fn pushes(&self) -> u64 {
        self.0.pushes.load(Ordering::SeqCst)
    }
}

/// The running watcher task.
pub struct GitSource {
    pub trigger: FetchTrigger,
    /// The commits whose trees are in use; every other exported tree is removed
    /// between polls.
    pub pins: TreePins,
    /// Ends with `Ok` on shutdown or when the receiver of the events is gone; with an
    /// error when the clone, the state dir or the store failed.
    pub task: JoinHandle<Result<(), SourceError>>,
}

impl GitSource {
    /// Starts polling at once, then on the interval, until `shutdown` completes.
    /// `pins`: the trees in use already (the commit in force, runs to resume).
    pub fn spawn(
        watcher: GitWatcher,
        pins: TreePins,
        events: mpsc::UnboundedSender<SourceEvent>,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> GitSource {
        let trigger = FetchTrigger::default();
        let asked = trigger.clone();
        let pinned = pins.clone();
        let task = tokio::spawn(async move {
            tokio::pin!(shutdown);
            let mut watcher = Some(watcher);
            loop {
                let Some(w) = watcher.take() else { return Ok(()) };
                // The pushes this fetch answers: any counted later make one more.
                let covered = asked.pushes();
                let keep = pinned.list();
                let (w, found) = tokio::task::spawn_blocking(move || {
                    let mut w = w;
                    if let Err(e) = w.prune_trees(&keep) {
                        tracing::warn!("cannot prune the exported commit trees: {e}");
                    }
                    let found = w.poll();
                    (w, found)
                })
                .await
                .map_err(|e| SourceError::Io {
                    action: "poll",
                    path: "git".into(),
                    source: std::io::Error::other(e.to_string()),
                })?;
                let mut found = found?;
                if !found.iter().any(|e| matches!(e, SourceEvent::FetchFailed { .. })) {
                    found.push(SourceEvent::Fetched {
                        at: jiff::Timestamp::now(),
                    });
                }
                for e in found {
                    // Pinned before it is sent: its tree stays until the daemon is done.
                    if let SourceEvent::Accepted { site, .. } = &e {
                        pinned.pin(&site.commit.sha);
                    }
                    if events.send(e).is_err() {
                        return Ok(());
                    }
                }
                let ended = tokio::time::Instant::now();
                let next_poll = ended + w.next_delay();
                watcher = Some(w);
                // Until the next poll, or a push not covered by the fetch just done
                // (then no sooner than the gap after it). A wake-up left from a push
                // the fetch covered is ignored.
                loop {
                    if asked.pushes() > covered {
                        tokio::select! {
                            () = &mut shutdown => return Ok(()),
                            () = tokio::time::sleep_until(next_poll.min(ended + PUSH_FETCH_GAP)) => {}
                        }
                        break;
                    }
                    tokio::select! {
                        () = &mut shutdown => return Ok(()),
                        () = tokio::time::sleep_until(next_poll) => break,
                        () = asked.0.wake.notified() => {}
                    }
                }
            }
        });
        GitSource { trigger, pins, task }
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use super::*;
    use crate::site::GitSettings;
    use crate::source::test_remote::{TestRemote, workflow};
    use crate::store::Store;

    async fn accepted(rx: &mut mpsc::UnboundedReceiver<SourceEvent>) -> Vec<String> {
        loop {
            let e = tokio::time::timeout(Duration::from_secs(10), rx.recv())
                .await
                .expect("an event within 10s")
                .expect("source alive");
            if let SourceEvent::Accepted { rollouts, .. } = e {
                return rollouts.into_iter().map(|r| r.workflow).collect();
            }
        }
    }

    fn watcher(remote: &TestRemote, state: &std::path::Path, poll: Duration) -> GitWatcher {
        let settings = GitSettings {
            remote: remote.url(),
            branch: "main".into(),
            poll_interval: poll,
            site_path: "".into(),
            allow_force_push: false,
            require_signed: None,
        };
        GitWatcher::open(settings, state, Store::open(&state.join("drover.db")).unwrap()).unwrap()
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_commit_is_seen_on_the_next_poll_or_at_once_when_asked() {
        let (remote, _) = TestRemote::with_site();
        let state = tempfile::tempdir().unwrap();
        let (tx, mut rx) = mpsc::unbounded_channel();
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let source = GitSource::spawn(
            watcher(&remote, state.path(), Duration::from_millis(200)),
            TreePins::default(),
            tx,
            async {
                let _ = stop_rx.await;
            },
        );
        assert_eq!(accepted(&mut rx).await, ["a", "b"]);

        // On the interval.
        let t = Instant::now();
        remote.commit(&[("workflows/a.yml", &workflow("a", 2, "echo 2"))], "a2");
        assert_eq!(accepted(&mut rx).await, ["a"]);
        assert!(t.elapsed() < Duration::from_secs(5), "{:?}", t.elapsed());

        stop_tx.send(()).unwrap();
        source.task.await.unwrap().unwrap();

        // A long interval: only the trigger brings the commit in.
        let (tx, mut rx) = mpsc::unbounded_channel();
        remote.commit(&[("workflows/b.yml", &workflow("b", 2, "echo 2"))], "b2");
        let source = GitSource::spawn(
            watcher(&remote, state.path(), Duration::from_secs(3600)),
            TreePins::default(),
            tx,
            std::future::pending(),
        );
        // The first poll happens at start; wait until it is done, then commit again.
        assert_eq!(accepted(&mut rx).await, ["b"]);
        remote.commit(&[("workflows/a.yml", &workflow("a", 3, "echo 3"))], "a3");
        source.trigger.fetch_now();
        assert_eq!(accepted(&mut rx).await, ["a"]);
        drop(rx);
        source.trigger.fetch_now();
        source.task.abort();
    }
}
