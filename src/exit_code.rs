//! Process exit codes. Scripts and the daemon's supervisor rely on them: they are part of
//! drover's interface and listed in the README.

/// Everything asked for was done.
pub const OK: i32 = 0;
/// drover itself failed (I/O error, internal error).
pub const FAILURE: i32 = 1;
/// The command line was wrong (clap's own code).
pub const USAGE: i32 = 2;
/// A config, inventory or workflow file is invalid; nothing was run.
pub const INVALID_CONFIG: i32 = 3;
/// Generated files (schemas) differ from what the code generates.
pub const OUT_OF_DATE: i32 = 4;
