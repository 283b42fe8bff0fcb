//! `--diff`: how each file step would change its file, grouped like errors are: nodes
//! whose file would change the same way share one diff under a host list, so a config
//! change on 500 nodes prints once.

use std::collections::HashMap;
use std::fmt::Write as _;

use super::paint::Paint;
use crate::engine::{CheckResult, ContentDiff, DIFF_BYTES, FileDiff};
use crate::inventory::{Inventory, NodeId};
use crate::workflow::{Action, Workflow};

/// Every node's diffs, one block per step and way of changing; a line saying so when
/// no file would change.
pub fn render_diffs(
    inv: &Inventory,
    wf: &Workflow,
    results: &HashMap<NodeId, CheckResult>,
    paint: Paint,
) -> String {
    // Groups in step order, then by their first node; each with its nodes and dests.
    let mut groups: Vec<(usize, Group<'_>)> = Vec::new();
    let mut ids: Vec<&NodeId> = results.keys().collect();
    ids.sort();
    for id in ids {
        for d in &results[id].diffs {
            let pos = wf
                .steps
                .iter()
                .position(|s| s.name == d.step)
                .unwrap_or(usize::MAX);
            match groups.iter_mut().find(|(_, g)| same_change(g.diff, d)) {
                Some((_, g)) => {
                    g.nodes.push(*id);
                    g.dests.push(&d.dest);
                }
                None => groups.push((
                    pos,
                    Group {
                        diff: d,
                        nodes: vec![*id],
                        dests: vec![&d.dest],
                    },
                )),
            }
        }
    }
    groups.sort_by_key(|(pos, g)| (*pos, g.nodes[0]));
    let mut o = String::new();
    if groups.is_empty() {
        let _ = writeln!(o, "diff: no file would change");
        return o;
    }
    for (pos, g) in &groups {
        let dest = if g.dests.iter().all(|d| *d == g.dests[0]) {
            g.dests[0].to_string()
        } else {
            // Per-node paths (`{{ node.name }}` in `dest`): the path as written.
            match wf.steps.get(*pos).map(|s| &s.action) {
                Some(Action::Copy(fc) | Action::Template(fc)) => fc.dest.clone(),
                _ => g.dests[0].to_string(),
            }
        };
        render_group(&mut o, &inv.names(&g.nodes), &dest, g.diff, paint);
    }
    o
}

struct Group<'a> {
    diff: &'a FileDiff,
    nodes: Vec<NodeId>,
    dests: Vec<&'a str>,
}

/// The same change, wherever the file is.
fn same_change(a: &FileDiff, b: &FileDiff) -> bool {
    a.step == b.step && a.content == b.content && a.mode == b.mode && a.owner == b.owner
}

fn render_group(o: &mut String, nodes: &str, dest: &str, d: &FileDiff, paint: Paint) {
    let mut props = Vec::new();
    if let Some(m) = &d.mode {
        props.push(format!("mode {} → {}", m.node, m.wanted));
    }
    if let Some(w) = &d.owner {
        props.push(format!("owner {} → {}", w.node, w.wanted));
    }
    let what = |content: String| {
        let mut all = vec![content];
        all.extend(props.iter().cloned());
        all.join(", ")
    };
    let head = format!("{nodes}: `{}` would change {dest}", d.step);
    match &d.content {
        ContentDiff::Same => {
            let _ = writeln!(o, "{head}: {}", props.join(", "));
        }
        ContentDiff::Secret { missing } => {
            let c = if *missing {
                "content differs (secret; the file is not on the node)"
            } else {
                "content differs (secret)"
            };
            let _ = writeln!(o, "{head}: {}", what(c.to_string()));
        }
        ContentDiff::Binary {
            node_bytes,
            new_bytes,
        } => {
            let on_node = node_bytes.map_or("not on the node".to_string(), |n| {
                format!("{n} bytes on the node")
            });
            let _ = writeln!(
                o,
                "{head}: {}",
                what(format!(
                    "binary content differs ({on_node}, {new_bytes} bytes new)"
                ))
            );
        }
        ContentDiff::NotAFile => {
            let _ = writeln!(o, "{head}: not a regular file on the node");
        }
        ContentDiff::Unreadable { error } => {
            let _ = writeln!(o, "{head}: cannot read the file on the node: {error}");
        }
        ContentDiff::Text {
            unified,
            truncated,
            node_bytes,
            new_bytes,
        } => {
            let cut = truncated.then(|| {
                let on_node = node_bytes.map_or(String::new(), |n| format!("{n} bytes on the node, "));
                format!(
                    "truncated: only the first {} KiB compared; {on_node}{new_bytes} bytes new",
                    DIFF_BYTES / 1024
                )
            });
            let mut notes: Vec<String> = props.clone();
            notes.extend(cut);
            if unified.is_empty() {
                let _ = writeln!(
                    o,
                    "{head}: {}",
                    what(format!(
                        "content differs after the first {} KiB (not shown)",
                        DIFF_BYTES / 1024
                    ))
                );
                return;
            }
            let notes = if notes.is_empty() {
                String::new()
            } else {
                format!(" ({})", notes.join("; "))
            };
            let _ = writeln!(o, "{head}{notes}:");
            let from = if node_bytes.is_none() {
                "/dev/null".to_string()
            } else {
                format!("{dest} (on the node)")
            };
            let _ = writeln!(o, "{}", paint.removed(&format!("--- {from}")));
            let _ = writeln!(o, "{}", paint.added(&format!("+++ {dest} (new)")));
            for line in unified.lines() {
                let shown = if line.starts_with("@@") {
                    paint.hunk(line)
                } else if line.starts_with('-') {
                    paint.removed(line)
                } else if line.starts_with('+') {
                    paint.added(line)
                } else {
                    line.to_string()
                };
                let _ = writeln!(o, "{shown}");
            }
        }
    }
}

/// Every node's diffs for `--json`: one object per node and file, the node named.
pub fn diffs_json(inv: &Inventory, results: &HashMap<NodeId, CheckResult>) -> serde_json::Value {
    let mut ids: Vec<&NodeId> = results.keys().collect();
    ids.sort();
    let mut all = Vec::new();
    for id in ids {
        for d in &results[id].diffs {
            let mut v = serde_json::to_value(d).unwrap_or(serde_json::Value::Null);
            if let Some(obj) = v.as_object_mut() {
                obj.insert("node".into(), inv.node(*id).name.clone().into());
            }
            all.push(v);
        }
    }
    serde_json::Value::Array(all)
}
