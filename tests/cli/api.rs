//! The REST API under `/api/v1`: a daemon in process on a real listener
//! (127.0.0.1:0) driven with a real HTTP client (reqwest). Local-transport sites here
//! (commands run in `sh` on this machine); `api_ssh.rs` has the real sshd nodes.

#![expect(clippy::unwrap_used, reason = "test fixtures: a failure is the test failing")]

use std::path::Path;
use std::time::{Duration, Instant};

use drover::daemon::{ConvergeClock, Daemon, DaemonOptions};
use drover::store::Store;
use serde_json::{Value, json};

use crate::support::*;

pub const ADMIN: &str = "tok-admin-5f1e9a7c";
pub const OPS: &str = "tok-ops-0c3b77d2";
pub const READ: &str = "tok-read-8d2e41aa";
pub const LOGIN: &str = "tok-login-3a9f06be";

/// The tokens' files and the `server:` block naming them.
pub fn server_yaml(dir: &Path) -> String {
    for (f, t) in [("admin", ADMIN), ("ops", OPS), ("read", READ), ("login", LOGIN)] {
        std::fs::write(dir.join(format!("{f}.token")), format!("{t}\n")).unwrap();
    }
    let d = dir.display();
    format!(
        "server:\n  listen: 127.0.0.1:0\n  tokens:\n\
         \x20   - {{ name: root, role: admin, token: {{ file: {d}/admin.token }} }}\n\
         \x20   - {{ name: alice, role: operate, token: {{ file: {d}/ops.token }} }}\n\
         \x20   - {{ name: viewer, role: read, token: {{ file: {d}/read.token }} }}\n\
         \x20   - {{ name: login-ops, role: operate, token: {{ file: {d}/login.token }}, nodes: [\"@login\"] }}\n\
         \x20 discover: {{ timeout: 3s }}\n"
    )
}

/// A local site of n[01-04]: `login` is n01 and n02; n02 and n03 form the HA group
/// `pair`. `mark` marks each node (`marks/NODE`, a line per run in `count/NODE`);
/// the lifecycle workflows write `commissioned/NODE`, `cleaned/NODE` and `restarted/NODE`
/// with the value of `vars.flavor`; commission fails on the node `vars.fail_on` names.
pub fn lifecycle_site() -> Site {
    let site = Site::new();
    let _ = std::fs::remove_file(site.path().join("workflows/update.yml"));
    for d in ["marks", "count", "commissioned", "cleaned", "restarted", "tokens"] {
        std::fs::create_dir_all(site.path().join(d)).unwrap();
    }
    let server = server_yaml(&site.path().join("tokens"));
    let root = site.path().display().to_string();
    let lifecycle_wf = |name: &str, dir: &str, extra: &str| {
        format!(
            "name: {name}\nversion: 1\ntargets: {{ nodes: [\"@compute\"] }}\nvars: {{ flavor: plain, fail_on: none, check_fails_on: none }}\n\
             strategy: {{ batch: 4, failure_budget: {{ per_batch: 0, per_run: 0 }} }}\n\
             steps:\n{extra}  - name: {dir}\n    run: echo {{{{ vars.flavor }}}} > {root}/{dir}/$DROVER_NODE\n    change: hot\n"
        )
    };
    site.write(
        "drover.yml",
        &format!(
            "inventory: inventory.yml\nworkflows: workflows\ntransport: local\nleases: {{ ttl: 30s }}\n\
             lifecycle: {{ commission: commission, decommission: decommission, maintenance: restart }}\n{server}"
        ),
    )
    .write(
        "inventory.yml",
        "nodes:\n  n[01-04]: {}\ngroups:\n  compute: [\"n[01-04]\"]\n  login: [n01, n02]\n\
         ha_groups:\n  pair: { members: [n02, n03] }\ncanary: [n01]\n",
    )
    .write(
        "workflows/mark.yml",
        &format!(
            "name: mark\nversion: 1\ntargets: {{ nodes: [\"@compute\"] }}\n\
             strategy: {{ batch: 1, failure_budget: {{ per_batch: 0, per_run: 0 }} }}\n\
             steps:\n  - name: mark\n    run: echo x >> {root}/count/$DROVER_NODE && touch {root}/marks/$DROVER_NODE\n\
             \x20   check: test -e {root}/marks/$DROVER_NODE\n    change: hot\n"
        ),
    )
    .write(
        "workflows/commission.yml",
        &lifecycle_wf(
            "commission",
            "commissioned",
            "  - name: probe\n    run: \"true\"\n    check: \"[ \\\"$DROVER_NODE\\\" != {{ vars.check_fails_on }} ] || exit 3; exit 1\"\n    change: hot\n\
             \x20 - name: maybe-fail\n    run: test \"$DROVER_NODE\" != {{ vars.fail_on }}\n    change: hot\n",
        ),
    )
    .write("workflows/decommission.yml", &lifecycle_wf("decommission", "cleaned", ""))
    .write("workflows/restart.yml", &lifecycle_wf("restart", "restarted", ""))
}

