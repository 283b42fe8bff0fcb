//! Why a sink did not take an event. Never carries the sink's URL or token: a Slack
//! webhook URL is a secret.

use std::time::Duration;

#[derive(Debug, Clone, thiserror::Error)]
pub enum DeliveryError {
    /// No answer: refused, timed out, DNS.
    #[error("unreachable: {0}")]
    Unreachable(String),
    /// An answer other than 2xx; `retry_after` from its `Retry-After` header.
    #[error("answered HTTP {status}{}", .body.as_deref().map(|b| format!(": {b}")).unwrap_or_default())]
    Status {
        status: u16,
        retry_after: Option<Duration>,
        body: Option<String>,
    },
    /// Slack's Web API answered `ok: false`.
    #[error("Slack refused the message: {0}")]
    Slack(String),
}

impl DeliveryError {
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            DeliveryError::Status { retry_after, .. } => *retry_after,
            _ => None,
        }
    }
}
