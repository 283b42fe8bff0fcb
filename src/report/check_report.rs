//! The change detector's report: node lists per class.

use std::collections::HashMap;
use std::fmt::Write as _;

use serde_json::json;

use super::error_groups::group_errors;
use crate::engine::{CheckResult, Class};
use crate::inventory::{Inventory, NodeId};

/// Lists per class as host lists, then the errors: identical ones once, with the host
/// list of their nodes ([`group_errors`]).
pub fn render_check(inv: &Inventory, results: &HashMap<NodeId, CheckResult>) -> String {
    let mut o = String::new();
    for class in [Class::Good, Class::Hot, Class::Drain, Class::Error] {
        let ids = of_class(results, class);
        let label = format!("{class:?}").to_uppercase();
        let list = if ids.is_empty() {
            "-".to_string()
        } else {
            inv.names(&ids)
        };
        let _ = writeln!(o, "{label:<6}{:>6}  {list}", ids.len());
    }
    let errors: Vec<(NodeId, &str)> = results
        .iter()
        .filter_map(|(id, r)| r.error.as_deref().map(|e| (*id, e)))
        .collect();
    for (nodes, e) in group_errors(inv, &errors) {
        let _ = writeln!(o, "  {nodes}: {e}");
    }
    // What `ansible --check` says would change, per node (nodes alike grouped).
    let changes: Vec<(NodeId, String)> = results
        .iter()
        .filter(|(_, r)| !r.changes.is_empty())
        .map(|(id, r)| (*id, format!("would change {}", r.changes.join(", "))))
        .collect();
    let changes: Vec<(NodeId, &str)> = changes.iter().map(|(id, c)| (*id, c.as_str())).collect();
    for (nodes, c) in group_errors(inv, &changes) {
        let _ = writeln!(o, "  {nodes}: {c}");
    }
    o
}

pub fn check_json(inv: &Inventory, results: &HashMap<NodeId, CheckResult>) -> serde_json::Value {
    let names = |class| -> Vec<String> {
        of_class(results, class)
            .iter()
            .map(|i| inv.node(*i).name.clone())
            .collect()
    };
    let errors: serde_json::Map<String, serde_json::Value> = results
        .iter()
        .filter_map(|(id, r)| r.error.as_ref().map(|e| (inv.node(*id).name.clone(), json!(e))))
        .collect();
    let changes: serde_json::Map<String, serde_json::Value> = results
        .iter()
        .filter(|(_, r)| !r.changes.is_empty())
        .map(|(id, r)| (inv.node(*id).name.clone(), json!(r.changes)))
        .collect();
    json!({
        "GOOD": names(Class::Good),
        "HOT": names(Class::Hot),
        "DRAIN": names(Class::Drain),
        "ERROR": names(Class::Error),
        "errors": errors,
        "changes": changes,
    })
}

pub fn of_class(results: &HashMap<NodeId, CheckResult>, class: Class) -> Vec<NodeId> {
    let mut ids: Vec<NodeId> = results
        .iter()
        .filter(|(_, r)| r.class == class)
        .map(|(i, _)| *i)
        .collect();
    ids.sort();
    ids
}
