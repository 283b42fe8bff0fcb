//! The API's JSON body extractor: the body limit's refusal is a `413`, and a body that
//! is not the JSON a route takes is a `400` saying where it broke (line, column and the
//! field's path), in the API's error shape.

use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use axum::http::StatusCode;
use serde::de::DeserializeOwned;

use super::api_error::ApiError;

/// The largest request body: far above any real request (a list of 10,000 node names
/// is about 100 KiB).
pub const MAX_BODY_BYTES: usize = 1024 * 1024;

/// A request body decoded as `T`.
pub struct ApiJson<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let bytes = Bytes::from_request(req, state).await.map_err(|r| {
            if r.status() == StatusCode::PAYLOAD_TOO_LARGE {
                ApiError::new(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "payload_too_large",
                    format!("the request body is over {MAX_BODY_BYTES} bytes"),
                )
                .with_details(serde_json::json!({ "limit": MAX_BODY_BYTES }))
            } else {
                ApiError::new(StatusCode::BAD_REQUEST, "invalid_request", r.body_text())
            }
        })?;
        decode(&bytes).map(ApiJson)
    }
}

/// `bytes` as `T`; an empty body is read as `{}` (every request type's fields are
/// optional or refused by name, so an empty POST gets a message about what is missing).
pub fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    let text: &[u8] = if bytes.iter().all(u8::is_ascii_whitespace) {
        b"{}"
    } else {
        bytes
    };
    let de = &mut serde_json::Deserializer::from_slice(text);
    serde_path_to_error::deserialize(de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        let at = if path == "." {
            String::new()
        } else {
            format!(" at `{path}`")
        };
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_json",
            format!("the request body is not valid{at}: {inner}"),
        )
        .with_details(serde_json::json!({
            "line": inner.line(),
            "column": inner.column(),
            "path": path,
        }))
    })
}
