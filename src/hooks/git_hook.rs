//! `POST /hooks/git`: a push tells the git watcher to fetch now instead of at its next
//! poll. GitHub, Gitea and Forgejo sign the body (`X-Hub-Signature-256: sha256=HEX`,
//! `X-Gitea-Signature: HEX`, `X-Forgejo-Signature: HEX`); GitLab sends the secret itself
//! (`X-Gitlab-Token`). A storm of pushes is one fetch: asks made while a fetch runs make
//! one more after it.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};
use tracing::{info, warn};

use super::hook_rejection::HookRejection;
use super::hooks_state::HooksState;

pub(super) async fn git(
    State(s): State<HooksState>,
    headers: HeaderMap,
    body: Bytes,
) -> (StatusCode, String) {
    let Some(secret) = &s.git_secret else {
        return (
            StatusCode::NOT_FOUND,
            "no git webhook is configured (hooks.git)\n".into(),
        );
    };
    if let Err(r) = verify(secret.as_bytes(), &headers, &body) {
        warn!(hook = "git", "push webhook rejected: {r}");
        return (r.status(), format!("{r}\n"));
    }
    match &s.fetch {
        Some(f) => {
            f.fetch_now();
            info!(hook = "git", "push webhook: fetching now");
            (StatusCode::ACCEPTED, "fetching\n".into())
        }
        None => (StatusCode::CONFLICT, "the site is not followed in git\n".into()),
    }
}

fn header<'a>(h: &'a HeaderMap, name: &str) -> Option<&'a str> {
    h.get(name).and_then(|v| v.to_str().ok())
}

fn verify(secret: &[u8], h: &HeaderMap, body: &[u8]) -> Result<(), HookRejection> {
    if body.len() > super::slack_signature::MAX_BODY * 16 {
        return Err(HookRejection::TooLarge(body.len()));
    }
    let hmac_hex = header(h, "x-hub-signature-256")
        .map(|v| v.strip_prefix("sha256=").unwrap_or(""))
        .or_else(|| header(h, "x-gitea-signature"))
        .or_else(|| header(h, "x-forgejo-signature"));
    if let Some(hex_sig) = hmac_hex {
        let given = hex::decode(hex_sig.trim()).map_err(|_| HookRejection::BadSignature)?;
        let mut m = <Hmac<Sha256> as Mac>::new_from_slice(secret).unwrap_or_else(|_| unreachable!());
        m.update(body);
        return m.verify_slice(&given).map_err(|_| HookRejection::BadSignature);
    }
    if let Some(token) = header(h, "x-gitlab-token") {
        // Compare digests, so the time taken says nothing about the secret.
        let a = Sha256::digest(token.as_bytes());
        let b = Sha256::digest(secret);
        let mut m =
            <Hmac<Sha256> as Mac>::new_from_slice(b"drover-token-compare").unwrap_or_else(|_| unreachable!());
        m.update(&a);
        let want = {
            let mut w = <Hmac<Sha256> as Mac>::new_from_slice(b"drover-token-compare")
                .unwrap_or_else(|_| unreachable!());
            w.update(&b);
            w.finalize().into_bytes()
        };
        return m.verify_slice(&want).map_err(|_| HookRejection::BadSignature);
    }
    Err(HookRejection::MissingHeader(
        "X-Hub-Signature-256 (or X-Gitlab-Token)",
    ))
}
