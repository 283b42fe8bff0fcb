//! The CLI as a client of the daemon's REST API (`--server URL`): `status`, `runs`,
//! `pause`/`resume` and `nodes` ask a running `drover serve` instead of the local state
//! database. One concept per file: the token, the HTTP client and its errors, the
//! event-stream parser, the tables, and the commands by what they act on.

mod api_client;
mod api_token;
mod client_error;
mod daemon_commands;
mod nodes_commands;
mod run_watch;
mod runs_commands;
mod sse_parser;
mod table;

pub use api_client::ApiClient;
pub use api_token::ApiToken;
pub use client_error::ClientError;
pub use daemon_commands::{pause, resume, status};
pub use nodes_commands::{Lifecycle, discover, get as nodes_get, lifecycle, maintenance_list};
pub use run_watch::{outcome_exit, watch};
pub use runs_commands::{
    abort, list as runs_list, pause as run_pause, resume as run_resume, show as runs_show,
};
pub use sse_parser::{SseEvent, SseParser};
pub use table::Table;
