//! Integration tests: the real `drover` binary, run in temporary directories.

#[allow(dead_code, reason = "each test module uses part of the builder")]
mod support;

mod alarms;
mod ansible;
mod api;
mod api_ssh;
mod bad_inputs;
#[allow(dead_code, reason = "each test module uses part of the fixture")]
mod bed;
mod cli_extras;
mod client;
mod controller_env;
mod daemon;
mod daemon_git;
mod demo;
mod docs;
mod drain;
mod engine_faults;
mod engine_ssh;
mod examples;
mod fake_scheduler;
mod file_diff;
mod fuzz_corpus;
mod gates;
mod git_push;
mod git_settings;
mod jump_net;
mod local_transport;
mod man_page;
mod notifications;
mod outcomes;
mod output_memory;
mod pty;
mod quoting;
mod run_local;
mod schemas;
mod service;
mod slash_commands;
mod slurm;
mod ssh_connections;
mod ssh_settings;
mod store_errors;
mod terminal;
mod testbed;
mod validate_errors;
mod validate_safety;
mod vault;
