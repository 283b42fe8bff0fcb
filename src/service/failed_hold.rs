//! A run whose failed nodes go into maintenance when it ends (an alarm's remediation
//! that failed needs a human, and nothing may touch the node before one looked).
//!
//! Kept in the run's recorded options so a resumed run holds them too, and written in
//! the transaction that finishes the run: there is no moment, and no crash, at which
//! the run is over and its failed node is free for the next run.

use serde::{Deserialize, Serialize};

use crate::store::Write;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FailedHold {
    /// Recorded as who put the node into maintenance (`hook:NAME`).
    pub by: String,
    /// Starts the maintenance reason (``alarm `NAME` ``).
    pub what: String,
}

impl FailedHold {
    /// From a recorded run's options; absent on runs that hold nothing.
    pub fn from_options(options: &serde_json::Value) -> Option<FailedHold> {
        serde_json::from_value(options.get("hold_failed")?.clone()).ok()
    }

    /// Holds the nodes the record of `run` says failed (the node rows carry the full
    /// reason, `on_failure`'s result included).
    pub fn write(&self, run: &str, at: jiff::Timestamp) -> Write {
        Write::HoldFailed {
            run: run.to_string(),
            by: self.by.clone(),
            what: self.what.clone(),
            at,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn survives_the_run_record() {
        let hold = FailedHold {
            by: "hook:disk".into(),
            what: "alarm `disk`".into(),
        };
        let options = serde_json::json!({"tags": null, "hold_failed": hold});
        assert_eq!(FailedHold::from_options(&options), Some(hold.clone()));
        assert_eq!(FailedHold::from_options(&serde_json::json!({"tags": null})), None);
        assert_eq!(
            FailedHold::from_options(&serde_json::json!({"hold_failed": null})),
            None
        );
    }
}