pub fn options(site: &Path) -> DaemonOptions {
    let mut o = DaemonOptions::new(site.to_path_buf());
    o.listen = Some("127.0.0.1:0".parse().unwrap());
    o.converge = ConvergeClock::Manual;
    o
}

/// A client of one daemon.
pub struct Api {
    pub base: String,
    pub http: reqwest::Client,
}

pub struct Resp {
    pub status: u16,
    pub body: Value,
    pub text: String,
}

impl Api {
    pub fn new(d: &Daemon) -> Api {
        Api {
            base: format!("http://{}/api/v1", d.addr),
            http: reqwest::Client::new(),
        }
    }

    pub async fn call(&self, method: &str, path: &str, token: Option<&str>, body: Option<Value>) -> Resp {
        let m = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
        let mut r = self.http.request(m, format!("{}{path}", self.base));
        if let Some(t) = token {
            r = r.bearer_auth(t);
        }
        if let Some(b) = body {
            r = r.json(&b);
        }
        let resp = r.send().await.unwrap();
        let status = resp.status().as_u16();
        let text = resp.text().await.unwrap();
        Resp {
            status,
            body: serde_json::from_str(&text).unwrap_or(Value::Null),
            text,
        }
    }

    pub async fn get(&self, path: &str, token: &str) -> Resp {
        self.call("GET", path, Some(token), None).await
    }

    pub async fn post(&self, path: &str, token: &str, body: Value) -> Resp {
        self.call("POST", path, Some(token), Some(body)).await
    }
}

