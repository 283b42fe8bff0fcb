//! Identical errors of many nodes, shown once with a host list.

use std::collections::BTreeMap;

use crate::inventory::{Inventory, NodeId};

/// What stands for a node's own name or address in a grouped message.
pub const NODE_PLACEHOLDER: &str = "<node>";

/// Groups `(node, error)` pairs whose messages are the same once the node's own name
/// and address are replaced by [`NODE_PLACEHOLDER`] (so 128 `cannot connect to nNNN:
/// connection refused` become one line). Each group is its nodes as a compressed host
/// list and the message; a group of one keeps its message as it was. Groups come in
/// the order of their first node in the inventory.
pub fn group_errors(inv: &Inventory, errors: &[(NodeId, &str)]) -> Vec<(String, String)> {
    let mut groups: BTreeMap<String, Vec<(NodeId, &str)>> = BTreeMap::new();
    for (id, e) in errors {
        let node = inv.node(*id);
        let mut key = replace_word(e, &node.address.host, NODE_PLACEHOLDER);
        key = replace_word(&key, &node.name, NODE_PLACEHOLDER);
        groups.entry(key).or_default().push((*id, e));
    }
    let mut out: Vec<(NodeId, String, String)> = groups
        .into_iter()
        .map(|(key, mut members)| {
            members.sort_by_key(|(id, _)| *id);
            let first = members[0].0;
            let ids: Vec<NodeId> = members.iter().map(|(id, _)| *id).collect();
            let msg = if members.len() == 1 {
                members[0].1.to_string()
            } else {
                key
            };
            (first, inv.names(&ids), msg)
        })
        .collect();
    out.sort_by_key(|(first, _, _)| *first);
    out.into_iter().map(|(_, hosts, msg)| (hosts, msg)).collect()
}

/// Replaces `word` in `text` where it stands alone: not inside a longer name or
/// address (`n1` in `n10`, `10.0.0.1` in `10.0.0.12`).
fn replace_word(text: &str, word: &str, with: &str) -> String {
    if word.is_empty() {
        return text.to_string();
    }
    let part_of_name = |c: char| c.is_alphanumeric() || matches!(c, '-' | '_' | '.');
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    let mut prev: Option<char> = None;
    while let Some(at) = rest.find(word) {
        let before = rest[..at]
            .chars()
            .next_back()
            .or(if at == 0 { prev } else { None });
        let after = rest[at + word.len()..].chars().next();
        // A trailing dot ends a sentence, not a name.
        let after_ok = match after {
            None => true,
            Some('.') => rest[at + word.len() + 1..]
                .chars()
                .next()
                .is_none_or(|c| !part_of_name(c)),
            Some(c) => !part_of_name(c),
        };
        if before.is_none_or(|c| !part_of_name(c)) && after_ok {
            out.push_str(&rest[..at]);
            out.push_str(with);
        } else {
            out.push_str(&rest[..at + word.len()]);
        }
        prev = rest[..at + word.len()].chars().next_back();
        rest = &rest[at + word.len()..];
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::replace_word;

    #[test]
    fn only_whole_names_are_replaced() {
        assert_eq!(
            replace_word("ssh n1: refused", "n1", "<node>"),
            "ssh <node>: refused"
        );
        assert_eq!(replace_word("n10 and n1", "n1", "<node>"), "n10 and <node>");
        assert_eq!(
            replace_word("to 10.0.0.12 port 22", "10.0.0.1", "<node>"),
            "to 10.0.0.12 port 22"
        );
        assert_eq!(replace_word("host n1.", "n1", "<node>"), "host <node>.");
        assert_eq!(replace_word("n1n1", "n1", "<node>"), "n1n1");
    }
}
