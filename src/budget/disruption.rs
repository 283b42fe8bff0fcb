//! Disruption budgets: how many nodes of a set may be unavailable at once.
//!
//! A node is unavailable while it is drained or rebooting, and so is everything it hosts
//! (a hypervisor's VMs go down with it). Nodes that were already down before the run
//! count too, and are never released: they are someone else's. Every limit counts each
//! of its members once, however many reasons it has to be down.

use std::collections::HashMap;

use crate::inventory::NodeId;

use super::blocked::Blocked;
use super::limit::Limit;

#[derive(Debug, Clone, Default)]
pub struct Disruption {
    limits: Vec<Limit>,
    /// Members currently unavailable, per limit.
    counts: Vec<usize>,
    member_of: HashMap<NodeId, Vec<usize>>,
    /// Nodes each node hosts (VMs on a hypervisor), directly.
    hosted: HashMap<NodeId, Vec<NodeId>>,
    /// How many reasons each node has to be down (its own drain, its host's).
    down: HashMap<NodeId, u32>,
}

impl Disruption {
    /// `hosted_on` maps a node to the node it runs on.
    pub fn new(limits: Vec<Limit>, hosted_on: impl IntoIterator<Item = (NodeId, NodeId)>) -> Disruption {
        let mut member_of: HashMap<NodeId, Vec<usize>> = HashMap::new();
        for (i, l) in limits.iter().enumerate() {
            for m in &l.members {
                let v = member_of.entry(*m).or_default();
                if !v.contains(&i) {
                    v.push(i);
                }
            }
        }
        let mut hosted: HashMap<NodeId, Vec<NodeId>> = HashMap::new();
        for (vm, host) in hosted_on {
            hosted.entry(host).or_default().push(vm);
        }
        Disruption {
            counts: limits.iter().map(|l| l.already_out).collect(),
            limits,
            member_of,
            hosted,
            down: HashMap::new(),
        }
    }

    pub fn limits(&self) -> &[Limit] {
        &self.limits
    }

    /// The node and everything running on it, transitively (the inventory refuses cycles;
    /// a visited set guards anyway).
    fn affected(&self, node: NodeId) -> Vec<NodeId> {
        let mut out = vec![node];
        let mut i = 0;
        while i < out.len() {
            if let Some(vms) = self.hosted.get(&out[i]) {
                for vm in vms {
                    if !out.contains(vm) {
                        out.push(*vm);
                    }
                }
            }
            i += 1;
        }
        out
    }

    /// A full limit `node` belongs to, so that `node` (up now) cannot go down:
    /// [`Disruption::check`]'s answer for most refusals, without its allocations, for
    /// the rollout to set waiting nodes aside by the limit they wait for. `None` says
    /// nothing: ask `check`.
    pub fn full_limit(&self, node: NodeId) -> Option<usize> {
        if self.down.contains_key(&node) {
            return None;
        }
        self.member_of
            .get(&node)?
            .iter()
            .copied()
            .find(|l| self.counts[*l] >= self.limits[*l].max)
    }

    /// How many more members of limit `l` may go down.
    pub fn room(&self, l: usize) -> usize {
        self.limits
            .get(l)
            .map_or(0, |lim| lim.max.saturating_sub(self.counts[l]))
    }

    /// Whether `node` may go down now without breaking a limit.
    pub fn check(&self, node: NodeId) -> Result<(), Blocked> {
        let mut extra: HashMap<usize, usize> = HashMap::new();
        for n in self.affected(node) {
            if self.down.get(&n).copied().unwrap_or(0) > 0 {
                continue;
            }
            for l in self.member_of.get(&n).into_iter().flatten() {
                *extra.entry(*l).or_default() += 1;
            }
        }
        let mut worst: Option<Blocked> = None;
        for (l, add) in extra {
            if self.counts[l] + add > self.limits[l].max
                && worst.as_ref().is_none_or(|w| w.limit > self.limits[l].name)
            {
                worst = Some(Blocked {
                    limit: self.limits[l].name.clone(),
                    max: self.limits[l].max,
                    unavailable: self.counts[l],
                });
            }
        }
        worst.map_or(Ok(()), Err)
    }

