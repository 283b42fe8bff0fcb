//! Properties of the rollout state machine over random inventories, budgets, HA groups,
//! topologies and any interleaving of successes, failures, retries, holds and stops:
//! no limit is ever exceeded (counted from what nodes really are, not from the
//! machine's own counters), every node ends in exactly one final state, every node the
//! run may have drained is resumed or held with a reason, and nothing starts after a
//! stop, a failed canary or an exhausted failure budget; no node starts (but to retry a
//! turn begun) while a pause stands or outside the window, whose clock the world moves.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::time::Duration;

use proptest::prelude::*;

use super::rollout::{Action, Input, Outcome, Prior, Rollout, RolloutSpec, StopReason};
use crate::budget::{Disruption, Limit};
use crate::inventory::NodeId;
use crate::plan::{Budgets, Plan};
use crate::workflow::RetryPolicy;

#[derive(Debug, Clone)]
struct Case {
    n: usize,
    canary: usize,
    /// Bulk batch sizes, cycled until every node has a batch.
    batch_sizes: Vec<usize>,
    per_batch: Option<usize>,
    per_run: usize,
    forks: usize,
    retries: u32,
    /// Which nodes drain.
    drains: Vec<bool>,
    max_unavailable: usize,
    /// HA groups: disjoint runs of consecutive nodes, at most 1 down each.
    ha: Vec<(usize, usize)>,
    /// VM → host (the host's index is higher, so it is in a later or the same phase).
    hosted_on: Vec<(usize, usize)>,
    soak: bool,
    /// The world's choices, one per step.
    choices: Vec<u8>,
    /// A resumed run: where a dead controller left each node (see [`prior`]).
    priors: Option<Vec<u8>>,
}

/// Where a dead run left node `i`, from a random byte: mostly untouched.
fn prior(c: &Case, i: usize, b: u8) -> Option<Prior> {
    let drains = c.drains[i];
    match b % 10 {
        3 => Some(Prior::Succeeded),
        4 => Some(Prior::Failed { drained: false }),
        5 if drains => Some(Prior::Failed { drained: true }),
        6 if drains => Some(Prior::Held),
        7 => Some(Prior::Skipped),
        8 => Some(Prior::InProgress {
            attempt: 1 + u32::from(b % 2),
            drained: drains && b.is_multiple_of(3),
        }),
        _ => None,
    }
}

fn case() -> impl Strategy<Value = Case> {
    (2usize..24).prop_flat_map(|n| {
        (
            (
                Just(n),
                0usize..3,
                proptest::collection::vec(1usize..6, 1..4),
                proptest::option::of(0usize..3),
                0usize..4,
                1usize..5,
                0u32..3,
            ),
            (
                proptest::collection::vec(any::<bool>(), n),
                1usize..4,
                proptest::collection::vec((0usize..n, 2usize..4), 0..3),
                proptest::collection::vec((0usize..n, 0usize..n), 0..4),
                any::<bool>(),
                proptest::collection::vec(any::<u8>(), 0..300),
                proptest::option::weighted(0.3, proptest::collection::vec(any::<u8>(), n)),
            ),
        )
            .prop_map(
                |(
                    (n, canary, batch_sizes, per_batch, per_run, forks, retries),
                    (drains, max_unavailable, ha, hosts, soak, choices, priors),
                )| {
                    let mut used = HashSet::new();
                    let ha = ha
                        .into_iter()
                        .filter(|(start, len)| start + len <= n)
                        .filter(|(start, len)| (*start..start + len).all(|i| used.insert(i)))
                        .collect();
                    let mut vms = HashSet::new();
                    let hosted_on: Vec<(usize, usize)> = hosts
                        .into_iter()
                        .filter(|(vm, host)| vm < host && vms.insert(*vm) && !vms.contains(host))
                        .collect();
                    // A dead run started a draining host only after its VMs ended.
                    let mut priors = priors;
                    if let Some(p) = priors.as_mut() {
                        for &(vm, host) in &hosted_on {
                            let (vm, host): (usize, usize) = (vm, host);
                            if drains[host] && p[host] % 10 == 8 {
                                p[vm] = 3;
                            }
                        }
                    }
                    Case {
                        n,
                        canary: canary.min(n - 1),
                        batch_sizes,
                        per_batch,
                        per_run,
                        forks,
                        retries,
                        drains,
                        max_unavailable,
                        ha,
                        hosted_on,
                        soak,
                        choices,
                        priors,
                    }
                },
            )
    })
}

