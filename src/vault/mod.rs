//! Ansible Vault: encrypted vars files and inline `!vault |` values, decrypted with the
//! password the site names, and the plaintexts kept apart as secrets that every log,
//! record and error masks.

mod keyring;
mod secrets;
mod vault_error;
mod vault_password;
mod vault_place;
mod vault_text;

pub use keyring::Keyring;
pub use secrets::{MASK, Secrets};
pub use vault_error::VaultError;
pub use vault_password::VaultPassword;
pub use vault_place::VaultPlace;
pub use vault_text::{VAULT_KEY, VaultText, is_vault};
