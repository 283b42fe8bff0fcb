//! Templated commands and files: minijinja with strict undefined names, a fuel limit, and
//! shell quoting of every interpolated value unless the author opts out.
//!
//! For template authors, in commands:
//! - `{{ vars.pkg }}` is one shell word whatever it contains; literal text is never touched.
//! - `{{ vars.cmd | raw }}` (or `| safe`) inserts the value unquoted, to run it as shell code.
//! - `{{ x | quote }}` quotes explicitly (not twice); in file templates it is the only quoting.
//! - `{{ vars.pkgs | join(" " | raw) }}` expands a list into one quoted word per item.

mod references;
mod shell_quote;
mod template_engine;
mod template_error;
mod template_error_kind;
mod template_info;

pub use template_engine::TemplateEngine;
pub use template_error::TemplateError;
pub use template_error_kind::TemplateErrorKind;
pub use template_info::TemplateInfo;
