//! How many of a run's nodes are in each state.

use serde::Serialize;

use super::node_state::NodeState;

/// Every state has a field, so `--json` consumers always find all keys.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct NodeCounts {
    pub pending: usize,
    pub running: usize,
    pub draining: usize,
    pub drained: usize,
    pub rebooting: usize,
    pub resuming: usize,
    pub succeeded: usize,
    pub failed: usize,
    pub held: usize,
    pub skipped: usize,
}

impl NodeCounts {
    pub fn get(&self, state: NodeState) -> usize {
        *self.field(state)
    }

    /// All nodes of the run.
    pub fn total(&self) -> usize {
        NodeState::ALL.into_iter().map(|s| self.get(s)).sum()
    }

    /// Nodes the run is done with ([`NodeState::is_final`]).
    pub fn finished(&self) -> usize {
        NodeState::ALL
            .into_iter()
            .filter(|s| s.is_final())
            .map(|s| self.get(s))
            .sum()
    }

    pub(super) fn add(&mut self, state: NodeState, n: usize) {
        *self.field_mut(state) += n;
    }

    fn field(&self, state: NodeState) -> &usize {
        match state {
            NodeState::Pending => &self.pending,
            NodeState::Running => &self.running,
            NodeState::Draining => &self.draining,
            NodeState::Drained => &self.drained,
            NodeState::Rebooting => &self.rebooting,
            NodeState::Resuming => &self.resuming,
            NodeState::Succeeded => &self.succeeded,
            NodeState::Failed => &self.failed,
            NodeState::Held => &self.held,
            NodeState::Skipped => &self.skipped,
        }
    }

    fn field_mut(&mut self, state: NodeState) -> &mut usize {
        match state {
            NodeState::Pending => &mut self.pending,
            NodeState::Running => &mut self.running,
            NodeState::Draining => &mut self.draining,
            NodeState::Drained => &mut self.drained,
            NodeState::Rebooting => &mut self.rebooting,
            NodeState::Resuming => &mut self.resuming,
            NodeState::Succeeded => &mut self.succeeded,
            NodeState::Failed => &mut self.failed,
            NodeState::Held => &mut self.held,
            NodeState::Skipped => &mut self.skipped,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_state_has_its_own_count() {
        let mut c = NodeCounts::default();
        for (i, s) in NodeState::ALL.into_iter().enumerate() {
            c.add(s, i + 1);
        }
        for (i, s) in NodeState::ALL.into_iter().enumerate() {
            assert_eq!(c.get(s), i + 1, "{s}");
        }
        assert_eq!(c.total(), 55);
        assert_eq!(c.finished(), 7 + 8 + 9 + 10);
        let json = serde_json::to_value(c).unwrap();
        for s in NodeState::ALL {
            assert_eq!(json[s.as_str()], serde_json::json!(c.get(s)), "serde name of {s}");
        }
    }
}
