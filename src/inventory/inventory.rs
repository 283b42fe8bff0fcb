//! The checked inventory: every name resolved, every cross-reference verified.

use std::collections::{BTreeSet, HashMap};

use indexmap::IndexMap;
use serde::Serialize;

use super::host_template::HostTemplate;
use super::node::{Address, Node, NodeId, check_host, check_node_name, check_user};
use super::raw_inventory::RawInventory;
use crate::diag::{Problem, did_you_mean};
use crate::hostlist;
use crate::transport::SshOptions;
use crate::units::limits::{self, MAX_NODES};
use crate::yaml::Path;

/// Named lists that `@name` refers to besides groups.
pub const NAMED_LISTS: [&str; 3] = ["canary", "blacklist", "whitelist"];

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct HaGroup {
    pub name: String,
    pub members: Vec<NodeId>,
    pub max_unavailable: u32,
}

#[derive(Debug, Clone, Default)]
pub struct Inventory {
    nodes: Vec<Node>,
    by_name: HashMap<String, NodeId>,
    groups: IndexMap<String, Vec<NodeId>>,
    canary: Vec<NodeId>,
    blacklist: Vec<NodeId>,
    whitelist: Option<Vec<NodeId>>,
    ha_groups: Vec<HaGroup>,
}

impl Inventory {
    pub fn nodes(&self) -> &[Node] {
        &self.nodes
    }

    pub fn node(&self, id: NodeId) -> &Node {
        &self.nodes[id.0]
    }

