//! The HTTP client of the daemon's API: the server's URL, the token, and one place that
//! turns an answer into JSON or a [`ClientError`].

use std::time::Duration;

use reqwest::{Method, RequestBuilder, Url};
use serde::Serialize;

use super::api_token::ApiToken;
use super::client_error::ClientError;

/// How long to wait for a connection, and for an answer to a plain request (the
/// event stream has no limit: a run may take hours).
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
const REQUEST_TIMEOUT: Duration = Duration::from_secs(120);

#[derive(Debug)]
pub struct ApiClient {
    /// The server's root, e.g. `http://127.0.0.1:8470/`.
    root: Url,
    token: Option<ApiToken>,
    http: reqwest::Client,
}

impl ApiClient {
    /// `server`: `http(s)://host:port`, with or without a trailing `/api/v1`.
    pub fn new(server: &str, token: Option<ApiToken>) -> Result<ApiClient, ClientError> {
        let bad = |reason: &str| ClientError::BadServer {
            url: server.to_string(),
            reason: reason.to_string(),
        };
        let mut root = Url::parse(server.trim()).map_err(|e| bad(&e.to_string()))?;
        if !matches!(root.scheme(), "http" | "https") {
            return Err(bad("expected an http:// or https:// URL"));
        }
        if root.host_str().is_none() {
            return Err(bad("no host"));
        }
        if root.query().is_some() || root.fragment().is_some() {
            return Err(bad("expected no query or fragment"));
        }
        let path = root.path().trim_end_matches('/');
        let path = path.strip_suffix("/api/v1").unwrap_or(path).to_string();
        root.set_path(&format!("{path}/"));
        let http = reqwest::Client::builder()
            .connect_timeout(CONNECT_TIMEOUT)
            .user_agent(concat!("drover/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| bad(&e.to_string()))?;
        Ok(ApiClient { root, token, http })
    }

    /// The server as the user gave it, for messages.
    pub fn server(&self) -> String {
        self.root.as_str().trim_end_matches('/').to_string()
    }

    pub fn has_token(&self) -> bool {
        self.token.is_some()
    }

    /// `/api/v1/SEG/SEG...`, each segment escaped (a run id is not trusted to be a
    /// clean path segment).
    fn url(&self, segments: &[&str]) -> Url {
        let mut u = self.root.clone();
        if let Ok(mut p) = u.path_segments_mut() {
            p.pop_if_empty().extend(["api", "v1"]).extend(segments);
        }
        u
    }

    fn request(&self, method: Method, segments: &[&str]) -> RequestBuilder {
        let r = self.http.request(method, self.url(segments));
        match &self.token {
            // reqwest marks the header sensitive: it is never shown in its Debug.
            Some(t) => r.bearer_auth(t.secret()),
            None => r,
        }
    }

    pub async fn get(
        &self,
        segments: &[&str],
        query: &[(&str, &str)],
    ) -> Result<serde_json::Value, ClientError> {
        let r = self.request(Method::GET, segments).query(query);
        self.send(r.timeout(REQUEST_TIMEOUT)).await
    }

    pub async fn post(
        &self,
        segments: &[&str],
        body: &impl Serialize,
    ) -> Result<serde_json::Value, ClientError> {
        let r = self.request(Method::POST, segments).json(body);
        self.send(r.timeout(REQUEST_TIMEOUT)).await
    }

    /// Opens `GET /runs/{id}/events`: the response, to read as it streams.
    pub async fn events(&self, run: &str) -> Result<reqwest::Response, ClientError> {
        let r = self
            .request(Method::GET, &["runs", run, "events"])
            .header(reqwest::header::ACCEPT, "text/event-stream");
        let resp = r.send().await.map_err(|e| self.unreachable(&e))?;
        if resp.status().is_success() {
            Ok(resp)
        } else {
            Err(self.failure(resp).await)
        }
    }

    async fn send(&self, r: RequestBuilder) -> Result<serde_json::Value, ClientError> {
        let resp = r.send().await.map_err(|e| self.unreachable(&e))?;
        if !resp.status().is_success() {
            return Err(self.failure(resp).await);
        }
        let status = resp.status().as_u16();
        let text = resp.text().await.map_err(|e| self.unreachable(&e))?;
        serde_json::from_str(&text).map_err(|_| ClientError::NotTheApi {
            url: self.server(),
            status,
            body: excerpt(&text),
        })
    }

    /// An answer that is not a success: the API's error, or whatever else it was.
    async fn failure(&self, resp: reqwest::Response) -> ClientError {
        let status = resp.status().as_u16();
        let text = resp.text().await.unwrap_or_default();
        let parsed: Option<serde_json::Value> = serde_json::from_str(&text).ok();
        match parsed.as_ref().and_then(|v| v.get("error")) {
            Some(e) if e.get("message").is_some_and(|m| m.is_string()) => ClientError::Refused {
                status,
                code: e["code"].as_str().unwrap_or("").to_string(),
                message: e["message"].as_str().unwrap_or("").to_string(),
                details: e.get("details").cloned().unwrap_or_default(),
            },
            _ => ClientError::NotTheApi {
                url: self.server(),
                status,
                body: excerpt(&text),
            },
        }
    }

    /// The request got no answer: why, in the words of the innermost cause
    /// (`Connection refused (os error 111)`), not reqwest's wrapping of it.
    pub(super) fn unreachable(&self, e: &reqwest::Error) -> ClientError {
        let mut reason = e.to_string();
        let mut source = std::error::Error::source(e);
        while let Some(s) = source {
            reason = s.to_string();
            source = s.source();
        }
        if e.is_timeout() {
            reason = format!("timed out ({reason})");
        }
        ClientError::Unreachable {
            url: self.server(),
            reason,
        }
    }
}

/// The start of a body, on one line, for a message.
fn excerpt(text: &str) -> String {
    let one: String = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if one.chars().count() > 200 {
        format!("{}...", one.chars().take(200).collect::<String>())
    } else if one.is_empty() {
        "(an empty body)".into()
    } else {
        one
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_server_url_is_checked_and_normalised() {
        for (given, want) in [
            ("http://127.0.0.1:8470", "http://127.0.0.1:8470/api/v1/status"),
            ("http://127.0.0.1:8470/", "http://127.0.0.1:8470/api/v1/status"),
            ("http://h:1/api/v1", "http://h:1/api/v1/status"),
            ("https://h/drover/api/v1/", "https://h/drover/api/v1/status"),
            ("https://h/drover", "https://h/drover/api/v1/status"),
        ] {
            let c = ApiClient::new(given, None).unwrap();
            assert_eq!(c.url(&["status"]).as_str(), want, "{given}");
        }
        for bad in ["127.0.0.1:8470", "ftp://h/", "http://h/?a=1", "not a url"] {
            let e = ApiClient::new(bad, None).unwrap_err();
            assert_eq!(e.exit_code(), crate::exit_code::USAGE, "{bad}: {e}");
        }
        let c = ApiClient::new("http://h:1", None).unwrap();
        assert_eq!(
            c.url(&["runs", "a/b c", "events"]).as_str(),
            "http://h:1/api/v1/runs/a%2Fb%20c/events",
            "a run id is one escaped segment"
        );
    }
}
