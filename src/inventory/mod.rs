//! The inventory: nodes, groups, named lists, HA groups and topology.

mod host_template;
#[expect(clippy::module_inception, reason = "the type is named after the concept")]
mod inventory;
mod node;
mod raw_inventory;

pub use host_template::HostTemplate;
pub use inventory::{HaGroup, Inventory, NAMED_LISTS};
pub use node::{Address, Node, NodeId, check_host, check_node_name, check_user};
pub use raw_inventory::{RawDefaults, RawHaGroup, RawInventory, RawNode, RawNodeHa};