    pub fn ids(&self) -> impl Iterator<Item = NodeId> + '_ {
        (0..self.nodes.len()).map(NodeId)
    }

    pub fn find(&self, name: &str) -> Option<NodeId> {
        self.by_name.get(name).copied()
    }

    pub fn groups(&self) -> &IndexMap<String, Vec<NodeId>> {
        &self.groups
    }

    pub fn canary(&self) -> &[NodeId] {
        &self.canary
    }

    pub fn blacklist(&self) -> &[NodeId] {
        &self.blacklist
    }

    pub fn whitelist(&self) -> Option<&[NodeId]> {
        self.whitelist.as_deref()
    }

    pub fn ha_groups(&self) -> &[HaGroup] {
        &self.ha_groups
    }

    /// Names of nodes, compressed as a host list for display.
    pub fn names(&self, ids: &[NodeId]) -> String {
        let names: Vec<&str> = ids.iter().map(|i| self.nodes[i.0].name.as_str()).collect();
        hostlist::compress(&names)
    }

    /// Resolves one selector: a node name, a host list, or `@group` / `@canary` /
    /// `@blacklist` / `@whitelist`.
    pub fn resolve(&self, entry: &str) -> Result<Vec<NodeId>, Problem> {
        resolve_entry(entry, &self.by_name, &self.groups, &self.lists())
    }

    /// Resolves a list of selectors written at `path`, reporting every bad entry. The
    /// result keeps first-seen order and has no duplicates.
    pub fn select(&self, entries: &[String], path: &Path) -> Result<Vec<NodeId>, Vec<Problem>> {
        let mut out = Vec::new();
        let mut seen = BTreeSet::new();
        let mut problems = Vec::new();
        for (i, e) in entries.iter().enumerate() {
            match self.resolve(e) {
                Ok(ids) => out.extend(ids.into_iter().filter(|id| seen.insert(*id))),
                Err(p) => problems.push(Problem {
                    path: path.index(i),
                    ..p
                }),
            }
        }
        if problems.is_empty() {
            Ok(out)
        } else {
            Err(problems)
        }
    }

    fn lists(&self) -> [NamedList<'_>; 3] {
        [
            NamedList {
                name: "canary",
                ids: &self.canary,
                defined: !self.canary.is_empty(),
            },
            NamedList {
                name: "blacklist",
                ids: &self.blacklist,
                defined: !self.blacklist.is_empty(),
            },
            NamedList {
                name: "whitelist",
                ids: self.whitelist.as_deref().unwrap_or_default(),
                defined: self.whitelist.is_some(),
            },
        ]
    }

    /// Checks a raw inventory, collecting every problem.
    pub fn from_raw(raw: &RawInventory) -> Result<Inventory, Vec<Problem>> {
        let mut p = Vec::new();
        let root = Path::root();
        let mut inv = Inventory::default();

        if let Some(u) = &raw.defaults.user
            && let Err(m) = check_user(u)
        {
            p.push(Problem::value(root.key("defaults").key("user"), m));
        }
        if raw.defaults.port == Some(0) {
            p.push(port_zero(root.key("defaults").key("port")));
        }

        // The node count is capped before any host list is expanded: two lists of 600,000
        // names are refused here without allocating a name.
        let total = raw
            .nodes
            .keys()
            .map(|k| hostlist::count(k).unwrap_or(0))
            .fold(0u64, u64::saturating_add);
        if total > MAX_NODES {
            p.push(
                Problem::key(
                    root.key("nodes"),
                    format!("the inventory defines {total} nodes: the limit is {MAX_NODES}"),
                )
                .with_help(
                    "a count this large is almost always a typo in a host list range, like `n[1-1000000]`",
                ),
            );
            return Err(p);
        }

        // Nodes, in file order.
        let mut defined_by: HashMap<String, String> = HashMap::new();
        let mut pending: Vec<(NodeId, Path)> = Vec::new();
        for (key, spec) in &raw.nodes {
            let path = root.key("nodes").key(key.clone());
            let names = match hostlist::expand(key) {
                Ok(n) => n,
                Err(e) => {
                    p.push(Problem::key(path, e.to_string()));
                    continue;
                }
            };
            let spec = spec.clone().unwrap_or_default();
            let host = match spec.host.as_deref().map(HostTemplate::parse).transpose() {
                Ok(h) => h,
                Err(m) => {
                    p.push(Problem::value(path.key("host"), m));
                    None
                }
            };
            if let Some(h) = &host
                && !h.varies()
                && names.len() > 1
            {
                p.push(
                    Problem::value(
                        path.key("host"),
                        format!("`host` set on `{key}`, which names {} nodes", names.len()),
                    )
                    .with_help(
                        "use `{{ index }}` or `{{ name }}` in it (`10.1.0.{{ index }}`), give each node its own entry, or leave `host` out to connect by node name",
                    ),
                );
            }
            // Checked on the first node's address: one mistake is reported once.
            if let (Some(h), Some(first)) = (&host, names.first()) {
                match h.render(first) {
                    Ok(a) => {
                        if let Err(m) = check_host(&a) {
                            p.push(Problem::value(path.key("host"), m));
                        }
                    }
                    Err(m) => p.push(Problem::value(path.key("host"), m)),
                }
            }
            let ssh = match &spec.ssh {
                Some(o) => o
                    .check(&path.key("ssh"), std::path::Path::new(""))
                    .map_err(|e| p.extend(e))
                    .unwrap_or_default(),
                None => SshOptions::default(),
            };
            if let Some(u) = &spec.user
                && let Err(m) = check_user(u)
            {
                p.push(Problem::value(path.key("user"), m));
            }
            if spec.port == Some(0) {
                p.push(port_zero(path.key("port")));
            }
            // One error per entry, however many of its names are wrong: `x[1-100000];`
            // is one mistake, not a hundred thousand.
            let mut invalid: Vec<String> = Vec::new();
            let mut twice: Vec<String> = Vec::new();
            let mut also: Vec<String> = Vec::new();
            for name in names {
                if check_node_name(&name).is_err() {
                    invalid.push(name);
                    continue;
                }
                if let Some(first) = defined_by.get(&name) {
                    if !also.contains(first) {
                        also.push(first.clone());
                    }
                    twice.push(name);
                    continue;
                }
                defined_by.insert(name.clone(), key.clone());
                let mut vars = raw.defaults.vars.clone();
                vars.extend(spec.vars.clone());
                let id = NodeId(inv.nodes.len());
                inv.by_name.insert(name.clone(), id);
                inv.nodes.push(Node {
                    address: Address {
                        host: host
                            .as_ref()
                            .and_then(|h| h.render(&name).ok())
                            .unwrap_or_else(|| name.clone()),
                        port: spec.port.or(raw.defaults.port),
                        user: spec.user.clone().or_else(|| raw.defaults.user.clone()),
                        ssh: ssh.clone(),
                    },
                    name,
                    vars,
                    hosted_on: None,
                    ha_group: None,
                });
                pending.push((id, path.clone()));
            }
            if let Some(first) = invalid.first() {
                let m = check_node_name(first).err().unwrap_or_default();
                p.push(Problem::key(
                    path.clone(),
                    match invalid.len() {
                        1 => m,
                        n => m.replacen(
                            &format!("invalid node name `{first}`"),
                            &format!("{n} invalid node names in `{key}` (the first is `{first}`)"),
                            1,
                        ),
                    },
                ));
            }
            if !twice.is_empty() {
                let where_ = also
                    .iter()
                    .map(|k| {
                        if k == key {
                            "more than once in the same host list".to_string()
                        } else {
                            format!("also by `{k}`")
                        }
                    })
                    .collect::<Vec<_>>()
                    .join(" and ");
                let names: Vec<&str> = twice.iter().map(String::as_str).collect();
                let (what, pronoun) = match names.as_slice() {
                    [one] => (format!("node `{one}` is"), "it is"),
                    _ => (format!("nodes `{}` are", hostlist::compress(&names)), "they are"),
                };
                p.push(
                    Problem::key(path.clone(), format!("{what} defined twice"))
                        .with_help(format!("{pronoun} defined {where_}; a node is defined once")),
                );
            }
        }

        // Groups, which may refer to each other.
        for name in raw.groups.keys() {
            let path = root.key("groups").key(name.clone());
            if NAMED_LISTS.contains(&name.as_str()) {
                p.push(
                    Problem::key(path, format!("`{name}` cannot be a group name"))
                        .with_help(format!("`@{name}` is the inventory's top-level `{name}:` list")),
                );
            } else if let Err(m) = check_node_name(name) {
                p.push(Problem::key(path, m.replace("node name", "group name")));
            }
        }
        let mut state: HashMap<&str, Visit> = HashMap::new();
        for name in raw.groups.keys() {
            let mut trail = Vec::new();
            resolve_group(name, raw, &mut inv, &mut state, &mut trail, &mut p);
        }

        // Named lists.
        let list = |field: &str, entries: &[String], p: &mut Vec<Problem>| -> Vec<(usize, Vec<NodeId>)> {
            entries
                .iter()
                .enumerate()
                .filter_map(|(i, e)| match resolve_entry(e, &inv.by_name, &inv.groups, &[]) {
                    Ok(ids) => Some((i, ids)),
                    Err(pr) => {
                        p.push(Problem {
                            path: root.key(field).index(i),
                            ..pr
                        });
                        None
                    }
                })
                .collect()
        };
        let canary = list("canary", &raw.canary, &mut p);
        let blacklist = list("blacklist", &raw.blacklist, &mut p);
        let whitelist = raw.whitelist.as_ref().map(|w| list("whitelist", w, &mut p));
        let flat = |v: &[(usize, Vec<NodeId>)]| dedup(v.iter().flat_map(|(_, ids)| ids.iter().copied()));
        inv.canary = flat(&canary);
        inv.blacklist = flat(&blacklist);
        inv.whitelist = whitelist.as_deref().map(flat);

        // The safety net: a blacklisted node may never be selected by another list.
        let canary_set: BTreeSet<NodeId> = inv.canary.iter().copied().collect();
        let white_set: BTreeSet<NodeId> = inv.whitelist.iter().flatten().copied().collect();
        for (i, ids) in &blacklist {
            for (other, set) in [("canary list", &canary_set), ("whitelist", &white_set)] {
                let both: Vec<NodeId> = ids.iter().copied().filter(|id| set.contains(id)).collect();
                if !both.is_empty() {
                    let what = if both.len() == 1 {
                        format!("node `{}` is", inv.nodes[both[0].0].name)
                    } else {
                        format!("nodes `{}` are", inv.names(&both))
                    };
                    p.push(
                        Problem::value(root.key("blacklist").index(*i), format!("{what} on the blacklist and on the {other}"))
                            .with_help(format!("a blacklisted node must never be touched; remove it from the blacklist or the {other}")),
                    );
                }
            }
        }

        // Topology.
        for (id, path) in &pending {
            let name = inv.nodes[id.0].name.clone();
            let key = path.last_key().unwrap_or_default().to_string();
            let Some(Some(spec)) = raw.nodes.get(&key) else {
                continue;
            };
            if let Some(hv) = &spec.hosted_on {
                match inv.by_name.get(hv) {
                    Some(h) if *h == *id => p.push(Problem::value(
                        path.key("hosted_on"),
                        format!("node `{name}` is hosted on itself"),
                    )),
                    Some(h) => inv.nodes[id.0].hosted_on = Some(*h),
                    None => p.push(unknown_node(path.key("hosted_on"), hv, &inv.by_name)),
                }
            }
        }
        let mut cycle_reported = BTreeSet::new();
        for (id, path) in &pending {
            let mut seen = vec![*id];
            let mut cur = inv.nodes[id.0].hosted_on;
            while let Some(h) = cur {
                if let Some(pos) = seen.iter().position(|x| *x == h) {
                    let cycle: Vec<NodeId> = seen[pos..].to_vec();
                    let least = cycle.iter().min().copied();
                    if least == Some(*id) && cycle_reported.insert(*id) {
                        let mut names: Vec<&str> =
                            cycle.iter().map(|c| inv.nodes[c.0].name.as_str()).collect();
                        names.push(&inv.nodes[h.0].name);
                        p.push(Problem::value(
                            path.key("hosted_on"),
                            format!("hosting cycle: {}", names.join(" is hosted on ")),
                        ));
                    }
                    break;
                }
                seen.push(h);
                cur = inv.nodes[h.0].hosted_on;
            }
        }

        ha_groups(raw, &mut inv, &pending, &mut p);

        if p.is_empty() { Ok(inv) } else { Err(p) }
    }
}

