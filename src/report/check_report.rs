//! The change detector's report: node lists per class.

use std::collections::HashMap;
use std::fmt::Write as _;

use serde_json::json;

use crate::engine::{CheckResult, Class};
use crate::inventory::{Inventory, NodeId};

/// Lists per class as host lists, then one line per ERROR node with its error.
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
    let mut errors: Vec<(&str, &str)> = results
        .iter()
        .filter_map(|(id, r)| r.error.as_deref().map(|e| (inv.node(*id).name.as_str(), e)))
        .collect();
    errors.sort();
    for (node, e) in errors {
        let _ = writeln!(o, "  {node}: {e}");
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
    json!({
        "GOOD": names(Class::Good),
        "HOT": names(Class::Hot),
        "DRAIN": names(Class::Drain),
        "ERROR": names(Class::Error),
        "errors": errors,
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
