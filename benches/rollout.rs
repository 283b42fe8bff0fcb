//! The rollout state machine alone, driven without any I/O: how its cost grows with the
//! number of nodes, to show no decision is quadratic.
//!
//! `cargo bench --bench rollout -- [N ...]` (default: 10000 20000 40000).
//! Three runs per size, each with a canary of 10, batches of 25% and 200 in flight: hot
//! steps; drain steps under `max_unavailable: 10`; and drain steps in 100 racks
//! with one node down per rack (and no `max_unavailable` to speak of), where events pass
//! over queued nodes of full racks. A fourth run is a topology: 1,000 hypervisors listed
//! first, every other node a VM on one of them, all in one batch, so every hypervisor
//! waits (queued ahead of its VMs) until its VMs are done. Each node succeeds as soon as
//! it starts; the printed time is for the whole run, and the per-node cost should stay
//! flat as N doubles.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use drover::budget::{Disruption, Limit};
use drover::engine::{Action, Input, Rollout, RolloutSpec};
use drover::inventory::NodeId;
use drover::plan::{Budgets, Plan};
use drover::workflow::RetryPolicy;

fn main() {
    let mut sizes: Vec<usize> = std::env::args().skip(1).filter_map(|a| a.parse().ok()).collect();
    if sizes.is_empty() {
        sizes = vec![10_000, 20_000, 40_000];
    }
    println!(
        "{:>7}  {:>18}  {:>18}  {:>18}  {:>18}",
        "nodes", "hot ms (ns/node)", "drain ms (ns/node)", "racks ms (ns/node)", "hosts ms (ns/node)"
    );
    for n in sizes {
        let cell = |d: Duration| {
            format!(
                "{:.1} ({:.0})",
                d.as_secs_f64() * 1e3,
                d.as_secs_f64() * 1e9 / n as f64
            )
        };
        let hot = cell(run(n, Budget::None));
        let drain = cell(run(n, Budget::Global));
        let racks = cell(run(n, Budget::Racks));
        let hosts = cell(run(n, Budget::Hosts));
        println!("{n:>7}  {hot:>18}  {drain:>18}  {racks:>18}  {hosts:>18}");
    }
}

#[derive(Clone, Copy, PartialEq)]
enum Budget {
    None,
    Global,
    Racks,
    Hosts,
}

/// Hypervisors in the topology run.
const HYPERVISORS: usize = 1000;

fn run(n: usize, budget: Budget) -> Duration {
    let ids: Vec<NodeId> = (0..n).map(NodeId).collect();
    // VMs finish no later than their host: the topology run has one batch, no canary.
    let (canary, batches) = if budget == Budget::Hosts {
        (vec![], vec![ids.clone()])
    } else {
        let rest = &ids[10..];
        let quarter = rest.len().div_ceil(4);
        (
            ids[..10].to_vec(),
            rest.chunks(quarter).map(<[NodeId]>::to_vec).collect(),
        )
    };
    let plan = Plan {
        workflow: "bench".into(),
        version: 1,
        nodes: ids.clone(),
        excluded: vec![],
        canary,
        soak: Duration::ZERO,
        budgets: Budgets {
            failures_per_batch: batches.iter().map(|_| None).collect(),
            failures_per_run: 0,
            max_unavailable: 10,
            limits: vec![],
        },
        batches,
        window: None,
        unavailable_at_start: vec![],
        order: vec![],
        maintenance: vec![],
    };
    let mut spec = RolloutSpec::simple(
        RetryPolicy {
            count: 0,
            delay: Duration::from_secs(1),
            backoff: 1.0,
            max_delay: Duration::from_secs(1),
        },
        200,
    );
    if budget != Budget::None {
        spec.drains = ids.iter().copied().collect();
        let mut limits = vec![Limit {
            name: "max_unavailable".into(),
            max: match budget {
                Budget::Global => 10,
                // Each hypervisor takes its VMs down with it.
                Budget::Hosts => n,
                _ => n,
            },
            members: ids.clone(),
            ..Limit::default()
        }];
        if budget == Budget::Racks {
            // Rack r holds nodes r, r+R, r+2R, ...: a batch mixes every rack.
            let racks = 100;
            for r in 0..racks {
                limits.push(Limit {
                    name: format!("group `rack{r}`"),
                    max: 1,
                    members: ids.iter().copied().skip(r).step_by(racks).collect(),
                    ..Limit::default()
                });
            }
        }
        if budget == Budget::Hosts {
            // Node i >= 1000 is a VM on hypervisor i % 1000.
            let pairs: Vec<(NodeId, NodeId)> = (HYPERVISORS..n)
                .map(|v| (NodeId(v), NodeId(v % HYPERVISORS)))
                .collect();
            for (vm, host) in &pairs {
                spec.hosted.entry(*host).or_default().push(*vm);
            }
            spec.disruption = Disruption::new(limits, pairs);
        } else {
            spec.disruption = Disruption::new(limits, []);
        }
    }
    let t = Instant::now();
    let mut r = Rollout::new(&plan, spec);
    let mut running: VecDeque<NodeId> = VecDeque::new();
    let mut actions = r.start();
    let mut done = 0;
    loop {
        for a in actions.drain(..) {
            match a {
                Action::Start { node, .. } => running.push_back(node),
                Action::Finished(_) => {
                    assert_eq!(done, n, "every node ran");
                    return t.elapsed();
                }
                _ => {}
            }
        }
        let node = running.pop_front().expect("a node is running");
        done += 1;
        actions = r.handle(Input::Succeeded(node));
    }
}
