//! The routes under `/api/v1` and what every request goes through first: the body
//! limit, the bearer token (401 without a known one), the role (`read` may only GET),
//! and one audit line per request naming the token (never its secret).

use axum::Router;
use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::{Method, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use tracing::info;

use super::api_error::ApiError;
use super::api_json::MAX_BODY_BYTES;
use super::{daemon_routes, discover_routes, nodes_routes, openapi_doc, runs_routes};
use crate::daemon::AppState;
use crate::site::ApiRole;

/// The API's routes, to nest under `/api/v1`. `/openapi.json` needs no token (it is the
/// contract, not the data).
pub fn api_router(state: AppState) -> Router<AppState> {
    let guarded = Router::new()
        .route("/runs", get(runs_routes::list).post(runs_routes::start))
        .route("/runs/{id}", get(runs_routes::show))
        .route("/runs/{id}/abort", post(runs_routes::abort))
        .route("/runs/{id}/pause", post(runs_routes::pause))
        .route("/runs/{id}/resume", post(runs_routes::resume))
        .route("/runs/{id}/events", get(runs_routes::events))
        .route("/status", get(daemon_routes::status))
        .route("/pause", post(daemon_routes::pause))
        .route("/resume", post(daemon_routes::resume))
        .route("/nodes", get(nodes_routes::list))
        .route("/nodes/commission", post(nodes_routes::commission))
        .route("/nodes/decommission", post(nodes_routes::decommission))
        .route("/nodes/maintenance", post(nodes_routes::maintenance))
        .route("/nodes/discover", post(discover_routes::discover))
        .route_layer(middleware::from_fn_with_state(state, authenticate));
    Router::new()
        .route("/openapi.json", get(openapi_doc::serve))
        .merge(guarded)
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
}

async fn not_found() -> ApiError {
    ApiError::not_found("no such route under /api/v1 (the routes: /api/v1/openapi.json)")
}

async fn method_not_allowed() -> ApiError {
    ApiError::new(
        axum::http::StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        "this route does not take that method (see /api/v1/openapi.json)",
    )
}

/// The token of `Authorization: Bearer TOKEN`, if the header is there and well formed.
fn bearer(req: &Request) -> Option<&str> {
    let v = req.headers().get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = v.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
}

async fn authenticate(State(s): State<AppState>, mut req: Request, next: Next) -> Response {
    let method = req.method().clone();
    let path = req.uri().path().to_string();
    let Some(presented) = bearer(&req) else {
        info!(target: "drover::audit", token = "-", %method, %path, status = 401, "refused: no bearer token");
        return ApiError::unauthorized("a bearer token is required (Authorization: Bearer TOKEN)")
            .into_response();
    };
    let Some(caller) = s.api.tokens.authenticate(presented).cloned() else {
        info!(target: "drover::audit", token = "-", %method, %path, status = 401, "refused: unknown token");
        return ApiError::unauthorized("the bearer token is not one of the server's tokens").into_response();
    };
    let needs = if method == Method::GET || method == Method::HEAD {
        ApiRole::Read
    } else if path.starts_with("/nodes/discover") {
        ApiRole::Admin
    } else {
        ApiRole::Operate
    };
    if caller.role < needs {
        info!(target: "drover::audit", token = %caller.name, %method, %path, status = 403, "refused: role");
        return ApiError::forbidden(format!(
            "token `{}` has role `{}`; {method} {path} needs `{}`",
            caller.name,
            role_name(caller.role),
            role_name(needs)
        ))
        .into_response();
    }
    let name = caller.name.clone();
    req.extensions_mut().insert(caller);
    let resp = next.run(req).await;
    info!(target: "drover::audit", token = %name, %method, %path, status = resp.status().as_u16(), "api request");
    resp
}

pub fn role_name(r: ApiRole) -> &'static str {
    match r {
        ApiRole::Read => "read",
        ApiRole::Operate => "operate",
        ApiRole::Admin => "admin",
    }
}
