//! Ansible Vault's format (1.1 and 1.2): `$ANSIBLE_VAULT;1.1;AES256` (1.2 adds
//! `;VAULT_ID`), then hex lines of `hex(salt)\nhex(hmac)\nhex(ciphertext)`. Keys are
//! PBKDF2-HMAC-SHA256 (10,000 iterations, 80 bytes: AES key, HMAC key, counter IV);
//! the cipher is AES-256-CTR over PKCS#7-padded plaintext; the HMAC-SHA256 of the
//! ciphertext is checked, in constant time, before anything is decrypted.

use aes::cipher::{KeyIvInit, StreamCipher};
use hmac::{Hmac, Mac};
use sha2::Sha256;

use super::vault_error::VaultError;

type Aes256Ctr = ctr::Ctr128BE<aes::Aes256>;

const ITERATIONS: u32 = 10_000;
const HEADER: &str = "$ANSIBLE_VAULT";

/// How the YAML loader hands on an inline `!vault |` value: a map of this one key to
/// the vault text (Ansible's own JSON form of a vault value).
pub const VAULT_KEY: &str = "__ansible_vault";

/// An encrypted value or file, parsed but not decrypted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VaultText {
    /// `1.1` or `1.2`.
    pub version: String,
    /// The vault id of a 1.2 file.
    pub id: Option<String>,
    salt: Vec<u8>,
    hmac: Vec<u8>,
    ciphertext: Vec<u8>,
}

/// Whether `text` is Ansible Vault data (its first line is the vault header).
pub fn is_vault(text: &str) -> bool {
    text.trim_start().starts_with("$ANSIBLE_VAULT;")
}

impl VaultText {
    pub fn parse(text: &str) -> Result<VaultText, VaultError> {
        let mut lines = text.trim().lines();
        let header = lines.next().unwrap_or_default().trim();
        let fields: Vec<&str> = header.split(';').map(str::trim).collect();
        if fields.first() != Some(&HEADER) {
            return Err(VaultError::NotVault);
        }
        let (version, id) = match fields.as_slice() {
            [_, "1.1", cipher] => ("1.1", None::<String>).then_cipher(cipher)?,
            [_, "1.2", cipher, id] if !id.is_empty() => ("1.2", Some(id.to_string())).then_cipher(cipher)?,
            [_, v, ..] if *v != "1.1" && *v != "1.2" => {
                return Err(VaultError::Version(v.to_string()));
            }
            _ => return Err(VaultError::Header(header.to_string())),
        };
        let body: String = lines.flat_map(|l| l.trim().chars()).collect();
        let inner = hex::decode(&body).map_err(|_| VaultError::Encoding)?;
        let inner = String::from_utf8(inner).map_err(|_| VaultError::Encoding)?;
        let parts: Vec<&str> = inner.split('\n').collect();
        let [salt, hmac, ciphertext] = parts.as_slice() else {
            return Err(VaultError::Encoding);
        };
        let dec = |s: &str| hex::decode(s.trim()).map_err(|_| VaultError::Encoding);
        let (salt, hmac, ciphertext) = (dec(salt)?, dec(hmac)?, dec(ciphertext)?);
        if salt.is_empty() || hmac.len() != 32 || ciphertext.is_empty() || ciphertext.len() % 16 != 0 {
            return Err(VaultError::Encoding);
        }
        Ok(VaultText {
            version: version.to_string(),
            id,
            salt,
            hmac,
            ciphertext,
        })
    }

    /// The plaintext, after the HMAC matched.
    pub fn decrypt(&self, password: &[u8]) -> Result<Vec<u8>, VaultError> {
        let (key, mac_key, iv) = derive(password, &self.salt);
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&mac_key).map_err(|_| VaultError::Encoding)?;
        mac.update(&self.ciphertext);
        // `verify_slice` compares in constant time.
        mac.verify_slice(&self.hmac).map_err(|_| VaultError::Mismatch)?;
        let mut data = self.ciphertext.clone();
        Aes256Ctr::new(&key.into(), &iv.into()).apply_keystream(&mut data);
        let pad = usize::from(*data.last().ok_or(VaultError::Padding)?);
        if pad == 0
            || pad > 16
            || pad > data.len()
            || !data[data.len() - pad..].iter().all(|b| usize::from(*b) == pad)
        {
            return Err(VaultError::Padding);
        }
        data.truncate(data.len() - pad);
        Ok(data)
    }

    /// Encrypts `plain` as `ansible-vault encrypt` does (1.2 with an id), with a fresh
    /// random salt.
    pub fn encrypt(plain: &[u8], password: &[u8], id: Option<&str>) -> Result<String, VaultError> {
        let mut salt = [0u8; 32];
        getrandom(&mut salt)?;
        Ok(encrypt_with_salt(plain, password, id, &salt))
    }
}

