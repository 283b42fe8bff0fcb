//! How the daemon writes its log: `--log-format text|json`.

use tracing_subscriber::EnvFilter;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum LogFormat {
    /// One human line per event.
    #[default]
    Text,
    /// One JSON object per event, for a log collector.
    Json,
}

impl LogFormat {
    /// Installs the process's tracing subscriber, writing to stderr (journald takes it
    /// from there under systemd). `RUST_LOG` filters (default `info`). A second call
    /// (tests that start several daemons) keeps the first.
    pub fn install(self) {
        let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
        let builder = tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_writer(std::io::stderr);
        let _ = match self {
            LogFormat::Text => builder.try_init(),
            LogFormat::Json => builder.json().flatten_event(true).try_init(),
        };
    }
}
