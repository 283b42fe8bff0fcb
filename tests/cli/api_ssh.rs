//! The API against real sshd nodes (the testbed) and a fake scheduler: a rollout
//! started with `POST /runs` completes, its events stream to a real SSE client, and an
//! abort stops it at a safe point, leaving no node drained.

#![expect(clippy::unwrap_used, reason = "test fixtures: a failure is the test failing")]

use std::time::{Duration, Instant};

use drover::daemon::Daemon;
use futures_util::StreamExt;
use serde_json::{Value, json};

use crate::api::{ADMIN, Api, OPS, READ, options, server_yaml};
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

/// The key a testbed node was started with, as its known_hosts line has it (`type base64`).
pub fn host_key_of(b: &Bed, i: usize) -> String {
    let n = &b.tb.nodes()[i];
    let text = std::fs::read_to_string(b.tb.known_hosts()).unwrap();
    let pattern = format!("[{}]:{}", n.host, n.port);
    let line = text
        .lines()
        .find(|l| l.split_whitespace().next() == Some(pattern.as_str()))
        .unwrap_or_else(|| panic!("{pattern} in\n{text}"));
    line.split_whitespace()
        .skip(1)
        .take(2)
        .collect::<Vec<_>>()
        .join(" ")
}

/// A site that reaches hosts with the testbed's key, records new host keys
/// (`accept-new`), has only node001 in its inventory, and probes at most `concurrency`
/// addresses at once for at most 2 s each.
fn discover_bed(concurrency: u32) -> Bed {
    discover_bed_with(concurrency, |_| "host_key_policy: accept-new".into())
}

/// [`discover_bed`] under `host_key_policy: strict`, trusting a known_hosts file
/// (`trusted_hosts` in the site) that has node001's key and not node002's.
pub fn strict_discover_bed() -> Bed {
    discover_bed_with(4, |b| {
        let pattern = format!("[{}]:{}", b.tb.nodes()[0].host, b.tb.nodes()[0].port);
        b.write("trusted_hosts", &format!("{pattern} {}\n", host_key_of(b, 0)));
        format!(
            "host_key_policy: strict, known_hosts: \"{}\"",
            b.site.path().join("trusted_hosts").display()
        )
    })
}

fn discover_bed_with(concurrency: u32, policy: impl FnOnce(&Bed) -> String) -> Bed {
    let b = Bed::start(2, false);
    let policy = policy(&b);
    let tokens = b.site.path().join("tokens");
    std::fs::create_dir_all(&tokens).unwrap();
    let identity = b.tb.identity().display().to_string();
    b.site_yaml(
        &format!("identity_file: \"{identity}\", {policy}, connect_timeout: 5s"),
        &server_yaml(&tokens).replace(
            "  discover: { timeout: 3s }\n",
            &format!("  discover: {{ concurrency: {concurrency}, timeout: 2s }}\n"),
        ),
    );
    let n = &b.tb.nodes()[0];
    b.write(
        "inventory.yml",
        &format!(
            "nodes:\n  node001: {{ host: \"{}\", port: {}, user: \"{}\" }}\ngroups:\n  all: [node001]\n",
            n.host,
            n.port,
            b.tb.user()
        ),
    );
    b.write(
        "workflows/w.yml",
        &workflow("", "  - name: x\n    run: \"true\"\n    change: hot\n"),
    );
    b
}

