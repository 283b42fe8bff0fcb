//! YAML loading. Every YAML file drover reads goes through this module.

mod decode;
mod document;
mod loader;
mod node;
mod path;
mod scalar;

pub use document::{Document, MAX_FILE_BYTES};
pub use loader::{LoadError, load};
pub use node::{Entry, Node, Span, Style, Value};
pub use path::{Path, Seg};
