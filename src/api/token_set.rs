//! The API's bearer tokens, read from the environment or files when the daemon starts
//! (never from drover.yml itself), and how a request's token is matched: by the
//! SHA-256 of each, compared in constant time, so neither the time a comparison takes
//! nor the length of a token tells anything about a secret.

use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::site::{ApiRole, ApiTokenSettings};

/// Who a request is: the token's name, role and node scope (never its secret).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    pub name: String,
    pub role: ApiRole,
    /// Node selectors (names, host lists, `@group`) the token may act on; `None`: all.
    pub nodes: Option<Vec<String>>,
}

struct Entry {
    digest: [u8; 32],
    caller: Caller,
}

/// Every configured token, by digest.
#[derive(Default)]
pub struct TokenSet {
    entries: Vec<Entry>,
}

#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    #[error("API token `{name}`: {message}")]
    Unreadable { name: String, message: String },
    #[error("API token `{name}` is empty")]
    Empty { name: String },
    #[error("two API tokens are named `{name}`")]
    DuplicateName { name: String },
    #[error("API tokens `{first}` and `{second}` have the same secret: a request could not tell them apart")]
    SameSecret { first: String, second: String },
}

fn digest(secret: &[u8]) -> [u8; 32] {
    Sha256::digest(secret).into()
}

impl TokenSet {
    /// Reads every token's secret. An unreadable or empty one refuses the start (a
    /// daemon that silently lost a token would lock its user out without saying why).
    pub fn load(settings: &[ApiTokenSettings]) -> Result<TokenSet, TokenError> {
        let mut set = TokenSet::default();
        for t in settings {
            let secret = t.secret.read().map_err(|message| TokenError::Unreadable {
                name: t.name.clone(),
                message,
            })?;
            set.add(&t.name, t.role, t.nodes.clone(), &secret)?;
        }
        Ok(set)
    }

    /// Adds one token (tests and `load`).
    pub fn add(
        &mut self,
        name: &str,
        role: ApiRole,
        nodes: Option<Vec<String>>,
        secret: &str,
    ) -> Result<(), TokenError> {
        if secret.trim().is_empty() {
            return Err(TokenError::Empty { name: name.into() });
        }
        if self.entries.iter().any(|e| e.caller.name == name) {
            return Err(TokenError::DuplicateName { name: name.into() });
        }
        let d = digest(secret.as_bytes());
        if let Some(e) = self.entries.iter().find(|e| bool::from(e.digest.ct_eq(&d))) {
            return Err(TokenError::SameSecret {
                first: e.caller.name.clone(),
                second: name.into(),
            });
        }
        self.entries.push(Entry {
            digest: d,
            caller: Caller {
                name: name.into(),
                role,
                nodes,
            },
        });
        Ok(())
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The caller whose token is `presented`. Every entry is compared (no early exit),
    /// each in constant time.
    pub fn authenticate(&self, presented: &str) -> Option<&Caller> {
        let d = digest(presented.as_bytes());
        let mut found = None;
        for e in &self.entries {
            if bool::from(e.digest.ct_eq(&d)) {
                found = Some(&e.caller);
            }
        }
        found
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_matches_only_its_own_secret() {
        let mut s = TokenSet::default();
        s.add("ops", ApiRole::Operate, None, "s3cret-ops").unwrap();
        s.add("ro", ApiRole::Read, Some(vec!["@login".into()]), "s3cret-ro")
            .unwrap();
        assert_eq!(s.authenticate("s3cret-ops").unwrap().name, "ops");
        assert_eq!(s.authenticate("s3cret-ro").unwrap().role, ApiRole::Read);
        assert!(s.authenticate("s3cret-op").is_none(), "a prefix is no match");
        assert!(s.authenticate("s3cret-opsx").is_none());
        assert!(s.authenticate("").is_none());
    }

    #[test]
    fn duplicate_names_secrets_and_empty_tokens_are_refused() {
        let mut s = TokenSet::default();
        s.add("a", ApiRole::Admin, None, "x1").unwrap();
        assert!(matches!(
            s.add("a", ApiRole::Read, None, "x2"),
            Err(TokenError::DuplicateName { .. })
        ));
        assert!(matches!(
            s.add("b", ApiRole::Read, None, "x1"),
            Err(TokenError::SameSecret { .. })
        ));
        assert!(matches!(
            s.add("c", ApiRole::Read, None, " \n"),
            Err(TokenError::Empty { .. })
        ));
    }
}
