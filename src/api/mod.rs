//! The daemon's REST API under `/api/v1` (axum, JSON): runs, the daemon's pause, and
//! node lifecycle, behind bearer tokens with roles and node scopes. See the OpenAPI
//! document (`schemas/openapi.json`).

mod api_context;
mod api_error;
mod api_json;
mod api_router;
mod api_types;
mod daemon_routes;
mod discover_address;
mod discover_routes;
mod host_probe;
mod live_runs;
mod node_scope;
mod nodes_routes;
mod openapi_doc;
mod read_cache;
mod runs_routes;
mod token_set;

pub use api_context::ApiContext;
pub use api_error::{ApiError, ErrorBody, ErrorDetail};
pub use api_json::{ApiJson, MAX_BODY_BYTES, decode};
pub use api_router::{api_router, role_name};
pub use api_types::*;
pub use discover_address::DiscoverAddress;
pub use discover_routes::MAX_ADDRESSES as MAX_DISCOVER_ADDRESSES;
pub use live_runs::LiveRuns;
pub use node_scope::check_scope;
pub use openapi_doc::{ApiDoc, openapi_json};
pub use read_cache::{ReadCache, Stamp};
pub use token_set::{Caller, TokenError, TokenSet};
