//! drover: declarative rolling changes for fleets of nodes.

pub mod diag;
pub mod hostlist;
pub mod template;
pub mod units;
pub mod window;
pub mod yaml;
