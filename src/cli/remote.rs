//! `--server URL`: the commands that then ask the daemon's API instead of the local
//! state database (the client itself is [`crate::client`]). Options the API cannot
//! honour (`--by`: the daemon records the token's name; `--drain`; a run's pause
//! reason) are refused rather than dropped silently.

use std::io::Write;

use super::args::{Cli, Command, MaintenanceCommand, NodesCommand, RunsCommand};
use crate::client::{self, ApiClient, ApiToken, ClientError, Lifecycle};
use crate::exit_code;

/// For a command that only a daemon can answer, run without a server.
pub(super) fn needs_server(what: &str, err: &mut dyn Write) -> i32 {
    let _ = writeln!(
        err,
        "error: `drover {what}` asks a daemon: pass --server URL or set DROVER_SERVER"
    );
    exit_code::USAGE
}

/// The server, if one is given (an empty `DROVER_SERVER` is none).
pub(super) fn server(cli: &Cli) -> Option<&str> {
    cli.server.as_deref().map(str::trim).filter(|s| !s.is_empty())
}

fn extra(args: &[String]) -> Result<Option<serde_json::Map<String, serde_json::Value>>, ClientError> {
    if args.is_empty() {
        return Ok(None);
    }
    super::selection::extra_vars(args)
        .map(Some)
        .map_err(|r| ClientError::Usage(r.0))
}

fn refuse_flag(given: bool, what: &str) -> Result<(), ClientError> {
    if given {
        Err(ClientError::Usage(what.to_string()))
    } else {
        Ok(())
    }
}

/// With a server: runs the command against it and returns its exit code; `None` for a
/// command that is local whatever the server (`validate`, `run`, `serve` ...).
pub(super) fn dispatch(cli: &Cli, color: bool, out: &mut dyn Write, err: &mut dyn Write) -> Option<i32> {
    let url = server(cli)?;
    if !is_remote(&cli.command) {
        return None;
    }
    let token = match ApiToken::find(cli.token_file.as_deref()) {
        Ok(t) => t,
        Err(e) => return Some(e.report(err, false)),
    };
    let had_token = token.is_some();
    let c = match ApiClient::new(url, token) {
        Ok(c) => c,
        Err(e) => return Some(e.report(err, had_token)),
    };
    let rt = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            let _ = writeln!(err, "error: cannot start the client's runtime: {e}");
            return Some(exit_code::FAILURE);
        }
    };
    let result = rt.block_on(call(&c, &cli.command, color, out, err));
    Some(match result {
        Ok(code) => code,
        Err(e) => e.report(err, had_token),
    })
}

/// Whether the command talks to the daemon when a server is given.
fn is_remote(c: &Command) -> bool {
    matches!(
        c,
        Command::Status { .. }
            | Command::Runs { .. }
            | Command::Pause { .. }
            | Command::Unpause { .. }
            | Command::Nodes { .. }
    )
}

async fn call(
    c: &ApiClient,
    command: &Command,
    color: bool,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> Result<i32, ClientError> {
    match command {
        Command::Status { json } => client::status(c, *json, out).await,
        Command::Pause {
            why,
            reason,
            by,
            json,
            ..
        } => {
            refuse_flag(
                by.is_some(),
                "--by: the daemon records who paused as the token's name",
            )?;
            client::pause(c, why.as_deref().or(reason.as_deref()), *json, out).await
        }
        Command::Unpause { json, .. } => client::resume(c, *json, out).await,
        Command::Runs { command } => runs(c, command, color, out, err).await,
        Command::Nodes { command } => nodes(c, command, out).await,
        _ => Err(ClientError::Usage(
            "this command does not talk to a daemon".into(),
        )),
    }
}

async fn runs(
    c: &ApiClient,
    command: &RunsCommand,
    color: bool,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> Result<i32, ClientError> {
    match command {
        RunsCommand::List {
            state,
            workflow,
            json,
            ..
        } => client::runs_list(c, state.as_deref(), workflow.as_deref(), *json, out).await,
        RunsCommand::Show { id, json, .. } => client::runs_show(c, id, *json, out).await,
        RunsCommand::Watch { id, json } => client::watch(c, id, *json, color, out, err).await,
        RunsCommand::Abort { id, force, json } => client::abort(c, id, *force, *json, out).await,
        RunsCommand::Pause {
            id,
            reason,
            by,
            json,
            ..
        } => {
            refuse_flag(
                reason.is_some() || by.is_some(),
                "--reason/--by: the API's pause of one run takes neither (it records the token's name); `drover pause REASON` pauses every run with a reason",
            )?;
            client::run_pause(c, id, *json, out).await
        }
        RunsCommand::Unpause { id, json, .. } => client::run_resume(c, id, *json, out).await,
        RunsCommand::Resume {
            id,
            json,
            transport,
            allow_local,
            ..
        } => {
            refuse_flag(
                transport.is_some() || *allow_local,
                "--transport/--allow-local: with --server the daemon drives the run",
            )?;
            client::run_resume(c, id, *json, out).await
        }
        RunsCommand::Logs { .. } => Err(ClientError::Usage(
            "`runs logs` reads the local state database; the API has no logs: run it on the daemon's host, or `drover runs watch ID`".into(),
        )),
        RunsCommand::Cancel { .. } => Err(ClientError::Usage(
            "`runs cancel` gives up a run nobody drives; a run of the daemon is stopped with `drover runs abort ID`".into(),
        )),
    }
}

async fn nodes(c: &ApiClient, command: &NodesCommand, out: &mut dyn Write) -> Result<i32, ClientError> {
    match command {
        NodesCommand::Get { nodes, json } => client::nodes_get(c, nodes, *json, out).await,
        NodesCommand::Commission {
            nodes,
            extra_vars,
            json,
        } => client::lifecycle(c, Lifecycle::Commission, nodes, extra(extra_vars)?, *json, out).await,
        NodesCommand::Decommission {
            nodes,
            extra_vars,
            json,
        } => client::lifecycle(c, Lifecycle::Decommission, nodes, extra(extra_vars)?, *json, out).await,
        NodesCommand::Discover { addresses, json } => client::discover(c, addresses, *json, out).await,
        NodesCommand::Maintenance { command } => match command {
            MaintenanceCommand::On {
                nodes,
                reason,
                by,
                drain,
                extra_vars,
                json,
                ..
            } => {
                refuse_flag(
                    *drain,
                    "--drain: with --server the site's maintenance workflow does what it needs",
                )?;
                refuse_flag(by.is_some(), "--by: the daemon records the token's name")?;
                if reason.as_deref().is_none_or(|r| r.trim().is_empty()) {
                    return Err(ClientError::Usage(
                        "a node goes into maintenance with a reason: pass --reason TEXT".into(),
                    ));
                }
                let op = Lifecycle::MaintenanceOn {
                    reason: reason.as_deref(),
                };
                client::lifecycle(c, op, nodes, extra(extra_vars)?, *json, out).await
            }
            MaintenanceCommand::Off { nodes, json, .. } => {
                client::lifecycle(c, Lifecycle::MaintenanceOff, nodes, None, *json, out).await
            }
            MaintenanceCommand::List { json, .. } => client::maintenance_list(c, *json, out).await,
        },
    }
}
