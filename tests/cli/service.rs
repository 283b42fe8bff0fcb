//! Runs through the library service (`drover::service::start`), as the daemon starts
//! them: no terminal, the story told as events, the end as an outcome, the trigger
//! recorded on the run.

use std::sync::Arc;

use drover::engine::RunEvent as EngineEvent;
use drover::project::Project;
use drover::service::{self, Outcome, RunEvent, RunRequest, Trigger};
use drover::store::Store;

use crate::support::*;

fn local_site() -> Site {
    Site::new()
        .write("drover.yml", &format!("{SITE}transport: local\n"))
        .write(
            "workflows/update.yml",
            "name: update\nversion: 1\ntargets: { nodes: [\"n[01-03]\"] }\n\
             steps:\n  - name: mark\n    run: touch {{ site.root }}/marks/$DROVER_NODE\n    change: hot\n",
        )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_service_run_records_its_trigger_and_tells_its_story_in_order() {
    let site = local_site();
    std::fs::create_dir_all(site.path().join("marks")).unwrap();
    let project = Arc::new(Project::load(site.path()).unwrap());
    let trigger = Trigger::GitCommit {
        sha: "0123456789abcdef0123".into(),
        author: "Ada <ada@example.org>".into(),
        subject: "mark every node".into(),
    };
    let (_stop, irx) = tokio::sync::watch::channel(0u32);
    let request = RunRequest::new(project, "update", trigger.clone(), irx).unwrap();
    let mut handle = service::start(request).unwrap();
    let run_id = handle.run_id.clone();
    let mut story: Vec<String> = Vec::new();
    loop {
        match handle.events.recv().await {
            Ok(RunEvent::Engine(EngineEvent::NodeChecked { .. })) => story.push("checked".into()),
            Ok(RunEvent::Engine(EngineEvent::NodeFinished { node, ok, .. })) => {
                assert!(ok, "{node}");
                story.push("finished".into());
            }
            Ok(RunEvent::Planned(p)) => {
                assert_eq!(p.plan.nodes.len(), 3);
                story.push("planned".into());
            }
            Ok(RunEvent::Recorded { run }) => {
                assert_eq!(run, run_id);
                story.push("recorded".into());
            }
            Ok(_) => {}
            Err(tokio::sync::broadcast::error::RecvError::Closed) => break,
            Err(e) => panic!("{e}"),
        }
    }
    let want: Vec<&str> = vec![
        "checked", "checked", "checked", "planned", "recorded", "finished", "finished", "finished",
    ];
    assert_eq!(
        story, want,
        "every check before the plan, the record before any node"
    );
    let Outcome::Finished(f) = handle.outcome().await else {
        panic!("the run ran");
    };
    assert_eq!(f.outcome, drover::engine::Outcome::Succeeded);
    assert_eq!(f.result.succeeded.len(), 3);
    for n in ["n01", "n02", "n03"] {
        assert!(site.path().join("marks").join(n).exists(), "{n}");
    }
    let store = Store::open_read_only(&site.path().join(".drover/drover.db")).unwrap();
    let recorded = store.trigger(&run_id).unwrap().unwrap();
    assert_eq!(serde_json::from_value::<Trigger>(recorded).unwrap(), trigger);
    let run = store.run(&run_id).unwrap().unwrap();
    assert_eq!(run.run.commit.as_deref(), Some("0123456789abcdef0123"));
}
