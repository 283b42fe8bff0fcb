//! What a testbed node knows about its boots, kept in its state dir.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use super::atomic_write::write_atomic;
use super::testbed_error::TestbedError;

/// The file a node-side command creates to ask for a reboot.
pub(crate) const REQUEST: &str = "reboot-requested";

/// The reboot script written into every state dir: run on the node (over ssh, so
/// `$DROVER_STATE/reboot`), it asks for a reboot and returns at once, like
/// `systemctl reboot`; with `--wait` it instead waits to be killed by the reboot, like a
/// `reboot` whose session is cut under it. Without a running
/// [`RebootService`](super::RebootService) nothing answers the request, and `--wait`
/// gives up after a minute.
const SCRIPT: &str = "#!/bin/sh\n\
# drover testbed: asks for a reboot of this node (RebootService); generated.\n\
touch \"$(dirname \"$0\")/reboot-requested\" || exit 1\n\
if [ \"${1-}\" = --wait ]; then exec sleep 60; fi\n";

/// A real node's boot id (`/proc/sys/kernel/random/boot_id`) changes on every boot, which
/// is how drover tells that a reboot step really rebooted. A testbed node's sshd runs on
/// the controller's kernel, so each node gets its own in its state dir:
///
/// - `boot_id`: a fresh random id, written at start and replaced on every fake reboot;
/// - `boots`: how many fake reboots the node has had (`0` at start);
/// - `reboot`: the script that asks for one (see [`SCRIPT`]);
/// - `reboot-requested`: present while a reboot is asked for and not yet begun.
#[derive(Debug, Clone)]
pub(crate) struct BootFiles {
    state_dir: PathBuf,
}

impl BootFiles {
    pub(crate) fn new(state_dir: &Path) -> BootFiles {
        BootFiles {
            state_dir: state_dir.to_path_buf(),
        }
    }

    /// A first boot: a fresh id, no reboots yet, the reboot script, no pending request.
    pub(crate) fn init(&self) -> Result<(), TestbedError> {
        write_atomic(&self.state_dir.join("boot_id"), &format!("{}\n", fresh_id()))?;
        write_atomic(&self.state_dir.join("boots"), "0\n")?;
        let script = self.state_dir.join("reboot");
        write_atomic(&script, SCRIPT)?;
        std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755))
            .map_err(|e| TestbedError::io("make executable", &script, e))?;
        self.take_request().map(|_| ())
    }

    /// Whether a reboot was asked for, consuming the request. Removing the file is the
    /// test itself, so a request is taken exactly once even if two threads look.
    pub(crate) fn take_request(&self) -> Result<bool, TestbedError> {
        let path = self.state_dir.join(REQUEST);
        match std::fs::remove_file(&path) {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(TestbedError::io("remove", &path, e)),
        }
    }

    /// Records a new boot: a fresh boot id, one more in `boots`. Returns the new id.
    pub(crate) fn boot(&self) -> Result<String, TestbedError> {
        let boots = self.boots()?.saturating_add(1);
        let id = fresh_id();
        write_atomic(&self.state_dir.join("boot_id"), &format!("{id}\n"))?;
        write_atomic(&self.state_dir.join("boots"), &format!("{boots}\n"))?;
        Ok(id)
    }

    pub(crate) fn boot_id(&self) -> Result<String, TestbedError> {
        let path = self.state_dir.join("boot_id");
        std::fs::read_to_string(&path)
            .map(|s| s.trim().to_string())
            .map_err(|e| TestbedError::io("read", &path, e))
    }

    pub(crate) fn boots(&self) -> Result<u32, TestbedError> {
        let path = self.state_dir.join("boots");
        let text = std::fs::read_to_string(&path).map_err(|e| TestbedError::io("read", &path, e))?;
        text.trim().parse().map_err(|_| {
            TestbedError::io(
                "parse",
                &path,
                std::io::Error::new(std::io::ErrorKind::InvalidData, format!("not a count: {text:?}")),
            )
        })
    }
}

/// A random UUID from the kernel, the same kind of id as a real boot id. Should `/proc`
/// be unreadable, the clock and a counter still give an id no earlier boot had.
fn fresh_id() -> String {
    if let Ok(id) = std::fs::read_to_string("/proc/sys/kernel/random/uuid") {
        return id.trim().to_string();
    }
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    format!("{nanos:x}-{:x}-{n:x}", std::process::id())
}

#[cfg(test)]
mod tests {
    use std::process::Command;

    use super::*;

    #[test]
    fn boots_change_the_id_and_count() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let files = BootFiles::new(tmp.path());
        files.init().expect("init");
        let first = files.boot_id().expect("boot id");
        assert_eq!(first.len(), 36, "{first}");
        assert_eq!(files.boots().expect("boots"), 0);
        let second = files.boot().expect("boot");
        assert_ne!(first, second);
        assert_eq!(files.boot_id().expect("boot id"), second);
        assert_eq!(files.boots().expect("boots"), 1);
    }

    #[test]
    fn the_script_asks_once() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let files = BootFiles::new(tmp.path());
        files.init().expect("init");
        assert!(!files.take_request().expect("no request yet"));
        // Through sh rather than exec: another test thread forking while the script was
        // being written could still hold it open for writing (ETXTBSY).
        let status = Command::new("sh")
            .arg(tmp.path().join("reboot"))
            .status()
            .expect("run reboot");
        assert!(status.success());
        assert!(files.take_request().expect("request"));
        assert!(!files.take_request().expect("taken"));
    }
}