/// A loopback port nothing listens on.
pub fn dead_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn discover_records_real_hosts_with_their_host_key_and_facts_and_reports_a_dead_one() {
    let b = discover_bed(4);
    let d = Daemon::start(options(b.site.path())).await.unwrap();
    let api = Api::new(&d);
    let user = b.tb.user().to_string();
    let nodes = b.tb.nodes();
    let live: Vec<String> = nodes
        .iter()
        .map(|n| format!("{user}@{}:{}", n.host, n.port))
        .collect();
    let dead = format!("{user}@127.0.0.1:{}", dead_port());
    let r = api
        .post(
            "/nodes/discover",
            ADMIN,
            json!({"addresses": [live[0], dead, live[1], live[0]]}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let results = r.body["results"].as_array().unwrap();
    assert_eq!(results.len(), 3, "a repeated address is probed once: {}", r.text);
    let cpus = std::thread::available_parallelism().unwrap().get() as u64;
    for (i, res) in [(0, &results[0]), (1, &results[2])] {
        assert_eq!(res["address"], live[i].as_str(), "{res}");
        assert_eq!(res["status"], "discovered", "{res}");
        assert_eq!(res["ok"], true, "{res}");
        assert_eq!(res["host_key"], host_key_of(&b, i).as_str(), "{res}");
        assert_eq!(res["cpus"], cpus, "{res}");
        assert!(res["hostname"].as_str().is_some_and(|h| !h.is_empty()), "{res}");
        assert!(res["memory_mib"].as_u64().is_some_and(|m| m > 0), "{res}");
        assert!(
            res["kernel"].as_str().is_some_and(|k| k.starts_with("Linux ")),
            "{res}"
        );
    }
    // node001 is in the inventory; node002 is not, and gets its inventory line.
    assert_eq!(results[0]["node"], "node001");
    assert_eq!(results[0]["inventory_entry"], Value::Null);
    assert_eq!(results[2]["node"], Value::Null);
    let entry = results[2]["inventory_entry"].as_str().unwrap();
    assert!(
        entry.ends_with(&format!(
            "{{ host: \"{}\", port: {}, user: {user} }}",
            nodes[1].host, nodes[1].port
        )),
        "{entry}"
    );
    let gone = &results[1];
    assert_eq!(gone["address"], dead.as_str());
    assert_eq!(gone["status"], "unreachable", "{gone}");
    assert_eq!(gone["ok"], false);
    assert!(
        gone["error"].as_str().unwrap().contains("refused"),
        "says why: {gone}"
    );

    // Recorded: both live hosts, with the keys ssh recorded in drover's known_hosts.
    let store = drover::store::Store::open_read_only(&b.site.path().join(".drover/drover.db")).unwrap();
    let rec = store.discovered().unwrap();
    let addrs: Vec<&str> = rec.iter().map(|h| h.address.as_str()).collect();
    let mut want = vec![live[0].as_str(), live[1].as_str()];
    want.sort();
    assert_eq!(addrs, want, "the dead one is not recorded");
    for h in &rec {
        assert_eq!(h.by, "root", "{h:?}");
        assert!(
            h.host_key.is_some() && h.cpus.is_some() && h.kernel.is_some(),
            "{h:?}"
        );
    }
    let recorded = std::fs::read_to_string(b.site.path().join(".drover/known_hosts")).unwrap();
    assert!(
        recorded.contains(host_key_of(&b, 1).as_str()),
        "accept-new recorded the key: {recorded}"
    );

    // GET /nodes: node001 is `discovered` with its facts; node002 is listed by address.
    let list = api.get("/nodes", READ).await;
    let listed = list.body["nodes"].as_array().unwrap();
    assert_eq!(listed.len(), 2, "{}", list.text);
    assert_eq!(listed[0]["name"], "node001");
    assert_eq!(listed[0]["lifecycle"], "discovered");
    assert_eq!(listed[0]["in_inventory"], true);
    assert_eq!(listed[0]["discovered"]["host_key"], host_key_of(&b, 0).as_str());
    assert_eq!(listed[1]["name"], live[1].as_str());
    assert_eq!(listed[1]["lifecycle"], "discovered");
    assert_eq!(listed[1]["in_inventory"], false);
    assert_eq!(listed[1]["discovered"]["cpus"], cpus);
    // The subset by address, and by node name.
    let one = api.get(&format!("/nodes?names={}", live[1]), READ).await;
    assert_eq!(one.body["nodes"].as_array().unwrap().len(), 1, "{}", one.text);
    let one = api.get("/nodes?names=node001", READ).await;
    assert_eq!(one.body["nodes"][0]["name"], "node001", "{}", one.text);
    assert_eq!(one.body["nodes"].as_array().unwrap().len(), 1, "{}", one.text);
    d.shutdown().await.unwrap();
}

/// Under `host_key_policy: strict` a host whose key no trusted known_hosts file has is
/// `host_key_rejected` (not `unreachable`: it answered), and nothing of it is recorded,
/// neither the host nor its key; a host whose key is trusted is discovered.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn discover_under_strict_host_keys_rejects_an_unknown_key_and_records_nothing() {
    let b = strict_discover_bed();
    let d = Daemon::start(options(b.site.path())).await.unwrap();
    let api = Api::new(&d);
    let user = b.tb.user().to_string();
    let nodes = b.tb.nodes();
    let known = format!("{user}@{}:{}", nodes[0].host, nodes[0].port);
    let unknown = format!("{user}@{}:{}", nodes[1].host, nodes[1].port);
    let r = api
        .post("/nodes/discover", ADMIN, json!({"addresses": [known, unknown]}))
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let res = r.body["results"].as_array().unwrap();
    assert_eq!(res[0]["status"], "discovered", "{}", r.text);
    assert_eq!(res[0]["host_key"], host_key_of(&b, 0).as_str());
    assert_eq!(res[1]["address"], unknown.as_str());
    assert_eq!(res[1]["status"], "host_key_rejected", "{}", r.text);
    assert_eq!(res[1]["ok"], false);
    assert_eq!(res[1]["host_key"], Value::Null);
    assert!(
        res[1]["error"].as_str().is_some_and(|e| !e.is_empty()),
        "says why: {}",
        r.text
    );
    let store = drover::store::Store::open_read_only(&b.site.path().join(".drover/drover.db")).unwrap();
    let recorded: Vec<String> = store
        .discovered()
        .unwrap()
        .into_iter()
        .map(|h| h.address)
        .collect();
    assert_eq!(recorded, [known], "the rejected host is not recorded");
    let drovers_own = std::fs::read_to_string(b.site.path().join(".drover/known_hosts")).unwrap_or_default();
    assert!(
        !drovers_own.contains(host_key_of(&b, 1).as_str()),
        "strict records no key: {drovers_own}"
    );
    d.shutdown().await.unwrap();
}

/// A host that accepts the connection and never speaks ssh: the probe gives up at
/// `server.discover.timeout`, and with `concurrency: 1` three such probes take three
/// timeouts, one after another.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn probes_are_bounded_in_number_and_time() {
    let b = discover_bed(1);
    let d = Daemon::start(options(b.site.path())).await.unwrap();
    let api = Api::new(&d);
    let silent: Vec<std::net::TcpListener> = (0..3)
        .map(|_| std::net::TcpListener::bind("127.0.0.1:0").unwrap())
        .collect();
    let addrs: Vec<String> = silent
        .iter()
        .map(|l| format!("127.0.0.1:{}", l.local_addr().unwrap().port()))
        .collect();
    let t = Instant::now();
    let r = api
        .post("/nodes/discover", ADMIN, json!({"addresses": addrs}))
        .await;
    let took = t.elapsed();
    assert_eq!(r.status, 200, "{}", r.text);
    for res in r.body["results"].as_array().unwrap() {
        assert_eq!(res["status"], "unreachable", "{res}");
        assert!(
            res["error"].as_str().unwrap().contains("no answer within 2s"),
            "{res}"
        );
    }
    assert!(took >= Duration::from_secs(6), "one probe at a time: {took:?}");
    assert!(
        took < Duration::from_secs(30),
        "each probe gave up in time: {took:?}"
    );
    drop(silent);
    d.shutdown().await.unwrap();
}
