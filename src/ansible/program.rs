//! Finding `ansible-playbook` on the controller.

use std::path::{Path, PathBuf};

/// Names the `ansible-playbook` to run, overriding the search of `PATH`.
pub const PLAYBOOK_ENV: &str = "DROVER_ANSIBLE_PLAYBOOK";

/// How to get the ansible-core drover is tested with.
pub const INSTALL_HINT: &str = "install ansible-core on the controller: `python3 -m venv /opt/drover-ansible && \
/opt/drover-ansible/bin/pip install ansible-core==2.19.14`, then put /opt/drover-ansible/bin on PATH \
or set DROVER_ANSIBLE_PLAYBOOK=/opt/drover-ansible/bin/ansible-playbook";

/// `$DROVER_ANSIBLE_PLAYBOOK` if set (it must be an executable file), else the first
/// executable `ansible-playbook` on `PATH`. The error says what was looked at.
pub fn find_playbook() -> Result<PathBuf, String> {
    if let Some(p) = std::env::var_os(PLAYBOOK_ENV).filter(|v| !v.is_empty()) {
        let p = PathBuf::from(p);
        return if is_executable(&p) {
            Ok(p)
        } else {
            Err(format!(
                "{PLAYBOOK_ENV} is `{}`, which is not an executable file",
                p.display()
            ))
        };
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .map(|d| d.join("ansible-playbook"))
        .find(|p| is_executable(p))
        .ok_or_else(|| "`ansible-playbook` is not on PATH".to_string())
}

fn is_executable(p: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}
