//! One node as `sinfo` reports it.

use std::collections::BTreeMap;

/// A node's state in Slurm, merged over the partitions it is in (`sinfo -N` prints one
/// line per partition).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct NodeStatus {
    /// `%T` as printed: the long state with Slurm's suffixes (`drained`, `idle*`,
    /// `mixed@`, `reboot^`, ...).
    pub state: String,
    /// `%E`: the reason (`none` without one).
    pub reason: String,
    /// Every partition the node is in.
    pub partitions: Vec<String>,
}

/// The states in which a node takes no new jobs. `maint` is a node in a maintenance
/// reservation; `reserved` (any other reservation) is not counted: the node serves the
/// reservation's users.
const OUT_OF_SERVICE: [&str; 15] = [
    "down",
    "drained",
    "draining",
    "drain",
    "fail",
    "failing",
    "maint",
    "reboot",
    "reboot_issued",
    "reboot_requested",
    "future",
    "unknown",
    "powered_down",
    "powering_down",
    "powering_up",
];

impl NodeStatus {
    /// The state without suffixes: `idle*` → `idle`.
    pub fn base(&self) -> &str {
        let end = self
            .state
            .find(|c: char| !(c.is_ascii_lowercase() || c == '_'))
            .unwrap_or(self.state.len());
        &self.state[..end]
    }

    /// Not responding (`*`): slurmctld cannot reach its slurmd.
    pub fn not_responding(&self) -> bool {
        self.state.contains('*')
    }

    /// Out of service as far as budgets go: down, drained or draining, failing, in a
    /// maintenance reservation, rebooting, powered off, or not responding.
    pub fn unavailable(&self) -> bool {
        self.not_responding() || OUT_OF_SERVICE.contains(&self.base())
    }

    /// Drained: the drain flag is set and no job runs any more (whatever the suffix: a
    /// `drained*` node whose slurmd does not answer runs no job either).
    pub fn drained(&self) -> bool {
        self.base() == "drained"
    }

    /// Runs no job: `idle`, `maint` (idle in a maintenance reservation that has begun)
    /// or already `drained`. `drain.mode: reservation` drains a node then.
    pub fn jobless(&self) -> bool {
        matches!(self.base(), "idle" | "maint" | "drained")
    }

    /// Slurm has a reboot of the node pending or under way: `reboot_requested`,
    /// `reboot_issued` (or an older Slurm's `reboot`), or the `@` (reboot pending) and
    /// `^` (reboot issued) suffixes.
    pub fn rebooting(&self) -> bool {
        self.base().starts_with("reboot") || self.state.contains(['@', '^'])
    }

    /// Back in service: responding, neither drained nor down (what a resumed node must
    /// show before it gives its place in the budgets back).
    pub fn in_service(&self) -> bool {
        !self.unavailable()
    }
}

/// Parses `sinfo -h -N -o '%N|%P|%T|%E'`. A line with fewer fields is skipped; a
/// partition's default mark (`batch*`) is dropped.
pub fn parse_sinfo(text: &str) -> BTreeMap<String, NodeStatus> {
    let mut out: BTreeMap<String, NodeStatus> = BTreeMap::new();
    for line in text.lines() {
        let mut f = line.splitn(4, '|');
        let (Some(node), Some(partition), Some(state), Some(reason)) =
            (f.next(), f.next(), f.next(), f.next())
        else {
            continue;
        };
        let s = out.entry(node.trim().to_string()).or_insert_with(|| NodeStatus {
            state: state.trim().to_string(),
            reason: reason.trim().to_string(),
            partitions: Vec::new(),
        });
        let p = partition.trim().trim_end_matches('*').to_string();
        if !p.is_empty() && !s.partitions.contains(&p) {
            s.partitions.push(p);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn st(state: &str) -> NodeStatus {
        NodeStatus {
            state: state.into(),
            ..NodeStatus::default()
        }
    }

    #[test]
    fn states_and_suffixes() {
        for s in [
            "drained",
            "draining",
            "down*",
            "idle*",
            "maint",
            "reboot^",
            "fail",
            "drained@",
            "powered_down~",
        ] {
            assert!(st(s).unavailable(), "{s}");
        }
        for s in ["idle", "mixed", "allocated", "completing", "reserved", "planned"] {
            assert!(st(s).in_service(), "{s}");
        }
        assert!(st("drained").drained());
        assert!(!st("draining").drained());
        assert!(st("drained*").drained(), "not responding, but no job runs");
        assert_eq!(st("mixed@").base(), "mixed");
    }

    #[test]
    fn reboot_states() {
        for s in [
            "reboot_issued",
            "reboot_requested",
            "reboot^",
            "drained@",
            "down@",
            "mixed@",
        ] {
            assert!(st(s).rebooting(), "{s}");
        }
        for s in ["down", "down*", "drained", "idle", "powering_up#", "idle#"] {
            assert!(!st(s).rebooting(), "{s}");
        }
    }

    #[test]
    fn a_node_in_two_partitions_is_one_node() {
        let v = parse_sinfo(
            "node001|batch*|drained|drover: patch failed (run r1)\nnode001|short|drained|drover: patch failed (run r1)\nnode002|batch*|idle|none\nbroken line\n",
        );
        assert_eq!(v.len(), 2);
        assert_eq!(v["node001"].partitions, ["batch", "short"]);
        assert_eq!(v["node001"].reason, "drover: patch failed (run r1)");
        assert_eq!(v["node002"].partitions, ["batch"]);
    }
}
