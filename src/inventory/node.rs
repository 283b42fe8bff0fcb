//! A node of the inventory, checked.

use indexmap::IndexMap;
use serde::Serialize;

use crate::transport::SshOptions;

/// Index of a node in its [`Inventory`](super::Inventory); cheap to copy and to keep in
/// plans of thousands of nodes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct NodeId(pub usize);

/// How to reach a node over SSH. Unset fields are left to the user's ssh configuration.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Address {
    pub host: String,
    pub port: Option<u16>,
    pub user: Option<String>,
    /// The node's own ssh settings (its inventory entry's `ssh:`), over its groups' and
    /// the site's. Relative paths are relative to the site directory.
    #[serde(skip_serializing_if = "SshOptions::is_empty")]
    pub ssh: SshOptions,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Node {
    pub name: String,
    pub address: Address,
    pub vars: IndexMap<String, serde_json::Value>,
    /// The hypervisor this node runs on.
    pub hosted_on: Option<NodeId>,
    /// Index into [`Inventory::ha_groups`](super::Inventory::ha_groups).
    pub ha_group: Option<usize>,
}

/// Node names end up in shell commands, file paths and scheduler calls: only letters,
/// digits, `-`, `_` and `.` are allowed, starting with a letter or digit.
pub fn check_node_name(name: &str) -> Result<(), String> {
    let ok_first = name.chars().next().is_some_and(|c| c.is_ascii_alphanumeric());
    let ok_rest = name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if name.is_empty() || name.len() > 253 || !ok_first || !ok_rest {
        return Err(format!(
            "invalid node name `{name}`: use letters, digits, `-`, `_` and `.`, starting with a letter or digit"
        ));
    }
    Ok(())
}

/// Host names and IP addresses (IPv6 included), nothing a shell would interpret.
pub fn check_host(host: &str) -> Result<(), String> {
    let ok = !host.is_empty()
        && !host.starts_with('-')
        && host
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | ':' | '%'));
    if ok {
        Ok(())
    } else {
        Err(format!(
            "invalid host `{host}`: expected a host name or an IP address"
        ))
    }
}

/// POSIX-style user names.
pub fn check_user(user: &str) -> Result<(), String> {
    let ok = user
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && user
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if ok {
        Ok(())
    } else {
        Err(format!(
            "invalid user `{user}`: expected a login name like `root` or `deploy`"
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_with_shell_characters_are_refused() {
        assert!(check_node_name("n001").is_ok());
        assert!(check_node_name("login-1.example.org").is_ok());
        for bad in ["", "a b", "a;b", "$(x)", "-n", "a/b", "n`1`"] {
            assert!(check_node_name(bad).is_err(), "{bad}");
        }
        assert!(check_host("fe80::1%eth0").is_ok());
        assert!(check_host("-oProxyCommand=x").is_err());
        assert!(check_user("root").is_ok());
        assert!(check_user("r;m").is_err());
    }
}
