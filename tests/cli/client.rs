//! The CLI as a client of the daemon (`--server`): a daemon on a real listener
//! (127.0.0.1:0, the same one `drover serve` runs) and the real `drover` binary asking
//! it, with the tokens of `api.rs`. Every output is checked for the tokens' values.

#![expect(clippy::unwrap_used, reason = "test fixtures: a failure is the test failing")]

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::time::Duration;

use drover::daemon::Daemon;
use drover::exit_code;
use serde_json::{Value, json};

use crate::api::{ADMIN, Api, LOGIN, OPS, READ, lifecycle_site, options, runs_of, until};
use crate::support::*;

/// `drover ARGS` against `server` with `token` in `DROVER_TOKEN` (none: unset), in the
/// site directory. No token's value may appear in what it prints.
async fn client(site: &Path, server: &str, token: Option<&str>, args: &[&str]) -> Output {
    let mut c = tokio::process::Command::new(drover_bin());
    c.args(args)
        .current_dir(site)
        .env("NO_COLOR", "1")
        .env("DROVER_SERVER", server)
        .env_remove("DROVER_TOKEN");
    if let Some(t) = token {
        c.env("DROVER_TOKEN", t);
    }
    let out = tokio::time::timeout(Duration::from_secs(120), c.output())
        .await
        .expect("drover finished in time")
        .unwrap();
    let o = Output {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    };
    for secret in [ADMIN, OPS, READ, LOGIN] {
        assert!(
            !o.stdout.contains(secret) && !o.stderr.contains(secret),
            "a token's value was printed by {args:?}:\n{}\n{}",
            o.stdout,
            o.stderr
        );
    }
    assert!(!o.stderr.contains("panicked"), "{}", o.stderr);
    o
}

