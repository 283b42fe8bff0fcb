//! The git watcher against a real repository made with git2 in a temp dir.

use std::path::Path;
use std::time::Duration;

use super::test_remote::{INVENTORY, SITE, TestRemote, ssh_keygen, workflow};
use super::{GitWatcher, Rejection, SignatureProblem, SourceEvent};
use crate::site::{AllowedSigners, GitSettings, SignedCommits};
use crate::store::{SourceVerdict, Store};

fn settings(remote: &TestRemote) -> GitSettings {
    GitSettings {
        remote: remote.url(),
        branch: "main".into(),
        poll_interval: Duration::from_secs(1),
        site_path: "".into(),
        allow_force_push: false,
        require_signed: None,
    }
}

fn watcher(settings: GitSettings, state: &Path) -> GitWatcher {
    let store = Store::open(&state.join("drover.db")).unwrap();
    GitWatcher::open(settings, state, store).unwrap()
}

/// (workflow, sha) of every rollout, in order.
fn rollouts(events: &[SourceEvent]) -> Vec<(String, String)> {
    events
        .iter()
        .flat_map(|e| match e {
            SourceEvent::Accepted { rollouts, .. } => rollouts
                .iter()
                .map(|r| (r.workflow.clone(), r.commit.sha.clone()))
                .collect(),
            _ => Vec::new(),
        })
        .collect()
}

fn rejected(events: &[SourceEvent]) -> Vec<(&str, &Rejection)> {
    events
        .iter()
        .filter_map(|e| match e {
            SourceEvent::Rejected { commit, why } => Some((commit.sha.as_str(), why)),
            _ => None,
        })
        .collect()
}

#[test]
fn a_commit_that_changes_a_workflow_rolls_out_that_workflow_at_that_commit() {
    let (remote, first) = TestRemote::with_site();
    let state = tempfile::tempdir().unwrap();
    let mut w = watcher(settings(&remote), state.path());

    // The first commit seen: every workflow is new.
    let events = w.poll().unwrap();
    let first = first.to_string();
    assert_eq!(
        rollouts(&events),
        [("a".into(), first.clone()), ("b".into(), first.clone())]
    );
    assert!(w.poll().unwrap().is_empty(), "nothing new, nothing reported");

    let change = remote.commit(&[("workflows/a.yml", &workflow("a", 2, "echo v2"))], "a: v2");
    let events = w.poll().unwrap();
    assert_eq!(rollouts(&events), [("a".into(), change.to_string())]);
    let SourceEvent::Accepted { site, rollouts, .. } = &events[0] else {
        panic!("{events:?}")
    };
    assert_eq!(rollouts[0].version, 2);
    assert_eq!(rollouts[0].commit.author, "Ada Lovelace <ada@example.com>");
    assert_eq!(rollouts[0].commit.subject, "a: v2");
    // The site is read from the commit, and runs use the daemon's state dir.
    assert_eq!(site.project.site.state_dir, state.path());
    assert!(
        site.tree
            .starts_with(std::fs::canonicalize(state.path()).unwrap())
    );

    let head = Store::open(&state.path().join("drover.db"))
        .unwrap()
        .source_head()
        .unwrap()
        .unwrap();
    assert_eq!(head.good.as_deref(), Some(change.to_string().as_str()));
    assert_eq!(head.seen, change.to_string());
}

#[test]
fn an_inventory_only_commit_starts_nothing_and_a_template_change_rolls_its_workflow() {
    let (remote, _) = TestRemote::with_site();
    let state = tempfile::tempdir().unwrap();
    let mut w = watcher(settings(&remote), state.path());
    w.poll().unwrap();

    remote.commit(
        &[("inventory.yml", &format!("{INVENTORY}  n5: {{}}\n"))],
        "add n5",
    );
    let events = w.poll().unwrap();
    assert!(
        matches!(&events[..], [SourceEvent::Accepted { rollouts, .. }] if rollouts.is_empty()),
        "{events:?}"
    );

    let with_template = "name: b\nversion: 1\ntargets:\n  nodes: [\"n[1-4]\"]\nsteps:\n  - name: motd\n    template: { src: motd.j2, dest: /tmp/motd }\n    change: hot\n";
    remote.commit(
        &[
            ("workflows/b.yml", with_template),
            ("workflows/motd.j2", "hello\n"),
        ],
        "b: motd",
    );
    assert_eq!(rollouts(&w.poll().unwrap()).len(), 1);
    // Only the template's content changes: the workflow using it rolls out.
    let c = remote.commit(&[("workflows/motd.j2", "hello again\n")], "motd text");
    assert_eq!(rollouts(&w.poll().unwrap()), [("b".into(), c.to_string())]);
    // A whitespace-only change of the site config rolls nothing.
    remote.commit(&[("drover.yml", &format!("{SITE}\n"))], "blank line");
    assert_eq!(rollouts(&w.poll().unwrap()), Vec::<(String, String)>::new());
}