fn port_zero(path: Path) -> Problem {
    Problem::value(
        path,
        "`0` is not a port: expected a port number between 1 and 65535",
    )
}

/// A named list (`@canary`, `@blacklist`, `@whitelist`) as selectors see it.
struct NamedList<'a> {
    name: &'static str,
    ids: &'a [NodeId],
    /// Whether the inventory sets it; `@whitelist` still resolves (to nothing) when it
    /// does not, but is not offered in help.
    defined: bool,
}

#[derive(Clone, Copy, PartialEq)]
enum Visit {
    InProgress,
    Done,
}

fn resolve_group<'a>(
    name: &'a str,
    raw: &'a RawInventory,
    inv: &mut Inventory,
    state: &mut HashMap<&'a str, Visit>,
    trail: &mut Vec<&'a str>,
    p: &mut Vec<Problem>,
) {
    match state.get(name) {
        Some(Visit::Done) => return,
        Some(Visit::InProgress) => {
            let start = trail.iter().position(|t| *t == name).unwrap_or(0);
            let mut cycle: Vec<String> = trail[start..].iter().map(|t| format!("@{t}")).collect();
            cycle.push(format!("@{name}"));
            p.push(Problem::key(
                Path::root().key("groups").key(name),
                format!("group cycle: {}", cycle.join(" -> ")),
            ));
            return;
        }
        None => {}
    }
    let Some(entries) = raw.groups.get(name) else {
        return;
    };
    state.insert(name, Visit::InProgress);
    trail.push(name);
    let mut ids = Vec::new();
    for (i, e) in entries.iter().enumerate() {
        if let Some(sub) = e.strip_prefix('@')
            && let Some((k, _)) = raw.groups.get_key_value(sub)
        {
            resolve_group(k, raw, inv, state, trail, p);
        }
        match resolve_entry(e, &inv.by_name, &inv.groups, &[]) {
            Ok(found) => ids.extend(found),
            Err(pr) => {
                // A reference to a group in a cycle is reported once, as the cycle.
                let in_cycle = e
                    .strip_prefix('@')
                    .is_some_and(|s| state.get(s) == Some(&Visit::InProgress) || raw.groups.contains_key(s));
                if !in_cycle {
                    p.push(Problem {
                        path: Path::root().key("groups").key(name).index(i),
                        ..pr
                    });
                }
            }
        }
    }
    trail.pop();
    state.insert(name, Visit::Done);
    inv.groups.insert(name.to_string(), dedup(ids.into_iter()));
}

