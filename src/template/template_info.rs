//! What a syntax check learned about a template without rendering it.

use std::collections::BTreeSet;

/// Returned by a successful check so validation can compare the names a template reads
/// against the names the hook will provide, long before any node is touched.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TemplateInfo {
    /// Top-level names the template reads but never assigns (`node`, `vars`, ...). Engine
    /// globals such as `range` are left out because they are always available. Sorted, so
    /// messages built from it are stable.
    pub variables: BTreeSet<String>,
}