#[test]
fn an_invalid_commit_runs_nothing_is_reported_with_its_diagnostics_and_the_next_good_one_runs() {
    let (remote, first) = TestRemote::with_site();
    let state = tempfile::tempdir().unwrap();
    let mut w = watcher(settings(&remote), state.path());
    w.poll().unwrap();

    let bad = remote.commit(
        &[(
            "workflows/a.yml",
            "name: a\nversion: 2\ntargets:\n  nodes: [\"n[1-4]\"]\nstepz: []\n",
        )],
        "a: typo",
    );
    let events = w.poll().unwrap();
    assert_eq!(rollouts(&events), Vec::<(String, String)>::new());
    let r = rejected(&events);
    assert_eq!(r.len(), 1, "{events:?}");
    assert_eq!(r[0].0, bad.to_string());
    let Rejection::Invalid(diags) = r[0].1 else {
        panic!("{:?}", r[0].1)
    };
    // Located in the repository's terms, as `drover validate` prints them.
    assert!(diags.iter().all(|d| d.file == "workflows/a.yml"), "{diags:?}");
    let text = r[0].1.render();
    assert!(text.contains("workflows/a.yml:5:1"), "{text}");
    assert!(text.contains("stepz"), "{text}");
    assert!(
        !text.contains(&state.path().display().to_string()),
        "no export path: {text}"
    );
    assert_eq!(
        w.good(),
        Some(first.to_string()),
        "the last good commit stays in force"
    );

    let store = Store::open(&state.path().join("drover.db")).unwrap();
    let row = store.source_commit(&bad.to_string()).unwrap().unwrap();
    assert_eq!(row.verdict, SourceVerdict::Rejected);
    assert_eq!(row.detail, text);

    // The fix: compared with the last good commit, `a` changed.
    let fix = remote.commit(&[("workflows/a.yml", &workflow("a", 2, "echo v2"))], "a: fixed");
    assert_eq!(rollouts(&w.poll().unwrap()), [("a".into(), fix.to_string())]);
}

#[test]
fn commits_arriving_together_are_taken_in_order_each_validated() {
    let (remote, _) = TestRemote::with_site();
    let state = tempfile::tempdir().unwrap();
    let mut w = watcher(settings(&remote), state.path());
    w.poll().unwrap();
    let c1 = remote.commit(&[("workflows/a.yml", &workflow("a", 2, "echo 2"))], "a2");
    let c2 = remote.commit(&[("workflows/a.yml", "not: [valid")], "broken");
    let c3 = remote.commit(&[("workflows/b.yml", &workflow("b", 2, "echo 2"))], "b2");
    let events = w.poll().unwrap();
    assert_eq!(rollouts(&events), [("a".into(), c1.to_string())]);
    assert_eq!(
        rejected(&events).len(),
        2,
        "c2, and c3 which still has c2's broken a.yml: {events:?}"
    );
    assert_eq!(rejected(&events)[1].0, c3.to_string());
    let _ = c2;
}

#[test]
fn a_restarted_watcher_neither_reruns_nor_forgets_commits() {
    let (remote, _) = TestRemote::with_site();
    let state = tempfile::tempdir().unwrap();
    let mut w = watcher(settings(&remote), state.path());
    w.poll().unwrap();
    let bad = remote.commit(&[("workflows/a.yml", "name: [")], "broken");
    w.poll().unwrap();
    drop(w);

    let mut w = watcher(settings(&remote), state.path());
    assert!(w.poll().unwrap().is_empty(), "already seen");
    let site = w.in_force().unwrap().unwrap();
    assert_eq!(site.project.workflows.len(), 2);
    let store = Store::open(&state.path().join("drover.db")).unwrap();
    assert_eq!(
        store.source_commit(&bad.to_string()).unwrap().unwrap().verdict,
        SourceVerdict::Rejected
    );
    // And the next change is compared with the commit in force, not the broken one.
    let c = remote.commit(&[("workflows/a.yml", &workflow("a", 3, "echo 3"))], "a3");
    assert_eq!(rollouts(&w.poll().unwrap()), [("a".into(), c.to_string())]);
}

