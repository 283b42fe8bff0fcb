//! Nodes whose checks failed: never worked on, so not among a run's nodes. How a run's
//! outcome names them, and how people are told.

use serde_json::Value;

use super::plural;

/// `1 node failed its check and was not touched`, `3 nodes failed their checks and
/// were not touched`: one phrase, so a local run and `runs watch` say it alike.
pub fn not_checked(n: usize) -> String {
    let their = if n == 1 {
        "its check and was"
    } else {
        "their checks and were"
    };
    format!("{} failed {their} not touched", plural(n, "node"))
}

/// The nodes a run's recorded outcome lists as `check_failed`.
pub fn check_failed(outcome: Option<&Value>) -> Vec<String> {
    outcome
        .and_then(|o| o.get("check_failed"))
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(|v| v.as_str().map(str::to_string)).collect())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_node_or_several_and_the_outcome_lists_them() {
        assert_eq!(not_checked(1), "1 node failed its check and was not touched");
        assert_eq!(not_checked(3), "3 nodes failed their checks and were not touched");
        let o = serde_json::json!({"outcome": "completed_with_failures", "failed": 2, "check_failed": ["a", "b"]});
        assert_eq!(check_failed(Some(&o)), ["a", "b"]);
        assert!(check_failed(Some(&serde_json::json!({"outcome": "succeeded"}))).is_empty());
        assert!(check_failed(None).is_empty());
    }
}
