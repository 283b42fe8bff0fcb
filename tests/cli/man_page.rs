//! `docs/man/drover.1` is generated from the command line (clap_mangen) and must not
//! go stale; `DROVER_BLESS=1 cargo test --test cli man_page` rewrites it. Completions
//! are generated for each shell.

use clap::CommandFactory;

use crate::support::*;

fn man_page() -> String {
    // The version without the commit: the page would otherwise change with every commit.
    let cmd = drover::cli::Cli::command().version(env!("CARGO_PKG_VERSION"));
    let mut buf = Vec::new();
    clap_mangen::Man::new(cmd).render(&mut buf).expect("render");
    String::from_utf8(buf).expect("utf-8")
}

#[test]
fn the_man_page_matches_the_command_line() {
    let path = repo_root().join("docs/man/drover.1");
    let want = man_page();
    if std::env::var_os("DROVER_BLESS").is_some() {
        std::fs::create_dir_all(path.parent().expect("dir")).expect("mkdir");
        std::fs::write(&path, &want).expect("write");
        return;
    }
    let have = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        have == want,
        "docs/man/drover.1 is out of date: run `DROVER_BLESS=1 cargo test --test cli man_page`"
    );
    assert!(want.contains("drover\\-run") || want.contains("run"), "{want}");
}

#[test]
fn completions_for_bash_zsh_and_fish() {
    for (shell, marker) in [
        ("bash", "complete -F"),
        ("zsh", "#compdef drover"),
        ("fish", "complete -c drover"),
    ] {
        let out = Site::new().run(&["completions", shell]);
        assert_eq!(out.code, 0, "{shell}: {}", out.stderr);
        assert!(out.stdout.contains(marker), "{shell}:\n{}", out.stdout);
        // Subcommands and their flags are in it.
        assert!(out.stdout.contains("extra-vars"), "{shell}");
    }
    let bad = Site::new().run(&["completions", "tcsh"]);
    assert_eq!(bad.code, 2);
}
