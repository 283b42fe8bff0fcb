//! The API token the client sends: from `--token-file PATH` or `DROVER_TOKEN`, never
//! from the command line (where `ps` and shell history would show it). It is never
//! printed: its `Debug` is redacted, and errors name where it came from, not what it is.

use std::path::{Path, PathBuf};

use super::client_error::ClientError;

/// A bearer token.
#[derive(Clone)]
pub struct ApiToken(String);

impl std::fmt::Debug for ApiToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ApiToken(<redacted>)")
    }
}

/// The environment variable the token may come from.
pub const TOKEN_ENV: &str = "DROVER_TOKEN";

impl ApiToken {
    /// The token of `--token-file` if given (it wins: it was asked for explicitly),
    /// else of `DROVER_TOKEN`, else none (the server then answers 401).
    pub fn find(file: Option<&Path>) -> Result<Option<ApiToken>, ClientError> {
        if let Some(path) = file {
            return ApiToken::read_file(path).map(Some);
        }
        match std::env::var(TOKEN_ENV) {
            Ok(t) if !t.trim().is_empty() => Ok(Some(ApiToken(t.trim().to_string()))),
            Ok(_) => Err(ClientError::Token(format!("{TOKEN_ENV} is set but empty"))),
            Err(std::env::VarError::NotPresent) => Ok(None),
            Err(std::env::VarError::NotUnicode(_)) => {
                Err(ClientError::Token(format!("{TOKEN_ENV} is not valid UTF-8")))
            }
        }
    }

    /// Reads a token file. One that others may read or write is refused, as ssh refuses
    /// such a private key: a secret the whole machine can read is no longer one, and
    /// saying so is kinder than a leaked token.
    pub fn read_file(path: &Path) -> Result<ApiToken, ClientError> {
        use std::os::unix::fs::PermissionsExt;
        let fail = |reason: String| ClientError::TokenFile {
            path: PathBuf::from(path),
            reason,
        };
        let meta = std::fs::metadata(path).map_err(|e| fail(e.to_string()))?;
        let mode = meta.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            return Err(fail(format!(
                "is open to others (mode {mode:04o}); chmod 600 {} (drover refuses a token others can read)",
                path.display()
            )));
        }
        let text = std::fs::read_to_string(path).map_err(|e| fail(e.to_string()))?;
        let t = text.trim();
        if t.is_empty() {
            return Err(fail("is empty".into()));
        }
        Ok(ApiToken(t.to_string()))
    }

    pub(super) fn secret(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn a_token_file_others_can_read_is_refused_and_the_token_never_shows() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("t");
        std::fs::write(&p, "sekrit-value\n").unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o644)).unwrap();
        let e = ApiToken::read_file(&p).unwrap_err().to_string();
        assert!(e.contains("mode 0644") && e.contains("chmod 600"), "{e}");
        assert!(!e.contains("sekrit"), "{e}");
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o600)).unwrap();
        let t = ApiToken::read_file(&p).unwrap();
        assert_eq!(t.secret(), "sekrit-value");
        assert!(!format!("{t:?}").contains("sekrit"));
        std::fs::write(&p, " \n").unwrap();
        assert!(
            ApiToken::read_file(&p)
                .unwrap_err()
                .to_string()
                .contains("is empty")
        );
    }
}
