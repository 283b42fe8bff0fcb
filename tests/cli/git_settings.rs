//! The `git:` section of drover.yml: every problem located, the same way as the rest.

use crate::support::*;

const KEY: &str = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIKxHLAgVkJrRwfc3ZlsAtvBs8X2N76uPEdzb128XLvqB";

fn site(git: &str) -> Site {
    Site::new().write("drover.yml", &format!("{SITE}transport: local\ngit:\n{git}"))
}

#[test]
fn every_bad_git_setting_is_reported_with_its_line_and_column() {
    let s = site(
        "  remote: git@github.com:org/site.git
  branch: \"bad..name\"
  poll_interval: 0s
  site_path: ../elsewhere
  require_signed:
    allowed_signers: signers
  alow_force_push: true
",
    )
    .write("signers", &format!("n1 cert-authority {KEY}\nbob\n"));
    let err = s.invalid();
    for expected in [
        "error: `git@github.com:org/site.git`: ssh remotes are not supported\n  --> drover.yml:15:11",
        "error: `bad..name` is not a valid branch name\n  --> drover.yml:16:11",
        "error: `poll_interval: 0s` is out of range: expected 1s to 1day\n  --> drover.yml:17:18",
        "error: `../elsewhere` leaves the repository\n  --> drover.yml:18:14",
        "error: signers:1: `cert-authority` is not supported: list the signing keys themselves\n  --> drover.yml:20:22",
        "error: signers:2: no key after the principals\n  --> drover.yml:20:22",
        "error: unknown key `alow_force_push` in `git`\n  --> drover.yml:21:3",
        "= help: did you mean `allow_force_push`?",
        "error: 7 problems in 1 file",
    ] {
        assert!(err.contains(expected), "missing {expected:?} in\n{err}");
    }
}

#[test]
fn a_valid_git_section_validates() {
    let s = site(
        "  remote: https://git.example.com/ops/site.git
  branch: release/2026
  poll_interval: 30s
  site_path: ./sites/hpc
  allow_force_push: false
  require_signed:
    allowed_signers: signers
",
    )
    .write(
        "signers",
        &format!("# operators\nada@example.com namespaces=\"git\" {KEY} ada\n"),
    );
    let out = s.run(&["validate", "."]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    // `drover serve` follows it: no "not in effect" warning.
    assert!(!out.stderr.contains("warning"), "{}", out.stderr);
}

#[test]
fn a_missing_or_empty_allowed_signers_file_is_refused() {
    let s = site("  remote: /srv/site.git\n  require_signed:\n    allowed_signers: nothing-here\n");
    assert!(
        s.invalid().contains("error: cannot read `nothing-here`"),
        "{}",
        s.invalid()
    );
    let s = site("  remote: /srv/site.git\n  require_signed:\n    allowed_signers: signers\n")
        .write("signers", "# nobody\n");
    assert!(
        s.invalid()
            .contains("`signers` lists no key: no commit could run"),
        "{}",
        s.invalid()
    );
}
