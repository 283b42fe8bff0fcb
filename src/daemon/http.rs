//! The daemon's HTTP listener: `/healthz`, `/metrics` and the API under `/api/v1`
//! (`crate::api`). `router` is the one place routes are added.

use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;

use super::metrics::Metrics;
use crate::store::Store;

/// What the handlers share.
#[derive(Clone)]
pub struct AppState {
    pub metrics: Arc<Metrics>,
    pub store: Store,
    /// The API's tokens, site, live runs and the daemon's actions.
    pub api: Arc<crate::api::ApiContext>,
}

pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/metrics", get(metrics))
        .nest("/api/v1", crate::api::api_router(state.clone()))
        .with_state(state)
}

async fn healthz() -> &'static str {
    "ok\n"
}

async fn metrics(State(s): State<AppState>) -> impl IntoResponse {
    // The store's reads are blocking SQLite calls: off the runtime's threads.
    let body = tokio::task::spawn_blocking(move || {
        s.metrics.refresh(&s.store);
        s.metrics.render()
    })
    .await
    .unwrap_or_default();
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        body,
    )
}
