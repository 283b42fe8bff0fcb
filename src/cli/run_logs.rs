//! `drover runs logs ID [--node N] [--follow]`: a run's log.

use std::io::{Read, Seek, SeekFrom, Write};
use std::path::Path;
use std::time::Duration;

use super::selection::Refusal;
use crate::diag::did_you_mean;
use crate::exit_code;
use crate::project::Project;
use crate::store::RunStatus;

/// How often `--follow` looks for more.
const FOLLOW_POLL: Duration = Duration::from_millis(200);

/// Prints the log of run `id` (`STATE_DIR/logs/ID.log`), or only the lines of `node`.
/// With `follow`, keeps printing what the run appends until it is no longer running.
pub fn logs(
    site: &Path,
    id: &str,
    node: Option<&str>,
    follow: bool,
    color: bool,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> i32 {
    match print_logs(site, id, node, follow, color, out, err) {
        Ok(()) => exit_code::OK,
        Err(Refusal(m, code)) => {
            let _ = writeln!(err, "error: {m}");
            code
        }
    }
}

fn print_logs(
    site: &Path,
    id: &str,
    node: Option<&str>,
    follow: bool,
    color: bool,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> Result<(), Refusal> {
    let project = Project::load(site).map_err(|diags| {
        for d in &diags {
            let _ = writeln!(err, "{}\n", d.render(color));
        }
        Refusal(
            "the site is invalid; run `drover validate` for details".into(),
            exit_code::INVALID_CONFIG,
        )
    })?;
    // Read-only, like `runs list`: reading a log creates no state and works where the
    // state dir may only be read.
    let store = super::run_state::open_store_read(&project).map_err(|r| match r {
        super::run_state::ReadState::NoRuns(why) => {
            Refusal(format!("no run `{id}`: {why}"), exit_code::USAGE)
        }
        super::run_state::ReadState::Failed(r) => r,
    })?;
    let running = |store: &crate::store::Store| -> Result<bool, Refusal> {
        match store.run(id) {
            Ok(Some(d)) => Ok(d.run.status == RunStatus::Running),
            Ok(None) => Err(Refusal(format!("no run `{id}`"), exit_code::USAGE)),
            Err(e) => Err(Refusal(e.to_string(), exit_code::FAILURE)),
        }
    };
    let detail = match store.run(id) {
        Ok(Some(d)) => d,
        Ok(None) => {
            let ids: Vec<String> = store
                .runs()
                .map(|r| r.into_iter().map(|r| r.id).collect())
                .unwrap_or_default();
            let help = did_you_mean(id, ids.iter().map(String::as_str))
                .map(|m| format!("\nhelp: did you mean `{m}`?"))
                .unwrap_or_else(|| "\nhelp: `drover runs list` shows the runs".into());
            return Err(Refusal(format!("no run `{id}`{help}"), exit_code::USAGE));
        }
        Err(e) => return Err(Refusal(e.to_string(), exit_code::FAILURE)),
    };
    if let Some(n) = node
        && !detail.nodes.iter().any(|x| x.node == n)
    {
        let help = did_you_mean(n, detail.nodes.iter().map(|x| x.node.as_str()))
            .map(|m| format!("\nhelp: did you mean `{m}`?"))
            .unwrap_or_default();
        return Err(Refusal(
            format!("node `{n}` is not in run {id}{help}"),
            exit_code::USAGE,
        ));
    }
    let path = project.site.state_dir.join("logs").join(format!("{id}.log"));
    let prefix = node.map(|n| format!("{n}: "));
    let mut pos = 0u64;
    // A line cut by the end of what is written so far waits for its end.
    let mut partial = String::new();
    loop {
        let more = match std::fs::File::open(&path) {
            Ok(mut f) => {
                f.seek(SeekFrom::Start(pos)).map_err(|e| {
                    Refusal(format!("cannot read {}: {e}", path.display()), exit_code::FAILURE)
                })?;
                let mut buf = Vec::new();
                f.read_to_end(&mut buf).map_err(|e| {
                    Refusal(format!("cannot read {}: {e}", path.display()), exit_code::FAILURE)
                })?;
                pos += buf.len() as u64;
                partial.push_str(&String::from_utf8_lossy(&buf));
                !buf.is_empty()
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                if !follow {
                    return Err(Refusal(
                        format!("run {id} has no log yet ({} does not exist)", path.display()),
                        exit_code::USAGE,
                    ));
                }
                false
            }
            Err(e) => {
                return Err(Refusal(
                    format!("cannot read {}: {e}", path.display()),
                    exit_code::FAILURE,
                ));
            }
        };
        if more {
            let cut = partial.rfind('\n').map_or(0, |i| i + 1);
            let done: String = partial.drain(..cut).collect();
            for line in done.lines() {
                if prefix.as_ref().is_none_or(|p| line.starts_with(p.as_str())) {
                    let _ = writeln!(out, "{line}");
                }
            }
            let _ = out.flush();
        }
        if !follow {
            break;
        }
        if !more && !running(&store)? {
            // One last read: the run may have written its last lines just before ending.
            if std::fs::metadata(&path).is_ok_and(|m| m.len() > pos) {
                continue;
            }
            break;
        }
        std::thread::sleep(FOLLOW_POLL);
    }
    if !partial.is_empty() && prefix.as_ref().is_none_or(|p| partial.starts_with(p.as_str())) {
        let _ = writeln!(out, "{partial}");
    }
    Ok(())
}
