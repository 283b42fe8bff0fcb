//! What can go wrong talking to the daemon, and the exit code of each: a refused token
//! is not a broken server, and neither is an unknown node (which is the same code as
//! any other invalid input: nothing ran).

use std::io::Write;
use std::path::PathBuf;

use crate::exit_code;

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// `--server` is not an http(s) URL.
    #[error("--server `{url}`: {reason}")]
    BadServer { url: String, reason: String },
    #[error("token file {}: {reason}", path.display())]
    TokenFile { path: PathBuf, reason: String },
    #[error("{0}")]
    Token(String),
    /// No answer at all: refused, unresolvable, timed out, TLS failed.
    #[error("cannot reach the drover server at {url}: {reason}")]
    Unreachable { url: String, reason: String },
    /// The API's error shape: `{"error": {"code", "message", "details"}}`.
    #[error("{message} (HTTP {status} {code})")]
    Refused {
        status: u16,
        code: String,
        message: String,
        details: serde_json::Value,
    },
    /// An answer that is not drover's API (a proxy's page, a wrong port).
    #[error("the server at {url} answered HTTP {status} with something that is not drover's API: {body}")]
    NotTheApi { url: String, status: u16, body: String },
    /// The command line asks for something the server cannot do.
    #[error("{0}")]
    Usage(String),
}

impl ClientError {
    /// The documented exit code (README, "Exit codes").
    pub fn exit_code(&self) -> i32 {
        match self {
            ClientError::BadServer { .. } | ClientError::Usage(_) => exit_code::USAGE,
            ClientError::TokenFile { .. } | ClientError::Token(_) => exit_code::NOT_AUTHORISED,
            ClientError::Unreachable { .. } => exit_code::SERVER_UNREACHABLE,
            ClientError::NotTheApi { .. } => exit_code::SERVER_FAILED,
            ClientError::Refused { status, .. } => match status {
                401 | 403 => exit_code::NOT_AUTHORISED,
                // No such run: as `drover runs show` of an unknown id locally.
                404 => exit_code::USAGE,
                // Another run holds it, or the run is not in flight in the daemon.
                409 => exit_code::NODES_LEASED,
                // Unknown nodes, an empty list, an unknown workflow or state: invalid input.
                422 => exit_code::INVALID_CONFIG,
                s if *s >= 500 => exit_code::SERVER_FAILED,
                // 400, 413: this drover sent what the server does not take.
                _ => exit_code::FAILURE,
            },
        }
    }

    /// Prints the error, its details (every unknown name, where the JSON broke) and what
    /// to do about it; returns the exit code. `had_token`: whether a token was sent.
    pub fn report(&self, err: &mut dyn Write, had_token: bool) -> i32 {
        let _ = writeln!(err, "error: {self}");
        if let ClientError::Refused { status, details, .. } = self {
            if let Some(o) = details.as_object() {
                for (k, v) in o {
                    let _ = writeln!(err, "  {k}: {}", detail_text(v));
                }
            }
            if *status == 401 && !had_token {
                let _ = writeln!(
                    err,
                    "help: no token was sent: set {} or pass --token-file PATH",
                    super::api_token::TOKEN_ENV
                );
            }
        }
        self.exit_code()
    }
}

/// A detail for a person: a list of names as a list, anything else as JSON.
fn detail_text(v: &serde_json::Value) -> String {
    match v {
        serde_json::Value::String(s) => s.clone(),
        serde_json::Value::Array(a) if a.iter().all(|x| x.is_string()) => {
            if a.is_empty() {
                "(none)".into()
            } else {
                a.iter().filter_map(|x| x.as_str()).collect::<Vec<_>>().join(", ")
            }
        }
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused(status: u16) -> ClientError {
        ClientError::Refused {
            status,
            code: "x".into(),
            message: "m".into(),
            details: serde_json::json!({"unknown": ["n05", "n06"]}),
        }
    }

    #[test]
    fn http_statuses_map_to_the_documented_exit_codes() {
        assert_eq!(refused(401).exit_code(), exit_code::NOT_AUTHORISED);
        assert_eq!(refused(403).exit_code(), exit_code::NOT_AUTHORISED);
        assert_eq!(refused(422).exit_code(), exit_code::INVALID_CONFIG);
        assert_eq!(refused(404).exit_code(), exit_code::USAGE);
        assert_eq!(refused(409).exit_code(), exit_code::NODES_LEASED);
        assert_eq!(refused(500).exit_code(), exit_code::SERVER_FAILED);
        assert_eq!(refused(503).exit_code(), exit_code::SERVER_FAILED);
        assert_eq!(refused(400).exit_code(), exit_code::FAILURE);
        let down = ClientError::Unreachable {
            url: "http://127.0.0.1:1".into(),
            reason: "connection refused".into(),
        };
        assert_eq!(down.exit_code(), exit_code::SERVER_UNREACHABLE);
    }

    #[test]
    fn the_report_lists_every_detail() {
        let mut buf = Vec::new();
        let code = refused(422).report(&mut buf, true);
        let text = String::from_utf8(buf).unwrap();
        assert_eq!(code, 3);
        assert!(text.contains("error: m (HTTP 422 x)"), "{text}");
        assert!(text.contains("  unknown: n05, n06"), "{text}");
    }
}
