//! Fault injection for the store's crash tests: a named point where a test's child
//! process dies as if killed. Compiled only into unit tests; a release build has no
//! such point.

/// The env var naming the point at which the process aborts.
#[cfg(test)]
pub(super) const ENV: &str = "DROVER_STORE_FAULT";

/// Aborts the process (no unwinding, no destructors, no commit: as a `kill -9`) when the
/// test set [`ENV`] to `name`.
#[cfg(test)]
pub(super) fn point(name: &str) {
    if std::env::var(ENV).is_ok_and(|v| v == name) {
        std::process::abort();
    }
}

#[cfg(not(test))]
#[inline(always)]
pub(super) fn point(_name: &str) {}
