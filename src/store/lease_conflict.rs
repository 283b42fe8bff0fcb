//! Why a run could not take its leases.

use jiff::Timestamp;
use serde::Serialize;

use super::columns::rfc3339;

/// A node another run holds: shown to the operator, who can wait for `expires_at` or
/// deal with the other run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LeaseConflict {
    pub node: String,
    /// The run holding the node.
    pub run: String,
    #[serde(serialize_with = "rfc3339::serialize")]
    pub expires_at: Timestamp,
}