fn ids(r: std::ops::Range<usize>) -> Vec<NodeId> {
    r.map(NodeId).collect()
}

fn build(c: &Case) -> (Plan, RolloutSpec, Vec<Limit>) {
    let nodes = ids(0..c.n);
    let canary = ids(0..c.canary);
    let mut batches = Vec::new();
    let mut at = c.canary;
    let mut k = 0;
    while at < c.n {
        let size = c.batch_sizes[k % c.batch_sizes.len()];
        let end = (at + size).min(c.n);
        batches.push(ids(at..end));
        at = end;
        k += 1;
    }
    let mut limits = vec![Limit {
        name: "max_unavailable".into(),
        max: c.max_unavailable,
        members: nodes.clone(),
        already_out: 0,
        size: 0,
    }];
    for (i, (start, len)) in c.ha.iter().enumerate() {
        limits.push(Limit {
            name: format!("HA group `h{i}`"),
            max: 1,
            members: ids(*start..start + len),
            already_out: 0,
            size: 0,
        });
    }
    let plan = Plan {
        workflow: "prop".into(),
        version: 1,
        nodes: nodes.clone(),
        excluded: vec![],
        canary,
        soak: if c.soak {
            Duration::from_secs(60)
        } else {
            Duration::ZERO
        },
        budgets: Budgets {
            failures_per_batch: batches.iter().map(|_| c.per_batch).collect(),
            failures_per_run: c.per_run,
            max_unavailable: c.max_unavailable,
            limits: limits.clone(),
        },
        batches,
        window: None,
        unavailable_at_start: vec![],
        order: vec![],
        maintenance: vec![],
    };
    let mut hosted: HashMap<NodeId, Vec<NodeId>> = HashMap::new();
    for (vm, host) in &c.hosted_on {
        hosted.entry(NodeId(*host)).or_default().push(NodeId(*vm));
    }
    let prior = c
        .priors
        .iter()
        .flat_map(|p| p.iter().enumerate())
        .filter_map(|(i, b)| prior(c, i, *b).map(|p| (NodeId(i), p)))
        .collect();
    let spec = RolloutSpec {
        prior,
        drains: (0..c.n).filter(|i| c.drains[*i]).map(NodeId).collect(),
        disruption: Disruption::new(
            limits.clone(),
            c.hosted_on.iter().map(|(vm, host)| (NodeId(*vm), NodeId(*host))),
        ),
        hosted,
        ..RolloutSpec::simple(
            RetryPolicy {
                count: c.retries,
                delay: Duration::from_secs(1),
                backoff: 2.0,
                max_delay: Duration::from_secs(10),
            },
            c.forks,
        )
    };
    (plan, spec, limits)
}

/// What the nodes really are, as the test's world tracks them.
#[derive(Default)]
struct World {
    running: BTreeSet<usize>,
    retry_wait: BTreeSet<usize>,
    /// Physically drained (by the run): a drain node from its start until it is back.
    drained: BTreeSet<usize>,
    soaking: bool,
    started_ever: HashSet<usize>,
    /// Final state per node: "succeeded", "failed", "held", "skipped".
    finals: HashMap<usize, &'static str>,
    /// Nodes whose `NodeFailed` said drained (the runner holds them with a reason).
    held_failed: HashSet<usize>,
    failures: usize,
    stopped: bool,
    canary_failed: bool,
    outcome: Option<Outcome>,
    /// A pause is in force: no node may start but to retry a turn already begun.
    paused: bool,
}

