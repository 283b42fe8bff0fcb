//! `drover serve` following a git repository: a real repository made with git2 in a
//! temp dir is the remote, the nodes are real sshds (the testbed), the daemon runs in
//! process with a 1 s poll (and a fetch asked for after each commit, as a push webhook
//! would) and converge passes sent by hand.

#![expect(clippy::unwrap_used, reason = "test fixtures: a failure is the test failing")]

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use drover::daemon::{Action, ConvergeClock, Daemon, DaemonOptions};
use drover::store::{NodeState, RunRow, RunStatus, SourceVerdict, Store};
use drover_testbed::Testbed;

use crate::support::drover_bin;

/// The site's remote: a repository with a work tree, committed to with git2 as a
/// user's git would.
pub(crate) struct Remote {
    pub(crate) dir: tempfile::TempDir,
    repo: git2::Repository,
}

impl Remote {
    pub(crate) fn new() -> Remote {
        let dir = tempfile::tempdir().unwrap();
        let repo = git2::Repository::init(dir.path()).unwrap();
        repo.set_head("refs/heads/main").unwrap();
        Remote { dir, repo }
    }

    /// Writes the files and commits them on `main`: the new commit's sha.
    pub(crate) fn commit(&self, files: &[(&str, &str)], message: &str) -> String {
        self.commit_with(files, message, None)
    }

    /// Commits signed with the private key `key` as git does with `gpg.format=ssh`:
    /// the commit object signed by `ssh-keygen -Y sign -n git`, the armored signature in
    /// its `gpgsig` header.
    fn commit_signed(&self, files: &[(&str, &str)], message: &str, key: &Path) -> String {
        self.commit_with(files, message, Some(key))
    }

    fn commit_with(&self, files: &[(&str, &str)], message: &str, key: Option<&Path>) -> String {
        for (rel, text) in files {
            let p = self.dir.path().join(rel);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, text).unwrap();
        }
        let mut index = self.repo.index().unwrap();
        index.add_all(["*"], git2::IndexAddOption::DEFAULT, None).unwrap();
        index.write().unwrap();
        let tree = self.repo.find_tree(index.write_tree().unwrap()).unwrap();
        let parents: Vec<git2::Commit<'_>> = self
            .repo
            .head()
            .ok()
            .and_then(|h| h.peel_to_commit().ok())
            .into_iter()
            .collect();
        let refs: Vec<&git2::Commit<'_>> = parents.iter().collect();
        let sig = git2::Signature::now("Ada Lovelace", "ada@example.com").unwrap();
        let Some(key) = key else {
            return self
                .repo
                .commit(Some("HEAD"), &sig, &sig, message, &tree, &refs)
                .unwrap()
                .to_string();
        };
        let buf = self
            .repo
            .commit_create_buffer(&sig, &sig, message, &tree, &refs)
            .unwrap();
        let content = std::str::from_utf8(&buf).unwrap().to_string();
        let signature = ssh_sign(key, content.as_bytes());
        let oid = self.repo.commit_signed(&content, &signature, None).unwrap();
        self.repo
            .reference("refs/heads/main", oid, true, "signed commit")
            .unwrap();
        oid.to_string()
    }

    /// Rewrites `main` back to `sha` (then a commit on top is a force-push).
    fn reset_to(&self, sha: &str) {
        let obj = self
            .repo
            .find_object(git2::Oid::from_str(sha).unwrap(), None)
            .unwrap();
        self.repo.reset(&obj, git2::ResetType::Hard, None).unwrap();
    }
}

/// `ssh-keygen -Y sign -n git` over `data`: the armored signature.
fn ssh_sign(key: &Path, data: &[u8]) -> String {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("commit");
    std::fs::write(&file, data).unwrap();
    let out = std::process::Command::new("ssh-keygen")
        .args(["-q", "-Y", "sign", "-n", "git", "-f"])
        .arg(key)
        .arg(&file)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    std::fs::read_to_string(file.with_extension("sig")).unwrap()
}

/// A new ed25519 key pair made with ssh-keygen: (private key path, public key line).
fn ssh_keygen(dir: &Path, name: &str) -> (PathBuf, String) {
    let key = dir.join(name);
    let out = std::process::Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-C", name, "-f"])
        .arg(&key)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let public = std::fs::read_to_string(key.with_extension("pub")).unwrap();
    (key, public.trim().to_string())
}

/// The read token the daemons of these tests accept (`server.tokens`, from a file).
const TOKEN: &str = "daemon-git-test-token";

/// Real sshd nodes, a remote holding the site, and the daemon's local site (only the
/// `git:` settings matter; its inventory is the same, for `drover nodes` and `pause`).
struct GitBed {
    tb: Testbed,
    remote: Remote,
    local: tempfile::TempDir,
    /// Where the workflow's gates (`go-NODE`) and marks (`started-NODE-TAG`) live.
    ctl: tempfile::TempDir,
    _tmp: tempfile::TempDir,
}

/// How the test workflow behaves: its tag (the content a commit changes) and whether
/// each node waits for `go-NODE` in the control directory before its change.
#[derive(Clone, Copy)]
struct Mark<'a> {
    tag: &'a str,
    gated: bool,
}

impl GitBed {
    fn start(nodes: usize) -> GitBed {
        GitBed::start_with(nodes, "")
    }

