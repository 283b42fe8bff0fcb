//! `drover pause|unpause` and `drover runs pause|unpause ID`: stop and let go the
//! starting of new nodes, for every run of the site or for one. The pause is kept in the
//! state database, so it outlives this process and binds every controller of the site;
//! each running rollout reads it every `pause.poll_interval`. Named `unpause` (not
//! `resume`) because `drover runs resume ID` already means "continue a run whose
//! controller died".

use std::io::Write;
use std::path::Path;

use super::run_state::{open_store, store_error_text};
use super::runs::load_project;
use super::selection::Refusal;
use crate::exit_code;
use crate::store::{PauseScope, Write as StoreWrite};

/// Who sets a pause or maintenance: `--by`, else `$USER`, else `unknown`.
pub(super) fn who(by: Option<&str>) -> String {
    by.map(str::to_string)
        .or_else(|| std::env::var("USER").ok().filter(|u| !u.is_empty()))
        .unwrap_or_else(|| "unknown".into())
}

fn refuse(err: &mut dyn Write, r: Refusal) -> i32 {
    let _ = writeln!(err, "error: {}", r.0);
    r.1
}

/// What to pause: every run, or run `id` (which must be recorded).
pub struct PauseRequest<'a> {
    pub site: &'a Path,
    pub run: Option<&'a str>,
    pub reason: Option<&'a str>,
    pub by: Option<&'a str>,
    pub json: bool,
}

pub fn pause(req: &PauseRequest<'_>, color: bool, out: &mut dyn Write, err: &mut dyn Write) -> i32 {
    set(req, true, color, out, err)
}

pub fn unpause(req: &PauseRequest<'_>, color: bool, out: &mut dyn Write, err: &mut dyn Write) -> i32 {
    set(req, false, color, out, err)
}

fn set(req: &PauseRequest<'_>, on: bool, color: bool, out: &mut dyn Write, err: &mut dyn Write) -> i32 {
    let project = match load_project(req.site, color, err) {
        Ok(p) => p,
        Err(c) => return c,
    };
    let store = match open_store(&project) {
        Ok(s) => s,
        Err(r) => return refuse(err, r),
    };
    let scope = match req.run {
        None => PauseScope::All,
        Some(id) => match store.run(id) {
            Ok(Some(_)) => PauseScope::Run(id.to_string()),
            Ok(None) => return refuse(err, Refusal::usage(format!("no run `{id}`"))),
            Err(e) => return refuse(err, Refusal(store_error_text(&e), exit_code::FAILURE)),
        },
    };
    let write = if on {
        StoreWrite::Paused {
            scope: scope.clone(),
            reason: req.reason.map(str::to_string),
            by: who(req.by),
            at: jiff::Timestamp::now(),
        }
    } else {
        StoreWrite::Unpaused {
            scope: scope.clone(),
            by: who(req.by),
            at: jiff::Timestamp::now(),
        }
    };
    if let Err(e) = store.write_blocking(vec![write]) {
        return refuse(err, Refusal(store_error_text(&e), exit_code::FAILURE));
    }
    let pauses = store.pauses().unwrap_or_default();
    if req.json {
        let _ = writeln!(out, "{}", serde_json::json!({ "pauses": pauses }));
        return exit_code::OK;
    }
    let what = match &scope {
        PauseScope::All => "all runs".to_string(),
        PauseScope::Run(id) => format!("run {id}"),
    };
    let poll = humantime::format_duration(project.site.pause_poll);
    if on {
        let _ = writeln!(
            out,
            "paused {what}: no new node starts (running ones see it within {poll}); nodes in flight finish their cycle"
        );
    } else {
        let _ = writeln!(out, "unpaused {what}");
        // A run's own pause lifted under a global one (or the other way round) still
        // holds it: say so rather than let the operator wonder.
        for p in &pauses {
            let _ = writeln!(out, "  still in force: {p}");
        }
    }
    exit_code::OK
}