fn url(d: &Daemon) -> String {
    format!("http://{}", d.addr)
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

fn parse(o: &Output) -> Value {
    serde_json::from_str(o.stdout.trim()).unwrap_or_else(|e| panic!("not JSON ({e}):\n{}", o.stdout))
}

/// Starts `mark` over the API and waits until the run has finished.
async fn finished_run(api: &Api) -> String {
    let r = api.post("/runs", OPS, json!({"workflow": "mark"})).await;
    assert_eq!(r.status, 202, "{}", r.text);
    let id = r.body["run_id"].as_str().unwrap().to_string();
    let t = std::time::Instant::now();
    loop {
        let s = api.get(&format!("/runs/{id}"), READ).await;
        if s.body["run"]["status"] == "succeeded" {
            break;
        }
        assert!(t.elapsed() < Duration::from_secs(60), "{}", s.text);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    id
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_and_runs_list_and_show_ask_the_daemon() {
    let site = lifecycle_site();
    let d = Daemon::start(options(site.path())).await.unwrap();
    let api = Api::new(&d);
    let server = url(&d);
    let p = site.path();
    let id = finished_run(&api).await;

    let s = client(p, &server, Some(READ), &["status"]).await;
    assert_eq!(s.code, 0, "{}{}", s.stdout, s.stderr);
    assert!(s.stdout.contains("paused           no"), "{}", s.stdout);
    assert!(s.stdout.contains("active runs      none"), "{}", s.stdout);
    let sj = client(p, &server, Some(READ), &["status", "--json"]).await;
    assert_eq!(sj.code, 0);
    assert_eq!(parse(&sj)["paused"], Value::Null);

    let l = client(p, &server, Some(READ), &["runs", "list"]).await;
    assert_eq!(l.code, 0, "{}", l.stderr);
    let lines: Vec<&str> = l.stdout.lines().collect();
    assert!(lines[0].starts_with("RUN "), "{}", l.stdout);
    assert!(lines[1].starts_with(&id), "{}", l.stdout);
    assert!(
        lines[1].contains("mark v1") && lines[1].contains("succeeded"),
        "{}",
        l.stdout
    );
    // Aligned: every column starts where its header does.
    let col = lines[0].find("WORKFLOW").unwrap();
    assert_eq!(&lines[1][col..col + 4], "mark", "{}", l.stdout);
    let lj = client(p, &server, Some(READ), &["runs", "list", "--json"]).await;
    assert_eq!(parse(&lj)["runs"][0]["id"], id.as_str());
    let filtered = client(p, &server, Some(READ), &["runs", "list", "--state", "stopped"]).await;
    assert_eq!(filtered.code, 0);
    assert_eq!(filtered.stdout.trim(), "no runs");
    let bad = client(p, &server, Some(READ), &["runs", "list", "--state", "bogus"]).await;
    assert_eq!(bad.code, exit_code::INVALID_CONFIG, "{}", bad.stderr);
    assert!(bad.stderr.contains("unknown run state `bogus`"), "{}", bad.stderr);
    assert!(
        bad.stderr.contains("expected: running, succeeded"),
        "{}",
        bad.stderr
    );

    let sh = client(p, &server, Some(READ), &["runs", "show", &id]).await;
    assert_eq!(sh.code, 0, "{}", sh.stderr);
    assert!(
        sh.stdout.starts_with(&format!("run {id}: mark v1, succeeded")),
        "{}",
        sh.stdout
    );
    assert!(sh.stdout.contains("by API token `alice`"), "{}", sh.stdout);
    for n in ["n01", "n02", "n03", "n04"] {
        assert!(
            sh.stdout
                .lines()
                .any(|l| l.trim_start().starts_with(n) && l.contains("succeeded")),
            "{n}: {}",
            sh.stdout
        );
    }
    let shj = client(p, &server, Some(READ), &["runs", "show", &id, "--json"]).await;
    assert_eq!(parse(&shj)["nodes"].as_array().unwrap().len(), 4);
    // Something that is not drover's API at that URL: exit 15, saying so.
    let wrong = client(p, &format!("{server}/elsewhere"), Some(READ), &["status"]).await;
    assert_eq!(wrong.code, exit_code::SERVER_FAILED, "{}", wrong.stderr);
    assert!(
        wrong
            .stderr
            .contains("HTTP 404 with something that is not drover's API"),
        "{}",
        wrong.stderr
    );
    let none = client(p, &server, Some(READ), &["runs", "show", "mark-nope"]).await;
    assert_eq!(none.code, exit_code::USAGE, "as locally: no such run");
    assert!(none.stderr.contains("no run `mark-nope`"), "{}", none.stderr);
    // A finished run watched: its verdict at once, and its exit code.
    let w = client(p, &server, Some(READ), &["runs", "watch", &id]).await;
    assert_eq!(w.code, 0, "{}{}", w.stdout, w.stderr);
    assert!(w.stdout.contains(&format!("run {id}: succeeded")), "{}", w.stdout);
    d.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_token_or_with_a_read_token_the_auth_exit_code_and_nothing_changes() {
    let site = lifecycle_site();
    let d = Daemon::start(options(site.path())).await.unwrap();
    let server = url(&d);
    let p = site.path();
    let none = client(p, &server, None, &["status"]).await;
    assert_eq!(none.code, exit_code::NOT_AUTHORISED, "{}", none.stderr);
    assert!(
        none.stderr.contains("a bearer token is required"),
        "{}",
        none.stderr
    );
    assert!(none.stderr.contains("HTTP 401"), "{}", none.stderr);
    assert!(
        none.stderr.contains("set DROVER_TOKEN or pass --token-file"),
        "{}",
        none.stderr
    );
    let wrong = client(p, &server, Some("not-a-token"), &["runs", "list"]).await;
    assert_eq!(wrong.code, exit_code::NOT_AUTHORISED);
    assert!(!wrong.stderr.contains("not-a-token"), "{}", wrong.stderr);
    for args in [
        &["pause", "lunch"][..],
        &["resume"],
        &["nodes", "commission", "n01"],
        &["nodes", "decommission", "n01"],
        &["nodes", "maintenance", "on", "n01", "--reason", "dimm"],
        &["runs", "abort", "mark-1"],
    ] {
        let r = client(p, &server, Some(READ), args).await;
        assert_eq!(r.code, exit_code::NOT_AUTHORISED, "{args:?}: {}", r.stderr);
        assert!(r.stderr.contains("HTTP 403"), "{args:?}: {}", r.stderr);
        assert!(
            r.stderr.contains("token `viewer` has role `read`"),
            "{args:?}: {}",
            r.stderr
        );
    }
    // A scoped token touching an HA partner outside its scope: 403 naming it.
    let scoped = client(
        p,
        &server,
        Some(LOGIN),
        &["nodes", "maintenance", "on", "n02", "--reason", "x"],
    )
    .await;
    assert_eq!(scoped.code, exit_code::NOT_AUTHORISED, "{}", scoped.stderr);
    assert!(scoped.stderr.contains("outside_scope: n03"), "{}", scoped.stderr);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(runs_of(p).is_empty(), "nothing ran");
    let s = client(p, &server, Some(READ), &["status", "--json"]).await;
    assert_eq!(parse(&s)["paused"], Value::Null, "not paused");
    let nodes = client(p, &server, Some(READ), &["nodes", "get", "--json"]).await;
    for n in parse(&nodes)["nodes"].as_array().unwrap() {
        assert_eq!(n["lifecycle"], "inventory", "{n}");
    }

    // --token-file: one others can read is refused before anything is sent.
    let tf = p.join("my.token");
    std::fs::write(&tf, format!("{OPS}\n")).unwrap();
    std::fs::set_permissions(&tf, std::fs::Permissions::from_mode(0o644)).unwrap();
    let tfs = tf.display().to_string();
    let open = client(p, &server, None, &["--token-file", &tfs, "status"]).await;
    assert_eq!(open.code, exit_code::NOT_AUTHORISED, "{}", open.stderr);
    assert!(
        open.stderr.contains("mode 0644") && open.stderr.contains("chmod 600"),
        "{}",
        open.stderr
    );
    std::fs::set_permissions(&tf, std::fs::Permissions::from_mode(0o600)).unwrap();
    // It wins over DROVER_TOKEN.
    let ok = client(p, &server, Some(READ), &["--token-file", &tfs, "pause", "lunch"]).await;
    assert_eq!(ok.code, 0, "{}", ok.stderr);
    assert!(ok.stdout.contains("every run, by alice"), "{}", ok.stdout);
    d.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unknown_node_exits_3_listing_every_name_and_nothing_runs() {
    let site = lifecycle_site();
    let d = Daemon::start(options(site.path())).await.unwrap();
    let server = url(&d);
    let p = site.path();
    let r = client(
        p,
        &server,
        Some(OPS),
        &["nodes", "commission", "n01", "n[07-08],bogus"],
    )
    .await;
    assert_eq!(r.code, exit_code::INVALID_CONFIG, "{}", r.stderr);
    assert!(r.stderr.contains("not in the inventory"), "{}", r.stderr);
    assert!(r.stderr.contains("nothing was run"), "{}", r.stderr);
    assert!(r.stderr.contains("unknown: n07, n08, bogus"), "{}", r.stderr);
    let m = client(
        p,
        &server,
        Some(OPS),
        &["nodes", "maintenance", "on", "n99", "--reason", "x"],
    )
    .await;
    assert_eq!(m.code, exit_code::INVALID_CONFIG, "{}", m.stderr);
    assert!(m.stderr.contains("unknown: n99"), "{}", m.stderr);
    // A host list that does not parse is refused here, naming it.
    let syntax = client(p, &server, Some(OPS), &["nodes", "decommission", "n[01-"]).await;
    assert_eq!(syntax.code, exit_code::USAGE, "{}", syntax.stderr);
    assert!(syntax.stderr.contains("`n[01-`"), "{}", syntax.stderr);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(runs_of(p).is_empty(), "nothing ran");
    assert!(files(p, "commissioned").is_empty());
    assert!(files(p, "cleaned").is_empty());
    assert!(files(p, "restarted").is_empty());
    d.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nodes_get_commission_maintenance_and_decommission_over_the_cli() {
    let site = lifecycle_site();
    let d = Daemon::start(options(site.path())).await.unwrap();
    let server = url(&d);
    let p = site.path();
    let c = client(
        p,
        &server,
        Some(OPS),
        &["nodes", "commission", "n[01-02]", "-e", "flavor=gold"],
    )
    .await;
    assert_eq!(c.code, 0, "{}", c.stderr);
    assert!(c.stdout.starts_with("commission: run "), "{}", c.stdout);
    assert!(c.stdout.contains("-commission-"), "{}", c.stdout);
    assert!(c.stdout.contains("on 2 nodes n[01-02]"), "{}", c.stdout);
    let run = c.stdout.split_whitespace().nth(2).unwrap().to_string();
    // Watching the lifecycle run ends with its verdict and exit code.
    let w = client(p, &server, Some(READ), &["runs", "watch", &run]).await;
    assert_eq!(w.code, 0, "{}{}", w.stdout, w.stderr);
    assert!(
        w.stdout.contains(&format!("run {run}: succeeded")),
        "{}",
        w.stdout
    );
    until(Duration::from_secs(30), "n01 commissioned", || {
        std::fs::read_to_string(p.join("commissioned/n01")).is_ok_and(|t| t.trim() == "gold")
    })
    .await;
    let api = Api::new(&d);
    let t = std::time::Instant::now();
    loop {
        let n = api.get("/nodes?names=n01", READ).await;
        if n.body["nodes"][0]["lifecycle"] == "commissioned" {
            break;
        }
        assert!(t.elapsed() < Duration::from_secs(30), "{}", n.text);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // `nodes get` with a subset: an unknown name is ignored (seed 002).
    let g = client(p, &server, Some(READ), &["nodes", "get", "n01,n03", "nosuch"]).await;
    assert_eq!(g.code, 0, "{}", g.stderr);
    let lines: Vec<&str> = g.stdout.lines().collect();
    assert_eq!(lines.len(), 3, "a header and two nodes: {}", g.stdout);
    assert!(
        lines[0].starts_with("NODE") && lines[0].contains("HA GROUP"),
        "{}",
        g.stdout
    );
    assert!(
        lines[1].starts_with("n01") && lines[1].contains("commissioned"),
        "{}",
        g.stdout
    );
    assert!(
        lines[2].starts_with("n03") && lines[2].contains("pair"),
        "{}",
        g.stdout
    );
    let gj = client(p, &server, Some(READ), &["nodes", "get", "--json"]).await;
    assert_eq!(parse(&gj)["nodes"].as_array().unwrap().len(), 4);

    let m = client(
        p,
        &server,
        Some(OPS),
        &["nodes", "maintenance", "on", "n03", "--reason", "dimm swap"],
    )
    .await;
    assert_eq!(m.code, 0, "{}", m.stderr);
    assert!(m.stdout.starts_with("maintenance: run "), "{}", m.stdout);
    assert!(m.stdout.contains("-restart-"), "{}", m.stdout);
    let t = std::time::Instant::now();
    loop {
        let l = client(p, &server, Some(READ), &["nodes", "maintenance", "list"]).await;
        if l.stdout.contains("dimm swap") {
            assert!(
                l.stdout.lines().nth(1).unwrap().starts_with("n03"),
                "{}",
                l.stdout
            );
            assert!(l.stdout.contains("alice"), "{}", l.stdout);
            break;
        }
        assert!(t.elapsed() < Duration::from_secs(30), "{}", l.stdout);
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(files(p, "restarted").contains(&"n03".to_string()));
    let off = client(
        p,
        &server,
        Some(OPS),
        &["nodes", "maintenance", "off", "n03", "--json"],
    )
    .await;
    assert_eq!(off.code, 0, "{}", off.stderr);
    assert_eq!(parse(&off)["state"], "off");
    // Options the API cannot honour are refused, not dropped.
    let drain = client(
        p,
        &server,
        Some(OPS),
        &["nodes", "maintenance", "on", "n03", "--reason", "x", "--drain"],
    )
    .await;
    assert_eq!(drain.code, exit_code::USAGE, "{}", drain.stderr);

    let dc = client(
        p,
        &server,
        Some(OPS),
        &[
            "nodes",
            "decommission",
            "n04",
            "--extra-vars",
            r#"{"flavor": "gone"}"#,
        ],
    )
    .await;
    assert_eq!(dc.code, 0, "{}", dc.stderr);
    until(Duration::from_secs(30), "n04 cleaned", || {
        std::fs::read_to_string(p.join("cleaned/n04")).is_ok_and(|t| t.trim() == "gone")
    })
    .await;
    d.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pause_resume_and_the_control_of_one_run() {
    let site = lifecycle_site();
    let d = Daemon::start(options(site.path())).await.unwrap();
    let api = Api::new(&d);
    let server = url(&d);
    let p = site.path();
    let pz = client(p, &server, Some(OPS), &["pause", "fixing the playbook"]).await;
    assert_eq!(pz.code, 0, "{}", pz.stderr);
    assert!(pz.stdout.contains("paused all runs"), "{}", pz.stdout);
    let s = client(p, &server, Some(READ), &["status"]).await;
    assert!(s.stdout.contains("every run, by alice since"), "{}", s.stdout);
    assert!(s.stdout.contains(": fixing the playbook"), "{}", s.stdout);
    let r = client(p, &server, Some(OPS), &["resume", "--json"]).await;
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(parse(&r)["paused"], Value::Null);

    let id = finished_run(&api).await;
    let rp = client(p, &server, Some(OPS), &["runs", "pause", &id]).await;
    assert_eq!(rp.code, 0, "{}", rp.stderr);
    let shown = client(p, &server, Some(READ), &["runs", "show", &id]).await;
    assert!(shown.stdout.contains("paused by alice"), "{}", shown.stdout);
    let ru = client(p, &server, Some(OPS), &["runs", "resume", &id]).await;
    assert_eq!(ru.code, 0, "{}", ru.stderr);
    let shown = client(p, &server, Some(READ), &["runs", "show", &id, "--json"]).await;
    assert_eq!(parse(&shown)["paused"], Value::Null);
    let reason = client(p, &server, Some(OPS), &["runs", "pause", &id, "--reason", "x"]).await;
    assert_eq!(reason.code, exit_code::USAGE, "{}", reason.stderr);
    // An ended run has nothing to abort: the daemon's 409.
    let ab = client(p, &server, Some(OPS), &["runs", "abort", &id]).await;
    assert_eq!(ab.code, exit_code::NODES_LEASED, "{}", ab.stderr);
    assert!(ab.stderr.contains("not in flight"), "{}", ab.stderr);
    let cancel = client(p, &server, Some(OPS), &["runs", "cancel", &id]).await;
    assert_eq!(cancel.code, exit_code::USAGE);
    assert!(cancel.stderr.contains("drover runs abort"), "{}", cancel.stderr);
    d.shutdown().await.unwrap();
}

/// A site whose `slow` workflow takes `secs` per node and fails on `vars.fail_on`.
fn slow_site(secs: &str) -> Site {
    let site = lifecycle_site();
    let root = site.path().display().to_string();
    site.write(
        "workflows/slow.yml",
        &format!(
            "name: slow\nversion: 1\ntargets: {{ nodes: [\"@compute\"] }}\nvars: {{ fail_on: none }}\n\
             strategy: {{ batch: 1, failure_budget: {{ per_batch: 1, per_run: 1 }} }}\n\
             steps:\n  - name: work\n    run: sleep {secs} && test \"$DROVER_NODE\" != {{{{ vars.fail_on }}}} && touch {root}/marks/$DROVER_NODE\n\
             \x20   check: test -e {root}/marks/$DROVER_NODE\n    change: hot\n"
        ),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn runs_watch_shows_the_progress_and_exits_with_the_runs_outcome() {
    let site = slow_site("0.4");
    let d = Daemon::start(options(site.path())).await.unwrap();
    let api = Api::new(&d);
    let server = url(&d);
    let p = site.path();
    let r = api.post("/runs", OPS, json!({"workflow": "slow"})).await;
    assert_eq!(r.status, 202, "{}", r.text);
    let id = r.body["run_id"].as_str().unwrap().to_string();
    let w = client(p, &server, Some(READ), &["runs", "watch", &id]).await;
    assert_eq!(w.code, 0, "{}{}", w.stdout, w.stderr);
    // The reporter of a local run: a line per finished node, the step summary, the verdict.
    assert!(w.stdout.contains("  n04: ok"), "{}", w.stdout);
    assert!(w.stdout.contains("steps:"), "{}", w.stdout);
    assert!(w.stdout.contains(&format!("run {id}: succeeded")), "{}", w.stdout);
    assert!(w.stdout.contains("succeeded        4  n[01-04]"), "{}", w.stdout);

    // One node fails within the budget: exit 6, as `drover run` would.
    for f in files(p, "marks") {
        std::fs::remove_file(p.join("marks").join(f)).unwrap();
    }
    let r = api
        .post(
            "/runs",
            OPS,
            json!({"workflow": "slow", "extra_vars": {"fail_on": "n03"}}),
        )
        .await;
    assert_eq!(r.status, 202, "{}", r.text);
    let id = r.body["run_id"].as_str().unwrap().to_string();
    let w = client(p, &server, Some(READ), &["runs", "watch", &id]).await;
    assert_eq!(w.code, exit_code::NODES_FAILED, "{}{}", w.stdout, w.stderr);
    assert!(w.stdout.contains("n03: step `work` failed"), "{}", w.stdout);
    assert!(
        w.stdout
            .contains("completed with 1 failed node within the failure budget"),
        "{}",
        w.stdout
    );
    // --json: the stream's events, one JSON document a line, ending with `end`.
    let j = client(p, &server, Some(READ), &["runs", "watch", &id, "--json"]).await;
    assert_eq!(j.code, exit_code::NODES_FAILED, "{}", j.stderr);
    let docs: Vec<Value> = j
        .stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(docs[0]["run"]["id"], id.as_str());
    assert_eq!(docs.last().unwrap()["event"], "end");

    // Aborted while it runs: the verdict says so, exit 5 (stopped), as a local run
    // stopped early; the watch was not interrupted, so not 130.
    for f in files(p, "marks") {
        std::fs::remove_file(p.join("marks").join(f)).unwrap();
    }
    let r = api.post("/runs", OPS, json!({"workflow": "slow"})).await;
    assert_eq!(r.status, 202, "{}", r.text);
    let id = r.body["run_id"].as_str().unwrap().to_string();
    let watching = {
        let (p, server, id) = (p.to_path_buf(), server.clone(), id.clone());
        tokio::spawn(async move { client(&p, &server, Some(READ), &["runs", "watch", &id]).await })
    };
    until(Duration::from_secs(30), "the canary done", || {
        p.join("marks/n01").exists()
    })
    .await;
    let a = api.post(&format!("/runs/{id}/abort"), OPS, json!({})).await;
    assert_eq!(a.status, 202, "{}", a.text);
    let w = watching.await.unwrap();
    assert_eq!(w.code, exit_code::RUN_STOPPED, "{}{}", w.stdout, w.stderr);
    assert!(
        w.stdout.contains(&format!("run {id}: STOPPED: aborted")),
        "{}",
        w.stdout
    );
    assert!(!p.join("marks/n04").exists(), "the abort stopped the rollout");
    d.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_that_is_down_is_one_clear_line_and_its_exit_code() {
    let site = lifecycle_site();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let server = format!("http://127.0.0.1:{port}");
    for args in [
        &["status"][..],
        &["runs", "list"],
        &["runs", "watch", "x"],
        &["nodes", "get"],
    ] {
        let o = client(site.path(), &server, Some(READ), args).await;
        assert_eq!(o.code, exit_code::SERVER_UNREACHABLE, "{args:?}: {}", o.stderr);
        assert_eq!(o.stderr.lines().count(), 1, "{}", o.stderr);
        assert!(
            o.stderr
                .starts_with(&format!("error: cannot reach the drover server at {server}: ")),
            "{}",
            o.stderr
        );
        assert!(o.stderr.to_lowercase().contains("refused"), "{}", o.stderr);
    }
    let bad = client(site.path(), "127.0.0.1:8470", Some(READ), &["status"]).await;
    assert_eq!(bad.code, exit_code::USAGE, "{}", bad.stderr);
    assert!(bad.stderr.contains("--server `127.0.0.1:8470`"), "{}", bad.stderr);
}

#[test]
fn without_a_server_runs_reads_the_local_store_and_daemon_commands_say_what_they_need() {
    let site = Site::new();
    let out = site.run(&["runs", "list", "--state", "succeeded"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let bad = site.run(&["runs", "list", "--state", "bogus"]);
    assert_eq!(bad.code, exit_code::USAGE, "{}", bad.stderr);
    assert!(
        bad.stderr.contains("expected one of running, succeeded"),
        "{}",
        bad.stderr
    );
    for args in [
        &["status"][..],
        &["runs", "watch", "x"],
        &["runs", "abort", "x"],
        &["nodes", "get"],
    ] {
        let o = site.run(args);
        assert_eq!(o.code, exit_code::USAGE, "{args:?}");
        assert!(
            o.stderr.contains("asks a daemon: pass --server URL"),
            "{}",
            o.stderr
        );
    }
}

/// `drover serve` as a process on `port`, its log in `site/LOG`.
fn serve(site: &Path, port: u16, log: &str) -> std::process::Child {
    let err = std::fs::File::create(site.join(log)).unwrap();
    std::process::Command::new(drover_bin())
        .args(["serve", "--site"])
        .arg(site)
        .args([
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--shutdown-deadline",
            "30s",
        ])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(err)
        .spawn()
        .expect("drover serve")
}

async fn answering(api: &Api) {
    let t = std::time::Instant::now();
    loop {
        if let Ok(r) = api.http.get(format!("{}/openapi.json", api.base)).send().await
            && r.status().is_success()
        {
            return;
        }
        assert!(
            t.elapsed() < Duration::from_secs(30),
            "drover serve never answered"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The daemon is killed (-9) under a watch; a new one on the same address resumes the
/// run. The watch notices the broken stream, opens it again, follows the resumed run
/// to its end and exits with its outcome.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn runs_watch_reopens_a_broken_stream_and_follows_the_run_a_restarted_daemon_resumed() {
    let site = slow_site("1.5");
    let p = site.path().to_path_buf();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let server = format!("http://127.0.0.1:{port}");
    let api = Api {
        base: format!("{server}/api/v1"),
        http: reqwest::Client::new(),
    };
    let mut first = serve(&p, port, "serve1.log");
    answering(&api).await;
    let r = api.post("/runs", OPS, json!({"workflow": "slow"})).await;
    assert_eq!(r.status, 202, "{}", r.text);
    let id = r.body["run_id"].as_str().unwrap().to_string();
    let watching = {
        let (p, server, id) = (p.clone(), server.clone(), id.clone());
        tokio::spawn(async move { client(&p, &server, Some(READ), &["runs", "watch", &id]).await })
    };
    until(Duration::from_secs(30), "n02 done", || {
        p.join("marks/n02").exists()
    })
    .await;
    first.kill().unwrap();
    first.wait().unwrap();
    let mut second = serve(&p, port, "serve2.log");
    let w = watching.await.unwrap();
    let pid = rustix::process::Pid::from_raw(i32::try_from(second.id()).unwrap()).unwrap();
    rustix::process::kill_process(pid, rustix::process::Signal::TERM).unwrap();
    second.wait().unwrap();
    let log = std::fs::read_to_string(p.join("serve2.log")).unwrap_or_default();
    assert_eq!(w.code, 0, "{}\n{}\n{log}", w.stdout, w.stderr);
    assert!(
        w.stderr.contains(&format!("the event stream of run {id} broke")),
        "{}",
        w.stderr
    );
    assert!(
        w.stderr.contains("reconnected to the event stream"),
        "{}",
        w.stderr
    );
    assert!(w.stdout.contains(&format!("run {id}: succeeded")), "{}", w.stdout);
    assert!(
        w.stdout.contains("  n04: ok"),
        "the resumed run's progress: {}",
        w.stdout
    );
    for n in ["n01", "n02", "n03", "n04"] {
        assert!(p.join("marks").join(n).exists(), "{n}");
    }
}

/// On real sshd nodes with drain steps (a fake scheduler): `runs watch` shows each
/// node's drain cycle as a local run does, and a run that completes exits 0.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn runs_watch_on_real_ssh_nodes_shows_their_drain_cycles() {
    let b = crate::api_ssh::bed(3, 1);
    let d = Daemon::start(options(b.site.path())).await.unwrap();
    let api = Api::new(&d);
    let r = api.post("/runs", OPS, json!({"workflow": "w"})).await;
    assert_eq!(r.status, 202, "{}", r.text);
    let id = r.body["run_id"].as_str().unwrap().to_string();
    let w = client(b.site.path(), &url(&d), Some(READ), &["runs", "watch", &id]).await;
    assert_eq!(w.code, 0, "{}{}", w.stdout, w.stderr);
    let last = crate::bed::node(2);
    for state in ["draining", "drained", "resumed"] {
        assert!(
            w.stdout.contains(&format!("  {last}: {state}")),
            "{state}: {}",
            w.stdout
        );
    }
    assert!(w.stdout.contains(&format!("  {last}: ok")), "{}", w.stdout);
    assert!(w.stdout.contains(&format!("run {id}: succeeded")), "{}", w.stdout);
    for i in 0..3 {
        assert!(b.has(i, "patched"));
    }
    d.shutdown().await.unwrap();
}

/// `drover nodes discover` through the daemon on real sshd hosts, under `host_key_policy:
/// strict` with only node001's key trusted: the table shows each outcome as what it is
/// (node001 discovered with its hostname, CPUs and key type; node002's key refused; a
/// dead port unreachable, with why), exits 6 because some were not discovered, `--json`
/// is the server's answer, an invalid address exits 3 and probes nothing, and `nodes
/// get` then shows node001 as discovered.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nodes_discover_over_the_cli_probes_real_sshd_hosts_and_shows_each_outcome() {
    let b = crate::api_ssh::strict_discover_bed();
    let d = Daemon::start(options(b.site.path())).await.unwrap();
    let user = b.tb.user().to_string();
    let nodes = b.tb.nodes();
    let known = format!("{user}@{}:{}", nodes[0].host, nodes[0].port);
    let unknown = format!("{user}@{}:{}", nodes[1].host, nodes[1].port);
    let dead = format!("{user}@127.0.0.1:{}", crate::api_ssh::dead_port());
    let site = b.site.path();
    let o = client(
        site,
        &url(&d),
        Some(ADMIN),
        &["nodes", "discover", &known, &unknown, &dead],
    )
    .await;
    assert_eq!(o.code, exit_code::NODES_FAILED, "{}{}", o.stdout, o.stderr);
    let row = |addr: &str| {
        o.stdout
            .lines()
            .find(|l| l.starts_with(addr))
            .unwrap_or_else(|| panic!("no row for {addr}:\n{}", o.stdout))
            .to_string()
    };
    let cpus = std::thread::available_parallelism().unwrap().get().to_string();
    let key_type = crate::api_ssh::host_key_of(&b, 0)
        .split_whitespace()
        .next()
        .unwrap()
        .to_string();
    let first = row(&known);
    let words: Vec<&str> = first.split_whitespace().collect();
    assert_eq!(words[1], "discovered", "{first}");
    assert!(
        words.contains(&cpus.as_str()) && words.contains(&key_type.as_str()),
        "{first}"
    );
    let second = row(&unknown);
    assert!(second.contains("host key rejected: "), "{second}");
    assert!(!second.contains("unreachable"), "{second}");
    let third = row(&dead);
    assert!(
        third.contains("unreachable: ") && third.contains("refused"),
        "{third}"
    );
    assert!(
        o.stdout.contains("2 of 3 addresses not discovered"),
        "{}",
        o.stdout
    );

    let j = client(
        site,
        &url(&d),
        Some(ADMIN),
        &["nodes", "discover", "--json", &unknown],
    )
    .await;
    assert_eq!(j.code, exit_code::NODES_FAILED, "{}{}", j.stdout, j.stderr);
    assert_eq!(
        parse(&j)["results"][0]["status"],
        "host_key_rejected",
        "{}",
        j.stdout
    );

    let bad = client(
        site,
        &url(&d),
        Some(ADMIN),
        &["nodes", "discover", &known, "no such host!"],
    )
    .await;
    assert_eq!(
        bad.code,
        exit_code::INVALID_CONFIG,
        "{}{}",
        bad.stdout,
        bad.stderr
    );
    assert!(bad.stderr.contains("no such host!"), "{}", bad.stderr);

    let g = client(site, &url(&d), Some(READ), &["nodes", "get", "--json"]).await;
    assert_eq!(g.code, 0, "{}{}", g.stdout, g.stderr);
    let listed = parse(&g);
    let listed = listed["nodes"].as_array().unwrap();
    assert_eq!(
        listed.len(),
        1,
        "only the discovered host, which is node001: {listed:?}"
    );
    assert_eq!(listed[0]["name"], "node001");
    assert_eq!(listed[0]["lifecycle"], "discovered");
    d.shutdown().await.unwrap();
}

/// Ctrl-C stops the watch (exit 130, saying the run goes on), not the run.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ctrl_c_stops_watching_and_the_run_goes_on() {
    use tokio::io::{AsyncBufReadExt, AsyncReadExt};
    let site = slow_site("0.5");
    let d = Daemon::start(options(site.path())).await.unwrap();
    let api = Api::new(&d);
    let r = api.post("/runs", OPS, json!({"workflow": "slow"})).await;
    assert_eq!(r.status, 202, "{}", r.text);
    let id = r.body["run_id"].as_str().unwrap().to_string();
    let mut child = tokio::process::Command::new(drover_bin())
        .args(["runs", "watch", &id])
        .current_dir(site.path())
        .env("NO_COLOR", "1")
        .env("DROVER_SERVER", url(&d))
        .env("DROVER_TOKEN", READ)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = tokio::io::BufReader::new(child.stdout.take().unwrap());
    let mut header = String::new();
    stdout.read_line(&mut header).await.unwrap();
    assert!(header.starts_with(&format!("run {id}: ")), "{header}");
    let pid = rustix::process::Pid::from_raw(i32::try_from(child.id().unwrap()).unwrap()).unwrap();
    rustix::process::kill_process(pid, rustix::process::Signal::INT).unwrap();
    let status = tokio::time::timeout(Duration::from_secs(10), child.wait())
        .await
        .expect("the watch ended at Ctrl-C")
        .unwrap();
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .await
        .unwrap();
    assert_eq!(status.code(), Some(exit_code::INTERRUPTED), "{stderr}");
    assert!(
        stderr.contains(&format!("stopped watching; run {id} goes on")),
        "{stderr}"
    );
    let t = std::time::Instant::now();
    loop {
        let s = api.get(&format!("/runs/{id}"), READ).await;
        if s.body["run"]["status"] == "succeeded" {
            break;
        }
        assert!(
            t.elapsed() < Duration::from_secs(30),
            "the run went on to its end: {}",
            s.text
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    d.shutdown().await.unwrap();
}
