//! The command line.

use std::path::PathBuf;

use clap::{Parser, Subcommand, ValueEnum};

use super::selection::{Target, TransportKind};

/// `0.1.0 (commit 0123456789ab)`: the version and the git commit it was built from.
pub const VERSION: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    " (commit ",
    env!("DROVER_GIT_COMMIT"),
    ")"
);

/// Declarative, git-driven rolling changes for fleets of nodes.
#[derive(Debug, Parser)]
#[command(name = "drover", version = VERSION, about, long_about = None, after_long_help = crate::exit_code::HELP)]
pub struct Cli {
    /// When to color output.
    #[arg(long, value_enum, default_value_t = Color::Auto, global = true)]
    pub color: Color,
    /// Talk to this daemon (`drover serve`), e.g. `http://drover.example.org:8470`:
    /// `status`, `runs`, `pause`, `resume`/`unpause` and `nodes` then ask it instead of
    /// reading the local state database (`--site` is not read). The token comes from
    /// `DROVER_TOKEN` or `--token-file`, never from the command line.
    #[arg(long, global = true, env = "DROVER_SERVER", value_name = "URL")]
    pub server: Option<String>,
    /// With `--server`: a file holding the API token (wins over `DROVER_TOKEN`). A file
    /// that others may read is refused: `chmod 600` it.
    #[arg(long, global = true, value_name = "PATH")]
    pub token_file: Option<PathBuf>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Color {
    Auto,
    Always,
    Never,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Check a site (drover.yml, its inventory and every workflow) without touching a node.
    Validate {
        /// A site directory or its drover.yml.
        #[arg(default_value = ".")]
        path: PathBuf,
        /// Print the result as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Run every check of a workflow on its targets and list the nodes per class:
    /// GOOD (nothing to do), HOT (hot steps needed), DRAIN (a drain step needed), ERROR.
    Check {
        #[command(flatten)]
        target: Target,
        /// Also show how each node was reached (the negotiated ssh key exchange).
        #[arg(short, long)]
        verbose: bool,
        /// Show a unified diff of what each `copy`/`template` step would change in its
        /// file on each node (the first 8 KiB; never of a `secret: true` file).
        #[arg(long)]
        diff: bool,
    },
    /// Show, without touching a node, what `run` would do: exclusions, canary, batches,
    /// budgets, window.
    Plan {
        #[command(flatten)]
        target: Target,
    },
    /// Check every target, then run the needed steps: canary first, then the batches.
    Run {
        #[command(flatten)]
        target: Target,
        /// Steps to run: `hot`, `drain` and/or step names, comma-separated (default: hot).
        #[arg(long)]
        tags: Option<String>,
        /// Vars over the workflow's: `key=value` (several, space-separated, as
        /// Ansible's `-e`), a JSON object, or `@file.json`. Repeatable; later ones win.
        #[arg(long, short = 'e', action = clap::ArgAction::Append)]
        extra_vars: Vec<String>,
        /// Do not ask for confirmation.
        #[arg(long, short = 'y')]
        yes: bool,
        /// Check and plan, then stop before changing anything.
        #[arg(long)]
        dry_run: bool,
        /// Start even though the workflow's window is closed.
        #[arg(long)]
        ignore_window: bool,
        /// With the plan, show a unified diff of what each `copy`/`template` step would
        /// change in its file on each node (the first 8 KiB; never of a `secret: true` file).
        #[arg(long)]
        diff: bool,
    },
    /// The runs in the state database (or of the `--server`): list them, show one,
    /// resume one a dead controller left; with `--server` also watch or abort one.
    Runs {
        #[command(subcommand)]
        command: RunsCommand,
    },
    /// Pause every run of the site: no new node starts (nodes in flight finish their
    /// cycle) until `drover unpause`. Kept in the state database: it holds runs started
    /// later, and across restarts.
    Pause {
        /// Why, for whoever finds it paused (or `--reason`).
        #[arg(value_name = "REASON", conflicts_with = "reason")]
        why: Option<String>,
        #[arg(long, default_value = ".")]
        site: PathBuf,
        /// Why, for whoever finds it paused.
        #[arg(long)]
        reason: Option<String>,
        /// Who pauses (default: $USER; with `--server`, the token's name).
        #[arg(long)]
        by: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// Lift the pause `drover pause` set (a run's own pause stays; see `runs unpause`).
    #[command(visible_alias = "resume")]
    Unpause {
        #[arg(long, default_value = ".")]
        site: PathBuf,
        #[arg(long)]
        json: bool,
    },
    /// With `--server`: how the daemon stands: the commit in force, rejected commits,
    /// pauses, windows, active runs.
    Status {
        #[arg(long)]
        json: bool,
    },
    /// Nodes apart from runs: maintenance (automation off); with `--server` also their
    /// lifecycle (get, commission, decommission, discover).
    Nodes {
        #[command(subcommand)]
        command: NodesCommand,
    },
    /// Run the daemon: resume the runs it left, serve /healthz and /metrics on
    /// `server.listen`, and keep every workflow with `converge` at its version. SIGTERM or
    /// Ctrl-C: start no new node, let those in flight finish, exit 0.
    Serve {
        /// The site: a directory with drover.yml, or the file itself.
        #[arg(long, default_value = ".")]
        site: PathBuf,
        /// How the log (on stderr) is written.
        #[arg(long, value_enum, default_value_t = crate::daemon::LogFormat::Text)]
        log_format: crate::daemon::LogFormat,
        /// How long a stop waits for the nodes in flight to finish their cycle before
        /// their steps are aborted (what they drained stays recorded for the next start).
        #[arg(long, default_value = "2m", value_parser = humantime::parse_duration)]
        shutdown_deadline: std::time::Duration,
        /// Listen here instead of `server.listen` (default 127.0.0.1:8470).
        #[arg(long)]
        listen: Option<std::net::SocketAddr>,
    },
    /// Print a shell completion script: `drover completions bash > /etc/bash_completion.d/drover`,
    /// `drover completions zsh > ~/.zfunc/_drover`, `drover completions fish >
    /// ~/.config/fish/completions/drover.fish`.
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Write the JSON Schemas of the file formats (for editors) into a directory.
    Schema {
        /// Where to write them.
        #[arg(long, default_value = "schemas")]
        out: PathBuf,
        /// Do not write; exit 4 if the files there differ from what this drover generates.
        #[arg(long)]
        check: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum RunsCommand {
    /// Every run, newest first, with node counts.
    List {
        /// The site: a directory with drover.yml, or the file itself.
        #[arg(long, default_value = ".")]
        site: PathBuf,
        /// Only runs in this state (`running`, `succeeded`, `completed_with_failures`,
        /// `stopped`, `interrupted`, `cancelled`).
        #[arg(long)]
        state: Option<String>,
        /// Only runs of this workflow.
        #[arg(long)]
        workflow: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// With `--server`: follow a run as it happens (the progress of a local `drover
    /// run`), then exit with the code a local run with its outcome exits with. Ctrl-C
    /// stops watching, not the run.
    Watch {
        id: String,
        /// Print the event stream's JSON, one event a line.
        #[arg(long)]
        json: bool,
    },
    /// With `--server`: abort a run in flight: no new node starts, the nodes in flight
    /// finish their cycle (so none is left drained), then the run is cancelled.
    Abort {
        id: String,
        /// Also abort the steps in flight (a node may be left drained, held with the reason).
        #[arg(long)]
        force: bool,
        #[arg(long)]
        json: bool,
    },
    /// A run's log: every command on every node and what it printed, each line
    /// prefixed with its node.
    Logs {
        id: String,
        #[arg(long, default_value = ".")]
        site: PathBuf,
        /// Only this node's lines.
        #[arg(long)]
        node: Option<String>,
        /// Keep printing what the run writes until it ends.
        #[arg(long, short = 'f')]
        follow: bool,
    },
    /// One run: where each node stands, and why.
    Show {
        id: String,
        #[arg(long, default_value = ".")]
        site: PathBuf,
        #[arg(long)]
        json: bool,
    },
    /// Continue a run whose controller died or was interrupted: finished nodes are left
    /// alone, the rest are re-checked and taken up where they stood. With `--server`:
    /// lift the run's pause (the API's resume; the daemon takes up runs a dead
    /// controller left by itself when it starts).
    Resume {
        id: String,
        #[arg(long, default_value = ".")]
        site: PathBuf,
        /// Do not ask for confirmation.
        #[arg(long, short = 'y')]
        yes: bool,
        #[arg(long)]
        json: bool,
        /// How nodes are reached (default: the site's `transport`, else ssh).
        #[arg(long, value_enum)]
        transport: Option<TransportKind>,
        /// Let `--transport local` resume a site that does not declare `transport: local`.
        #[arg(long)]
        allow_local: bool,
    },
    /// Pause one run: it starts no new node (nodes in flight finish their cycle) until
    /// `drover runs unpause ID`.
    Pause {
        id: String,
        #[arg(long, default_value = ".")]
        site: PathBuf,
        /// Why, for whoever finds it paused.
        #[arg(long)]
        reason: Option<String>,
        /// Who pauses (default: $USER).
        #[arg(long)]
        by: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// Lift a run's own pause (a global `drover pause` still holds it).
    Unpause {
        id: String,
        #[arg(long, default_value = ".")]
        site: PathBuf,
        #[arg(long)]
        json: bool,
    },
    /// Give up a run whose controller is gone (or that was interrupted or stopped):
    /// release its leases and mark it cancelled. Nodes it left drained stay drained, for
    /// a human; the command lists them.
    Cancel {
        id: String,
        #[arg(long, default_value = ".")]
        site: PathBuf,
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum NodesCommand {
    /// Automation off for nodes (no run checks, starts or hooks them), or on again.
    Maintenance {
        #[command(subcommand)]
        command: MaintenanceCommand,
    },
    /// With `--server`: the nodes (every one, or those named; a name the daemon does
    /// not have is ignored) with address, groups, HA group, lifecycle state,
    /// maintenance and the workflow versions they are at.
    Get {
        /// Node names or host lists (`n[001-004]`), space- or comma-separated.
        nodes: Vec<String>,
        #[arg(long)]
        json: bool,
    },
    /// With `--server`: run the site's commission workflow on the nodes (all of them or
    /// none: an unknown name refuses the request, exit 3); they are `commissioned`
    /// once it succeeds, else the decommission workflow cleans up all of them.
    Commission {
        /// Node names or host lists (`n[001-004]`).
        #[arg(required = true)]
        nodes: Vec<String>,
        /// Vars over the workflow's: `key=value`, a JSON object, or `@file.json`.
        /// Repeatable; later ones win.
        #[arg(long, short = 'e', action = clap::ArgAction::Append)]
        extra_vars: Vec<String>,
        #[arg(long)]
        json: bool,
    },
    /// With `--server`: run the site's decommission workflow on the nodes (best
    /// effort); from then on every rollout leaves them out.
    Decommission {
        #[arg(required = true)]
        nodes: Vec<String>,
        /// Vars over the workflow's: `key=value`, a JSON object, or `@file.json`.
        #[arg(long, short = 'e', action = clap::ArgAction::Append)]
        extra_vars: Vec<String>,
        #[arg(long)]
        json: bool,
    },
    /// With `--server`: probe addresses over SSH (host key, hostname, CPUs) and record
    /// them as `discovered`; an address that cannot be reached is reported (exit 6).
    Discover {
        /// `host`, `host:port` or `user@host:port`.
        #[arg(required = true)]
        addresses: Vec<String>,
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum MaintenanceCommand {
    /// Put nodes into maintenance. An unknown name refuses the whole command (every one
    /// is listed) and changes nothing.
    On {
        /// Node names, host lists (`n[001-004]`) or `@group`.
        #[arg(required = true)]
        nodes: Vec<String>,
        #[arg(long, default_value = ".")]
        site: PathBuf,
        /// Why (required): shown by `plan`, `check` and runs that skip the node.
        #[arg(long)]
        reason: Option<String>,
        /// Who (default: $USER).
        #[arg(long)]
        by: Option<String>,
        /// Also drain them, with the site's drain hook (its scheduler's) and the reason;
        /// drover asks for the drain and does not wait for the nodes to be drained.
        /// Not with `--server` (the site's maintenance workflow does what it needs).
        #[arg(long)]
        drain: bool,
        /// With `--server`: vars over the maintenance workflow's (`key=value`, JSON,
        /// `@file.json`).
        #[arg(long, short = 'e', action = clap::ArgAction::Append)]
        extra_vars: Vec<String>,
        #[arg(long)]
        json: bool,
    },
    /// Take nodes out of maintenance.
    Off {
        #[arg(required = true)]
        nodes: Vec<String>,
        #[arg(long, default_value = ".")]
        site: PathBuf,
        #[arg(long)]
        json: bool,
    },
    /// The nodes in maintenance, with who, since when and why.
    List {
        #[arg(long, default_value = ".")]
        site: PathBuf,
        #[arg(long)]
        json: bool,
    },
}
