//! The fuzz targets' bodies (`drover::fuzzing`, run by `cargo fuzz` from `fuzz/`) over
//! their committed seed corpora, so they compile and hold on every `cargo test`.

use crate::support::repo_root;

fn each_seed(target: &str, body: fn(&[u8])) {
    let dir = repo_root().join("fuzz/corpus").join(target);
    let mut n = 0;
    for entry in std::fs::read_dir(&dir).expect("seed directory") {
        let path = entry.expect("seed entry").path();
        // A running fuzzer adds and removes inputs in the same directory.
        let Ok(data) = std::fs::read(&path) else { continue };
        body(&data);
        n += 1;
    }
    assert!(n > 0, "no seeds in {}", dir.display());
}

#[test]
fn yaml_loader_seeds() {
    each_seed("yaml_loader", drover::fuzzing::yaml_loader);
}

#[test]
fn host_list_seeds() {
    each_seed("host_lists", drover::fuzzing::host_lists);
}

#[test]
fn template_seeds() {
    each_seed("templates", drover::fuzzing::templates);
}

#[test]
fn unit_seeds() {
    each_seed("units", drover::fuzzing::units);
}

#[test]
fn extra_vars_seeds() {
    each_seed("extra_vars", drover::fuzzing::extra_vars);
}
