//! Templated commands and files: minijinja with strict undefined names, a fuel limit, and
//! shell quoting of every interpolated value unless the author opts out.
//!
//! For template authors, in commands:
//! - `{{ vars.pkg }}` is one shell word whatever it contains; literal text is never touched.
//! - `{{ vars.cmd | raw }}` inserts the value unquoted, to run it as shell code. It is the
//!   only opt-out validation accepts in commands (`| safe` and `{% autoescape %}` are
//!   refused), so `opt_outs` can list every one for review.
//! - `{{ x | quote }}` quotes explicitly (not twice); in file templates it is the only quoting.
//! - `{{ vars.pkgs | join(" " | raw) }}` expands a list into one quoted word per item.

mod opt_out;
mod references;
mod scope;
mod shell_quote;
mod template_engine;
mod template_error;
mod template_error_kind;
mod template_info;

pub use opt_out::{OptOut, OptOutKind, opt_outs};
pub use scope::Scope;
pub use template_engine::TemplateEngine;
pub use template_error::TemplateError;
pub use template_error_kind::TemplateErrorKind;
pub use template_info::TemplateInfo;
