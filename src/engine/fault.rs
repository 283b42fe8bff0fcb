//! Fault injection for tests: a debug build reads `DROVER_FAULT` (comma-separated
//! `name` or `name=value` entries) so an integration test can make the real binary fail
//! where no real fault can be arranged on demand — a node task that panics, a state
//! store that stops writing. Release builds compile every point to nothing.

/// The value of fault `name` if `DROVER_FAULT` sets it (`""` for a bare name).
#[cfg(debug_assertions)]
pub fn get(name: &str) -> Option<String> {
    let all = std::env::var("DROVER_FAULT").ok()?;
    all.split(',').find_map(|entry| {
        let (k, v) = entry.split_once('=').unwrap_or((entry, ""));
        (k.trim() == name).then(|| v.trim().to_string())
    })
}

#[cfg(not(debug_assertions))]
pub fn get(_name: &str) -> Option<String> {
    None
}

/// Ends the whole process at once, like `kill -9` (no destructor, no store write, no
/// cleanup), when `DROVER_FAULT` has `what=NODE`: a crash between two writes can then be
/// placed exactly where a real one only lands by chance.
pub fn abort_point(what: &str, node: &str) {
    if get(what).is_some_and(|n| n == node) {
        std::process::abort();
    }
}

/// Panics in the task of node `node` when `DROVER_FAULT` has `panic-node=NODE`.
pub fn panic_point(what: &str, node: &str) {
    if get(what).is_some_and(|n| n == node) {
        panic!("injected fault `{what}` on {node}");
    }
}