    /// Marks `node` (and what it hosts) down, whether or not a limit allows it: for nodes
    /// that were down before the run, or that a dead controller left drained.
    pub fn take(&mut self, node: NodeId) {
        for n in self.affected(node) {
            let d = self.down.entry(n).or_default();
            *d += 1;
            if *d == 1 {
                for l in self.member_of.get(&n).into_iter().flatten() {
                    self.counts[*l] += 1;
                }
            }
        }
    }

    /// Undoes one [`Disruption::take`] of `node`.
    pub fn release(&mut self, node: NodeId) {
        for n in self.affected(node) {
            let Some(d) = self.down.get_mut(&n) else { continue };
            *d = d.saturating_sub(1);
            if *d == 0 {
                self.down.remove(&n);
                for l in self.member_of.get(&n).into_iter().flatten() {
                    self.counts[*l] = self.counts[*l].saturating_sub(1);
                }
            }
        }
    }

    /// Members of each limit unavailable now, index-aligned with [`Disruption::limits`].
    pub fn counts(&self) -> &[usize] {
        &self.counts
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(v: &[usize]) -> Vec<NodeId> {
        v.iter().map(|i| NodeId(*i)).collect()
    }

    fn limit(name: &str, max: usize, members: &[usize]) -> Limit {
        Limit {
            name: name.into(),
            max,
            members: ids(members),
            already_out: 0,
            size: 0,
        }
    }

    #[test]
    fn a_limit_admits_up_to_max_and_release_frees_a_slot() {
        let mut d = Disruption::new(vec![limit("max_unavailable", 2, &[0, 1, 2, 3])], []);
        d.take(NodeId(0));
        assert!(d.check(NodeId(1)).is_ok());
        d.take(NodeId(1));
        let b = d.check(NodeId(2)).unwrap_err();
        assert_eq!(b.to_string(), "max_unavailable: 2 of at most 2 unavailable");
        d.release(NodeId(0));
        assert!(d.check(NodeId(2)).is_ok());
    }

    #[test]
    fn the_tightest_of_several_limits_decides() {
        let mut d = Disruption::new(
            vec![
                limit("max_unavailable", 10, &[0, 1, 2, 3]),
                limit("HA group `db`", 1, &[0, 1]),
            ],
            [],
        );
        d.take(NodeId(0));
        assert_eq!(d.check(NodeId(1)).unwrap_err().limit, "HA group `db`");
        assert!(d.check(NodeId(2)).is_ok(), "not in the HA group");
    }

    #[test]
    fn a_hypervisor_takes_its_vms_down_with_it() {
        // VM 1 runs on hypervisor 0; VM 1 and node 2 form an HA pair.
        let mut d = Disruption::new(
            vec![
                limit("max_unavailable", 5, &[0, 1, 2]),
                limit("HA group `svc`", 1, &[1, 2]),
            ],
            [(NodeId(1), NodeId(0))],
        );
        d.take(NodeId(2));
        let b = d.check(NodeId(0)).unwrap_err();
        assert_eq!(
            b.limit, "HA group `svc`",
            "the hypervisor would take the pair's other half down"
        );
        d.release(NodeId(2));
        d.take(NodeId(0));
        assert_eq!(d.counts(), &[2, 1]);
        // Draining the VM while its host is down counts it once.
        d.take(NodeId(1));
        assert_eq!(d.counts(), &[2, 1]);
        d.release(NodeId(0));
        assert_eq!(d.counts(), &[1, 1], "still down for its own drain");
        d.release(NodeId(1));
        assert_eq!(d.counts(), &[0, 0]);
    }

    #[test]
    fn nodes_out_beyond_the_members_use_the_budget_for_good() {
        let mut l = limit("partition `batch`", 2, &[0, 1, 2]);
        l.already_out = 1;
        let mut d = Disruption::new(vec![l], []);
        assert_eq!(d.counts(), &[1]);
        d.take(NodeId(0));
        assert_eq!(
            d.check(NodeId(1)).unwrap_err().to_string(),
            "partition `batch`: 2 of at most 2 unavailable"
        );
        d.release(NodeId(0));
        assert!(d.check(NodeId(1)).is_ok());
        assert_eq!(d.counts(), &[1], "never released");
    }

    #[test]
    fn nodes_down_before_the_run_use_the_budget() {
        let mut d = Disruption::new(vec![limit("max_unavailable", 1, &[0, 1])], []);
        d.take(NodeId(1));
        assert!(d.check(NodeId(0)).is_err());
    }
}
