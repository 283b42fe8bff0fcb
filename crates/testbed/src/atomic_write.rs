//! Replacing a file so that concurrent readers never see it half written.

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};

use super::testbed_error::TestbedError;

/// Distinguishes temp files of threads writing in the same process at once.
static NEXT: AtomicU64 = AtomicU64::new(0);

/// Writes `text` to a temp file next to `path` and renames it over `path`. State files are
/// read while they change (a monitor samples the scheduler's, drover reads a boot id), and
/// a plain write truncates first: a reader could see an empty file.
pub(crate) fn write_atomic(path: &Path, text: &str) -> Result<(), TestbedError> {
    let name = path.file_name().map(|n| n.to_string_lossy()).unwrap_or_default();
    let temp = path.with_file_name(format!(
        ".{name}.tmp.{}.{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    ));
    std::fs::write(&temp, text).map_err(|e| TestbedError::io("write", &temp, e))?;
    std::fs::rename(&temp, path).map_err(|e| {
        let _ = std::fs::remove_file(&temp);
        TestbedError::io("replace", path, e)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replaces_and_leaves_no_temp_file() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let path = tmp.path().join("state");
        write_atomic(&path, "one\n").expect("write");
        write_atomic(&path, "two\n").expect("replace");
        assert_eq!(std::fs::read_to_string(&path).expect("read"), "two\n");
        let names: Vec<_> = std::fs::read_dir(tmp.path())
            .expect("list")
            .map(|e| e.expect("entry").file_name())
            .collect();
        assert_eq!(names, ["state"]);
    }
}
