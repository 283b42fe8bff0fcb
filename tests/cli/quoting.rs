//! Paths and values reach node shells as data: file destinations with spaces and `;`,
//! over real sshd and with the local transport (real `sh`).

use drover::exit_code;

use super::bed::{Bed, workflow};

/// One copy step to `dest`, from `files/hello.txt`.
fn copy_to(bed: &Bed, dest: &str) {
    let steps = format!(
        "- name: put\n  copy:\n    src: files/hello.txt\n    dest: {}\n  change: hot\n",
        serde_json::json!(dest)
    );
    bed.write(
        "workflows/w.yml",
        &workflow("strategy: { batch: [\"100%\"] }\n", &steps),
    );
    bed.write("workflows/files/hello.txt", "hello\n");
}

fn injection_is_data(local: bool) {
    let bed = Bed::start(1, false);
    bed.site_with_config("", if local { "transport: local\n" } else { "" });
    let dir = bed.tb.dir().join("nodes");
    let marker = dir.join("injected");
    copy_to(
        &bed,
        &format!("{}/a b; touch {}", dir.display(), marker.display()),
    );
    let out = bed.drover(&["run", "w", "--yes", "--json"]);
    assert!(!marker.exists(), "the destination ran as code\n{out}");
    // The directory `a b; touch ...` does not exist: the step fails, as a path.
    assert_ne!(out.code, exit_code::OK, "{out}");

    let spaced = dir.join("with space.txt");
    copy_to(&bed, &spaced.display().to_string());
    let out = bed.drover(&["run", "w", "--yes", "--json"]);
    out.expect(exit_code::OK);
    assert_eq!(
        std::fs::read_to_string(&spaced).expect("copied"),
        "hello\n",
        "{out}"
    );
}

#[test]
fn a_file_destination_is_one_path_over_ssh() {
    injection_is_data(false);
}

#[test]
fn a_file_destination_is_one_path_locally() {
    injection_is_data(true);
}
