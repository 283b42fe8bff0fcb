//! Which directories the testbed's generated files may live in.

use std::path::Path;

use super::testbed_error::TestbedError;

/// Refuses paths that configs and scripts would misread, since the testbed writes them
/// unquoted into ssh and sshd configs, shell scripts and hook commands: unquoted
/// whitespace splits arguments, `%` and `~` are expanded by ssh, `#` may start a comment,
/// quotes and `$` change parsing.
pub(crate) fn check_dir(dir: &Path) -> Result<(), TestbedError> {
    let unsupported = |reason: String| TestbedError::UnsupportedDir {
        path: dir.to_path_buf(),
        reason,
    };
    let Some(text) = dir.to_str() else {
        return Err(unsupported("the path is not UTF-8".to_string()));
    };
    match text
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '/' | '.' | '_' | '-' | '+' | '@' | ',' | ':')))
    {
        Some(c) => Err(unsupported(format!("it contains {c:?}"))),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_dirs_configs_would_misread() {
        assert!(check_dir(Path::new("/tmp/.tmpAbC123/x-y_z")).is_ok());
        for bad in ["/tmp/a b", "/tmp/100%", "/tmp/#x", "/tmp/\"q\"", "/tmp/$x"] {
            let err = check_dir(Path::new(bad)).expect_err(bad).to_string();
            assert!(err.contains(bad), "{err}");
        }
    }
}