#[test]
fn a_force_push_is_reported_and_not_followed_unless_allowed() {
    let (remote, first) = TestRemote::with_site();
    let state = tempfile::tempdir().unwrap();
    let mut w = watcher(settings(&remote), state.path());
    w.poll().unwrap();
    let second = remote.commit(&[("workflows/a.yml", &workflow("a", 2, "echo 2"))], "a2");
    w.poll().unwrap();

    remote.reset_to(first);
    let rewritten = remote.commit(&[("workflows/b.yml", &workflow("b", 9, "echo 9"))], "rewritten");
    let events = w.poll().unwrap();
    assert!(
        matches!(&events[..], [SourceEvent::HistoryRewritten { from, to, followed: false }]
            if *from == second.to_string() && to.sha == rewritten.to_string()),
        "{events:?}"
    );
    assert!(w.poll().unwrap().is_empty(), "reported once");
    assert_eq!(w.good(), Some(second.to_string()));

    let mut allowed = settings(&remote);
    allowed.allow_force_push = true;
    let state2 = tempfile::tempdir().unwrap();
    let mut w = watcher(allowed.clone(), state2.path());
    remote.reset_to(second);
    w.poll().unwrap();
    remote.reset_to(rewritten);
    let events = w.poll().unwrap();
    assert!(
        matches!(&events[0], SourceEvent::HistoryRewritten { followed: true, .. }),
        "{events:?}"
    );
    // Compared with the commit in force (a at v2), the rewritten tip changes both.
    assert_eq!(
        rollouts(&events),
        [
            ("a".into(), rewritten.to_string()),
            ("b".into(), rewritten.to_string())
        ]
    );
}

#[test]
fn an_unreachable_remote_is_retried_with_backoff_and_reported() {
    let (remote, _) = TestRemote::with_site();
    let state = tempfile::tempdir().unwrap();
    let mut s = settings(&remote);
    s.remote = state.path().join("no-such-repo").to_string_lossy().into_owned();
    s.poll_interval = Duration::from_secs(10);
    let mut w = watcher(s, state.path());
    let mut delays = Vec::new();
    for _ in 0..3 {
        let events = w.poll().unwrap();
        let [
            SourceEvent::FetchFailed {
                failures,
                retry_in,
                error,
            },
        ] = &events[..]
        else {
            panic!("{events:?}")
        };
        assert!(error.contains("no-such-repo"), "{error}");
        delays.push((*failures, *retry_in));
    }
    let s = Duration::from_secs;
    assert_eq!(delays, [(1, s(10)), (2, s(20)), (3, s(40))]);
    assert_eq!(w.next_delay(), s(40));

    // The remote is back (its URL fixed in the config): the watcher says so and goes on.
    drop(w);
    let mut w = watcher(settings(&remote), state.path());
    let events = w.poll().unwrap();
    assert_eq!(rollouts(&events).len(), 2);
}

