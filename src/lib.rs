//! drover: declarative rolling changes for fleets of nodes.
//!
//! The pipeline is parse → validate → plan → execute: [`yaml`] loads files into trees
//! that remember positions, serde `Raw*` types are checked into [`inventory`],
//! [`workflow`] and [`site`] domain types, and [`project`] loads a whole site.

pub mod ansible;
pub mod api;
pub mod bounded_read;
pub mod budget;
pub mod cli;
pub mod client;
pub mod daemon;
pub mod diag;
pub mod engine;
pub mod exit_code;
#[doc(hidden)]
pub mod fuzzing;
pub mod hooks;
pub mod hostlist;
pub mod inventory;
pub mod notification;
pub mod plan;
pub mod project;
pub mod report;
pub mod schemas;
pub mod service;
pub mod site;
pub mod slurm;
pub mod source;
pub mod store;
pub mod template;
pub mod transport;
pub mod units;
pub mod vault;
pub mod window;
pub mod workflow;
pub mod yaml;
