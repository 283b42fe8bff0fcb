//! The site's vault password, read once, when the first vault data needs it.

use std::sync::OnceLock;

use super::vault_password::VaultPassword;
use super::vault_text::VaultText;

#[derive(Default)]
pub struct Keyring {
    source: Option<VaultPassword>,
    password: OnceLock<Result<Vec<u8>, String>>,
}

impl std::fmt::Debug for Keyring {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Keyring({:?})", self.source)
    }
}

impl Keyring {
    pub fn new(source: Option<VaultPassword>) -> Keyring {
        Keyring {
            source,
            password: OnceLock::new(),
        }
    }

    /// The password, if the site names one and it can be read.
    pub fn password(&self) -> Result<&[u8], String> {
        let Some(src) = &self.source else {
            return Err(
                "drover.yml has no `vault:` password (`vault: { password_file: PATH }`, `{ env: VAR }` or `{ password_script: PATH }`)"
                    .into(),
            );
        };
        match self.password.get_or_init(|| src.read()) {
            Ok(p) => Ok(p),
            Err(e) => Err(e.clone()),
        }
    }

    /// Whether the site names a password (an `ansible:` step then passes it on).
    pub fn configured(&self) -> bool {
        self.source.is_some()
    }

    /// Decrypts vault text to UTF-8. Errors carry no plaintext.
    pub fn decrypt(&self, text: &str) -> Result<String, String> {
        let v = VaultText::parse(text).map_err(|e| e.to_string())?;
        let plain = v.decrypt(self.password()?).map_err(|e| e.to_string())?;
        String::from_utf8(plain).map_err(|_| "the decrypted vault data is not UTF-8 text".to_string())
    }
}
