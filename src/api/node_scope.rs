//! Which nodes a token may act on, and the HA-group rule (seed 000: "a user MUST have
//! permission to modify all the nodes in an HA group"): a request that touches a node
//! touches every member of its HA group, so each of them must be in the token's scope.

use std::collections::BTreeSet;

use super::api_error::ApiError;
use super::token_set::Caller;
use crate::inventory::{Inventory, NodeId};

/// Refuses (403, naming every node outside the scope) a request that touches `nodes`,
/// unless every one of them and every other member of their HA groups is in the
/// caller's scope. A token without a scope may touch every node.
pub fn check_scope(inv: &Inventory, caller: &Caller, nodes: &[NodeId]) -> Result<(), ApiError> {
    let Some(selectors) = &caller.nodes else {
        return Ok(());
    };
    let mut scope = BTreeSet::new();
    for s in selectors {
        // A selector the inventory no longer has selects nothing: the scope only shrinks.
        if let Ok(ids) = inv.resolve(s) {
            scope.extend(ids);
        }
    }
    let mut outside = BTreeSet::new();
    let mut via_ha: Vec<serde_json::Value> = Vec::new();
    for &n in nodes {
        if !scope.contains(&n) {
            outside.insert(n);
        }
        if let Some(g) = inv.node(n).ha_group.and_then(|g| inv.ha_groups().get(g)) {
            for &m in &g.members {
                if !scope.contains(&m) && outside.insert(m) {
                    via_ha.push(serde_json::json!({
                        "node": inv.node(m).name,
                        "ha_group": g.name,
                        "because_of": inv.node(n).name,
                    }));
                }
            }
        }
    }
    if outside.is_empty() {
        return Ok(());
    }
    let names: Vec<String> = outside.iter().map(|&i| inv.node(i).name.clone()).collect();
    let ha_note = if via_ha.is_empty() {
        String::new()
    } else {
        " (a request on a member of an HA group touches every member)".to_string()
    };
    Err(ApiError::forbidden(format!(
        "token `{}` may not act on {}{ha_note}; nothing was run",
        caller.name,
        crate::hostlist::compress(&names)
    ))
    .with_details(serde_json::json!({ "outside_scope": names, "ha_group_members": via_ha })))
}