/// Waits (polling, at most `limit`) until `done` holds.
pub async fn until(limit: Duration, what: &str, mut done: impl FnMut() -> bool) {
    let t = Instant::now();
    while !done() {
        assert!(t.elapsed() < limit, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

pub fn runs_of(site: &Path) -> Vec<drover::store::RunRow> {
    Store::open_read_only(&site.join(".drover/drover.db"))
        .and_then(|s| s.runs())
        .unwrap_or_default()
}

fn files(site: &Path, dir: &str) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(site.join(dir))
        .map(|d| {
            d.filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

/// Every route that changes something, with a body it accepts.
fn mutating_routes() -> Vec<(&'static str, Value)> {
    vec![
        ("/runs", json!({"workflow": "mark"})),
        ("/runs/mark-1/abort", json!({})),
        ("/runs/mark-1/pause", json!({})),
        ("/runs/mark-1/resume", json!({})),
        ("/pause", json!({"reason": "x"})),
        ("/resume", json!({})),
        ("/nodes/commission", json!({"nodes": ["n01"]})),
        ("/nodes/decommission", json!({"nodes": ["n01"]})),
        ("/nodes/maintenance", json!({"nodes": ["n01"], "state": "on"})),
        ("/nodes/discover", json!({"addresses": ["127.0.0.1:1"]})),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_mutating_route_needs_a_token_and_a_role_that_may_change_things() {
    let site = lifecycle_site();
    let d = Daemon::start(options(site.path())).await.unwrap();
    let api = Api::new(&d);
    for (path, body) in mutating_routes() {
        let none = api.call("POST", path, None, Some(body.clone())).await;
        assert_eq!(none.status, 401, "{path}: {}", none.text);
        assert_eq!(none.body["error"]["code"], "unauthorized", "{path}");
        let wrong = api
            .call("POST", path, Some("not-a-token"), Some(body.clone()))
            .await;
        assert_eq!(wrong.status, 401, "{path}: {}", wrong.text);
        let read = api.post(path, READ, body).await;
        assert_eq!(read.status, 403, "{path}: {}", read.text);
        assert_eq!(read.body["error"]["code"], "forbidden", "{path}");
        assert!(
            read.body["error"]["message"].as_str().unwrap().contains("viewer"),
            "{path}"
        );
    }
    // Reads need a token too; a read token may read.
    assert_eq!(api.call("GET", "/runs", None, None).await.status, 401);
    assert_eq!(api.get("/runs", READ).await.status, 200);
    assert_eq!(api.get("/status", READ).await.status, 200);
    // Nothing ran, nothing changed.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(runs_of(site.path()).is_empty(), "no run was started");
    assert!(files(site.path(), "marks").is_empty());
    let nodes = api.get("/nodes", READ).await;
    for n in nodes.body["nodes"].as_array().unwrap() {
        assert_eq!(n["lifecycle"], "inventory", "{n}");
    }
    d.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_touching_an_ha_group_member_outside_the_scope_is_refused_whole() {
    let site = lifecycle_site();
    let d = Daemon::start(options(site.path())).await.unwrap();
    let api = Api::new(&d);
    // n01 is in @login, alone: allowed.
    let ok = api
        .post(
            "/nodes/maintenance",
            LOGIN,
            json!({"nodes": ["n01"], "state": "off"}),
        )
        .await;
    assert_eq!(ok.status, 200, "{}", ok.text);
    // n02 is in @login, but its HA group partner n03 is not: the whole request is refused.
    let r = api
        .post(
            "/nodes/maintenance",
            LOGIN,
            json!({"nodes": ["n01", "n02"], "state": "on", "reason": "dimm"}),
        )
        .await;
    assert_eq!(r.status, 403, "{}", r.text);
    assert_eq!(r.body["error"]["details"]["outside_scope"], json!(["n03"]));
    assert_eq!(
        r.body["error"]["details"]["ha_group_members"][0]["ha_group"],
        "pair"
    );
    assert!(
        r.body["error"]["message"].as_str().unwrap().contains("n03"),
        "{}",
        r.text
    );
    // A rollout of a workflow targeting the whole fleet is outside the scope too.
    let run = api.post("/runs", LOGIN, json!({"workflow": "mark"})).await;
    assert_eq!(run.status, 403, "{}", run.text);
    assert_eq!(
        run.body["error"]["details"]["outside_scope"],
        json!(["n03", "n04"])
    );
    // ... and so is pausing the whole site.
    assert_eq!(api.post("/pause", LOGIN, json!({})).await.status, 403);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(runs_of(site.path()).is_empty(), "nothing ran");
    assert!(
        files(site.path(), "restarted").is_empty(),
        "the maintenance workflow did not run"
    );
    let nodes = api.get("/nodes", ADMIN).await;
    assert!(
        nodes.body["nodes"]
            .as_array()
            .unwrap()
            .iter()
            .all(|n| n["lifecycle"] == "inventory"),
        "no node went into maintenance: {}",
        nodes.text
    );
    // A scoped token sees only its own nodes.
    let mine = api.get("/nodes", LOGIN).await;
    let names: Vec<&str> = mine.body["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["n01", "n02"]);
    d.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn errors_have_one_shape_oversized_bodies_are_413_and_bad_json_says_where() {
    let site = lifecycle_site();
    let d = Daemon::start(options(site.path())).await.unwrap();
    let api = Api::new(&d);
    let big = "x".repeat(drover::api::MAX_BODY_BYTES + 1);
    let r = api
        .http
        .post(format!("{}/runs", api.base))
        .bearer_auth(OPS)
        .header("content-type", "application/json")
        .body(format!("{{\"workflow\": \"{big}\"}}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 413);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"]["code"], "payload_too_large");

    let r = api
        .http
        .post(format!("{}/nodes/commission", api.base))
        .bearer_auth(OPS)
        .body("{\n  \"nodes\": [\"n01\",\n  }")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 400);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"]["code"], "invalid_json");
    assert_eq!(body["error"]["details"]["line"], 3, "{body}");
    assert_eq!(body["error"]["details"]["column"], 3, "{body}");

    let wrong_type = api.post("/nodes/commission", OPS, json!({"nodes": "n01"})).await;
    assert_eq!(wrong_type.status, 400, "{}", wrong_type.text);
    assert_eq!(wrong_type.body["error"]["details"]["path"], "nodes");
    let unknown_key = api
        .post("/runs", OPS, json!({"workflow": "mark", "limt": "n01"}))
        .await;
    assert_eq!(unknown_key.status, 400);
    assert!(
        unknown_key.body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("limt"),
        "{}",
        unknown_key.text
    );

    let missing = api.get("/nope", OPS).await;
    assert_eq!(missing.status, 404);
    assert_eq!(missing.body["error"]["code"], "not_found");
    let run = api.get("/runs/no-such-run", OPS).await;
    assert_eq!(run.status, 404);
    assert_eq!(run.body["error"]["code"], "not_found");
    let method = api.call("DELETE", "/runs", Some(OPS), None).await;
    assert_eq!(method.status, 405, "{}", method.text);
    assert_eq!(method.body["error"]["code"], "method_not_allowed");
    assert!(runs_of(site.path()).is_empty());
    d.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn get_nodes_takes_a_subset_and_ignores_names_it_does_not_have() {
    let site = lifecycle_site();
    let d = Daemon::start(options(site.path())).await.unwrap();
    let api = Api::new(&d);
    let r = api.get("/nodes?names=n%5B01-02%5D,gpu9,n04", READ).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let names: Vec<&str> = r.body["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["n01", "n02", "n04"]);
    let n02 = &r.body["nodes"][1];
    assert_eq!(n02["ha_group"], "pair");
    assert_eq!(n02["groups"], json!(["compute", "login"]));
    assert_eq!(
        api.get("/nodes?names=", READ).await.body["nodes"]
            .as_array()
            .unwrap()
            .len(),
        4
    );
    assert_eq!(api.get("/nodes?names=gpu9", READ).await.body["nodes"], json!([]));
    d.shutdown().await.unwrap();
}

/// The read routes keep their answers between requests (the read cache), but an answer
/// never outlives a write: one made through the daemon (its own store connection) and
/// one made by another drover process on the same state file are both in the very next
/// answer of `GET /nodes`, `GET /runs/{id}` and `GET /runs`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn read_answers_follow_writes_through_the_daemon_and_by_another_process() {
    let site = lifecycle_site();
    let d = Daemon::start(options(site.path())).await.unwrap();
    let api = Api::new(&d);
    let node = |r: &Resp, n: &str| {
        r.body["nodes"]
            .as_array()
            .unwrap()
            .iter()
            .find(|x| x["name"] == n)
            .cloned()
            .unwrap_or_else(|| panic!("no {n}: {}", r.text))
    };
    let before = api.get("/nodes", READ).await;
    assert_eq!(
        node(&before, "n04")["maintenance"],
        Value::Null,
        "{}",
        before.text
    );
    assert_eq!(api.get("/nodes", READ).await.text, before.text, "nothing changed");

    // Another process: the local CLI on the same state file.
    let out = site.run(&[
        "nodes",
        "maintenance",
        "on",
        "n04",
        "--reason",
        "disk swap",
        "--by",
        "tech",
    ]);
    assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);
    let after = api.get("/nodes", READ).await;
    assert_eq!(node(&after, "n04")["lifecycle"], "maintenance", "{}", after.text);
    assert_eq!(node(&after, "n04")["maintenance"]["reason"], "disk swap");
    // The daemon's own writer.
    let off = api
        .post(
            "/nodes/maintenance",
            OPS,
            json!({"nodes": ["n04"], "state": "off"}),
        )
        .await;
    assert_eq!(off.status, 200, "{}", off.text);
    let back = api.get("/nodes", READ).await;
    assert_eq!(node(&back, "n04")["maintenance"], Value::Null, "{}", back.text);
    assert_ne!(node(&back, "n04")["lifecycle"], "maintenance");

    // A run's answer follows the engine's writes until it has finished.
    let started = api.post("/runs", OPS, json!({"workflow": "mark"})).await;
    assert_eq!(started.status, 202, "{}", started.text);
    let id = started.body["run_id"].as_str().unwrap().to_string();
    let t = Instant::now();
    let run = loop {
        let r = api.get(&format!("/runs/{id}"), READ).await;
        if r.body["run"]["status"] == "succeeded" {
            break r;
        }
        assert!(
            t.elapsed() < Duration::from_secs(60),
            "never succeeded: {}",
            r.text
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(run.body["nodes"].as_array().unwrap().len(), 4, "{}", run.text);
    assert!(
        run.body["nodes"]
            .as_array()
            .unwrap()
            .iter()
            .all(|n| n["state"] == "succeeded"),
        "{}",
        run.text
    );
    assert_eq!(run.body["paused"], Value::Null);
    assert_eq!(run.body["trigger"]["token_name"], "alice", "{}", run.text);
    // Pausing through the daemon, lifting it, pausing from another process.
    assert_eq!(
        api.post("/pause", OPS, json!({"reason": "freeze"})).await.status,
        200
    );
    let paused = api.get(&format!("/runs/{id}"), READ).await;
    assert_eq!(paused.body["paused"]["by"], "alice", "{}", paused.text);
    assert_eq!(api.post("/resume", OPS, json!({})).await.status, 200);
    assert_eq!(
        api.get(&format!("/runs/{id}"), READ).await.body["paused"],
        Value::Null
    );
    let out = site.run(&["pause", "--reason", "from the shell", "--by", "tech"]);
    assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);
    let paused = api.get(&format!("/runs/{id}"), READ).await;
    assert_eq!(
        paused.body["paused"]["reason"], "from the shell",
        "{}",
        paused.text
    );
    // `GET /runs` follows too: a second run is listed as soon as it is recorded.
    let listed = |r: &Resp| r.body["runs"].as_array().unwrap().len();
    assert_eq!(listed(&api.get("/runs", READ).await), 1);
    assert_eq!(site.run(&["unpause"]).code, 0);
    let second = api.post("/runs", OPS, json!({"workflow": "mark"})).await;
    assert_eq!(second.status, 202, "{}", second.text);
    let second_id = second.body["run_id"].as_str().unwrap().to_string();
    let t = Instant::now();
    while api.get(&format!("/runs/{second_id}"), READ).await.body["run"]["status"] != "succeeded" {
        assert!(
            t.elapsed() < Duration::from_secs(60),
            "the second run never succeeded"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(listed(&api.get("/runs", READ).await), 2);
    d.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lifecycle_request_with_an_unknown_node_or_no_node_fails_whole_and_runs_nothing() {
    let site = lifecycle_site();
    let d = Daemon::start(options(site.path())).await.unwrap();
    let api = Api::new(&d);
    for route in ["/nodes/commission", "/nodes/decommission"] {
        let r = api
            .post(route, OPS, json!({"nodes": ["n01", "gpu1", "n[07-08]"]}))
            .await;
        assert_eq!(r.status, 422, "{route}: {}", r.text);
        assert_eq!(r.body["error"]["code"], "unknown_nodes");
        assert_eq!(
            r.body["error"]["details"]["unknown"],
            json!(["gpu1", "n07", "n08"]),
            "{route}"
        );
        let empty = api.post(route, OPS, json!({"nodes": []})).await;
        assert_eq!(empty.status, 422, "{route}: {}", empty.text);
    }
    let r = api
        .post(
            "/nodes/maintenance",
            OPS,
            json!({"nodes": ["n09"], "state": "on"}),
        )
        .await;
    assert_eq!(r.status, 422);
    assert_eq!(r.body["error"]["details"]["unknown"], json!(["n09"]));
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(runs_of(site.path()).is_empty(), "nothing ran");
    for dir in ["commissioned", "cleaned", "restarted"] {
        assert!(
            files(site.path(), dir).is_empty(),
            "{dir}: nothing ran on any node"
        );
    }
    let nodes = api.get("/nodes", READ).await;
    assert!(
        nodes.body["nodes"]
            .as_array()
            .unwrap()
            .iter()
            .all(|n| n["lifecycle"] == "inventory")
    );
    d.shutdown().await.unwrap();
}

/// Discovery needs an admin token without a node scope; an empty list, or one invalid
/// address among good ones, is a 422 listing every bad one, and nothing is probed (a
/// live sshd among the good ones would be recorded if it were).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn discover_needs_an_admin_and_refuses_an_empty_list_or_any_invalid_address_whole() {
    let site = lifecycle_site();
    let d = Daemon::start(options(site.path())).await.unwrap();
    let api = Api::new(&d);
    let good = json!({"addresses": ["127.0.0.1:1"]});
    for t in [OPS, LOGIN, READ] {
        let r = api.post("/nodes/discover", t, good.clone()).await;
        assert_eq!(r.status, 403, "{}", r.text);
        assert!(
            r.body["error"]["message"].as_str().unwrap().contains("`admin`"),
            "{}",
            r.text
        );
    }
    let empty = api.post("/nodes/discover", ADMIN, json!({"addresses": []})).await;
    assert_eq!(empty.status, 422, "{}", empty.text);
    assert_eq!(empty.body["error"]["code"], "invalid_addresses");
    assert!(
        empty.body["error"]["message"].as_str().unwrap().contains("empty"),
        "{}",
        empty.text
    );
    let bad = api
        .post(
            "/nodes/discover",
            ADMIN,
            json!({"addresses": ["127.0.0.1:1", "-oProxyCommand=touch /tmp/x", "n01:99999", "[::1", "10.0.0.300", "ok.example.org"]}),
        )
        .await;
    assert_eq!(bad.status, 422, "{}", bad.text);
    let invalid: Vec<&str> = bad.body["error"]["details"]["invalid"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["address"].as_str().unwrap())
        .collect();
    assert_eq!(
        invalid,
        ["-oProxyCommand=touch /tmp/x", "n01:99999", "[::1", "10.0.0.300"],
        "{}",
        bad.text
    );
    let message = bad.body["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("port `99999`") && message.contains("nothing was probed"),
        "{message}"
    );
    let unknown_field = api
        .post(
            "/nodes/discover",
            ADMIN,
            json!({"addresses": ["h"], "nodes": ["n01"]}),
        )
        .await;
    assert_eq!(unknown_field.status, 400, "{}", unknown_field.text);
    // Nothing recorded, nothing listed beyond the inventory.
    let store = Store::open_read_only(&site.path().join(".drover/drover.db")).unwrap();
    assert!(store.discovered().unwrap().is_empty());
    let nodes = api.get("/nodes", READ).await;
    assert_eq!(nodes.body["nodes"].as_array().unwrap().len(), 4, "{}", nodes.text);
    // A dead address alone: reported, not recorded, and the request still succeeds.
    let dead = api.post("/nodes/discover", ADMIN, good).await;
    assert_eq!(dead.status, 200, "{}", dead.text);
    assert_eq!(dead.body["results"][0]["status"], "unreachable", "{}", dead.text);
    assert!(store.discovered().unwrap().is_empty());
    d.shutdown().await.unwrap();
}

/// Polls `GET /nodes` until every one of `names` is in `state`.
async fn until_state(api: &Api, names: &[&str], state: &str) {
    let t = Instant::now();
    loop {
        let r = api.get("/nodes", READ).await;
        let ok = names.iter().all(|n| {
            r.body["nodes"]
                .as_array()
                .unwrap()
                .iter()
                .any(|x| x["name"] == *n && x["lifecycle"] == state)
        });
        if ok {
            return;
        }
        assert!(
            t.elapsed() < Duration::from_secs(60),
            "nodes never {state}: {}",
            r.text
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Asks for the commission of n02..n04 with `extra_vars`, which make it fail, and waits
/// until the cleanup (the decommission workflow) has run on all three and every run has
/// ended. The commission's run id.
async fn commission_cleaned_up(api: &Api, site: &Path, extra_vars: Value) -> String {
    let r = api
        .post(
            "/nodes/commission",
            OPS,
            json!({"nodes": ["n[02-04]"], "extra_vars": extra_vars}),
        )
        .await;
    assert_eq!(r.status, 202, "{}", r.text);
    until(Duration::from_secs(60), "the cleanup on every node", || {
        files(site, "cleaned").len() == 3
    })
    .await;
    until(Duration::from_secs(60), "the cleanup run's end", || {
        let runs = runs_of(site);
        runs.len() == 2 && runs.iter().all(|r| r.status != drover::store::RunStatus::Running)
    })
    .await;
    r.body["run_id"].as_str().unwrap().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_commission_cleans_up_every_node_of_the_request_and_a_fixed_one_commissions() {
    let site = lifecycle_site();
    let d = Daemon::start(options(site.path())).await.unwrap();
    let api = Api::new(&d);
    let run = commission_cleaned_up(&api, site.path(), json!({"fail_on": "n03", "flavor": "gpu"})).await;
    until_state(&api, &["n02", "n03", "n04"], "discovered").await;
    assert_eq!(files(site.path(), "cleaned"), ["n02", "n03", "n04"]);
    assert_eq!(
        std::fs::read_to_string(site.path().join("cleaned/n04")).unwrap(),
        "gpu\n"
    );
    assert!(
        !site.path().join("cleaned/n01").exists(),
        "n01 was not in the request"
    );
    let shown = api.get(&format!("/runs/{run}"), READ).await;
    assert_eq!(
        shown.body["trigger"],
        json!({"kind": "api", "token_name": "alice"})
    );
    assert_eq!(shown.body["run"]["status"], "stopped", "{}", shown.text);
    // Fixed (no failing node): the same request commissions them.
    let again = api
        .post(
            "/nodes/commission",
            OPS,
            json!({"nodes": ["n[02-04]"], "extra_vars": {"flavor": "gpu"}}),
        )
        .await;
    assert_eq!(again.status, 202, "{}", again.text);
    until_state(&api, &["n02", "n03", "n04"], "commissioned").await;
    assert_eq!(
        std::fs::read_to_string(site.path().join("commissioned/n03")).unwrap(),
        "gpu\n"
    );
    d.shutdown().await.unwrap();
}

/// A node whose check fails (unreachable, a check that errs) is never worked on: the
/// commission did not succeed on it, so no node of the request is commissioned and the
/// cleanup runs on all of them, as when a step fails.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_commission_whose_check_fails_on_one_node_commissions_none() {
    let site = lifecycle_site();
    let d = Daemon::start(options(site.path())).await.unwrap();
    let api = Api::new(&d);
    let run = commission_cleaned_up(&api, site.path(), json!({"check_fails_on": "n03"})).await;
    // The step ran where the check passed, never on n03.
    assert_eq!(files(site.path(), "commissioned"), ["n02", "n04"]);
    let shown = api.get(&format!("/runs/{run}"), READ).await;
    assert_eq!(
        shown.body["run"]["status"], "completed_with_failures",
        "{}",
        shown.text
    );
    assert_eq!(
        shown.body["run"]["outcome"],
        json!({"outcome": "completed_with_failures", "failed": 1, "check_failed": ["n03"]}),
        "{}",
        shown.text
    );
    let nodes = api.get("/nodes", READ).await;
    for n in nodes.body["nodes"].as_array().unwrap() {
        assert_ne!(n["lifecycle"], "commissioned", "{}", nodes.text);
    }
    d.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn decommissioned_nodes_are_left_out_of_later_rollouts_and_maintenance_runs_its_workflow() {
    let site = lifecycle_site();
    let d = Daemon::start(options(site.path())).await.unwrap();
    let api = Api::new(&d);
    let r = api
        .post("/nodes/decommission", OPS, json!({"nodes": ["n04"]}))
        .await;
    assert_eq!(r.status, 202, "{}", r.text);
    until_state(&api, &["n04"], "decommissioned").await;
    assert_eq!(files(site.path(), "cleaned"), ["n04"]);
    let m = api
        .post(
            "/nodes/maintenance",
            OPS,
            json!({"nodes": ["n03"], "state": "on", "reason": "fan"}),
        )
        .await;
    assert_eq!(m.status, 202, "{}", m.text);
    until_state(&api, &["n03"], "maintenance").await;
    assert_eq!(
        files(site.path(), "restarted"),
        ["n03"],
        "the maintenance workflow ran on n03"
    );
    let nodes = api.get("/nodes?names=n03", READ).await;
    assert_eq!(nodes.body["nodes"][0]["maintenance"]["reason"], "fan");
    assert_eq!(nodes.body["nodes"][0]["maintenance"]["by"], "alice");
    // A rollout of the fleet: n03 (maintenance) and n04 (decommissioned) are left out.
    let run = api.post("/runs", OPS, json!({"workflow": "mark"})).await;
    assert_eq!(run.status, 202, "{}", run.text);
    let id = run.body["run_id"].as_str().unwrap().to_string();
    until(Duration::from_secs(60), "the rollout", || {
        runs_of(site.path())
            .iter()
            .any(|r| r.id == id && r.status == drover::store::RunStatus::Succeeded)
    })
    .await;
    assert_eq!(files(site.path(), "marks"), ["n01", "n02"]);
    // Their versions show on GET /nodes.
    let nodes = api.get("/nodes?names=n01,n04", READ).await;
    assert_eq!(nodes.body["nodes"][0]["workflows"][0]["workflow"], "mark");
    assert_eq!(nodes.body["nodes"][0]["workflows"][0]["version"], 1);
    let n04: Vec<&str> = nodes.body["nodes"][1]["workflows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w["workflow"].as_str().unwrap())
        .collect();
    assert_eq!(n04, ["decommission"], "n04 never ran `mark`");
    d.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_daemon_pause_is_recorded_with_the_token_name_and_shown_in_status() {
    let site = lifecycle_site();
    let d = Daemon::start(options(site.path())).await.unwrap();
    let api = Api::new(&d);
    let p = api.post("/pause", OPS, json!({"reason": "db migration"})).await;
    assert_eq!(p.status, 200, "{}", p.text);
    let s = api.get("/status", READ).await;
    assert_eq!(s.body["paused"]["by"], "alice", "{}", s.text);
    assert_eq!(s.body["paused"]["reason"], "db migration");
    let r = api.post("/resume", OPS, json!({})).await;
    assert_eq!(r.status, 200);
    assert_eq!(api.get("/status", READ).await.body["paused"], Value::Null);
    d.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dry_run_returns_the_plan_and_runs_nothing() {
    let site = lifecycle_site();
    let d = Daemon::start(options(site.path())).await.unwrap();
    let api = Api::new(&d);
    let r = api
        .post(
            "/runs",
            OPS,
            json!({"workflow": "mark", "limit": "n01,n02", "dry_run": true}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["workflow"], "mark");
    assert!(r.body["plan"].is_object(), "{}", r.text);
    assert_eq!(r.body["plan"]["canary"], json!(["n01"]), "{}", r.text);
    assert_eq!(r.body["plan"]["batches"], json!([["n02"]]), "{}", r.text);
    assert!(files(site.path(), "marks").is_empty());
    assert!(runs_of(site.path()).is_empty());
    let unknown = api.post("/runs", OPS, json!({"workflow": "nope"})).await;
    assert_eq!(unknown.status, 422);
    assert_eq!(unknown.body["error"]["details"]["workflows"][0], "commission");
    d.shutdown().await.unwrap();
}

#[test]
fn the_served_openapi_document_is_the_committed_one() {
    let committed = std::fs::read_to_string(repo_root().join("schemas/openapi.json")).unwrap();
    assert_eq!(
        committed,
        drover::api::openapi_json(),
        "run `cargo run -- schema --out schemas`"
    );
    let v: Value = serde_json::from_str(&committed).unwrap();
    assert_eq!(v["openapi"], "3.1.0");
    for p in [
        "/api/v1/runs",
        "/api/v1/runs/{id}/events",
        "/api/v1/nodes/commission",
        "/api/v1/status",
    ] {
        assert!(v["paths"][p].is_object(), "{p} is documented");
    }
}

/// `drover serve` as a process: its log (stderr) and every response body, searched for
/// each token's secret after requests that used them, right and wrong.
#[test]
fn no_token_secret_appears_in_the_log_or_a_response_and_the_audit_names_the_token() {
    use std::io::{BufRead, BufReader};
    let site = lifecycle_site();
    let log = site.path().join("serve.log");
    let mut child = std::process::Command::new(drover_bin())
        .args([
            "serve",
            "--site",
            site.path().to_str().unwrap(),
            "--listen",
            "127.0.0.1:0",
            "--log-format",
            "json",
        ])
        .env("RUST_LOG", "info")
        .stdout(std::process::Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let t = Instant::now();
    let addr = loop {
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        if let Some(l) = text.lines().find(|l| l.contains("listening")) {
            let v: Value = serde_json::from_str(l).unwrap();
            break v["addr"].as_str().unwrap().to_string();
        }
        assert!(t.elapsed() < Duration::from_secs(30), "never listening: {text}");
        std::thread::sleep(Duration::from_millis(50));
    };
    let rt = tokio::runtime::Runtime::new().unwrap();
    let bodies = rt.block_on(async {
        let api = Api {
            base: format!("http://{addr}/api/v1"),
            http: reqwest::Client::new(),
        };
        let mut bodies = Vec::new();
        bodies.push(api.get("/runs", OPS).await.text);
        bodies.push(api.get("/nodes", READ).await.text);
        bodies.push(api.post("/pause", READ, json!({})).await.text);
        bodies.push(
            api.post("/nodes/commission", LOGIN, json!({"nodes": ["n03"]}))
                .await
                .text,
        );
        bodies.push(api.post("/runs", OPS, json!({"workflow": ADMIN})).await.text);
        bodies.push(
            api.call("POST", "/runs", Some(&format!("{OPS}x")), None)
                .await
                .text,
        );
        bodies.push(
            api.post(
                "/nodes/maintenance",
                OPS,
                json!({"nodes": ["n01"], "state": "on"}),
            )
            .await
            .text,
        );
        bodies
    });
    let _ = std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let _ = child.wait();
    let text = std::fs::read_to_string(&log).unwrap();
    for secret in [OPS, READ, LOGIN] {
        assert!(!text.contains(secret), "the log has a secret:\n{text}");
        for b in &bodies {
            assert!(!b.contains(secret), "a response has a secret: {b}");
        }
    }
    let audit: Vec<Value> = BufReader::new(text.as_bytes())
        .lines()
        .map_while(Result::ok)
        .filter_map(|l| serde_json::from_str::<Value>(&l).ok())
        .filter(|v| v["target"] == "drover::audit")
        .collect();
    let has = |token: &str, status: u64| audit.iter().any(|f| f["token"] == token && f["status"] == status);
    assert!(has("alice", 200), "{text}");
    assert!(has("viewer", 403), "{text}");
    assert!(has("login-ops", 403), "{text}");
    assert!(has("-", 401), "{text}");
}

/// Every route, fed generated bodies (arbitrary JSON, and bytes that are not JSON) with
/// an admin token: no 5xx, and the daemon keeps answering.
#[test]
fn generated_bodies_on_every_route_never_get_a_5xx() {
    use proptest::prelude::*;
    let site = lifecycle_site();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let d = rt.block_on(Daemon::start(options(site.path()))).unwrap();
    let api = Api::new(&d);
    let routes = [
        ("POST", "/runs"),
        ("POST", "/runs/x/abort"),
        ("POST", "/runs/x/pause"),
        ("POST", "/runs/x/resume"),
        ("POST", "/pause"),
        ("POST", "/resume"),
        ("POST", "/nodes/commission"),
        ("POST", "/nodes/decommission"),
        ("POST", "/nodes/maintenance"),
        ("POST", "/nodes/discover"),
        ("GET", "/runs"),
        ("GET", "/nodes"),
        ("GET", "/status"),
    ];
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        "[a-z0-9\\[\\]@,\\-]{0,12}".prop_map(Value::String),
        prop_oneof![
            Just("n01"),
            Just("n[01-04]"),
            Just("mark"),
            Just("on"),
            Just("off"),
            Just("@login"),
            Just("127.0.0.1:1"),
            Just("root@[::1]:1")
        ]
        .prop_map(|s| json!(s)),
    ];
    let value = leaf.prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::btree_map(
                prop_oneof![
                    Just("workflow".to_string()),
                    Just("nodes".to_string()),
                    Just("addresses".to_string()),
                    Just("state".to_string()),
                    Just("limit".to_string()),
                    Just("extra_vars".to_string()),
                    Just("dry_run".to_string()),
                    Just("reason".to_string()),
                    "[a-z]{1,6}".prop_map(|s| s),
                ],
                inner,
                0..4
            )
            .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    });
    let body = prop_oneof![
        value.prop_map(|v| v.to_string().into_bytes()),
        prop::collection::vec(any::<u8>(), 0..64),
    ];
    let mut runner = proptest::test_runner::TestRunner::new(proptest::test_runner::Config {
        cases: 300,
        failure_persistence: None,
        ..Default::default()
    });
    runner
        .run(
            &(0..routes.len(), body, "[a-z0-9%\\[\\],=&]{0,16}"),
            |(ri, bytes, query)| {
                let (method, path) = routes[ri];
                let status = rt.block_on(async {
                    let url = format!("{}{path}?names={query}&state={query}", api.base);
                    let m = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
                    let r = api
                        .http
                        .request(m, url)
                        .bearer_auth(ADMIN)
                        .body(bytes.clone())
                        .send()
                        .await
                        .unwrap();
                    r.status().as_u16()
                });
                prop_assert!(
                    status < 500,
                    "{method} {path} with {:?}: {status}",
                    String::from_utf8_lossy(&bytes)
                );
                Ok(())
            },
        )
        .unwrap();
    let still = rt.block_on(api.get("/status", READ));
    assert_eq!(still.status, 200);
    rt.block_on(d.shutdown()).unwrap();
}
