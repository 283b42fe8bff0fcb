//! Why vault data could not be read. No variant carries plaintext.

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VaultError {
    #[error("not Ansible Vault data (no `$ANSIBLE_VAULT;` header)")]
    NotVault,
    #[error("bad vault header `{0}`: expected `$ANSIBLE_VAULT;1.1;AES256` or `$ANSIBLE_VAULT;1.2;AES256;ID`")]
    Header(String),
    #[error("vault format {0} is not supported (1.1 and 1.2 are)")]
    Version(String),
    #[error("vault cipher {0} is not supported (AES256 is)")]
    Cipher(String),
    #[error("the vault data is not well-formed hex (cut short or edited?)")]
    Encoding,
    #[error("wrong vault password, or the vault data was changed (its HMAC does not match)")]
    Mismatch,
    #[error("the vault data decrypts to bad padding")]
    Padding,
    #[error("cannot read random bytes: {0}")]
    Random(String),
}
