//! Where a run reads the time of day: windows are wall-clock rules ("mon-fri 08:00 to
//! 17:00 Europe/Berlin"), so a test that must see a window close and reopen cannot wait
//! for one. The runner reads the time only through a [`Clock`]; tests drive a
//! [`ManualClock`], and the real binary's tests a [`FileClock`].

use std::path::PathBuf;
use std::sync::{Arc, Mutex, PoisonError};

use jiff::Timestamp;

/// The time of day, for window decisions. Elapsed time (timeouts, soak, retries) stays
/// on tokio's monotonic clock.
pub trait Clock: Send + Sync {
    fn now(&self) -> Timestamp;
}

/// The system's clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Timestamp {
        Timestamp::now()
    }
}

/// A clock a test sets: it stands still until told otherwise.
#[derive(Debug, Clone)]
pub struct ManualClock(Arc<Mutex<Timestamp>>);

impl ManualClock {
    pub fn new(at: Timestamp) -> ManualClock {
        ManualClock(Arc::new(Mutex::new(at)))
    }

    pub fn set(&self, at: Timestamp) {
        *self.0.lock().unwrap_or_else(PoisonError::into_inner) = at;
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Timestamp {
        *self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// A clock read from a file holding an RFC 3339 instant, re-read at every look, so a
/// test can move the time of a running `drover` process. A file that is missing or does
/// not parse gives the system's time. Only debug builds use it
/// ([`clock_from_env`]).
#[derive(Debug, Clone)]
pub struct FileClock(PathBuf);

impl FileClock {
    pub fn new(path: PathBuf) -> FileClock {
        FileClock(path)
    }
}

impl Clock for FileClock {
    fn now(&self) -> Timestamp {
        std::fs::read_to_string(&self.0)
            .ok()
            .and_then(|t| t.trim().parse().ok())
            .unwrap_or_else(Timestamp::now)
    }
}

/// The clock of this process: the system's, or in a debug build with
/// `DROVER_TEST_CLOCK=FILE` set, that file's ([`FileClock`]).
pub fn clock_from_env() -> Arc<dyn Clock> {
    #[cfg(debug_assertions)]
    if let Some(path) = std::env::var_os("DROVER_TEST_CLOCK") {
        return Arc::new(FileClock::new(PathBuf::from(path)));
    }
    Arc::new(SystemClock)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_clock_follows_its_file_and_falls_back_to_the_system() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("now");
        let clock = FileClock::new(path.clone());
        let before = Timestamp::now();
        assert!(clock.now() >= before, "no file: the system's time");
        std::fs::write(&path, "2026-12-07T07:00:00Z\n").unwrap();
        assert_eq!(clock.now(), "2026-12-07T07:00:00Z".parse::<Timestamp>().unwrap());
        std::fs::write(&path, "2026-12-07T09:30:00Z").unwrap();
        assert_eq!(clock.now(), "2026-12-07T09:30:00Z".parse::<Timestamp>().unwrap());
    }
}
