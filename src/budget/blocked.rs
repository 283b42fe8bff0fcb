//! The answer when a budget refuses a node.

/// Why a node may not go down now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Blocked {
    pub limit: String,
    pub max: usize,
    /// Members already unavailable.
    pub unavailable: usize,
}

impl std::fmt::Display for Blocked {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}: {} of at most {} unavailable",
            self.limit, self.unavailable, self.max
        )
    }
}