    /// `git_extra`: more `git:` settings of the daemon's local site (`, key: value`).
    fn start_with(nodes: usize, git_extra: &str) -> GitBed {
        let tmp = tempfile::tempdir().unwrap();
        let tb = Testbed::start(&tmp.path().join("tb"), nodes).unwrap();
        let bed = GitBed {
            tb,
            remote: Remote::new(),
            local: tempfile::tempdir().unwrap(),
            ctl: tempfile::tempdir().unwrap(),
            _tmp: tmp,
        };
        let all: Vec<usize> = (0..nodes).collect();
        std::fs::create_dir_all(bed.local.path().join("workflows")).unwrap();
        std::fs::write(
            bed.local.path().join("drover.yml"),
            format!(
                "inventory: inventory.yml\nworkflows: workflows\n{}\
                 git: {{ remote: {}, branch: main, poll_interval: 1s{git_extra} }}\n",
                bed.server_yml(),
                serde_json::json!(bed.remote.dir.path().display().to_string())
            ),
        )
        .unwrap();
        std::fs::write(bed.local.path().join("inventory.yml"), bed.inventory(&all)).unwrap();
        bed
    }

    fn site_yml(&self) -> String {
        format!(
            "inventory: inventory.yml\nworkflows: workflows\n\
             ssh: {{ config: {}, connect_timeout: 15s }}\n\
             leases: {{ ttl: 30s }}\npause: {{ poll_interval: 100ms }}\n{}\
             windows:\n  day:\n    timezone: Europe/Berlin\n    days: [mon-fri]\n    start: \"08:00\"\n    end: \"17:00\"\n",
            serde_json::json!(self.tb.ssh_config().display().to_string()),
            self.server_yml()
        )
    }

