//! The cluster as a plan sees it: every node's state and partitions, and its running jobs.

use std::collections::BTreeMap;

use super::node_status::NodeStatus;
use super::slurm_client::SlurmClient;
use super::slurm_error::SlurmError;
use crate::hostlist::expand;

/// Jobs on one node: how many, and when the last one's time limit ends.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NodeJobs {
    pub running: usize,
    /// The latest end time of its jobs as `squeue %e` prints it (`2026-12-01T21:00:00`,
    /// slurmctld's local time: such strings order like the times they name). `None`: a
    /// job without a time limit.
    pub last_end: Option<String>,
}

/// One `sinfo` and one `squeue`, taken when the run is planned.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SlurmView {
    pub nodes: BTreeMap<String, NodeStatus>,
    pub jobs: BTreeMap<String, NodeJobs>,
}

/// Where a node goes in `order: soonest_idle`, and why: idle nodes first, then those
/// whose jobs end soonest (by their time limits, so an upper bound), then those with the
/// fewest running jobs.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct IdleOrder {
    /// 0: idle; 1: busy with an end time; 2: busy with a job without a time limit.
    class: u8,
    last_end: String,
    running: usize,
}

impl IdleOrder {
    /// For `plan`: why the node goes where it goes.
    pub fn describe(&self) -> String {
        match self.class {
            0 => "idle".into(),
            1 => format!(
                "{} running job{}, idle by {}",
                self.running,
                if self.running == 1 { "" } else { "s" },
                self.last_end
            ),
            _ => format!(
                "{} running job{}, one without a time limit",
                self.running,
                if self.running == 1 { "" } else { "s" }
            ),
        }
    }
}

impl SlurmView {
    pub async fn read(client: &SlurmClient) -> Result<SlurmView, SlurmError> {
        let nodes = client.sinfo(None).await?;
        let jobs = parse_squeue(&client.squeue().await?);
        Ok(SlurmView { nodes, jobs })
    }

    /// Nodes Slurm has out of service now (see [`NodeStatus::unavailable`]).
    pub fn unavailable(&self, node: &str) -> bool {
        self.nodes.get(node).is_some_and(NodeStatus::unavailable)
    }

    /// Partition → its nodes, every node Slurm knows (not only the inventory's).
    pub fn partitions(&self) -> BTreeMap<String, Vec<String>> {
        let mut out: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for (node, s) in &self.nodes {
            for p in &s.partitions {
                out.entry(p.clone()).or_default().push(node.clone());
            }
        }
        out
    }

    pub fn idle_order(&self, node: &str) -> IdleOrder {
        match self.jobs.get(node) {
            None => IdleOrder {
                class: 0,
                last_end: String::new(),
                running: 0,
            },
            Some(j) if j.running == 0 => IdleOrder {
                class: 0,
                last_end: String::new(),
                running: 0,
            },
            Some(j) => IdleOrder {
                class: if j.last_end.is_some() { 1 } else { 2 },
                last_end: j.last_end.clone().unwrap_or_default(),
                running: j.running,
            },
        }
    }
}

/// `order: soonest_idle` from one `squeue`: `nodes` (with their names) stably sorted
/// idle first, then soonest idle, then fewest jobs (see [`IdleOrder`]). The runner asks
/// again each time a node's turn ends, so the next node is chosen by the jobs running
/// then, not by those the plan saw.
pub fn soonest_idle<T: Copy>(nodes: &[(T, &str)], jobs: &BTreeMap<String, NodeJobs>) -> Vec<T> {
    let view = SlurmView {
        nodes: BTreeMap::new(),
        jobs: jobs.clone(),
    };
    let mut v: Vec<(IdleOrder, usize, T)> = nodes
        .iter()
        .enumerate()
        .map(|(i, (id, name))| (view.idle_order(name), i, *id))
        .collect();
    v.sort_by(|a, b| (&a.0, a.1).cmp(&(&b.0, b.1)));
    v.into_iter().map(|(_, _, id)| id).collect()
}

/// Parses `squeue -h -t R,CG -o '%i|%N|%e'`: node lists are host lists, end times
/// without a limit are `Unknown`, `N/A` or `NONE`.
pub fn parse_squeue(text: &str) -> BTreeMap<String, NodeJobs> {
    let mut out: BTreeMap<String, NodeJobs> = BTreeMap::new();
    for line in text.lines() {
        let mut f = line.splitn(3, '|');
        let (Some(_id), Some(nodes), Some(end)) = (f.next(), f.next(), f.next()) else {
            continue;
        };
        let end = end.trim();
        let end = end
            .starts_with(|c: char| c.is_ascii_digit())
            .then(|| end.to_string());
        for node in expand(nodes.trim()).unwrap_or_default() {
            let j = out.entry(node).or_default();
            // One job without a limit makes the node's end unknown.
            j.last_end = if j.running == 0 {
                end.clone()
            } else {
                match (&j.last_end, &end) {
                    (Some(a), Some(b)) => Some(a.max(b).clone()),
                    _ => None,
                }
            };
            j.running += 1;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jobs_per_node_with_their_last_end() {
        let j = parse_squeue(
            "12|node[001-002]|2026-12-01T21:00:00\n13|node002|2026-12-01T21:30:00\n14|node003|Unknown\n15||N/A\n",
        );
        assert_eq!(
            j["node001"],
            NodeJobs {
                running: 1,
                last_end: Some("2026-12-01T21:00:00".into())
            }
        );
        assert_eq!(j["node002"].running, 2);
        assert_eq!(j["node002"].last_end.as_deref(), Some("2026-12-01T21:30:00"));
        assert_eq!(j["node003"].last_end, None);
        assert_eq!(j.len(), 3);
    }

    /// The same nodes in two `squeue`s: the order follows the jobs running at each.
    #[test]
    fn the_order_is_decided_from_the_jobs_running_now() {
        let nodes = [(1, "a"), (2, "b"), (3, "c")];
        let at_plan = parse_squeue("1|b|2026-12-02T06:01:00\n2|c|2026-12-02T06:02:00\n");
        assert_eq!(soonest_idle(&nodes, &at_plan), [1, 2, 3]);
        // c's job ended early, b took a longer one: c is idle now.
        let later = parse_squeue("3|b|2026-12-02T06:05:00\n4|a|2026-12-02T06:03:00\n");
        assert_eq!(soonest_idle(&nodes, &later), [3, 1, 2]);
        // Ties keep the given order.
        assert_eq!(soonest_idle(&nodes, &BTreeMap::new()), [1, 2, 3]);
    }

    #[test]
    fn idle_first_then_soonest_end_then_fewest_jobs() {
        let view = SlurmView {
            nodes: BTreeMap::new(),
            jobs: parse_squeue(
                "1|a|2026-12-01T22:00:00\n2|b|2026-12-01T21:00:00\n3|c|2026-12-01T21:00:00\n4|c|2026-12-01T20:00:00\n5|d|Unknown\n",
            ),
        };
        let mut names = vec!["d", "a", "c", "b", "idle"];
        names.sort_by_key(|n| view.idle_order(n));
        assert_eq!(names, ["idle", "b", "c", "a", "d"]);
        assert_eq!(view.idle_order("idle").describe(), "idle");
        assert_eq!(
            view.idle_order("c").describe(),
            "2 running jobs, idle by 2026-12-01T21:00:00"
        );
    }
}
