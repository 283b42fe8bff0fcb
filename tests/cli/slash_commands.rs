//! Slack slash commands at `POST /hooks/slack` and the push webhook at `/hooks/git`,
//! against the daemon in process on 127.0.0.1:0: signed requests as Slack sends them,
//! and every kind of forged, stale, replayed or oversized one.

#![expect(clippy::unwrap_used, reason = "test fixtures: a failure is the test failing")]

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use drover::daemon::{ConvergeClock, Daemon, DaemonOptions};
use drover::hooks::slack_signature;
use drover::store::{RunStatus, Store};

use crate::support::*;

const SECRET: &str = "8f742231b10e8888abcd99yyyzzz85a5";

/// Five local nodes, n01 the canary; n04 and n05 an HA pair. U_OPS may mutate from
/// C_OPS on every node; U_LIMITED may only on n01-n03; U_OTHER is not listed.
fn site() -> Site {
    let site = Site::new();
    let _ = std::fs::remove_file(site.path().join("workflows/update.yml"));
    std::fs::create_dir_all(site.path().join("marks")).unwrap();
    let secret = site.path().join("slack-secret");
    std::fs::write(&secret, format!("{SECRET}\n")).unwrap();
    site.write(
        "drover.yml",
        &format!(
            "inventory: inventory.yml\nworkflows: workflows\ntransport: local\nleases: {{ ttl: 30s }}\n\
             slack:\n  signing_secret: {{ file: {} }}\n  allowed: {{ users: [U_OPS, U_LIMITED], channels: [C_OPS] }}\n\
             \x20 scopes: {{ U_LIMITED: [\"n[01-04]\"] }}\n\
             hooks:\n  git: {{ secret: {{ file: {} }} }}\n",
            secret.display(),
            secret.display()
        ),
    )
    .write(
        "inventory.yml",
        "nodes:\n  n[01-05]: {}\ngroups:\n  compute: [\"n[01-05]\"]\ncanary: [n01]\nha_groups:\n  pair: { members: [n04, n05] }\n",
    )
    .write(
        "workflows/mark.yml",
        "name: mark\nversion: 1\ntargets: { nodes: [\"@compute\"] }\nstrategy: { batch: 1 }\n\
         steps:\n  - name: mark\n\
         \x20   run: sleep 0.3 && touch {{ site.root }}/marks/$DROVER_NODE\n\
         \x20   check: test -e {{ site.root }}/marks/$DROVER_NODE\n    change: hot\n",
    )
}

async fn daemon(site: &Path) -> Daemon {
    daemon_answering_within(site, drover::daemon::SLACK_ANSWER_WITHIN).await
}

async fn daemon_answering_within(site: &Path, within: Duration) -> Daemon {
    let mut o = DaemonOptions::new(site.to_path_buf());
    o.listen = Some("127.0.0.1:0".parse().unwrap());
    o.converge = ConvergeClock::Manual;
    o.slack_answer_within = within;
    Daemon::start(o).await.unwrap()
}

fn form(user: &str, channel: &str, text: &str, nonce: u32) -> String {
    form_to(user, channel, text, nonce, "http://127.0.0.1:9/unused")
}

/// A command whose delayed answers go to `response_url`.
fn form_to(user: &str, channel: &str, text: &str, nonce: u32, response_url: &str) -> String {
    let mut f = form_urlencoded::Serializer::new(String::new());
    f.append_pair("token", "ignored")
        .append_pair("user_id", user)
        .append_pair("user_name", &user.to_lowercase())
        .append_pair("channel_id", channel)
        .append_pair("command", "/drover")
        .append_pair("text", text)
        .append_pair("response_url", response_url)
        .append_pair("trigger_id", &format!("trigger-{nonce}"));
    f.finish()
}

fn now() -> i64 {
    jiff::Timestamp::now().as_second()
}

/// Posts `body` to `/hooks/slack` with `headers` (name, value); status and body.
async fn post(d: &Daemon, body: &str, headers: &[(&str, String)]) -> (u16, String) {
    let c = reqwest::Client::new();
    let mut r = c
        .post(format!("http://{}/hooks/slack", d.addr))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(body.to_string());
    for (k, v) in headers {
        r = r.header(*k, v);
    }
    let r = r.send().await.unwrap();
    (r.status().as_u16(), r.text().await.unwrap())
}

fn signed(body: &str, ts: i64) -> Vec<(&'static str, String)> {
    let ts = ts.to_string();
    vec![
        (
            "x-slack-signature",
            slack_signature(SECRET.as_bytes(), &ts, body.as_bytes()),
        ),
        ("x-slack-request-timestamp", ts),
    ]
}

