//! Why the service did not run something: a kind for callers to act on (the CLI maps
//! kinds to exit codes) and a message for the operator.

/// What kind of refusal: each front end decides what it means for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RefusalKind {
    /// The site, workflow or plan is not valid as asked.
    InvalidConfig,
    /// The request itself is wrong for how it was made (a run that changes nodes needs
    /// a confirmation it cannot get).
    Usage,
    /// A resumed run was of another version of its workflow than the site's now.
    OutOfDate,
    /// The window does not allow a start now.
    WindowClosed,
    /// Nothing in the selection needs or may run.
    NothingSelected,
    /// Other runs hold leases on its nodes.
    NodesLeased,
    /// Interrupted before anything was run.
    Interrupted,
    /// The machinery failed: the state store, the run log, the ssh control directory.
    Failure,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct Refusal {
    pub kind: RefusalKind,
    pub message: String,
}

impl Refusal {
    pub fn new(kind: RefusalKind, message: impl Into<String>) -> Refusal {
        Refusal {
            kind,
            message: message.into(),
        }
    }
}
