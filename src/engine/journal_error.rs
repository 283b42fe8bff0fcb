//! Why the journal could not record something.

use crate::store::StoreError;

/// The state store refused or failed a write. Not the node's fault, and not something a
/// retry on the node mends: the run stops (`StopReason::StateStore`).
#[derive(Debug, Clone, thiserror::Error)]
pub enum JournalError {
    #[error("cannot record the node's state, so it was not changed: {0}")]
    Node(StoreError),
    #[error("cannot record the step's result: {0}")]
    Step(StoreError),
}