struct Slack<'a> {
    d: &'a Daemon,
    n: u32,
}

impl Slack<'_> {
    /// A validly signed command; the ephemeral answer's text.
    async fn say(&mut self, user: &str, channel: &str, text: &str) -> String {
        self.n += 1;
        let body = form(user, channel, text, self.n);
        let (status, answer) = post(self.d, &body, &signed(&body, now())).await;
        assert_eq!(status, 200, "{answer}");
        let v: serde_json::Value = serde_json::from_str(&answer).unwrap();
        assert_eq!(v["response_type"], "ephemeral");
        v["text"].as_str().unwrap().to_string()
    }
}

fn store(site: &Path) -> Store {
    Store::open_read_only(&site.join(".drover/drover.db")).unwrap()
}

async fn until(limit: Duration, what: &str, mut done: impl FnMut() -> bool) {
    let t = Instant::now();
    while !done() {
        assert!(t.elapsed() < limit, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_signed_command_works_and_an_unlisted_user_changes_nothing() {
    let site = site();
    let root = site.path();
    let d = daemon(root).await;
    let mut slack = Slack { d: &d, n: 0 };

    assert!(
        slack
            .say("U_OTHER", "C_ANY", "help")
            .await
            .contains("`run WORKFLOW")
    );
    let unknown = slack.say("U_OPS", "C_OPS", "frobnicate now").await;
    assert!(
        unknown.starts_with("unknown command `frobnicate`.\nCommands:"),
        "{unknown}"
    );
    assert_eq!(
        slack.say("U_OTHER", "C_ANY", "status").await,
        "No run in progress."
    );

    // Not allowed: nothing runs, nothing is paused.
    for cmd in ["pause lunch", "run mark", "abort r1", "maintenance on n01"] {
        let a = slack.say("U_OTHER", "C_OPS", cmd).await;
        assert!(
            a.starts_with("Sorry <@U_OTHER>, you are not allowed"),
            "{cmd}: {a}"
        );
        let a = slack.say("U_OPS", "C_ELSEWHERE", cmd).await;
        assert!(
            a.starts_with("Sorry <@U_OPS>, you are not allowed"),
            "{cmd} from another channel: {a}"
        );
    }
    assert!(store(root).pauses().unwrap().is_empty());
    assert!(store(root).runs().unwrap().is_empty());
    assert!(store(root).in_maintenance().unwrap().is_empty());

    // Pause and resume, by whom.
    assert_eq!(
        slack.say("U_OPS", "C_OPS", "pause fixing the playbook").await,
        "Paused: no new node starts in any run (fixing the playbook)."
    );
    let pauses = store(root).pauses().unwrap();
    assert_eq!(pauses[0].by, "slack:u_ops");
    assert!(
        slack
            .say("U_OPS", "C_OPS", "status")
            .await
            .contains("paused (all runs) by slack:u_ops")
    );
    assert_eq!(
        slack.say("U_OPS", "C_OPS", "resume").await,
        "Resumed: runs start nodes again."
    );
    assert!(store(root).pauses().unwrap().is_empty());

    // Maintenance within the scope; an HA group half outside it is refused whole.
    let a = slack.say("U_LIMITED", "C_OPS", "maintenance on n04 disk").await;
    assert!(a.starts_with("Sorry, you may not act on n04"), "{a}");
    assert_eq!(
        slack
            .say("U_LIMITED", "C_OPS", "maintenance on n[02-03] disk swap")
            .await,
        "In maintenance (automation off): n[02-03]."
    );
    assert!(
        slack
            .say("U_OPS", "C_OPS", "nodes n[02-04]")
            .await
            .contains("• n04: in service")
    );
    assert_eq!(
        slack.say("U_OPS", "C_OPS", "maintenance off n[02-03]").await,
        "Out of maintenance: n[02-03]."
    );
    assert!(slack.say("U_OPS", "C_OPS", "nodes n99").await.contains("n99"));

    // A limited user cannot run the whole workflow, and may run within the scope.
    let a = slack.say("U_LIMITED", "C_OPS", "run mark").await;
    assert!(a.starts_with("Sorry, you may not act on n04, n05"), "{a}");
    assert!(store(root).runs().unwrap().is_empty());
    let dry = slack.say("U_OPS", "C_OPS", "run mark --dry-run").await;
    assert!(
        dry.starts_with("Dry run of `mark`: canary n01; then 4 nodes in 4 batches: n[02-05]"),
        "{dry}"
    );
    assert!(
        store(root).runs().unwrap().is_empty(),
        "a dry run records nothing"
    );
    assert_eq!(std::fs::read_dir(root.join("marks")).unwrap().count(), 0);

    let started = slack.say("U_OPS", "C_OPS", "run mark --limit n[01-03]").await;
    assert!(started.starts_with("Started `mark`: run "), "{started}");
    let run = started
        .trim_start_matches("Started `mark`: run ")
        .split('.')
        .next()
        .unwrap()
        .to_string();
    let busy = slack.say("U_OPS", "C_OPS", "run mark").await;
    assert!(
        busy.starts_with(&format!("A rollout of `mark` is active (run {run})")),
        "{busy}"
    );
    let abort = slack.say("U_OPS", "C_OPS", &format!("abort {run}")).await;
    assert!(abort.starts_with(&format!("Stopping run {run}")), "{abort}");
    until(Duration::from_secs(30), "the run to end", || {
        store(root)
            .runs()
            .unwrap()
            .iter()
            .any(|r| r.id == run && r.status != RunStatus::Running)
    })
    .await;
    let r = store(root).run(&run).unwrap().unwrap();
    assert_ne!(
        r.run.status,
        RunStatus::Succeeded,
        "stopped before all three were done"
    );
    assert!(!root.join("marks/n04").exists(), "--limit kept n04 out");
    let trigger = store(root).trigger(&run).unwrap().unwrap();
    assert_eq!(trigger, serde_json::json!({"kind": "slack", "user": "U_OPS"}));
    d.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forged_stale_replayed_oversized_or_unsigned_requests_are_refused_and_run_nothing() {
    let site = site();
    let root = site.path();
    let d = daemon(root).await;
    let body = form("U_OPS", "C_OPS", "pause", 1);
    let ts = now();

    let mut wrong = signed(&body, ts);
    wrong[0].1 = slack_signature(b"not the secret", &ts.to_string(), body.as_bytes());
    assert_eq!(
        post(&d, &body, &wrong).await,
        (401, "the signature does not match\n".into())
    );
    let (code, text) = post(&d, &body, &signed(&body, ts - 301)).await;
    assert_eq!(code, 401, "{text}");
    assert!(text.contains("off the controller's clock"), "{text}");
    let (code, text) = post(&d, &body, &signed(&body, ts)[..1]).await;
    assert_eq!(
        (code, text.as_str()),
        (400, "missing header `x-slack-request-timestamp`\n")
    );
    let (code, _) = post(&d, &body, &signed(&body, ts)[1..]).await;
    assert_eq!(code, 400, "no signature header");
    let big = format!("{body}&pad={}", "x".repeat(64 * 1024));
    let (code, _) = post(&d, &big, &signed(&big, ts)).await;
    assert_eq!(code, 413, "over 64 KiB");
    assert!(store(root).pauses().unwrap().is_empty(), "none of those ran");

    // The genuine one runs once; the same body again is a replay.
    let (code, _) = post(&d, &body, &signed(&body, ts)).await;
    assert_eq!(code, 200);
    assert_eq!(store(root).pauses().unwrap().len(), 1);
    let unpause = form("U_OPS", "C_OPS", "resume", 2);
    let (code, _) = post(&d, &unpause, &signed(&unpause, ts)).await;
    assert_eq!(code, 200);
    assert_eq!(
        post(&d, &body, &signed(&body, ts)).await,
        (401, "this request body was seen before: a replay\n".into())
    );
    assert!(
        store(root).pauses().unwrap().is_empty(),
        "the replayed pause did not run"
    );

    // The push webhook: a bad signature is 401; a good one is taken (this site is not
    // in git, so there is nothing to fetch: 409).
    let c = reqwest::Client::new();
    let push = br#"{"ref":"refs/heads/main"}"#;
    let r = c
        .post(format!("http://{}/hooks/git", d.addr))
        .header("x-hub-signature-256", drover::notification::sign(b"wrong", push))
        .body(push.to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 401);
    let r = c
        .post(format!("http://{}/hooks/git", d.addr))
        .header(
            "x-hub-signature-256",
            drover::notification::sign(SECRET.as_bytes(), push),
        )
        .body(push.to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 409);
    let r = c
        .post(format!("http://{}/hooks/git", d.addr))
        .header("x-gitlab-token", "wrong")
        .body(push.to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 401);
    d.shutdown().await.unwrap();
}

/// A listener standing in for Slack's `response_url`: what was posted to each path.
#[derive(Clone, Default)]
struct ResponseUrl {
    got: Arc<Mutex<Vec<(String, serde_json::Value)>>>,
}

impl ResponseUrl {
    async fn start(&self) -> String {
        let me = self.clone();
        let app = axum::Router::new().fallback(move |uri: axum::http::Uri, body: axum::body::Bytes| {
            let me = me.clone();
            async move {
                let v = serde_json::from_slice(&body).unwrap_or(serde_json::Value::Null);
                me.got.lock().unwrap().push((uri.path().to_string(), v));
                "ok"
            }
        });
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(l, app).await });
        format!("http://{addr}")
    }

    /// The texts posted to `path`, in order.
    fn texts(&self, path: &str) -> Vec<String> {
        self.got
            .lock()
            .unwrap()
            .iter()
            .filter(|(p, _)| p == path)
            .map(|(_, v)| {
                assert_eq!(v["response_type"], "ephemeral", "{v}");
                v["text"].as_str().unwrap().to_string()
            })
            .collect()
    }
}

/// With the answer deadline at zero every command is acknowledged at once and its
/// answer follows on its own `response_url`; a run it started is followed to its end,
/// which is posted there as well. An unlisted user is refused at once, nothing runs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn past_the_answer_deadline_the_outcome_is_posted_to_the_response_url() {
    let site = site();
    let root = site.path();
    let d = daemon_answering_within(root, Duration::ZERO).await;
    let slack = ResponseUrl::default();
    let base = slack.start().await;
    let say = |user: &'static str, text: &'static str, n: u32, path: &'static str| {
        let body = form_to(user, "C_OPS", text, n, &format!("{base}{path}"));
        let d = &d;
        async move {
            let (status, answer) = post(d, &body, &signed(&body, now())).await;
            assert_eq!(status, 200, "{answer}");
            let v: serde_json::Value = serde_json::from_str(&answer).unwrap();
            assert_eq!(v["response_type"], "ephemeral");
            v["text"].as_str().unwrap().to_string()
        }
    };
    let ack = "Working on it; the answer follows here.";

    assert_eq!(say("U_OPS", "status", 1, "/status").await, ack);
    until(Duration::from_secs(10), "the status answer", || {
        !slack.texts("/status").is_empty()
    })
    .await;
    assert_eq!(slack.texts("/status"), ["No run in progress."]);

    // A refusal needs no work: it is the answer itself, and nothing follows.
    let refused = say("U_OTHER", "run mark", 2, "/refused").await;
    assert!(
        refused.starts_with("Sorry <@U_OTHER>, you are not allowed"),
        "{refused}"
    );

    assert_eq!(say("U_OPS", "run mark --limit n[01-02]", 3, "/run").await, ack);
    until(Duration::from_secs(30), "the run's start and its end", || {
        slack.texts("/run").len() >= 2
    })
    .await;
    let texts = slack.texts("/run");
    let run = texts[0]
        .strip_prefix("Started `mark`: run ")
        .and_then(|t| t.split('.').next())
        .unwrap_or_else(|| panic!("{texts:?}"))
        .to_string();
    assert_eq!(
        texts[1],
        format!("Run {run} of `mark` v1 succeeded: 2 of 2 nodes succeeded."),
        "{texts:?}"
    );
    let r = store(root).run(&run).unwrap().unwrap();
    assert_eq!(r.run.status, RunStatus::Succeeded);
    assert!(root.join("marks/n02").exists() && !root.join("marks/n03").exists());
    // The status asked while nothing ran, and the refusal, got one answer each.
    tokio::time::sleep(Duration::from_millis(700)).await;
    assert_eq!(slack.texts("/status").len(), 1);
    assert!(slack.texts("/refused").is_empty());
    assert_eq!(slack.texts("/run").len(), 2);
    assert!(
        store(root).runs().unwrap().len() == 1,
        "the refused run did not start"
    );

    d.shutdown().await.unwrap();

    // Within the default deadline the start is the immediate answer, and how the run
    // ended still follows on the response_url.
    let d = daemon(root).await;
    let body = form_to(
        "U_OPS",
        "C_OPS",
        "run mark --limit n03",
        4,
        &format!("{base}/now"),
    );
    let (status, answer) = post(&d, &body, &signed(&body, now())).await;
    assert_eq!(status, 200, "{answer}");
    let v: serde_json::Value = serde_json::from_str(&answer).unwrap();
    let text = v["text"].as_str().unwrap();
    let run = text
        .strip_prefix("Started `mark`: run ")
        .and_then(|t| t.split('.').next())
        .unwrap_or_else(|| panic!("{text}"))
        .to_string();
    until(Duration::from_secs(30), "the run's end", || {
        !slack.texts("/now").is_empty()
    })
    .await;
    assert_eq!(
        slack.texts("/now"),
        [format!(
            "Run {run} of `mark` v1 succeeded: 1 of 1 nodes succeeded."
        )]
    );
    d.shutdown().await.unwrap();
}
