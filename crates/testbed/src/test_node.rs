//! One node of a testbed, as tests and inventories see it.

use std::net::Ipv4Addr;
use std::path::PathBuf;

/// What a test needs to reach a node and check its effects: the address drover connects
/// to and the directory that stands in for the node's disk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TestNode {
    /// `node001`, `node002`, ...: also `DROVER_NODE` in every session on the node.
    pub name: String,
    /// The node's own loopback address (`127.0.0.2`, ...), so nodes differ by host like a
    /// real fleet rather than by port.
    pub host: String,
    /// The port sshd listens on (the same for every node of one testbed).
    pub port: u16,
    /// The node's private state directory (`<dir>/nodes/node001`); commands find it in
    /// `DROVER_STATE` and inventories in `node.vars.state`.
    pub state_dir: PathBuf,
}

impl TestNode {
    /// The name of node `index` (0-based): zero-padded so names sort like the nodes and
    /// compress into host lists (`node[001-128]`).
    pub fn name_for(index: usize) -> String {
        format!("node{:03}", index + 1)
    }

    /// The loopback address of node `index` (0-based): `127.0.0.2` up to `127.0.0.251`,
    /// then `127.0.1.2` and so on. Linux routes all of 127/8 to `lo`, so every node gets its
    /// own address without configuring interfaces; `.0`, `.1` and the top of each /24 are
    /// left alone because `127.0.0.1` is the ordinary localhost.
    pub fn address_for(index: usize) -> Ipv4Addr {
        let block = u8::try_from(index / 250).unwrap_or(u8::MAX);
        let host = u8::try_from(2 + index % 250).unwrap_or(u8::MAX);
        Ipv4Addr::new(127, 0, block, host)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_addresses() {
        assert_eq!(TestNode::name_for(0), "node001");
        assert_eq!(TestNode::name_for(999), "node1000");
        assert_eq!(TestNode::address_for(0), Ipv4Addr::new(127, 0, 0, 2));
        assert_eq!(TestNode::address_for(249), Ipv4Addr::new(127, 0, 0, 251));
        assert_eq!(TestNode::address_for(250), Ipv4Addr::new(127, 0, 1, 2));
        assert_eq!(TestNode::address_for(2999), Ipv4Addr::new(127, 0, 11, 251));
    }
}
