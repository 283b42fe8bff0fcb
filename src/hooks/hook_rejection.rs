//! Why an incoming hook was refused: a 400 for a malformed request, a 401 for one that
//! is not provably from the sender it claims. The text names what was wrong, never a
//! secret or a signature.

use axum::http::StatusCode;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HookRejection {
    #[error("missing header `{0}`")]
    MissingHeader(&'static str),
    #[error("the timestamp `{0}` is not a number of seconds")]
    BadTimestamp(String),
    #[error(
        "the request is {skew_secs}s off the controller's clock (at most 300s): a replay, or a wrong clock"
    )]
    Stale { skew_secs: i64 },
    #[error("the signature does not match")]
    BadSignature,
    #[error("this request body was seen before: a replay")]
    Replayed,
    #[error("the body is {0} bytes, over the 64 KiB limit")]
    TooLarge(usize),
}

impl HookRejection {
    pub fn status(&self) -> StatusCode {
        match self {
            HookRejection::MissingHeader(_) | HookRejection::BadTimestamp(_) => StatusCode::BAD_REQUEST,
            HookRejection::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            HookRejection::Stale { .. } | HookRejection::BadSignature | HookRejection::Replayed => {
                StatusCode::UNAUTHORIZED
            }
        }
    }
}
