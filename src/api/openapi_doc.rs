//! The API's OpenAPI 3.1 document, generated from the handlers' annotations and the
//! request and response types (utoipa), committed as `schemas/openapi.json` (a test
//! compares them) and served at `/api/v1/openapi.json`.

use axum::response::IntoResponse;
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa::{Modify, OpenApi};

use super::{api_error, api_types, daemon_routes, discover_routes, nodes_routes, runs_routes};

#[derive(OpenApi)]
#[openapi(
    info(title = "drover API", description = "Steer `drover serve`: runs, the daemon's pause, and node lifecycle. Every route needs `Authorization: Bearer TOKEN`; errors are `{\"error\": {\"code\", \"message\", \"details\"}}`."),
    paths(
        runs_routes::list, runs_routes::show, runs_routes::start, runs_routes::abort,
        runs_routes::pause, runs_routes::resume, runs_routes::events,
        daemon_routes::status, daemon_routes::pause, daemon_routes::resume,
        nodes_routes::list, nodes_routes::commission, nodes_routes::decommission,
        nodes_routes::maintenance, discover_routes::discover,
    ),
    components(schemas(api_error::ErrorBody, api_error::ErrorDetail, api_types::RunStartRequest,
        api_types::RunStarted, api_types::DryRunPlan, api_types::AbortRequest, api_types::RunControlled,
        api_types::RunList, api_types::PauseRequest, api_types::DaemonStatus, api_types::WindowState,
        api_types::NodeList, api_types::NodeInfo, api_types::MaintenanceInfo, api_types::NodeWorkflow,
        api_types::NodesRequest, api_types::MaintenanceRequest, api_types::Switch,
        api_types::LifecycleStarted, api_types::DiscoverRequest, api_types::DiscoverResult,
        api_types::DiscoverStatus, api_types::Discovered, api_types::DiscoveredFacts)),
    modifiers(&Bearer),
)]
pub struct ApiDoc;

struct Bearer;

impl Modify for Bearer {
    fn modify(&self, doc: &mut utoipa::openapi::OpenApi) {
        let components = doc.components.get_or_insert_with(Default::default);
        components.add_security_scheme("bearer", SecurityScheme::Http(Http::new(HttpAuthScheme::Bearer)));
    }
}

/// The document as committed: pretty JSON with a final newline.
pub fn openapi_json() -> String {
    let mut s = ApiDoc::openapi().to_pretty_json().unwrap_or_default();
    s.push('\n');
    s
}

pub async fn serve() -> impl IntoResponse {
    (
        [(axum::http::header::CONTENT_TYPE, "application/json")],
        openapi_json(),
    )
}