fn encrypt_with_salt(plain: &[u8], password: &[u8], id: Option<&str>, salt: &[u8]) -> String {
    let (key, mac_key, iv) = derive(password, salt);
    let pad = 16 - plain.len() % 16;
    let mut data = plain.to_vec();
    data.extend(std::iter::repeat_n(u8::try_from(pad).unwrap_or(16), pad));
    Aes256Ctr::new(&key.into(), &iv.into()).apply_keystream(&mut data);
    let hmac = match <Hmac<Sha256> as Mac>::new_from_slice(&mac_key) {
        Ok(mut m) => {
            m.update(&data);
            m.finalize().into_bytes().to_vec()
        }
        Err(_) => Vec::new(),
    };
    let inner = format!(
        "{}\n{}\n{}",
        hex::encode(salt),
        hex::encode(hmac),
        hex::encode(&data)
    );
    let body = hex::encode(inner.as_bytes());
    let mut out = match id {
        Some(id) => format!("{HEADER};1.2;AES256;{id}\n"),
        None => format!("{HEADER};1.1;AES256\n"),
    };
    for chunk in body.as_bytes().chunks(80) {
        out.push_str(&String::from_utf8_lossy(chunk));
        out.push('\n');
    }
    out
}

trait ThenCipher {
    fn then_cipher(self, cipher: &str) -> Result<(&'static str, Option<String>), VaultError>;
}

impl ThenCipher for (&'static str, Option<String>) {
    fn then_cipher(self, cipher: &str) -> Result<(&'static str, Option<String>), VaultError> {
        if cipher == "AES256" {
            Ok(self)
        } else {
            Err(VaultError::Cipher(cipher.to_string()))
        }
    }
}

fn derive(password: &[u8], salt: &[u8]) -> ([u8; 32], [u8; 32], [u8; 16]) {
    let mut out = [0u8; 80];
    pbkdf2::pbkdf2_hmac::<Sha256>(password, salt, ITERATIONS, &mut out);
    let mut key = [0u8; 32];
    let mut mac = [0u8; 32];
    let mut iv = [0u8; 16];
    key.copy_from_slice(&out[..32]);
    mac.copy_from_slice(&out[32..64]);
    iv.copy_from_slice(&out[64..]);
    (key, mac, iv)
}

/// Random bytes from the kernel.
fn getrandom(buf: &mut [u8]) -> Result<(), VaultError> {
    use std::io::Read as _;
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(buf))
        .map_err(|e| VaultError::Random(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_refusals() {
        let text = encrypt_with_salt(b"s3cret value\n", b"pw", None, &[7u8; 32]);
        assert!(text.starts_with("$ANSIBLE_VAULT;1.1;AES256\n"));
        let v = VaultText::parse(&text).unwrap();
        assert_eq!(v.decrypt(b"pw").unwrap(), b"s3cret value\n");
        assert_eq!(v.decrypt(b"wrong").unwrap_err(), VaultError::Mismatch);
        let v2 = VaultText::parse(&encrypt_with_salt(b"x", b"pw", Some("prod"), &[1u8; 32])).unwrap();
        assert_eq!((v2.version.as_str(), v2.id.as_deref()), ("1.2", Some("prod")));
        assert_eq!(v2.decrypt(b"pw").unwrap(), b"x");
        assert_eq!(
            VaultText::parse("$ANSIBLE_VAULT;2.0;AES256\n00").unwrap_err(),
            VaultError::Version("2.0".into())
        );
        assert_eq!(
            VaultText::parse("$ANSIBLE_VAULT;1.1;AES\n00").unwrap_err(),
            VaultError::Cipher("AES".into())
        );
        assert_eq!(VaultText::parse("hello").unwrap_err(), VaultError::NotVault);
        assert_eq!(
            VaultText::parse("$ANSIBLE_VAULT;1.1;AES256\nzz").unwrap_err(),
            VaultError::Encoding
        );
    }
}