#[test]
fn with_signatures_required_only_commits_signed_by_a_listed_key_run() {
    let keys = tempfile::tempdir().unwrap();
    let (alice, alice_pub) = ssh_keygen(keys.path(), "alice");
    let (mallory, _) = ssh_keygen(keys.path(), "mallory");
    let signers =
        AllowedSigners::parse(&format!("alice@example.com namespaces=\"git\" {alice_pub}\n")).unwrap();

    let remote = TestRemote::new();
    let state = tempfile::tempdir().unwrap();
    let mut s = settings(&remote);
    s.require_signed = Some(SignedCommits {
        allowed_signers_file: keys.path().join("allowed_signers"),
        signers,
    });
    let mut w = watcher(s, state.path());

    let site = [
        ("drover.yml", SITE),
        ("inventory.yml", INVENTORY),
        ("workflows/a.yml", &workflow("a", 1, "true") as &str),
    ];
    let unsigned = remote.commit(&site, "unsigned");
    let events = w.poll().unwrap();
    assert!(
        matches!(&rejected(&events)[..], [(sha, Rejection::Signature(SignatureProblem::Unsigned))] if *sha == unsigned.to_string()),
        "{events:?}"
    );

    let by_mallory = remote.commit_signed(
        &[("workflows/a.yml", &workflow("a", 2, "id"))],
        "mallory's",
        &mallory,
    );
    let events = w.poll().unwrap();
    assert!(
        matches!(&rejected(&events)[..], [(sha, Rejection::Signature(SignatureProblem::UnknownKey(_)))] if *sha == by_mallory.to_string()),
        "{events:?}"
    );

    let by_alice = remote.commit_signed(
        &[("workflows/a.yml", &workflow("a", 3, "true"))],
        "alice's",
        &alice,
    );
    let events = w.poll().unwrap();
    assert_eq!(rollouts(&events), [("a".into(), by_alice.to_string())]);
    let SourceEvent::Accepted { signature, .. } = &events[0] else {
        panic!()
    };
    assert_eq!(signature.as_ref().unwrap().principals, ["alice@example.com"]);

    // Alice's signature moved onto other content (a commit object she did not sign).
    let head = remote.repo.find_commit(by_alice).unwrap();
    let tree = head.tree().unwrap();
    let who = git2::Signature::now("Mallory", "m@example.com").unwrap();
    let forged = remote
        .repo
        .commit_create_buffer(&who, &who, "forged", &tree, &[&head])
        .unwrap();
    let (alice_sig, _) = remote.repo.extract_signature(&by_alice, None).unwrap();
    let forged = remote
        .repo
        .commit_signed(
            std::str::from_utf8(&forged).unwrap(),
            std::str::from_utf8(&alice_sig).unwrap(),
            None,
        )
        .unwrap();
    remote
        .repo
        .reference("refs/heads/main", forged, true, "forged")
        .unwrap();
    let events = w.poll().unwrap();
    assert!(
        matches!(
            &rejected(&events)[..],
            [(_, Rejection::Signature(SignatureProblem::Bad(_)))]
        ),
        "{events:?}"
    );
}

#[test]
fn the_site_may_live_in_a_directory_of_the_repository() {
    let remote = TestRemote::new();
    remote.commit(
        &[
            (
                "ops/site/drover.yml",
                "transport: local\nworkflows: ../workflows\n",
            ),
            ("ops/site/inventory.yml", INVENTORY),
            ("ops/workflows/a.yml", &workflow("a", 1, "true")),
            ("README", "not the site"),
        ],
        "site in ops/site",
    );
    let state = tempfile::tempdir().unwrap();
    let mut s = settings(&remote);
    s.site_path = "ops/site".into();
    let mut w = watcher(s, state.path());
    assert_eq!(rollouts(&w.poll().unwrap()).len(), 1);
    remote.remove("ops/site/inventory.yml");
    let c = remote.commit(&[], "inventory gone");
    let events = w.poll().unwrap();
    let r = rejected(&events);
    assert_eq!(r[0].0, c.to_string());
    assert!(
        r[0].1.render().contains("ops/site/inventory.yml"),
        "{}",
        r[0].1.render()
    );
}

/// One pack per fetch would keep growing (memory and lookups per commit): past 16 they
/// are made into one, and every commit is still there to compare and follow.
#[test]
fn pack_files_do_not_pile_up_over_many_fetches() {
    let (remote, _) = TestRemote::with_site();
    let state = tempfile::tempdir().unwrap();
    let mut w = watcher(settings(&remote), state.path());
    w.poll().unwrap();
    let mut last = String::new();
    for i in 0..40 {
        let c = remote.commit(&[("workflows/a.yml", &workflow("a", 2 + i, "echo 2"))], "a");
        last = c.to_string();
        assert_eq!(rollouts(&w.poll().unwrap()), [("a".into(), last.clone())]);
    }
    let packs = std::fs::read_dir(state.path().join("git/repo.git/objects/pack"))
        .unwrap()
        .flatten()
        .filter(|e| e.path().extension().is_some_and(|x| x == "pack"))
        .count();
    assert!(packs <= 16, "{packs} pack files");
    drop(w);
    // A restart still finds the commit in force and follows on from it.
    let mut w = watcher(settings(&remote), state.path());
    assert_eq!(w.in_force().unwrap().unwrap().commit.sha, last);
    let c = remote.commit(&[("workflows/b.yml", &workflow("b", 2, "echo b"))], "b");
    assert_eq!(rollouts(&w.poll().unwrap()), [("b".into(), c.to_string())]);
}
