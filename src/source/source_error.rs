//! Why the git watcher could not do its work (as opposed to a commit it refused, which
//! is an event, not an error).

use std::path::PathBuf;

use crate::store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    #[error("git: could not {action}: {source}")]
    Git {
        action: String,
        #[source]
        source: git2::Error,
    },

    #[error("could not {action} `{}`: {source}", path.display())]
    Io {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    #[error(transparent)]
    Store(#[from] StoreError),
}

impl SourceError {
    pub(super) fn git(action: impl Into<String>) -> impl FnOnce(git2::Error) -> SourceError {
        let action = action.into();
        move |source| SourceError::Git { action, source }
    }

    pub(super) fn io(
        action: &'static str,
        path: impl Into<PathBuf>,
    ) -> impl FnOnce(std::io::Error) -> SourceError {
        let path = path.into();
        move |source| SourceError::Io { action, path, source }
    }
}
