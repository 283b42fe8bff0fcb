//! Why the daemon could not start or had to stop.

#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    /// The site does not validate: every diagnostic, rendered.
    #[error("the site does not validate:\n{0}")]
    Invalid(String),
    #[error("{0}")]
    StateStore(String),
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        addr: std::net::SocketAddr,
        source: std::io::Error,
    },
    #[error("{0}")]
    Secrets(String),
    #[error("the HTTP listener failed: {0}")]
    Http(std::io::Error),
    /// The git clone, its state dir or the file watch could not be set up.
    #[error("the site's source: {0}")]
    Source(#[from] crate::source::SourceError),
}
