//! A node an earlier run left out of service.

use jiff::Timestamp;
use rusqlite::{Connection, OptionalExtension};
use serde::Serialize;

use super::columns::{rfc3339, timestamp_at};
use super::node_state::NodeState;

/// Where the last run that had a node left it, when that was out of service because of
/// the run: failed after its drain, held (a drain timeout, a failure), or caught
/// mid-cycle by an interruption while drained. A later run finds such a node drained; it
/// must say which run holds it and why, not "drained before the run".
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HeldNode {
    pub node: String,
    pub run: String,
    pub state: NodeState,
    /// The last step the node ran in that run, when one was recorded.
    /// The step where the node stands (the one that failed), if it began: not the last
    /// step that ran, which for a node held while draining for its next step succeeded.
    pub step: Option<String>,
    pub reason: Option<String>,
    #[serde(serialize_with = "rfc3339::serialize")]
    pub at: Timestamp,
}

impl HeldNode {
    pub(super) fn query(
        conn: &Connection,
        nodes: &[String],
        except: &str,
    ) -> rusqlite::Result<Vec<HeldNode>> {
        let mut last = conn.prepare_cached(
            "SELECT n.node, n.run, n.state, n.drained_by_us, n.reason, n.updated_at,
                    (SELECT s.step FROM steps s
                     WHERE s.run = n.run AND s.node = n.node AND s.position = n.step
                     ORDER BY s.attempt DESC LIMIT 1)
             FROM nodes n
             WHERE n.node = ?1 AND n.run != ?2 AND n.state != 'pending'
             ORDER BY n.updated_at DESC LIMIT 1",
        )?;
        let mut out = Vec::new();
        for node in nodes {
            let row = last
                .query_row([node.as_str(), except], |row| {
                    Ok((
                        HeldNode {
                            node: row.get(0)?,
                            run: row.get(1)?,
                            state: row.get(2)?,
                            reason: row.get(4)?,
                            at: timestamp_at(row, 5)?,
                            step: row.get(6)?,
                        },
                        row.get::<_, bool>(3)?,
                    ))
                })
                .optional()?;
            if let Some((held, drained)) = row {
                let out_of_service = held.state == NodeState::Held
                    || (drained && held.state != NodeState::Succeeded && held.state != NodeState::Skipped);
                if out_of_service {
                    out.push(held);
                }
            }
        }
        Ok(out)
    }

    /// "held by run X (failed at step `s`: why)", for plans and summaries.
    pub fn describe(&self) -> String {
        let what = match self.state {
            NodeState::Held => "held",
            NodeState::Failed => "failed",
            _ => "interrupted",
        };
        let step = self
            .step
            .as_ref()
            .map(|s| format!(" at step `{s}`"))
            .unwrap_or_default();
        let reason = self.reason.as_ref().map(|r| format!(": {r}")).unwrap_or_default();
        format!("held by run {} ({what}{step}{reason})", self.run)
    }
}
