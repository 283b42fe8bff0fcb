//! Reading a site's state for the commands that only read it; the run's durable side
//! itself (record, leases, heartbeat, resume) is the service's.

use super::selection::Refusal;
use crate::exit_code;
use crate::project::Project;
use crate::service::store_error_text;
use crate::store::{Store, StoreError};

/// The state database of a site, for a run: created if missing.
pub fn open_store(project: &Project) -> Result<Store, Refusal> {
    crate::service::open_store(project).map_err(Refusal::from)
}

/// Why a site's state could not be read, for commands that only read it.
pub enum ReadState {
    /// No run was ever recorded here: the state dir or its database does not exist.
    NoRuns(String),
    Failed(Refusal),
}

/// The state database of a site, for commands that only read it (`runs list`,
/// `runs show`): opened read-only, so a user who may only read the state dir can, and
/// nothing is created when it is missing.
pub fn open_store_read(project: &Project) -> Result<Store, ReadState> {
    let dir = &project.site.state_dir;
    let path = dir.join("drover.db");
    match std::fs::metadata(dir) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(ReadState::NoRuns(format!(
                "the state directory `{}` does not exist (no run has been recorded here)",
                dir.display()
            )));
        }
        Err(e) => {
            return Err(ReadState::Failed(Refusal(
                format!("cannot read the state directory `{}`: {e}", dir.display()),
                exit_code::FAILURE,
            )));
        }
        Ok(m) if !m.is_dir() => {
            return Err(ReadState::Failed(Refusal(
                format!("the state directory `{}` is not a directory", dir.display()),
                exit_code::FAILURE,
            )));
        }
        Ok(_) => {}
    }
    if let Err(e) = std::fs::read_dir(dir) {
        return Err(ReadState::Failed(Refusal(
            format!("cannot read the state directory `{}`: {e}", dir.display()),
            exit_code::FAILURE,
        )));
    }
    Store::open_read_only(&path).map_err(|e| match e {
        StoreError::Missing { .. } => ReadState::NoRuns(format!(
            "`{}` does not exist (no run has been recorded here)",
            path.display()
        )),
        e => ReadState::Failed(Refusal(store_error_text(&e), exit_code::FAILURE)),
    })
}
