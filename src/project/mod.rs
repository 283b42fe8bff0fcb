//! Loading a whole site at once.

#[expect(clippy::module_inception, reason = "the type is named after the concept")]
mod project;

pub use project::{Project, SITE_FILE, display};