fn resolve_entry(
    entry: &str,
    by_name: &HashMap<String, NodeId>,
    groups: &IndexMap<String, Vec<NodeId>>,
    lists: &[NamedList<'_>],
) -> Result<Vec<NodeId>, Problem> {
    if let Some(g) = entry.strip_prefix('@') {
        if let Some(ids) = groups.get(g) {
            return Ok(ids.clone());
        }
        if let Some(l) = lists.iter().find(|l| l.name == g) {
            return Ok(l.ids.to_vec());
        }
        // Groups in file order, then the named lists the inventory defines: the help
        // reads the same on every run and offers nothing that is not there.
        let mut known: Vec<&str> = groups.keys().map(String::as_str).collect();
        known.extend(lists.iter().filter(|l| l.defined).map(|l| l.name));
        let pr = Problem::value(Path::root(), format!("unknown group `@{g}`"));
        return Err(match did_you_mean(g, known.iter().copied()) {
            Some(m) => pr.with_help(format!("did you mean `@{m}`?")),
            None if known.is_empty() => pr.with_help("the inventory defines no groups"),
            None => {
                // A site with a group per rack would otherwise print a wall of names.
                const SHOWN: usize = 12;
                let mut list = known
                    .iter()
                    .take(SHOWN)
                    .map(|k| format!("@{k}"))
                    .collect::<Vec<_>>()
                    .join(", ");
                if known.len() > SHOWN {
                    list.push_str(&format!(" and {} more", known.len() - SHOWN));
                }
                pr.with_help(format!("known groups: {list}"))
            }
        });
    }
    let names = hostlist::expand(entry).map_err(|e| Problem::value(Path::root(), e.to_string()))?;
    let mut ids = Vec::with_capacity(names.len());
    let mut unknown = Vec::new();
    for n in &names {
        match by_name.get(n) {
            Some(id) => ids.push(*id),
            None => unknown.push(n.as_str()),
        }
    }
    if unknown.is_empty() {
        return Ok(ids);
    }
    if names.len() == 1 {
        return Err(unknown_node(Path::root(), entry, by_name));
    }
    Err(Problem::value(
        Path::root(),
        format!(
            "{} of the {} nodes in `{entry}` {} not in the inventory: {}",
            unknown.len(),
            names.len(),
            if unknown.len() == 1 { "is" } else { "are" },
            hostlist::compress(&unknown)
        ),
    ))
}

fn unknown_node(path: Path, name: &str, by_name: &HashMap<String, NodeId>) -> Problem {
    let pr = Problem::value(path, format!("unknown node `{name}`"));
    // Suggesting among thousands of names is slow and rarely useful; suggest only
    // when the inventory is of a size a person could have typed the name from.
    if by_name.len() <= 5000
        && let Some(m) = did_you_mean(name, by_name.keys().map(String::as_str))
    {
        return pr.with_help(format!("did you mean `{m}`?"));
    }
    pr.with_help("nodes must be defined under `nodes:` in the inventory")
}

fn dedup(ids: impl Iterator<Item = NodeId>) -> Vec<NodeId> {
    let mut seen = BTreeSet::new();
    ids.filter(|i| seen.insert(*i)).collect()
}

fn ha_groups(raw: &RawInventory, inv: &mut Inventory, pending: &[(NodeId, Path)], p: &mut Vec<Problem>) {
    let root = Path::root();
    let mut member_of: HashMap<NodeId, String> = HashMap::new();

    for (name, g) in &raw.ha_groups {
        let path = root.key("ha_groups").key(name.clone());
        let mut ids = Vec::new();
        for (i, e) in g.members.iter().enumerate() {
            match resolve_entry(e, &inv.by_name, &inv.groups, &[]) {
                Ok(found) => ids.extend(found),
                Err(pr) => p.push(Problem {
                    path: path.key("members").index(i),
                    ..pr
                }),
            }
        }
        let ids = dedup(ids.into_iter());
        if let Some(n) = g.max_unavailable {
            limits::HA_MAX_UNAVAILABLE.check_count(path.key("max_unavailable"), n.into(), p);
        }
        if g.max_unavailable == Some(0) {
            p.push(
                Problem::value(
                    path.key("max_unavailable"),
                    "`max_unavailable: 0` would forbid ever changing this group",
                )
                .with_help("use 1 or more; put nodes that must never be touched on the blacklist"),
            );
        }
        if ids.len() < 2 && !g.members.is_empty() && p.iter().all(|x| !x.path.segs().starts_with(path.segs()))
        {
            p.push(Problem::value(
                path.key("members"),
                format!(
                    "HA group `{name}` has {} member; an HA group needs at least 2",
                    ids.len()
                ),
            ));
        }
        claim_members(&ids, name, &path.key("members"), &mut member_of, inv, p);
        inv.ha_groups.push(HaGroup {
            name: name.clone(),
            members: ids,
            max_unavailable: g.max_unavailable.unwrap_or(1).max(1),
        });
    }

    // Groups declared on the nodes themselves: every member lists the same members.
    let mut declared: IndexMap<String, Vec<(NodeId, Path, Vec<NodeId>)>> = IndexMap::new();
    for (id, path) in pending {
        let key = path.last_key().unwrap_or_default();
        let Some(Some(spec)) = raw.nodes.get(key) else {
            continue;
        };
        let Some(ha) = &spec.ha_group else { continue };
        let hp = path.key("ha_group");
        let mut ids = Vec::new();
        let mut ok = true;
        for (i, e) in ha.members.iter().enumerate() {
            match resolve_entry(e, &inv.by_name, &inv.groups, &[]) {
                Ok(found) => ids.extend(found),
                Err(pr) => {
                    ok = false;
                    p.push(Problem {
                        path: hp.key("members").index(i),
                        ..pr
                    });
                }
            }
        }
        if !ok {
            continue;
        }
        let mut ids = dedup(ids.into_iter());
        ids.sort();
        if !ids.contains(id) {
            p.push(Problem::value(
                hp.key("members"),
                format!(
                    "node `{}` declares HA group `{}` but is not in its members",
                    inv.nodes[id.0].name, ha.name
                ),
            ));
            continue;
        }
        declared.entry(ha.name.clone()).or_default().push((*id, hp, ids));
    }
    for (name, decls) in declared {
        let (first_id, _, first) = &decls[0];
        let mut consistent = true;
        for (id, hp, ids) in &decls[1..] {
            if ids != first {
                consistent = false;
                p.push(
                    Problem::value(
                        hp.key("members"),
                        format!(
                            "node `{}` lists HA group `{name}` as `{}`, but node `{}` lists it as `{}`",
                            inv.nodes[id.0].name,
                            inv.names(ids),
                            inv.nodes[first_id.0].name,
                            inv.names(first)
                        ),
                    )
                    .with_help("every member of an HA group must list the same members"),
                );
            }
        }
        if !consistent {
            continue;
        }
        let declarers: BTreeSet<NodeId> = decls.iter().map(|d| d.0).collect();
        let missing: Vec<NodeId> = first.iter().copied().filter(|m| !declarers.contains(m)).collect();
        if !missing.is_empty() {
            p.push(
                Problem::value(
                    decls[0].1.key("members"),
                    format!(
                        "HA group `{name}` lists `{}`, which {} not declare it",
                        inv.names(&missing),
                        if missing.len() == 1 { "does" } else { "do" }
                    ),
                )
                .with_help("every member of an HA group must declare the group with the same members"),
            );
            continue;
        }
        if let Some(existing) = inv.ha_groups.iter().find(|g| g.name == name) {
            let mut e = existing.members.clone();
            e.sort();
            if &e != first {
                p.push(Problem::value(
                    decls[0].1.key("members"),
                    format!(
                        "HA group `{name}` has members `{}` under `ha_groups`, but its nodes list `{}`",
                        inv.names(&e),
                        inv.names(first)
                    ),
                ));
            }
            continue;
        }
        claim_members(first, &name, &decls[0].1.key("name"), &mut member_of, inv, p);
        inv.ha_groups.push(HaGroup {
            name: name.clone(),
            members: first.clone(),
            max_unavailable: 1,
        });
    }
    for (gi, g) in inv.ha_groups.iter().enumerate() {
        for m in &g.members {
            if inv.nodes[m.0].ha_group.is_none() {
                inv.nodes[m.0].ha_group = Some(gi);
            }
        }
    }
}

/// Records `ids` as members of HA group `name`; a node already in another group is an
/// error at `at`, since a node is in at most one HA group.
fn claim_members(
    ids: &[NodeId],
    name: &str,
    at: &Path,
    member_of: &mut HashMap<NodeId, String>,
    inv: &Inventory,
    p: &mut Vec<Problem>,
) {
    for id in ids {
        match member_of.get(id) {
            Some(other) => p.push(
                Problem::value(
                    at.clone(),
                    format!(
                        "node `{}` is in two HA groups: `{other}` and `{name}`",
                        inv.nodes[id.0].name
                    ),
                )
                .with_help("a node is in at most one HA group"),
            ),
            None => {
                member_of.insert(*id, name.to_string());
            }
        }
    }
}