    /// `server:` with one read token ([`TOKEN`], in a file only its owner reads).
    fn server_yml(&self) -> String {
        let file = self._tmp.path().join("token");
        if !file.exists() {
            std::fs::write(&file, TOKEN).unwrap();
            std::fs::set_permissions(&file, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
        }
        format!(
            "server: {{ listen: \"127.0.0.1:0\", tokens: [{{ name: tests, role: read, token: {{ file: {} }} }}] }}\n",
            serde_json::json!(file.display().to_string())
        )
    }

    /// The testbed's nodes `which` (indices), every one in group `all`, the first the
    /// canary.
    fn inventory(&self, which: &[usize]) -> String {
        let mut s = String::from("nodes:\n");
        for &i in which {
            let n = &self.tb.nodes()[i];
            s.push_str(&format!(
                "  {}: {{ host: {}, port: {}, user: {}, vars: {{ state: {} }} }}\n",
                n.name,
                serde_json::json!(n.host),
                n.port,
                serde_json::json!(self.tb.user()),
                serde_json::json!(n.state_dir.display().to_string()),
            ));
        }
        s.push_str("groups:\n  all:\n");
        for &i in which {
            s.push_str(&format!("    - {}\n", self.tb.nodes()[i].name));
        }
        s.push_str(&format!("canary: [{}]\n", self.tb.nodes()[0].name));
        s
    }

    fn workflow(&self, version: u32, m: Mark<'_>) -> String {
        let ctl = self.ctl.path().display().to_string();
        let gate = if m.gated {
            // `abort-TAG` ends a gate left waiting by a daemon killed with -9 (as a
            // node's command dies with its controller's machine), so it cannot finish
            // behind the next daemon's back.
            format!(
                "touch {ctl}/started-$DROVER_NODE-{tag}; until [ -e {ctl}/go-$DROVER_NODE ]; do \
                 if [ -e {ctl}/abort-{tag} ]; then rm -f {ctl}/started-$DROVER_NODE-{tag}; exit 1; fi; sleep 0.05; done; ",
                tag = m.tag
            )
        } else {
            String::new()
        };
        // Every node notes what the canary had when it ran: canary first, then the bulk.
        let canary = self.tb.nodes()[0].state_dir.display().to_string();
        format!(
            "name: mark\nversion: {version}\ntargets: {{ nodes: [\"@all\"] }}\nstrategy: {{ batch: 1 }}\n\
             steps:\n  - name: mark\n\
             \x20   run: \"{gate}cat {canary}/mark >> {{{{ node.vars.state }}}}/saw 2>/dev/null; echo {tag} >> {{{{ node.vars.state }}}}/ran && echo {tag} > {{{{ node.vars.state }}}}/mark\"\n\
             \x20   check: \"test \\\"$(cat {{{{ node.vars.state }}}}/mark 2>/dev/null)\\\" = {tag}\"\n    change: hot\n",
            tag = m.tag
        )
    }

    /// The first commit: the whole site, every node.
    fn commit_site(&self, version: u32, m: Mark<'_>) -> String {
        let all: Vec<usize> = (0..self.tb.nodes().len()).collect();
        self.commit_site_of(&all, version, m)
    }

    fn commit_site_of(&self, nodes: &[usize], version: u32, m: Mark<'_>) -> String {
        self.remote.commit(
            &[
                ("drover.yml", &self.site_yml()),
                ("inventory.yml", &self.inventory(nodes)),
                ("workflows/mark.yml", &self.workflow(version, m)),
            ],
            &format!("mark {}", m.tag),
        )
    }

    fn commit_workflow(&self, version: u32, m: Mark<'_>) -> String {
        self.remote.commit(
            &[("workflows/mark.yml", &self.workflow(version, m))],
            &format!("mark {}", m.tag),
        )
    }

    fn commit_inventory(&self, nodes: &[usize], message: &str) -> String {
        self.remote
            .commit(&[("inventory.yml", &self.inventory(nodes))], message)
    }

    fn options(&self) -> DaemonOptions {
        let mut o = DaemonOptions::new(self.local.path().to_path_buf());
        o.listen = Some("127.0.0.1:0".parse().unwrap());
        o.converge = ConvergeClock::Manual;
        o.shutdown_deadline = Duration::from_secs(20);
        o
    }

    fn store(&self) -> Store {
        Store::open_read_only(&self.local.path().join(".drover/drover.db")).unwrap()
    }

    fn runs(&self) -> Vec<RunRow> {
        Store::open_read_only(&self.local.path().join(".drover/drover.db"))
            .and_then(|s| s.runs())
            .unwrap_or_default()
    }

    /// The run triggered by commit `sha`, if any.
    fn run_of(&self, sha: &str) -> Option<RunRow> {
        self.runs().into_iter().find(|r| r.commit.as_deref() == Some(sha))
    }

    fn node_state(&self, i: usize) -> PathBuf {
        self.tb.nodes()[i].state_dir.clone()
    }

    /// The tags node `i` ran, in order.
    fn ran(&self, i: usize) -> Vec<String> {
        lines(&self.node_state(i).join("ran"))
    }

    fn go(&self, i: usize) {
        let name = &self.tb.nodes()[i].name;
        std::fs::write(self.ctl.path().join(format!("go-{name}")), "").unwrap();
    }

    fn started(&self, i: usize, tag: &str) -> bool {
        let name = &self.tb.nodes()[i].name;
        self.ctl.path().join(format!("started-{name}-{tag}")).exists()
    }

    /// A real `drover serve` process on the local site, its log in `log`.
    fn serve(&self, log: &str) -> Serve {
        self.serve_with(log, &[])
    }

    fn serve_with(&self, log: &str, env: &[(&str, &Path)]) -> Serve {
        let path = self._tmp.path().join(log);
        let err = std::fs::File::create(&path).unwrap();
        let child = std::process::Command::new(drover_bin())
            .args(["serve", "--site"])
            .arg(self.local.path())
            .args(["--listen", "127.0.0.1:0", "--shutdown-deadline", "20s"])
            .env("NO_COLOR", "1")
            .envs(env.iter().copied())
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(err)
            .spawn()
            .unwrap();
        Serve { child, log: path }
    }

    fn drover(&self, args: &[&str]) -> std::process::Output {
        std::process::Command::new(drover_bin())
            .args(args)
            .arg("--site")
            .arg(self.local.path())
            .env("NO_COLOR", "1")
            .output()
            .unwrap()
    }
}

/// A `drover serve` process, killed if the test ends without stopping it.
struct Serve {
    child: std::process::Child,
    log: PathBuf,
}

impl Serve {
    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// [`until`], with the daemon's log in the failure.
    async fn until(&self, what: &str, mut done: impl FnMut() -> bool) {
        let t = Instant::now();
        while !done() {
            assert!(
                t.elapsed() < LIMIT,
                "timed out waiting for {what}\n{}",
                self.log()
            );
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    /// `GET /api/v1/status` of this daemon (its address from its log).
    async fn status(&self) -> serde_json::Value {
        let mut addr = None;
        until(LIMIT, "the daemon listening", || {
            addr = self.log().lines().find_map(|l| {
                l.split("drover serve: listening addr=")
                    .nth(1)
                    .map(|a| a.trim().to_string())
            });
            addr.is_some()
        })
        .await;
        let r = reqwest::Client::new()
            .get(format!("http://{}/api/v1/status", addr.unwrap()))
            .bearer_auth(TOKEN)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        r.json().await.unwrap()
    }

    fn signal(&mut self, sig: rustix::process::Signal) -> std::process::ExitStatus {
        let pid = rustix::process::Pid::from_raw(i32::try_from(self.child.id()).unwrap()).unwrap();
        rustix::process::kill_process(pid, sig).unwrap();
        let t = Instant::now();
        loop {
            if let Some(s) = self.child.try_wait().unwrap() {
                return s;
            }
            assert!(t.elapsed() < LIMIT, "the daemon did not stop\n{}", self.log());
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        if self.child.try_wait().ok().flatten().is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

fn lines(p: &Path) -> Vec<String> {
    std::fs::read_to_string(p)
        .unwrap_or_default()
        .lines()
        .map(String::from)
        .collect()
}

/// Waits (polling, at most `limit`) until `done` holds.
async fn until(limit: Duration, what: &str, mut done: impl FnMut() -> bool) {
    let t = Instant::now();
    while !done() {
        assert!(t.elapsed() < limit, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

const LIMIT: Duration = Duration::from_secs(20);

fn succeeded(bed: &GitBed, sha: &str) -> bool {
    bed.run_of(sha).is_some_and(|r| r.status == RunStatus::Succeeded)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_commit_changing_a_workflow_rolls_out_canary_then_bulk_and_every_node_records_its_sha() {
    let bed = GitBed::start(3);
    let v1 = Mark {
        tag: "v1",
        gated: false,
    };
    let c1 = bed.commit_site(1, v1);
    let d = Daemon::start(bed.options()).await.unwrap();
    until(LIMIT, "the first commit's rollout", || succeeded(&bed, &c1)).await;

    let v2 = Mark {
        tag: "v2",
        gated: false,
    };
    let c2 = bed.commit_workflow(2, v2);
    d.fetch_trigger().unwrap().fetch_now();
    until(LIMIT, "the second commit's rollout", || succeeded(&bed, &c2)).await;
    // An inventory-only commit starts no rollout (and is the site in force).
    let c3 = bed.commit_inventory(&[0, 1, 2], "inventory: same nodes, new commit");
    d.fetch_trigger().unwrap().fetch_now();
    until(LIMIT, "the inventory commit accepted", || {
        bed.store()
            .source_commit(&c3)
            .unwrap()
            .is_some_and(|c| c.verdict == SourceVerdict::Accepted)
    })
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    d.shutdown().await.unwrap();

    let store = bed.store();
    let runs = store.runs().unwrap();
    assert_eq!(runs.len(), 2, "an inventory-only commit runs nothing: {runs:?}");
    for (sha, tag, version) in [(&c1, "v1", 1), (&c2, "v2", 2)] {
        let run = bed.run_of(sha).unwrap();
        assert_eq!(run.version, version);
        assert_eq!(
            store.trigger(&run.id).unwrap().unwrap(),
            serde_json::json!({"kind": "git_commit", "sha": sha, "author": "Ada Lovelace <ada@example.com>", "subject": format!("mark {tag}")})
        );
        // Every node completed by the run of this (workflow, version, sha).
        let nodes = store.nodes(&run.id).unwrap();
        assert_eq!(nodes.len(), 3);
        assert!(nodes.iter().all(|n| n.state == NodeState::Succeeded), "{nodes:?}");
        assert_eq!(nodes[0].phase, 0, "node001 is the canary phase");
        assert!(nodes[1..].iter().all(|n| n.phase > 0));
    }
    for i in 0..3 {
        assert_eq!(bed.ran(i), ["v1", "v2"], "node {i}");
    }
    // The bulk ran after the canary had its change, each time.
    for i in 1..3 {
        assert_eq!(lines(&bed.node_state(i).join("saw")), ["v1", "v2"], "node {i}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_invalid_commit_runs_nothing_and_is_reported_then_the_next_good_one_runs() {
    let bed = GitBed::start(2);
    let c1 = bed.commit_site(
        1,
        Mark {
            tag: "v1",
            gated: false,
        },
    );
    let d = Daemon::start(bed.options()).await.unwrap();
    until(LIMIT, "the first rollout", || succeeded(&bed, &c1)).await;

    // A typo in the workflow and a node missing from the inventory's canary list.
    let bad = bed.remote.commit(
        &[(
            "workflows/mark.yml",
            &bed.workflow(
                2,
                Mark {
                    tag: "v2",
                    gated: false,
                },
            )
            .replace("strategy:", "stratgy:"),
        )],
        "typo",
    );
    d.fetch_trigger().unwrap().fetch_now();
    until(LIMIT, "the bad commit's verdict", || {
        bed.store().source_commit(&bad).unwrap().is_some()
    })
    .await;
    let verdict = bed.store().source_commit(&bad).unwrap().unwrap();
    assert_eq!(verdict.verdict, SourceVerdict::Rejected);
    assert!(
        verdict.detail.contains("unknown key `stratgy`") && verdict.detail.contains("workflows/mark.yml:4:1"),
        "{}",
        verdict.detail
    );
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(bed.runs().len(), 1, "nothing of the bad commit runs");
    assert_eq!(bed.ran(1), ["v1"]);

    let good = bed.commit_workflow(
        3,
        Mark {
            tag: "v3",
            gated: false,
        },
    );
    d.fetch_trigger().unwrap().fetch_now();
    until(LIMIT, "the good commit's rollout", || succeeded(&bed, &good)).await;
    d.shutdown().await.unwrap();
    assert_eq!(bed.ran(0), ["v1", "v3"]);
    assert_eq!(bed.ran(1), ["v1", "v3"]);
    assert_eq!(bed.runs().len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_newer_commit_supersedes_a_canary_and_queues_behind_a_bulk() {
    let bed = GitBed::start(3);
    let c1 = bed.commit_site(
        1,
        Mark {
            tag: "v1",
            gated: true,
        },
    );
    let d = Daemon::start(bed.options()).await.unwrap();
    until(LIMIT, "the canary at v1", || bed.started(0, "v1")).await;

    // During the canary: v2 supersedes it. The canary node in flight finishes its cycle.
    let c2 = bed.commit_workflow(
        2,
        Mark {
            tag: "v2",
            gated: true,
        },
    );
    d.fetch_trigger().unwrap().fetch_now();
    until(LIMIT, "c2 accepted", || {
        bed.store().source_commit(&c2).unwrap().is_some()
    })
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    bed.go(0);
    until(LIMIT, "the first run closed", || {
        bed.run_of(&c1).is_some_and(|r| r.status == RunStatus::Cancelled)
    })
    .await;
    let r1 = bed.run_of(&c1).unwrap();
    assert_eq!(r1.outcome.as_ref().unwrap()["outcome"], "superseded");
    assert_eq!(r1.outcome.as_ref().unwrap()["by"], c2.as_str());
    let nodes = bed.store().nodes(&r1.id).unwrap();
    assert_eq!(
        nodes[0].state,
        NodeState::Succeeded,
        "the canary in flight finished"
    );
    for n in &nodes[1..] {
        assert_eq!(n.state, NodeState::Skipped, "{n:?}");
        assert!(
            n.reason.as_deref().unwrap().starts_with("not started: run ")
                && n.reason.as_deref().unwrap().contains("was superseded by commit"),
            "{n:?}"
        );
    }

    // The canary restarts at v2 (node001 passes at once: its gate is open), then the
    // bulk: node002 waits at its gate. v3 arrives now: it queues.
    until(LIMIT, "the bulk at v2", || bed.started(1, "v2")).await;
    let c3 = bed.commit_workflow(
        3,
        Mark {
            tag: "v3",
            gated: true,
        },
    );
    d.fetch_trigger().unwrap().fetch_now();
    until(LIMIT, "c3 accepted", || {
        bed.store().source_commit(&c3).unwrap().is_some()
    })
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    bed.go(1);
    bed.go(2);
    until(LIMIT, "v2 finished", || succeeded(&bed, &c2)).await;
    until(LIMIT, "then v3", || succeeded(&bed, &c3)).await;
    d.shutdown().await.unwrap();

    assert_eq!(bed.ran(0), ["v1", "v2", "v3"]);
    for i in 1..3 {
        assert_eq!(bed.ran(i), ["v2", "v3"], "node {i}: never v1, and v2 finished");
    }
    assert_eq!(bed.runs().len(), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_live_inventory_skips_a_removed_node_and_converge_brings_up_an_added_one() {
    let bed = GitBed::start(3);
    let c1 = bed.commit_site(
        1,
        Mark {
            tag: "v1",
            gated: true,
        },
    );
    bed.go(0);
    let d = Daemon::start(bed.options()).await.unwrap();
    until(LIMIT, "node002 in flight", || bed.started(1, "v1")).await;
    // node003 leaves the inventory while node002 runs: it is not started.
    let c2 = bed.commit_inventory(&[0, 1], "node003 retired");
    d.fetch_trigger().unwrap().fetch_now();
    until(LIMIT, "c2 accepted", || {
        bed.store().source_commit(&c2).unwrap().is_some()
    })
    .await;
    // The run reads the inventory in force at its next look (every 100 ms).
    tokio::time::sleep(Duration::from_millis(400)).await;
    bed.go(1);
    bed.go(2);
    until(LIMIT, "the first run's end", || {
        bed.run_of(&c1).is_some_and(|r| r.finished_at.is_some())
    })
    .await;
    let r1 = bed.run_of(&c1).unwrap();
    let n3 = &bed.store().nodes(&r1.id).unwrap()[2];
    assert_eq!(n3.state, NodeState::Skipped);
    assert_eq!(n3.reason.as_deref(), Some("removed from the inventory"));
    assert!(bed.ran(2).is_empty(), "node003 untouched");

    // It comes back (an inventory-only commit: no rollout); the next converge pass
    // brings it to the workflow's version, and only it.
    let c3 = bed.commit_inventory(&[0, 1, 2], "node003 back");
    d.fetch_trigger().unwrap().fetch_now();
    until(LIMIT, "c3 accepted", || {
        bed.store().source_commit(&c3).unwrap().is_some()
    })
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(bed.runs().len(), 1, "an inventory-only commit starts no rollout");
    d.actions()
        .send(Action::Converge {
            workflow: "mark".into(),
        })
        .unwrap();
    until(LIMIT, "the converge pass", || {
        let runs = bed.runs();
        runs.len() == 2 && runs[0].status == RunStatus::Succeeded
    })
    .await;
    d.shutdown().await.unwrap();
    let pass = &bed.runs()[0];
    assert_eq!(
        bed.store().trigger(&pass.id).unwrap(),
        Some(serde_json::json!({"kind": "converge"}))
    );
    assert_eq!(pass.counts.succeeded, 1, "only node003 needed it");
    assert_eq!(bed.ran(2), ["v1"]);
    assert_eq!(bed.ran(0), ["v1"]);
    assert_eq!(bed.ran(1), ["v1"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_global_pause_holds_across_a_restart_and_a_node_in_maintenance_is_never_touched() {
    let bed = GitBed::start(3);
    let out = bed.drover(&["pause", "--reason", "fixing the playbook"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let out = bed.drover(&["nodes", "maintenance", "on", "node003", "--reason", "bad DIMM"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let c1 = bed.commit_site(
        1,
        Mark {
            tag: "v1",
            gated: false,
        },
    );

    let d = Daemon::start(bed.options()).await.unwrap();
    until(LIMIT, "the rollout recorded", || bed.run_of(&c1).is_some()).await;
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert!(bed.ran(0).is_empty(), "paused: not even the canary starts");
    d.shutdown().await.unwrap();
    assert_eq!(bed.run_of(&c1).unwrap().status, RunStatus::Interrupted);

    // A new daemon resumes the run, and the pause still holds.
    let d = Daemon::start(bed.options()).await.unwrap();
    // Under load the resume can take longer than any fixed sleep: wait for it, then give
    // the paused run the same 800 ms in which it must start nothing.
    until(LIMIT, "the interrupted run resumed", || {
        bed.run_of(&c1).unwrap().status == RunStatus::Running
    })
    .await;
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert_eq!(bed.run_of(&c1).unwrap().status, RunStatus::Running);
    assert!(bed.ran(0).is_empty(), "the pause survived the restart");
    let out = bed.drover(&["unpause"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    until(LIMIT, "the rollout once unpaused", || succeeded(&bed, &c1)).await;
    // A converge pass leaves the node in maintenance alone too.
    d.actions()
        .send(Action::Converge {
            workflow: "mark".into(),
        })
        .unwrap();
    tokio::time::sleep(Duration::from_millis(800)).await;
    d.shutdown().await.unwrap();
    assert_eq!(bed.ran(0), ["v1"]);
    assert_eq!(bed.ran(1), ["v1"]);
    assert!(
        !bed.node_state(2).join("ran").exists() && !bed.node_state(2).join("saw").exists(),
        "node003 in maintenance was never touched"
    );
    assert_eq!(bed.runs().len(), 1, "the converge pass found nothing to do");
}

/// The restart gap: a version queued behind a bulk when the daemon is killed with -9
/// is queued again by the next daemon, which first finishes the run it resumes (with
/// that run's own commit's site, though a newer commit is in force), then rolls the
/// queued version out, canary first, with its commit's sha. Nothing runs twice.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_version_queued_behind_a_bulk_rolls_out_after_a_kill_9_and_a_restart() {
    let bed = GitBed::start(3);
    let c1 = bed.commit_site(
        1,
        Mark {
            tag: "v1",
            gated: true,
        },
    );
    bed.go(0);
    let mut first = bed.serve("serve1.log");
    until(LIMIT, "the bulk at v1 (node002 in flight)", || {
        bed.started(1, "v1")
    })
    .await;
    let r1 = bed.run_of(&c1).unwrap();

    // v2 arrives during the bulk: it queues.
    let c2 = bed.commit_workflow(
        2,
        Mark {
            tag: "v2",
            gated: false,
        },
    );
    until(LIMIT, "c2 accepted", || {
        bed.store()
            .source_commit(&c2)
            .unwrap()
            .is_some_and(|c| c.verdict == SourceVerdict::Accepted)
    })
    .await;
    until(LIMIT, "c2 queued", || {
        first
            .log()
            .contains("queued: the rollout under way is past its canary")
    })
    .await;
    // A pause keeps node003 from starting, so no node is in flight at the kill.
    let out = bed.drover(&["pause", "--reason", "restart test"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    tokio::time::sleep(Duration::from_millis(500)).await;
    bed.go(1);
    until(LIMIT, "node002 done", || {
        bed.store().nodes(&r1.id).unwrap()[1].state == NodeState::Succeeded
    })
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    first.signal(rustix::process::Signal::KILL);
    assert!(!bed.started(2, "v1"), "paused: node003 was not started");
    assert_eq!(
        bed.run_of(&c1).unwrap().status,
        RunStatus::Running,
        "left by the killed daemon"
    );
    assert!(bed.run_of(&c2).is_none(), "c2 only queued");

    // The next daemon resumes v1 (the pause still holds), with v2 queued behind it.
    let mut second = bed.serve("serve2.log");
    until(LIMIT, "the v1 run resumed", || {
        second.log().contains("resuming a run left unfinished")
    })
    .await;
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert!(
        bed.run_of(&c2).is_none(),
        "v2 waits for the resumed v1 run\n{}",
        second.log()
    );
    assert!(bed.ran(2).is_empty(), "the pause holds across the restart");
    assert!(
        second
            .log()
            .contains("accepted before the restart and not rolled out yet: queued again"),
        "{}",
        second.log()
    );
    let out = bed.drover(&["unpause"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    bed.go(2);
    until(LIMIT, "v1 finished", || succeeded(&bed, &c1)).await;
    until(LIMIT, "then v2", || succeeded(&bed, &c2)).await;
    // Nothing more comes of it: no third run.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert!(
        second.signal(rustix::process::Signal::TERM).success(),
        "{}",
        second.log()
    );

    let runs = bed.runs();
    assert_eq!(runs.len(), 2, "{runs:?}");
    assert_eq!(bed.run_of(&c1).unwrap().id, r1.id, "v1 finished in its own run");
    let store = bed.store();
    let r2 = bed.run_of(&c2).unwrap();
    assert_eq!(r2.version, 2);
    assert_eq!(store.trigger(&r2.id).unwrap().unwrap()["sha"], c2.as_str());
    let nodes = store.nodes(&r2.id).unwrap();
    assert!(nodes.iter().all(|n| n.state == NodeState::Succeeded), "{nodes:?}");
    assert_eq!(nodes[0].phase, 0, "v2 began with its canary");
    for i in 0..3 {
        assert_eq!(bed.ran(i), ["v1", "v2"], "node {i}: each version once");
    }
    for i in 1..3 {
        assert_eq!(
            lines(&bed.node_state(i).join("saw")),
            ["v1", "v2"],
            "node {i}: after the canary"
        );
    }
}

/// The other waiting state: a canary superseded by a newer commit, the daemon killed
/// with -9 while the canary's node finishes. The next daemon supersedes the resumed
/// canary again, closes it, and rolls the newer version; the old one never reaches the
/// bulk.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_canary_superseded_before_a_kill_9_is_replaced_by_the_newer_version_after_the_restart() {
    let bed = GitBed::start(3);
    let c1 = bed.commit_site(
        1,
        Mark {
            tag: "v1",
            gated: true,
        },
    );
    let mut first = bed.serve("serve1.log");
    until(LIMIT, "the canary at v1", || bed.started(0, "v1")).await;
    let c2 = bed.commit_workflow(
        2,
        Mark {
            tag: "v2",
            gated: false,
        },
    );
    until(LIMIT, "the canary superseded", || {
        first.log().contains("superseded: a newer commit")
    })
    .await;
    first.signal(rustix::process::Signal::KILL);
    // The killed daemon's gate dies with it.
    std::fs::write(bed.ctl.path().join("abort-v1"), "").unwrap();
    until(LIMIT, "the orphaned gate gone", || !bed.started(0, "v1")).await;
    std::fs::remove_file(bed.ctl.path().join("abort-v1")).unwrap();
    assert!(bed.run_of(&c2).is_none());

    let mut second = bed.serve("serve2.log");
    until(LIMIT, "the v1 run resumed", || {
        second.log().contains("resuming a run left unfinished")
    })
    .await;
    // Its canary node, started again or not, may finish its cycle; the run stops there.
    bed.go(0);
    bed.go(1);
    bed.go(2);
    let closed = tokio::time::timeout(
        LIMIT,
        until(LIMIT * 2, "the resumed v1 run closed", || {
            bed.run_of(&c1).is_some_and(|r| r.status == RunStatus::Cancelled)
        }),
    )
    .await;
    assert!(closed.is_ok(), "{:?}\n{}", bed.run_of(&c1), second.log());
    until(LIMIT, "v2 rolled out", || succeeded(&bed, &c2)).await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert!(
        second.signal(rustix::process::Signal::TERM).success(),
        "{}",
        second.log()
    );

    let r1 = bed.run_of(&c1).unwrap();
    assert_eq!(r1.outcome.as_ref().unwrap()["outcome"], "superseded", "{r1:?}");
    assert_eq!(r1.outcome.as_ref().unwrap()["by"], c2.as_str());
    assert_eq!(bed.runs().len(), 2, "{:?}", bed.runs());
    assert_eq!(bed.ran(0).last().map(String::as_str), Some("v2"));
    for i in 1..3 {
        assert_eq!(bed.ran(i), ["v2"], "node {i}: never v1, v2 once");
    }
}

/// `git.require_signed` through the running daemon: an unsigned commit and one signed
/// by a key that is not listed are refused (in `GET /status` with why, nothing runs, the
/// commit in force stays); a commit signed by a listed key rolls out.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_signatures_required_unsigned_and_unknown_key_commits_run_nothing_and_a_signed_one_rolls_out() {
    let keys = tempfile::tempdir().unwrap();
    let (alice, alice_pub) = ssh_keygen(keys.path(), "alice");
    let (mallory, _) = ssh_keygen(keys.path(), "mallory");
    let signers = keys.path().join("allowed_signers");
    std::fs::write(
        &signers,
        format!("alice@example.com namespaces=\"git\" {alice_pub}\n"),
    )
    .unwrap();
    let bed = GitBed::start_with(
        2,
        &format!(
            ", require_signed: {{ allowed_signers: {} }}",
            serde_json::json!(signers.display().to_string())
        ),
    );
    let v = |tag| Mark { tag, gated: false };
    let site = |version, tag| {
        [
            ("drover.yml", bed.site_yml()),
            ("inventory.yml", bed.inventory(&[0, 1])),
            ("workflows/mark.yml", bed.workflow(version, v(tag))),
        ]
    };
    let files = site(1, "v1");
    let files: Vec<(&str, &str)> = files.iter().map(|(p, t)| (*p, t.as_str())).collect();
    let c1 = bed.remote.commit_signed(&files, "mark v1", &alice);
    let mut d = bed.serve("serve.log");
    d.until("alice's first commit rolled out", || succeeded(&bed, &c1))
        .await;

    let unsigned = bed.commit_workflow(2, v("v2"));
    d.until("the unsigned commit's verdict", || {
        bed.store().source_commit(&unsigned).unwrap().is_some()
    })
    .await;
    let wf = bed.workflow(3, v("v3"));
    let by_mallory = bed
        .remote
        .commit_signed(&[("workflows/mark.yml", &wf)], "mark v3", &mallory);
    d.until("mallory's commit's verdict", || {
        bed.store().source_commit(&by_mallory).unwrap().is_some()
    })
    .await;
    let status = d.status().await;
    assert_eq!(
        status["commit"],
        c1.as_str(),
        "the commit in force stays: {status}"
    );
    let rejected: Vec<(String, String)> = status["rejected_commits"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["sha"].as_str().unwrap().to_string(),
                c["detail"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(rejected.len(), 2, "{status}");
    assert_eq!(rejected[0].0, by_mallory);
    assert!(
        rejected[0].1.contains("is not in the allowed signers"),
        "{}",
        rejected[0].1
    );
    assert_eq!(rejected[1].0, unsigned);
    assert!(
        rejected[1].1.contains("the commit is not signed"),
        "{}",
        rejected[1].1
    );
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(bed.runs().len(), 1, "nothing of a refused commit runs");
    assert_eq!(bed.ran(0), ["v1"]);

    let wf = bed.workflow(4, v("v4"));
    let by_alice = bed
        .remote
        .commit_signed(&[("workflows/mark.yml", &wf)], "mark v4", &alice);
    d.until("alice's signed commit rolled out", || succeeded(&bed, &by_alice))
        .await;
    assert!(d.signal(rustix::process::Signal::TERM).success());
    for i in 0..2 {
        assert_eq!(bed.ran(i), ["v1", "v4"], "node {i}");
    }
    assert!(d.log().contains("signed=true"), "{}", d.log());
}

/// A force-push through the running daemon: the rewritten branch is reported and not
/// followed; the commit in force stays and nothing runs, on this poll or the next.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_force_push_is_reported_and_not_followed_and_nothing_of_it_runs() {
    let bed = GitBed::start(2);
    let v = |tag| Mark { tag, gated: false };
    let c1 = bed.commit_site(1, v("v1"));
    let mut d = bed.serve("serve.log");
    d.until("c1 rolled out", || succeeded(&bed, &c1)).await;
    let c2 = bed.commit_workflow(2, v("v2"));
    d.until("c2 rolled out", || succeeded(&bed, &c2)).await;

    // History rewritten: main goes back to c1 and gets another v2.
    bed.remote.reset_to(&c1);
    let forced = bed.commit_workflow(3, v("forced"));
    d.until("the rewrite reported", || {
        d.log()
            .contains("the branch was rewritten (a force-push): not followed")
    })
    .await;
    // Two more polls: reported once, still not followed.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let status = d.status().await;
    assert!(d.signal(rustix::process::Signal::TERM).success());
    let log = d.log();
    assert_eq!(log.matches("the branch was rewritten").count(), 1, "{log}");
    assert!(
        log.contains(&c2[..12]) || log.contains(&c2),
        "names the commit it left: {log}"
    );
    assert_eq!(status["commit"], c2.as_str(), "{status}");
    assert_eq!(status["last_seen_commit"], c2.as_str(), "{status}");
    assert!(bed.store().source_commit(&forced).unwrap().is_none());
    assert_eq!(bed.runs().len(), 2);
    for i in 0..2 {
        assert_eq!(bed.ran(i), ["v1", "v2"], "node {i}");
    }
}

/// Outside its window a daemon's rollout starts nothing: the run waits, visibly (the log
/// and the outbox say for which window and when it opens; `GET /status` has the window
/// closed with that time), and carries on once the window opens. Time is the daemon's
/// test clock (`DROVER_TEST_CLOCK`), moved by the test.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outside_its_window_a_commits_rollout_starts_nothing_and_goes_when_the_window_opens() {
    let bed = GitBed::start(2);
    let clock = bed._tmp.path().join("clock");
    // Saturday 11:00 in Berlin: the window `day` (Mon-Fri 08-17) is closed.
    std::fs::write(&clock, "2026-12-05T10:00:00Z").unwrap();
    let wf = bed
        .workflow(
            1,
            Mark {
                tag: "v1",
                gated: false,
            },
        )
        .replace("strategy:", "window: day\nstrategy:");
    let c1 = bed.remote.commit(
        &[
            ("drover.yml", &bed.site_yml()),
            ("inventory.yml", &bed.inventory(&[0, 1])),
            ("workflows/mark.yml", &wf),
        ],
        "mark v1 in the day window",
    );
    let mut d = bed.serve_with("serve.log", &[("DROVER_TEST_CLOCK", &clock)]);
    d.until("the run waiting for its window", || {
        d.log()
            .contains("waiting for window day, opens Mon 2026-12-07 08:00 Europe/Berlin")
    })
    .await;
    tokio::time::sleep(Duration::from_millis(800)).await;
    let run = bed.run_of(&c1).unwrap();
    assert_eq!(run.status, RunStatus::Running);
    assert!(
        bed.ran(0).is_empty() && bed.ran(1).is_empty(),
        "nothing started outside the window"
    );
    let status = d.status().await;
    let day = &status["windows"][0];
    assert_eq!(
        (day["name"].as_str(), day["open"].as_bool()),
        (Some("day"), Some(false)),
        "{status}"
    );
    assert_eq!(day["next_change"], "2026-12-07T07:00:00Z", "{status}");
    assert!(
        bed.store()
            .outbox()
            .unwrap()
            .iter()
            .any(|n| n.payload.to_string().contains("2026-12-07")),
        "the wait is notified"
    );

    // Monday 10:00 in Berlin.
    std::fs::write(&clock, "2026-12-07T09:00:00Z").unwrap();
    d.until("the rollout once the window opened", || succeeded(&bed, &c1))
        .await;
    assert!(d.signal(rustix::process::Signal::TERM).success());
    assert_eq!(bed.ran(0), ["v1"]);
    assert_eq!(bed.ran(1), ["v1"]);
    assert_eq!(bed.runs().len(), 1);
}
