//! One `sinfo` per poll interval for every node waiting on Slurm.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio::sync::{Notify, watch};

use super::node_status::NodeStatus;
use super::slurm_client::SlurmClient;
use crate::engine::Deadline;

/// The result of one poll: `seq` counts polls started.
#[derive(Debug, Clone)]
struct Poll {
    seq: u64,
    nodes: Result<Arc<BTreeMap<String, NodeStatus>>, String>,
}

#[derive(Debug, Default)]
struct Waiting {
    /// Waiters per node.
    nodes: HashMap<String, usize>,
    /// Polls started so far.
    started: u64,
    running: bool,
}

/// Shares one `sinfo` among every node that waits for a state (drained, back in
/// service). A poll runs as soon as the first node waits and then every `interval` while
/// any node waits, asking only for the nodes waiting; each waiter looks at the polls that
/// started after it began waiting, so a state from before its drain never counts. With
/// 2,000 nodes draining, slurmctld answers one query per interval, not 2,000.
#[derive(Debug, Clone)]
pub struct SlurmPoller {
    client: SlurmClient,
    interval: Duration,
    waiting: Arc<Mutex<Waiting>>,
    wake: Arc<Notify>,
    polls: watch::Sender<Poll>,
}

/// Takes a node off the list when its wait ends, however it ends (a dropped future too).
struct Registration<'a> {
    poller: &'a SlurmPoller,
    node: String,
}

impl Drop for Registration<'_> {
    fn drop(&mut self) {
        let mut w = self.poller.lock();
        if let Some(n) = w.nodes.get_mut(&self.node) {
            *n -= 1;
            if *n == 0 {
                w.nodes.remove(&self.node);
            }
        }
    }
}

impl SlurmPoller {
    pub fn new(client: SlurmClient, interval: Duration) -> SlurmPoller {
        SlurmPoller {
            client,
            interval,
            waiting: Arc::default(),
            wake: Arc::new(Notify::new()),
            polls: watch::Sender::new(Poll {
                seq: 0,
                nodes: Err("not polled yet".into()),
            }),
        }
    }

