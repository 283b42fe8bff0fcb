//! Where the vault password comes from (`vault:` in drover.yml), like Ansible's
//! `--vault-password-file`: a file, an environment variable, or a script's output.

use std::path::PathBuf;

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum VaultPassword {
    File(PathBuf),
    Env(String),
    /// Run without a shell; its stdout is the password.
    Script(PathBuf),
}

impl VaultPassword {
    /// The password, without the trailing newline (as Ansible strips it). The error
    /// names the file, variable or script, never the value.
    pub fn read(&self) -> Result<Vec<u8>, String> {
        let trim = |mut v: Vec<u8>| {
            while v.last().is_some_and(|b| *b == b'\n' || *b == b'\r') {
                v.pop();
            }
            v
        };
        let pw = match self {
            VaultPassword::File(p) => crate::bounded_read::read_regular(p, Some(1024 * 1024))
                .map(trim)
                .map_err(|e| format!("cannot read the vault password file `{}`: {e}", p.display()))?,
            VaultPassword::Env(v) => std::env::var_os(v)
                .map(|s| trim(s.into_encoded_bytes()))
                .ok_or_else(|| format!("the vault password variable `{v}` is not set"))?,
            VaultPassword::Script(p) => {
                let out = std::process::Command::new(p)
                    .stdin(std::process::Stdio::null())
                    .stderr(std::process::Stdio::inherit())
                    .output()
                    .map_err(|e| format!("cannot run the vault password script `{}`: {e}", p.display()))?;
                if !out.status.success() {
                    return Err(format!(
                        "the vault password script `{}` failed ({})",
                        p.display(),
                        out.status
                    ));
                }
                trim(out.stdout)
            }
        };
        if pw.is_empty() {
            return Err(format!("the vault password from {} is empty", self.describe()));
        }
        Ok(pw)
    }

    fn describe(&self) -> String {
        match self {
            VaultPassword::File(p) => format!("`{}`", p.display()),
            VaultPassword::Env(v) => format!("`${v}`"),
            VaultPassword::Script(p) => format!("the script `{}`", p.display()),
        }
    }
}
