//! Reading a site's state for the commands that only read it; the run's durable side
//! itself (record, leases, heartbeat, resume) is the service's.

use std::collections::HashMap;

use super::selection::Refusal;
use crate::exit_code;
use crate::inventory::NodeId;
use crate::project::Project;
pub use crate::service::store_error_text;
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

/// The nodes of the inventory in maintenance, with why (`maintenance by alice since
/// ...: reason`), read-only. No state yet: none. A state that cannot be read refuses:
/// a run that cannot tell which nodes are off limits must not start.
pub fn in_maintenance(project: &Project) -> Result<HashMap<NodeId, String>, Refusal> {
    let store = match open_store_read(project) {
        Ok(s) => s,
        Err(ReadState::NoRuns(_)) => return Ok(HashMap::new()),
        Err(ReadState::Failed(r)) => return Err(r),
    };
    let nodes = store
        .in_maintenance()
        .map_err(|e| Refusal(store_error_text(&e), exit_code::FAILURE))?;
    Ok(nodes
        .into_iter()
        .filter_map(|m| Some((project.inventory.find(&m.node)?, m.to_string())))
        .collect())
}
