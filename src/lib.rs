//! drover: declarative rolling changes for fleets of nodes.

pub mod diag;
pub mod hostlist;
pub mod inventory;
pub mod template;
pub mod units;
pub mod window;
pub mod yaml;
pub mod workflow;
pub mod site;