fn business_hours() -> crate::window::Window {
    let raw: crate::window::RawWindow = serde_json::from_value(serde_json::json!({
        "timezone": "UTC", "days": ["mon-fri"], "start": "08:00", "end": "17:00", "cutoff": "1h",
    }))
    .expect("window");
    crate::window::Window::from_raw(&raw).expect("window")
}

fn a_pause() -> crate::store::Pause {
    crate::store::Pause {
        scope: crate::store::PauseScope::All,
        reason: None,
        by: "proptest".into(),
        since: jiff::Timestamp::UNIX_EPOCH,
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 1000, ..ProptestConfig::default() })]

    #[test]
    fn the_rollout_keeps_every_limit_and_ends_every_node_once(c in case()) {
        let (plan, mut spec, limits) = build(&c);
        // Half the cases run under a window (Mon-Fri 08:00-17:00 UTC, cutoff 1h) whose
        // clock the world moves; they begin on a Monday at 07:30, closed.
        let window = c.choices.first().is_some_and(|b| b % 2 == 0).then(business_hours);
        let mut now: jiff::Timestamp = "2026-12-07T07:30:00Z".parse().expect("time");
        spec.window = window.clone().map(|w| ("w".to_string(), w));
        spec.now = now;
        let drains: HashSet<usize> = (0..c.n).filter(|i| c.drains[*i]).collect();
        let host_of: HashMap<usize, usize> = c.hosted_on.iter().copied().collect();
        let canary: HashSet<usize> = (0..c.canary).collect();
        let mut r = Rollout::new(&plan, spec);
        let mut w = World::default();
        // What the dead run left: finished nodes, and drained ones.
        let mut inherited = HashSet::new();
        // Left drained mid-turn: failed (and so held) if the run stops before them.
        let mut dead_drained = HashSet::new();
        for (i, b) in c.priors.iter().flat_map(|p| p.iter().enumerate()) {
            match prior(&c, i, *b) {
                Some(Prior::Succeeded) => {
                    w.finals.insert(i, "succeeded");
                }
                Some(Prior::Failed { drained }) => {
                    w.finals.insert(i, "failed");
                    w.failures += 1;
                    if drained {
                        w.drained.insert(i);
                        w.held_failed.insert(i);
                    }
                    if canary.contains(&i) {
                        w.canary_failed = true;
                        w.stopped = true;
                    }
                }
                Some(Prior::Held) => {
                    w.finals.insert(i, "held");
                    w.drained.insert(i);
                }
                Some(Prior::Skipped) => {
                    w.finals.insert(i, "skipped");
                }
                Some(Prior::InProgress { drained: true, .. }) => {
                    w.drained.insert(i);
                    dead_drained.insert(i);
                }
                Some(Prior::InProgress { .. }) | None => {}
            }
            if w.finals.contains_key(&i) {
                inherited.insert(i);
            }
        }
        if w.failures > c.per_run {
            w.stopped = true;
        }
        // A dead run may have left a limit over its maximum (held nodes): it must
        // never grow past that, nor past the maximum otherwise.
        let down_of = |w: &World, l: &Limit| {
            // Down with their host, transitively (VMs of VMs).
            let mut down: BTreeSet<usize> = w.drained.clone();
            loop {
                let more: Vec<usize> = host_of
                    .iter()
                    .filter(|(vm, host)| down.contains(host) && !down.contains(vm))
                    .map(|(vm, _)| *vm)
                    .collect();
                if more.is_empty() {
                    break;
                }
                down.extend(more);
            }
            l.members.iter().filter(|m| down.contains(&m.0)).count()
        };
        let allowed: Vec<usize> = limits.iter().map(|l| l.max.max(down_of(&w, l))).collect();
        let mut pending = r.start();
        let mut choices = c.choices.iter().copied();
        for _ in 0..10_000 {
            for a in pending.drain(..) {
                prop_assert!(w.outcome.is_none(), "an action after the end: {a:?}");
                match a {
                    Action::Start { node, .. } => {
                        let id = node.0;
                        prop_assert!(!w.stopped, "node {id} started after a stop");
                        prop_assert!(
                            !w.paused || w.retry_wait.contains(&id),
                            "node {id} started while paused, and not to retry"
                        );
                        prop_assert!(
                            window.as_ref().is_none_or(|win| win.may_start(now)) || w.retry_wait.contains(&id),
                            "node {id} started outside the window at {now}, and not to retry"
                        );
                        prop_assert!(!w.finals.contains_key(&id), "node {id} started after its end");
                        prop_assert!(w.running.insert(id), "node {id} started twice");
                        w.retry_wait.remove(&id);
                        w.started_ever.insert(id);
                        // A host only goes down once its VMs in the run are done (one
                        // still drained, by a dead run or its last attempt, is down
                        // already).
                        if drains.contains(&id) {
                            for (vm, host) in host_of.iter().filter(|_| !w.drained.contains(&id)) {
                                if *host == id {
                                    prop_assert!(
                                        w.finals.contains_key(vm),
                                        "host {id} started before its VM {vm} ended"
                                    );
                                }
                            }
                            w.drained.insert(id);
                        }
                    }
                    Action::RetryAfter { node, .. } => {
                        prop_assert!(w.retry_wait.insert(node.0));
                    }
                    Action::NodeFailed { node, drained } => {
                        let id = node.0;
                        prop_assert!(!w.running.contains(&id), "node {id} failed while running");
                        prop_assert_eq!(drained, w.drained.contains(&id), "node {} drained flag", id);
                        prop_assert!(w.finals.insert(id, "failed").is_none(), "node {id} ended twice");
                        w.retry_wait.remove(&id);
                        w.failures += 1;
                        if drained {
                            w.held_failed.insert(id);
                        }
                        if canary.contains(&id) {
                            w.canary_failed = true;
                            w.stopped = true;
                        }
                        if w.failures > c.per_run {
                            w.stopped = true;
                        }
                    }
                    Action::Soak(_) => {
                        prop_assert!(!w.soaking);
                        w.soaking = true;
                    }
                    Action::Finished(o) => {
                        w.outcome = Some(o);
                    }
                    Action::PhaseStarted { .. } => {}
                    Action::Hold(_) => {
                        let closed = window.as_ref().is_some_and(|win| !win.may_start(now));
                        prop_assert!((w.paused || closed) && !w.stopped, "a hold without a pause or a closed window");
                    }
                    Action::Unhold => {
                        let closed = window.as_ref().is_some_and(|win| !win.may_start(now));
                        prop_assert!(!w.paused && !closed, "an unhold while paused or closed");
                    }
                    Action::WakeAt(at) => {
                        prop_assert!(window.is_some(), "a wake-up without a window");
                        prop_assert!(at > now, "a wake-up in the past");
                    }
                }
            }
            // No limit is exceeded by what is really down (a VM is down with its host).
            prop_assert!(w.running.len() <= c.forks.max(1), "more than forks in flight");
            for (l, max) in limits.iter().zip(&allowed) {
                let out = down_of(&w, l);
                prop_assert!(out <= *max, "{}: {} down of at most {}", l.name, out, max);
            }
            if w.outcome.is_some() {
                break;
            }
            // The world's next event.
            let pick = choices.next();
            let input = match pick {
                Some(x) if x % 23 == 0 => Input::Interrupt,
                Some(x) if x % 29 == 0 => Input::Stop(StopReason::LeaseLost { node: "x".into() }),
                Some(x) if x % 31 == 0 => {
                    w.paused = !w.paused;
                    Input::Pause(w.paused.then(a_pause))
                }
                Some(x) if window.is_some() && x % 37 == 0 => {
                    now = now
                        .checked_add(jiff::SignedDuration::from_mins(i64::from(x) * 7))
                        .expect("time");
                    Input::Clock(now)
                }
                Some(x) if w.soaking && x % 3 == 0 => {
                    w.soaking = false;
                    Input::SoakOver
                }
                Some(x) if !w.retry_wait.is_empty() && x % 4 == 0 => {
                    let id = *w.retry_wait.iter().nth(usize::from(x) % w.retry_wait.len()).expect("one");
                    Input::RetryDue(NodeId(id))
                }
                _ if !w.running.is_empty() => {
                    let x = pick.unwrap_or(0);
                    let id = *w.running.iter().nth(usize::from(x) % w.running.len()).expect("one");
                    w.running.remove(&id);
                    let drainy = drains.contains(&id);
                    // Without choices left, nodes succeed: the run must end.
                    match if pick.is_none() { 0 } else { x / 23 % 6 } {
                        1 | 2 => {
                            let stays = drainy && x % 2 == 0;
                            if !stays {
                                w.drained.remove(&id);
                            }
                            Input::Failed { node: NodeId(id), step: usize::from(x % 3), drained: stays }
                        }
                        3 if drainy => {
                            w.finals.insert(id, "held");
                            Input::Held(NodeId(id))
                        }
                        4 if drainy => {
                            w.drained.remove(&id);
                            w.finals.insert(id, "skipped");
                            Input::Skipped(NodeId(id))
                        }
                        5 => {
                            let stays = drainy && x % 2 == 1;
                            if !stays {
                                w.drained.remove(&id);
                            }
                            Input::GaveUp { node: NodeId(id), drained: stays }
                        }
                        _ => {
                            w.drained.remove(&id);
                            w.finals.insert(id, "succeeded");
                            Input::Succeeded(NodeId(id))
                        }
                    }
                }
                _ if w.soaking => {
                    w.soaking = false;
                    Input::SoakOver
                }
                _ if !w.retry_wait.is_empty() => {
                    let id = *w.retry_wait.iter().next().expect("one");
                    Input::RetryDue(NodeId(id))
                }
                // A paused run with nothing in flight waits for its unpause.
                _ if w.paused => {
                    w.paused = false;
                    Input::Pause(None)
                }
                // One held by its window waits for the next opening.
                _ if window.as_ref().is_some_and(|win| !win.may_start(now)) => {
                    now = window.as_ref().and_then(|win| win.next_open(now)).expect("it opens");
                    Input::Clock(now)
                }
                _ => {
                    prop_assert!(false, "nothing runs, nothing waits, and the run has not ended");
                    unreachable!()
                }
            };
            if matches!(input, Input::Interrupt | Input::Stop(_)) {
                w.stopped = true;
            }
            pending = r.handle(input);
        }
        let outcome = w.outcome.clone();
        prop_assert!(outcome.is_some(), "the run never ended");
        prop_assert!(w.running.is_empty(), "ended with nodes running: {:?}", w.running);
        prop_assert!(w.retry_wait.is_empty(), "ended with nodes waiting for a retry: {:?}", w.retry_wait);
        // Every node the run drained is back, or held: by the drain timeout or, failed,
        // by the runner with a reason.
        for id in &w.drained {
            let held = w.finals.get(id) == Some(&"held") || w.held_failed.contains(id);
            prop_assert!(held, "node {} left drained without being held", id);
        }
        // Every node that started ended in exactly one state (a second end fails
        // above); one that never started ended in none.
        for id in 0..c.n {
            let ended = w.finals.contains_key(&id);
            let started = w.started_ever.contains(&id) || inherited.contains(&id);
            let given_up = dead_drained.contains(&id) && w.finals.get(&id) == Some(&"failed");
            prop_assert!(ended == started || given_up, "node {} started {} ended {}", id, started, ended);
        }
        if w.canary_failed {
            let bulk_started = w.started_ever.iter().any(|id| !canary.contains(id));
            prop_assert!(!bulk_started, "a bulk node started although a canary failed");
        }
        match outcome {
            Some(Outcome::Succeeded) => {
                prop_assert_eq!(w.finals.values().filter(|s| **s == "succeeded").count(), c.n);
            }
            Some(Outcome::CompletedWithFailures { failed }) => {
                prop_assert!(w.failures <= c.per_run, "{} failures within a budget of {}", w.failures, c.per_run);
                prop_assert_eq!(w.finals.len(), c.n);
                prop_assert_eq!(failed, w.finals.values().filter(|s| **s != "succeeded").count());
            }
            _ => {}
        }
    }
}
