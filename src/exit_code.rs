//! Process exit codes. Scripts and the daemon's supervisor rely on them: they are part of
//! drover's interface and listed in the README.

/// Everything asked for was done.
pub const OK: i32 = 0;
/// drover itself failed (I/O error, internal error).
pub const FAILURE: i32 = 1;
/// The command line was wrong (clap's own code).
pub const USAGE: i32 = 2;
/// A config, inventory or workflow file is invalid; nothing was run.
pub const INVALID_CONFIG: i32 = 3;
/// Generated files (schemas) differ from what the code generates.
pub const OUT_OF_DATE: i32 = 4;
/// A run stopped early: a canary failed or a failure budget was exceeded. Nodes in flight
/// finished their step; the run waits for a human.
pub const RUN_STOPPED: i32 = 5;
/// The work finished but some nodes failed (within budget), or `check` found ERROR nodes.
pub const NODES_FAILED: i32 = 6;
/// The workflow's maintenance window is closed; nothing was started.
pub const WINDOW_CLOSED: i32 = 7;
/// Another run holds some of the nodes (a lease), and the site says to refuse rather
/// than wait; nothing was started.
pub const NODES_LEASED: i32 = 8;
/// Nothing was selected: `--limit`, the blacklist, the whitelist or the workflow's
/// `exclude` leave no target; nothing was run.
pub const NOTHING_SELECTED: i32 = 9;
/// The run did what it could, but selected work remains: nodes need steps `--tags` left
/// out (drain steps, by default), or need the change while out of service and were left
/// alone.
pub const WORK_REMAINS: i32 = 10;
/// The state store could not record the run's progress, so the run stopped: no new
/// node started, the ones in flight finished or were held. Not the change's fault: no
/// node counts as failed for it.
pub const STATE_STORE_FAILED: i32 = 11;
/// Another run took over leases of nodes this run had not finished (its heartbeat
/// could not renew them in time), so the run stopped.
pub const LEASE_LOST: i32 = 12;
/// `--server`: the daemon refused the token (none or an unknown one: HTTP 401), or its
/// role or node scope does not allow the request (403); or the token file cannot be
/// used (unreadable, empty, readable by others). Nothing was done.
pub const NOT_AUTHORISED: i32 = 13;
/// `--server`: the daemon could not be reached (connection refused, no such host,
/// timed out, TLS failed), or its event stream broke and could not be opened again.
pub const SERVER_UNREACHABLE: i32 = 14;
/// `--server`: the daemon failed (HTTP 5xx: its state store), or answered with
/// something that is not drover's API (a proxy's error page, a wrong port).
pub const SERVER_FAILED: i32 = 15;
/// Interrupted with Ctrl-C.
pub const INTERRUPTED: i32 = 130;

/// The codes for `drover --help` and the man page (the README has the long table; a
/// test keeps both listing every code above).
pub const HELP: &str = "\
Exit codes:
    0  success
    1  drover itself failed (I/O error, internal error)
    2  the command line was wrong (also: no such run)
    3  invalid config, inventory or workflow, or invalid input (an unknown node); nothing ran
    4  `schema --check`: generated files are out of date
    5  the run stopped early (a canary, a failure budget, an abort); it waits for a human
    6  the run finished but some nodes failed (within budget); `check` found ERROR nodes
    7  the workflow's window is closed; nothing was started
    8  another run holds some of the nodes; nothing was started
    9  nothing selected; nothing was run
   10  work remains (steps `--tags` left out, nodes out of service or in maintenance)
   11  the state store could not record the run's progress: the run stopped
   12  another run took over the lease of a node this run had not finished
   13  --server: not authorised (HTTP 401/403, an unusable token file); nothing done
   14  --server: the server cannot be reached
   15  --server: the server failed (HTTP 5xx) or is not drover's API
  130  interrupted (Ctrl-C)";
