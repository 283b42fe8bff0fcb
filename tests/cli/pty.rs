//! `drover run` on a real terminal (a pseudo-terminal): the confirmation prompt stays
//! on the screen, and Ctrl-C is acknowledged.

use std::process::Command;

use rexpect::session::{PtySession, spawn_command};

use crate::support::*;

/// A site whose checks take a moment (so the check bar draws) and whose step leaves a
/// marker per node.
fn slow_site(step: &str) -> Site {
    let site = Site::new().write(
        "workflows/update.yml",
        &format!(
            "name: update\nversion: 1\ntargets: {{ nodes: [\"n[01-03]\"] }}\ncanary: {{ size: 0 }}\n\
             strategy: {{ batch: 3 }}\n\
             steps:\n  - name: mark\n    run: {step}\n    check: sleep 0.3; test -e \"marks/$DROVER_NODE\"\n    change: hot\n"
        ),
    );
    std::fs::create_dir_all(site.path().join("marks")).expect("mkdir marks");
    site
}

fn spawn(site: &Site, args: &[&str]) -> PtySession {
    let mut cmd = Command::new(drover_bin());
    cmd.args(args)
        .current_dir(site.path())
        .env("NO_COLOR", "1")
        .env("TERM", "xterm");
    spawn_command(cmd, Some(20_000)).expect("spawn drover in a pty")
}

/// The terminal as a person sees it after `bytes`: a 200-row screen, so nothing scrolls
/// away. The pty is raw (no `\n` → `\r\n`, no echo), so line feeds get their
/// carriage return here, as a terminal's line discipline would add.
fn screen(bytes: &str) -> String {
    let bytes = bytes.replace("\r\n", "\n").replace('\n', "\r\n");
    let n = |v| std::num::NonZeroU16::new(v).expect("non-zero");
    let mut p = vt100::Parser::new(n(200), n(120), 0);
    p.process(bytes.as_bytes());
    p.screen().contents()
}

#[test]
fn the_prompt_stays_visible_and_yes_proceeds() {
    let site = slow_site("touch \"marks/$DROVER_NODE\"");
    let mut p = spawn(&site, &["run", "update"]);
    let mut seen = p.exp_string("run update on 3 nodes? [y/N] ").expect("the prompt");
    seen.push_str("run update on 3 nodes? [y/N] ");
    // Nothing may draw over the question while it waits.
    std::thread::sleep(std::time::Duration::from_millis(700));
    while let Some(c) = p.try_read() {
        seen.push(c);
    }
    let shown = screen(&seen);
    let last = shown
        .lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .unwrap_or_default();
    assert_eq!(
        last.trim_end(),
        "run update on 3 nodes? [y/N]",
        "the screen while waiting:\n{shown}"
    );
    assert!(
        !shown.contains("check ["),
        "the check bar is still on screen:\n{shown}"
    );

    p.send_line("y").unwrap();
    seen.push_str(&p.exp_eof().expect("drover ends"));
    let shown = screen(&seen);
    assert!(
        shown
            .lines()
            .any(|l| l.starts_with("run update on 3 nodes? [y/N]")),
        "the answered prompt was erased:\n{shown}"
    );
    assert!(shown.contains(": succeeded"), "{shown}");
    for n in ["n01", "n02", "n03"] {
        assert!(site.path().join("marks").join(n).exists(), "{n} was not run");
    }
}

#[test]
fn ctrl_c_at_the_prompt_does_nothing_and_says_so() {
    let site = slow_site("touch \"marks/$DROVER_NODE\"");
    let mut p = spawn(&site, &["run", "update"]);
    p.exp_string("[y/N] ").expect("the prompt");
    p.send_control('c').unwrap();
    p.exp_string("interrupted; nothing done").expect("acknowledged");
    p.exp_eof().expect("drover ends");
    assert_eq!(std::fs::read_dir(site.path().join("marks")).unwrap().count(), 0);
}

#[test]
fn ctrl_c_during_the_run_is_acknowledged_and_stops_starting_nodes() {
    // One node at a time, each step a second long.
    let site = slow_site("sleep 1; touch \"marks/$DROVER_NODE\"").write(
        "drover.yml",
        &format!("{SITE}transport: local\nssh: {{ forks: 1 }}\n"),
    );
    let mut p = spawn(&site, &["run", "update", "--yes"]);
    p.exp_string("batch 1/1: 3 nodes").expect("the run starts");
    std::thread::sleep(std::time::Duration::from_millis(300));
    p.send_control('c').unwrap();
    p.exp_string("stopping: no new node will start; 1 node in flight; Ctrl-C again to abort")
        .expect("the press is acknowledged");
    p.exp_eof().expect("drover ends");
    let marks = std::fs::read_dir(site.path().join("marks")).unwrap().count();
    assert_eq!(marks, 1, "the node in flight finished and no other started");
}