    pub fn client(&self) -> &SlurmClient {
        &self.client
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Waiting> {
        self.waiting.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Waits until `node`'s state satisfies `ok` or `deadline` passes; `Err`: the last
    /// state seen (or why none could be read).
    pub async fn wait_for(
        &self,
        node: &str,
        deadline: Deadline,
        ok: impl Fn(&NodeStatus) -> bool,
    ) -> Result<NodeStatus, String> {
        let mut rx = self.polls.subscribe();
        let after = {
            let mut w = self.lock();
            *w.nodes.entry(node.to_string()).or_default() += 1;
            if !w.running {
                w.running = true;
                let me = self.clone();
                tokio::spawn(async move { me.run().await });
            }
            w.started
        };
        let _registered = Registration {
            poller: self,
            node: node.to_string(),
        };
        self.wake.notify_one();
        let mut last = format!("no poll of {node} yet");
        loop {
            let changed = tokio::time::timeout(deadline.left(), rx.changed()).await;
            if !matches!(changed, Ok(Ok(()))) {
                return Err(last);
            }
            let poll = rx.borrow_and_update().clone();
            if poll.seq <= after {
                continue;
            }
            match &poll.nodes {
                Ok(nodes) => match nodes.get(node) {
                    Some(s) if ok(s) => return Ok(s.clone()),
                    Some(s) => last = format!("Slurm shows {node} {} ({})", s.state, s.reason),
                    None => last = format!("sinfo does not list {node}"),
                },
                Err(e) => last.clone_from(e),
            }
        }
    }

    /// The poll loop: idle while nobody waits, one `sinfo` per interval otherwise. It
    /// lives as long as the runtime (a run's).
    async fn run(self) {
        loop {
            let nodes: Vec<String> = {
                let mut w = self.lock();
                if w.nodes.is_empty() {
                    None
                } else {
                    w.started += 1;
                    let mut v: Vec<String> = w.nodes.keys().cloned().collect();
                    v.sort();
                    Some(v)
                }
            }
            .unwrap_or_default();
            if nodes.is_empty() {
                // A waiter that registered between the check and here notified already:
                // `notify_one` keeps the permit.
                self.wake.notified().await;
                continue;
            }
            let seq = self.lock().started;
            let nodes = self
                .client
                .sinfo(Some(&nodes))
                .await
                .map(Arc::new)
                .map_err(|e| e.to_string());
            self.polls.send_replace(Poll { seq, nodes });
            tokio::time::sleep(self.interval).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use indexmap::IndexMap;

    use super::*;

    /// A `sinfo` on PATH that logs each call's arguments and reports every node
    /// `draining` for its first two calls, `drained` after.
    fn fake_sinfo(dir: &std::path::Path) -> IndexMap<String, String> {
        let script = format!(
            "#!/bin/sh\necho \"$*\" >> {d}/calls\nn=$(wc -l < {d}/calls)\n\
             state=draining; [ \"$n\" -gt 2 ] && state=drained\n\
             for i in 1 2 3 4 5; do echo \"n$i|batch*|$state|drover: draining\"; done\n",
            d = dir.display()
        );
        let path = dir.join("sinfo");
        std::fs::write(&path, script).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
        let mut env = IndexMap::new();
        env.insert(
            "PATH".to_string(),
            format!("{}:{}", dir.display(), std::env::var("PATH").unwrap_or_default()),
        );
        env
    }

    #[tokio::test]
    async fn five_waiting_nodes_share_one_sinfo_per_poll() {
        let dir = tempfile::tempdir().unwrap();
        let poller = SlurmPoller::new(
            SlurmClient::new(fake_sinfo(dir.path())),
            Duration::from_millis(100),
        );
        let waits = (1..=5).map(|i| {
            let p = poller.clone();
            async move {
                p.wait_for(
                    &format!("n{i}"),
                    Deadline::after(Duration::from_secs(20)),
                    NodeStatus::drained,
                )
                .await
            }
        });
        let results = futures_join(waits).await;
        assert!(results.iter().all(Result::is_ok), "{results:?}");
        let calls = std::fs::read_to_string(dir.path().join("calls")).unwrap();
        let calls: Vec<&str> = calls.lines().collect();
        // Drained from the third poll on: three polls served all five (a waiter that
        // came in after the first poll started may need one more).
        assert!(calls.len() <= 4, "{calls:?}");
        assert_eq!(poller.client().queries(), calls.len() as u64);
        assert!(
            calls.last().unwrap().contains("-n n[1-5]"),
            "one query for all: {calls:?}"
        );
    }

    #[tokio::test]
    async fn a_wait_ends_at_its_deadline_with_the_last_state() {
        let dir = tempfile::tempdir().unwrap();
        let poller = SlurmPoller::new(SlurmClient::new(fake_sinfo(dir.path())), Duration::from_secs(5));
        let r = poller
            .wait_for(
                "n1",
                Deadline::after(Duration::from_millis(500)),
                NodeStatus::drained,
            )
            .await;
        assert_eq!(r, Err("Slurm shows n1 draining (drover: draining)".to_string()));
        let r = poller
            .wait_for(
                "n9",
                Deadline::after(Duration::from_millis(300)),
                NodeStatus::drained,
            )
            .await;
        assert!(r.is_err());
    }

    async fn futures_join<F>(fs: impl Iterator<Item = F>) -> Vec<F::Output>
    where
        F: std::future::Future + Send + 'static,
        F::Output: Send + 'static,
    {
        let handles: Vec<_> = fs.map(tokio::spawn).collect();
        let mut out = Vec::new();
        for h in handles {
            out.push(h.await.unwrap());
        }
        out
    }
}
