//! Dispatch from the parsed command line to the commands.

use std::io::{IsTerminal, Write};

use clap::Parser;

use super::args::{Cli, Color, Command, MaintenanceCommand, NodesCommand, RunsCommand};
use super::nodes::{MaintenanceRequest, maintenance, maintenance_list};
use super::pause::{PauseRequest, pause, unpause};
use super::rollout::{RunOptions, check, plan, run};
use super::{schema::schema, validate::validate};

/// Runs drover with the process's arguments and returns its exit code.
pub fn main() -> i32 {
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let _ = e.print();
            return e.exit_code();
        }
    };
    let color = match cli.color {
        Color::Always => true,
        Color::Never => false,
        Color::Auto => std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none(),
    };
    // What a killed drover left (ssh control dirs and their masters) goes at the next
    // start of any command, not only of one that opens connections.
    crate::transport::clean_dead(&std::env::temp_dir());
    // Unlocked handles: the reporter task writes from another thread while a command runs.
    let (mut out, mut err) = (std::io::stdout(), std::io::stderr());
    if let Some(code) = super::remote::dispatch(&cli, color, &mut out, &mut err) {
        return code;
    }
    let needs_server = super::remote::needs_server;
    match cli.command {
        Command::Status { .. } => needs_server("status", &mut err),
        Command::Validate { path, json } => validate(&path, json, color, &mut out, &mut err),
        Command::Runs { command } => match command {
            RunsCommand::List {
                site,
                state,
                workflow,
                json,
            } => {
                let filter = super::runs::RunFilter {
                    state: state.as_deref(),
                    workflow: workflow.as_deref(),
                };
                super::runs::list(&site, &filter, json, color, &mut out, &mut err)
            }
            RunsCommand::Watch { .. } => needs_server("runs watch", &mut err),
            RunsCommand::Abort { .. } => needs_server("runs abort", &mut err),
            RunsCommand::Logs {
                id,
                site,
                node,
                follow,
            } => super::run_logs::logs(&site, &id, node.as_deref(), follow, color, &mut out, &mut err),
            RunsCommand::Show { id, site, json } => {
                super::runs::show(&site, &id, json, color, &mut out, &mut err)
            }
            RunsCommand::Resume {
                id,
                site,
                yes,
                json,
                transport,
                allow_local,
            } => super::runs::resume(
                &site,
                &id,
                yes,
                (transport, allow_local),
                json,
                color,
                &mut out,
                &mut err,
            ),
            RunsCommand::Cancel { id, site, json } => {
                super::runs::cancel(&site, &id, json, color, &mut out, &mut err)
            }
            RunsCommand::Pause {
                id,
                site,
                reason,
                by,
                json,
            } => {
                let req = PauseRequest {
                    site: &site,
                    run: Some(&id),
                    reason: reason.as_deref(),
                    by: by.as_deref(),
                    json,
                };
                pause(&req, color, &mut out, &mut err)
            }
            RunsCommand::Unpause { id, site, json } => {
                let req = PauseRequest {
                    site: &site,
                    run: Some(&id),
                    reason: None,
                    by: None,
                    json,
                };
                unpause(&req, color, &mut out, &mut err)
            }
        },
        Command::Pause {
            why,
            site,
            reason,
            by,
            json,
        } => {
            let req = PauseRequest {
                site: &site,
                run: None,
                reason: why.as_deref().or(reason.as_deref()),
                by: by.as_deref(),
                json,
            };
            pause(&req, color, &mut out, &mut err)
        }
        Command::Unpause { site, json } => {
            let req = PauseRequest {
                site: &site,
                run: None,
                reason: None,
                by: None,
                json,
            };
            unpause(&req, color, &mut out, &mut err)
        }
        Command::Nodes {
            command: NodesCommand::Get { .. },
        } => needs_server("nodes get", &mut err),
        Command::Nodes {
            command: NodesCommand::Commission { .. },
        } => needs_server("nodes commission", &mut err),
        Command::Nodes {
            command: NodesCommand::Decommission { .. },
        } => needs_server("nodes decommission", &mut err),
        Command::Nodes {
            command: NodesCommand::Discover { .. },
        } => needs_server("nodes discover", &mut err),
        Command::Nodes {
            command: NodesCommand::Maintenance { command },
        } => match command {
            MaintenanceCommand::On { extra_vars, .. } if !extra_vars.is_empty() => {
                let _ = writeln!(
                    err,
                    "error: --extra-vars: the local command runs no workflow; with --server the site's maintenance workflow takes them"
                );
                crate::exit_code::USAGE
            }
            MaintenanceCommand::On {
                nodes,
                site,
                reason,
                by,
                drain,
                json,
                ..
            } => {
                let req = MaintenanceRequest {
                    site: &site,
                    on: true,
                    nodes: &nodes,
                    reason: reason.as_deref(),
                    by: by.as_deref(),
                    drain,
                    json,
                };
                maintenance(&req, color, &mut out, &mut err)
            }
            MaintenanceCommand::Off { nodes, site, json } => {
                let req = MaintenanceRequest {
                    site: &site,
                    on: false,
                    nodes: &nodes,
                    reason: None,
                    by: None,
                    drain: false,
                    json,
                };
                maintenance(&req, color, &mut out, &mut err)
            }
            MaintenanceCommand::List { site, json } => {
                maintenance_list(&site, json, color, &mut out, &mut err)
            }
        },
        Command::Schema { out: dir, check } => schema(&dir, check, &mut out, &mut err),
        Command::Serve {
            site,
            log_format,
            shutdown_deadline,
            listen,
        } => super::serve::serve(&site, log_format, shutdown_deadline, listen, &mut err),
        Command::Completions { shell } => {
            let mut cmd = <Cli as clap::CommandFactory>::command();
            clap_complete::generate(shell, &mut cmd, "drover", &mut out);
            crate::exit_code::OK
        }
        Command::Check {
            mut target,
            verbose,
            diff,
        } => {
            target.color = color;
            check(&target, verbose, diff, color, &mut out, &mut err)
        }
        Command::Plan { mut target } => {
            target.color = color;
            plan(&target, color, &mut out, &mut err)
        }
        Command::Run {
            mut target,
            tags,
            extra_vars,
            yes,
            dry_run,
            ignore_window,
            diff,
        } => {
            target.color = color;
            let opts = RunOptions {
                tags,
                extra_vars,
                yes,
                dry_run,
                ignore_window,
                diff,
            };
            run(&target, &opts, color, &mut out, &mut err)
        }
    }
}
