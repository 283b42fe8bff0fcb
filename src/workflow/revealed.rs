//! A workflow's decrypted values, kept apart from everything that is shown or stored.

use indexmap::IndexMap;

use crate::vault::Secrets;

/// Never serialized; its `Debug` shows no value.
#[derive(Default, Clone)]
pub struct Revealed {
    /// The vars with vault values decrypted; `None` when the workflow has none.
    pub vars: Option<IndexMap<String, serde_json::Value>>,
    /// Every decrypted plaintext, masked in logs, records, errors and output.
    pub secrets: Secrets,
    /// The site's vault password, passed on to `ansible:` steps (their playbooks may
    /// read vault files of their own).
    pub vault_password: Option<Vec<u8>>,
}

impl std::fmt::Debug for Revealed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Revealed {{ vars: {}, secrets: {:?}, vault_password: {} }}",
            if self.vars.is_some() {
                "<decrypted>"
            } else {
                "none"
            },
            self.secrets,
            if self.vault_password.is_some() {
                "<set>"
            } else {
                "none"
            }
        )
    }
}
