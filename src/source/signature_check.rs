//! Signed commits only: the `git verify-commit` check for SSH signatures.
//!
//! git signs a commit by signing the commit object without its `gpgsig` header
//! (`ssh-keygen -Y sign -n git`) and putting the armored SSHSIG in that header; libgit2's
//! `extract_signature` gives both halves back. The signature must be in namespace `git`,
//! made by a key the allowed_signers file lists for that namespace and for the commit's
//! time, and verify over the signed bytes. The cryptography is the `ssh-key` crate's.

use jiff::Timestamp;
use ssh_key::{HashAlg, PublicKey, SshSig};

use crate::site::AllowedSigners;

/// The namespace git signs commits in.
const NAMESPACE: &str = "git";

/// A commit whose signature is good.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GoodSignature {
    /// The principals of the allowed_signers entry that accepted it.
    pub principals: Vec<String>,
    /// `SHA256:...`, as `ssh-keygen -l` shows it.
    pub fingerprint: String,
}

/// Why a commit's signature is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureProblem {
    #[error("the commit is not signed")]
    Unsigned,
    #[error("the commit's signature is not an SSH signature (git signs with SSH keys when gpg.format=ssh)")]
    NotSsh,
    #[error("the commit's signature cannot be read: {0}")]
    Malformed(String),
    #[error("the signature is for namespace `{0}`, not `git`")]
    WrongNamespace(String),
    #[error("the signing key {0} is not in the allowed signers")]
    UnknownKey(String),
    #[error(
        "the signing key {0} is in the allowed signers, but not for namespace `git` at the commit's time"
    )]
    NotAllowed(String),
    #[error("the signature by {0} does not match the commit (bad signature)")]
    Bad(String),
}

/// Checks `signature` (the `gpgsig` header's text) over `signed` (the commit object
/// without it). `signature` is `None` for an unsigned commit.
pub fn check_signature(
    signature: Option<&[u8]>,
    signed: &[u8],
    signers: &AllowedSigners,
    time: Timestamp,
) -> Result<GoodSignature, SignatureProblem> {
    let text = signature.ok_or(SignatureProblem::Unsigned)?;
    let text = std::str::from_utf8(text).map_err(|_| SignatureProblem::NotSsh)?;
    if !text.trim_start().starts_with("-----BEGIN SSH SIGNATURE-----") {
        return Err(SignatureProblem::NotSsh);
    }
    let sig = SshSig::from_pem(text.trim()).map_err(|e| SignatureProblem::Malformed(e.to_string()))?;
    if sig.namespace() != NAMESPACE {
        return Err(SignatureProblem::WrongNamespace(sig.namespace().to_string()));
    }
    let key = PublicKey::from(sig.public_key().clone());
    let fingerprint = key.fingerprint(HashAlg::Sha256).to_string();
    let allowed = signers.allowing(key.key_data(), NAMESPACE, time);
    let Some(entry) = allowed.first() else {
        return Err(if signers.knows(key.key_data()) {
            SignatureProblem::NotAllowed(fingerprint)
        } else {
            SignatureProblem::UnknownKey(fingerprint)
        });
    };
    key.verify(NAMESPACE, signed, &sig)
        .map_err(|_| SignatureProblem::Bad(fingerprint.clone()))?;
    Ok(GoodSignature {
        principals: entry.principals.clone(),
        fingerprint,
    })
}
