//! JSON Schemas of the three file formats, generated from the `Raw*` types so editors
//! validate exactly what drover accepts.

use crate::inventory::RawInventory;
use crate::site::RawSite;
use crate::workflow::RawWorkflow;

/// `(file name, pretty JSON)` for each format, as committed under `schemas/`.
pub fn generate() -> Vec<(&'static str, String)> {
    let one = |s: schemars::Schema| {
        let mut text = serde_json::to_string_pretty(&s).unwrap_or_default();
        text.push('\n');
        text
    };
    vec![
        ("drover.schema.json", one(schemars::schema_for!(RawSite))),
        ("inventory.schema.json", one(schemars::schema_for!(RawInventory))),
        ("workflow.schema.json", one(schemars::schema_for!(RawWorkflow))),
        // The API's contract, from its request and response types (utoipa).
        ("openapi.json", crate::api::openapi_json()),
    ]
}
