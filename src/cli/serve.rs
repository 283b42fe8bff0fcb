//! `drover serve`: the daemon in the foreground, until SIGTERM or SIGINT.

use std::io::Write;
use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use tokio::signal::unix::{SignalKind, signal};

use crate::daemon::{Daemon, DaemonError, DaemonOptions, LogFormat};
use crate::exit_code;

pub fn serve(
    site: &Path,
    log_format: LogFormat,
    shutdown_deadline: Duration,
    listen: Option<SocketAddr>,
    err: &mut dyn Write,
) -> i32 {
    let Ok(rt) = tokio::runtime::Builder::new_multi_thread().enable_all().build() else {
        return exit_code::FAILURE;
    };
    log_format.install();
    let mut opts = DaemonOptions::new(site.to_path_buf());
    opts.shutdown_deadline = shutdown_deadline;
    opts.listen = listen;
    let code = rt.block_on(async {
        // Installed before anything runs: a stop during the resume is a graceful one.
        let (Ok(mut term), Ok(mut int)) = (signal(SignalKind::terminate()), signal(SignalKind::interrupt()))
        else {
            let _ = writeln!(err, "error: cannot install the signal handlers");
            return exit_code::FAILURE;
        };
        let daemon = match Daemon::start(opts).await {
            Ok(d) => d,
            Err(e) => {
                let _ = writeln!(err, "error: {e}");
                return match e {
                    DaemonError::Invalid(_) => exit_code::INVALID_CONFIG,
                    _ => exit_code::FAILURE,
                };
            }
        };
        let why = tokio::select! {
            _ = term.recv() => "SIGTERM",
            _ = int.recv() => "SIGINT",
        };
        tracing::info!("{why}: stopping");
        match daemon.shutdown().await {
            Ok(()) => exit_code::OK,
            Err(e) => {
                let _ = writeln!(err, "error: {e}");
                exit_code::FAILURE
            }
        }
    });
    rt.shutdown_timeout(Duration::from_secs(5));
    code
}
