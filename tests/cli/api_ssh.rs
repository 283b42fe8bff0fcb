//! The API against real sshd nodes (the testbed) and a fake scheduler: a rollout
//! started with `POST /runs` completes, its events stream to a real SSE client, and an
//! abort stops it at a safe point, leaving no node drained.

#![expect(clippy::unwrap_used, reason = "test fixtures: a failure is the test failing")]

use std::time::{Duration, Instant};

use drover::daemon::Daemon;
use futures_util::StreamExt;
use serde_json::{Value, json};

use crate::api::{Api, OPS, READ, options, server_yaml};
use crate::bed::{Bed, node, workflow};

/// A drain step that marks the node and sleeps `secs`.
pub fn patch(secs: u32) -> String {
    format!(
        "  - name: patch\n    run: touch {{{{ node.vars.state }}}}/patch-started && sleep {secs} && touch {{{{ node.vars.state }}}}/patched\n\
         \x20   check: test -e {{{{ node.vars.state }}}}/patched\n    change: drain\n"
    )
}

pub fn bed(n: usize, secs: u32) -> Bed {
    let b = Bed::start(n, true);
    let tokens = b.site.path().join("tokens");
    std::fs::create_dir_all(&tokens).unwrap();
    b.site_with_config("", &server_yaml(&tokens));
    b.write(
        "workflows/w.yml",
        &workflow(
            "strategy: { batch: 1, failure_budget: { per_batch: 0, per_run: 0 } }\n",
            &patch(secs),
        ),
    );
    b
}

/// `(event name, data)` of an SSE stream until `end` (or `limit`); `each` sees every
/// event as it comes.
async fn sse(
    api: &Api,
    path: &str,
    limit: Duration,
    mut each: impl AsyncFnMut(&str, &Value),
) -> Vec<(String, Value)> {
    let resp = api
        .http
        .get(format!("{}{path}", api.base))
        .bearer_auth(READ)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    assert_eq!(
        resp.headers()["content-type"].to_str().unwrap(),
        "text/event-stream"
    );
    let mut body = resp.bytes_stream();
    let mut buf = String::new();
    let mut events = Vec::new();
    let t = Instant::now();
    loop {
        let chunk = tokio::time::timeout(limit.saturating_sub(t.elapsed()), body.next())
            .await
            .expect("the event stream ended in time")
            .expect("the stream ended before `end`")
            .unwrap();
        buf.push_str(&String::from_utf8_lossy(&chunk));
        while let Some(i) = buf.find("\n\n") {
            let block: String = buf.drain(..i + 2).collect();
            let mut name = String::new();
            let mut data = String::new();
            for line in block.lines() {
                if let Some(v) = line.strip_prefix("event:") {
                    name = v.trim().to_string();
                } else if let Some(v) = line.strip_prefix("data:") {
                    data.push_str(v.trim_start());
                }
            }
            if name.is_empty() {
                continue; // a keep-alive comment
            }
            let v: Value = serde_json::from_str(&data).unwrap_or(Value::Null);
            each(&name, &v).await;
            let end = name == "end";
            events.push((name, v));
            if end {
                return events;
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_started_over_the_api_completes_on_real_nodes_and_streams_its_events() {
    let b = bed(3, 0);
    let d = Daemon::start(options(b.site.path())).await.unwrap();
    let api = Api::new(&d);
    let r = api.post("/runs", OPS, json!({"workflow": "w"})).await;
    assert_eq!(r.status, 202, "{}", r.text);
    let id = r.body["run_id"].as_str().unwrap().to_string();
    let events = sse(
        &api,
        &format!("/runs/{id}/events"),
        Duration::from_secs(120),
        async |_, _| {},
    )
    .await;
    assert_eq!(events[0].0, "run", "the stream starts with the run as recorded");
    let finished: Vec<&Value> = events
        .iter()
        .filter(|(n, _)| n == "node_finished")
        .map(|(_, v)| v)
        .collect();
    assert_eq!(finished.len(), 3, "{events:?}");
    assert!(finished.iter().all(|v| v["ok"] == true), "{finished:?}");
    let (last, end) = events.last().unwrap();
    assert_eq!(last, "end");
    assert_eq!(end["run"]["status"], "succeeded", "{end}");
    assert_eq!(end["trigger"], json!({"kind": "api", "token_name": "alice"}));
    for i in 0..3 {
        assert!(b.has(i, "patched"), "{} patched", node(i));
        assert_eq!(
            b.sched.as_ref().unwrap().state(&node(i)),
            "idle",
            "{} resumed",
            node(i)
        );
    }
    let shown = api.get(&format!("/runs/{id}"), READ).await;
    assert_eq!(shown.body["nodes"].as_array().unwrap().len(), 3);
    d.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_abort_stops_the_rollout_at_a_safe_point_and_leaves_no_node_drained() {
    let b = bed(4, 2);
    let d = Daemon::start(options(b.site.path())).await.unwrap();
    let api = Api::new(&d);
    let r = api.post("/runs", OPS, json!({"workflow": "w"})).await;
    assert_eq!(r.status, 202, "{}", r.text);
    let id = r.body["run_id"].as_str().unwrap().to_string();
    let mut aborted = false;
    let events = sse(
        &api,
        &format!("/runs/{id}/events"),
        Duration::from_secs(120),
        async |name, _| {
            // As soon as the canary is in its drain step: abort.
            if name == "node_started" && !aborted {
                aborted = true;
                let a = api.post(&format!("/runs/{id}/abort"), OPS, json!({})).await;
                assert_eq!(a.status, 202, "{}", a.text);
            }
        },
    )
    .await;
    assert!(aborted, "{events:?}");
    let started = events.iter().filter(|(n, _)| n == "node_started").count();
    assert!(
        started < 4,
        "the abort stopped the rollout before the last node: {events:?}"
    );
    // Once wound down, the run is given up: cancelled, nothing to resume at the next start.
    let t = Instant::now();
    loop {
        let s = api.get(&format!("/runs/{id}"), READ).await;
        if s.body["run"]["status"] == "cancelled" {
            for n in s.body["nodes"].as_array().unwrap() {
                assert!(
                    n["state"] == "succeeded" || n["state"] == "skipped",
                    "no node left mid-cycle: {n}"
                );
                assert_ne!(n["state"], "held", "{n}");
            }
            break;
        }
        assert!(
            t.elapsed() < Duration::from_secs(30),
            "never cancelled: {}",
            s.text
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    for i in 0..4 {
        assert_eq!(
            b.sched.as_ref().unwrap().state(&node(i)),
            "idle",
            "{} is not left drained",
            node(i)
        );
    }
    assert!(b.has(0, "patched"), "the canary in flight finished its cycle");
    assert!(!b.has(3, "patch-started"), "the last node never started");
    let again = api.post(&format!("/runs/{id}/abort"), OPS, json!({})).await;
    assert_eq!(
        again.status, 409,
        "an ended run has nothing to abort: {}",
        again.text
    );
    d.shutdown().await.unwrap();
}
