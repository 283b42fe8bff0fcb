//! The daemon's HTTP listener: `/healthz` and `/metrics`. `router` is the one place
//! routes are added (the API comes next, on the same router).

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
}

pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/metrics", get(metrics))
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
