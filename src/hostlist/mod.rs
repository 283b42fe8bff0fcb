//! Slurm-style host lists (`n[001-128]`, `gpu[1-4,7]`, `r[1-2]n[01-02]`).
//!
//! Operators already write node sets this way in Slurm and ClusterShell, so accepting the
//! same syntax lets them paste what they know works instead of learning a new dialect.

mod compress;
mod expand;
mod host_list_error;
mod host_pattern;
mod number_range;
mod numbered_name;

pub use compress::compress;
pub use expand::{MAX_EXPANSION, count, expand, is_pattern};
pub use host_list_error::HostListError;
