//! Shows a run's events as they happen: progress bars on a terminal, plain lines in a
//! log or pipe, JSON lines with `--json`.

use std::io::Write;

use crate::engine::{Class, EventReceiver, RunEvent, StepStatus};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Style {
    /// One JSON object per line on stdout.
    Json,
    /// Lines on stdout, and bars when stdout is a terminal.
    Human { bars: bool },
}

/// Consumes events until the channel closes.
pub async fn report(mut rx: EventReceiver, style: Style) {
    let mut bar: Option<ProgressBar> = None;
    while let Some(ev) = rx.recv().await {
        match style {
            Style::Json => {
                if let Ok(line) = serde_json::to_string(&ev) {
                    let mut out = std::io::stdout().lock();
                    let _ = writeln!(out, "{line}");
                }
            }
            Style::Human { bars } => human(&ev, bars, &mut bar),
        }
    }
    if let Some(b) = bar {
        b.finish_and_clear();
    }
}

fn new_bar(len: usize, what: &str, bars: bool) -> ProgressBar {
    let b = ProgressBar::with_draw_target(
        Some(len as u64),
        if bars {
            ProgressDrawTarget::stderr()
        } else {
            ProgressDrawTarget::hidden()
        },
    );
    if let Ok(s) = ProgressStyle::with_template("{prefix:>12} [{bar:30}] {pos}/{len} {elapsed}")
        .map(|s| s.progress_chars("=> "))
    {
        b.set_style(s);
    }
    b.set_prefix(what.to_string());
    b
}

fn line(bar: &Option<ProgressBar>, text: String) {
    match bar {
        Some(b) if !b.is_hidden() => b.println(text),
        _ => {
            let mut out = std::io::stdout().lock();
            let _ = writeln!(out, "{text}");
        }
    }
}

fn human(ev: &RunEvent, bars: bool, bar: &mut Option<ProgressBar>) {
    match ev {
        RunEvent::CheckStarted { nodes } => {
            line(bar, format!("checking {nodes} nodes"));
            *bar = Some(new_bar(*nodes, "check", bars));
        }
        RunEvent::NodeChecked {
            node, class, error, ..
        } => {
            if *class == Class::Error {
                line(
                    bar,
                    format!("  {node}: ERROR: {}", error.as_deref().unwrap_or("")),
                );
            }
            if let Some(b) = bar {
                b.inc(1);
            }
        }
        RunEvent::PhaseStarted { phase, nodes } => {
            if let Some(b) = bar.take() {
                b.finish_and_clear();
            }
            line(
                bar,
                format!("{phase}: {nodes} node{}", if *nodes == 1 { "" } else { "s" }),
            );
            *bar = Some(new_bar(*nodes, phase, bars));
        }
        RunEvent::NodeStarted { .. } => {}
        RunEvent::StepFinished {
            node,
            step,
            status,
            error,
            ..
        } => {
            if *status == StepStatus::Failed {
                line(
                    bar,
                    format!(
                        "  {node}: step `{step}` failed: {}",
                        error.as_deref().unwrap_or("")
                    ),
                );
            }
        }
        RunEvent::NodeDrain { node, state, detail } => {
            let detail = detail.as_ref().map(|d| format!(" ({d})")).unwrap_or_default();
            line(bar, format!("  {node}: {state}{detail}"));
        }
        RunEvent::NodeRetry { node, attempt, after } => {
            line(
                bar,
                format!(
                    "  {node}: attempt {attempt} in {}",
                    humantime::format_duration(*after)
                ),
            );
        }
        RunEvent::NodeFinished { node, ok, .. } => {
            line(bar, format!("  {node}: {}", if *ok { "ok" } else { "FAILED" }));
            if let Some(b) = bar {
                b.inc(1);
            }
        }
        RunEvent::Soak { duration } => {
            line(
                bar,
                format!(
                    "canary passed; soaking for {}",
                    humantime::format_duration(*duration)
                ),
            );
        }
        RunEvent::RunFinished { .. } => {
            if let Some(b) = bar.take() {
                b.finish_and_clear();
            }
        }
    }
}
