//! Shows a run's events as they happen: progress bars on a terminal, plain lines in a
//! log or pipe, JSON lines with `--json`.

use std::io::Write;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use tokio::sync::{mpsc, oneshot};

use super::paint::{Paint, plural};
use crate::engine::{EventReceiver, NodeFinal, RunEvent, StepStatus};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Style {
    /// One JSON object per line on stdout.
    Json,
    /// Lines on stdout; bars on stderr when it is a terminal; states in colour when
    /// `color`; each line prefixed with the local time when `timestamps`.
    Human {
        bars: bool,
        color: bool,
        timestamps: bool,
    },
}

impl Style {
    /// Plain lines: no bars, no colour, no timestamps.
    pub fn plain() -> Style {
        Style::Human {
            bars: false,
            color: false,
            timestamps: false,
        }
    }
}

enum Control {
    /// Print what is queued, clear the bars, keep them off, then answer.
    Quiet(oneshot::Sender<()>),
    /// Bars may draw again.
    Resume,
}

/// Lets a command keep the terminal to itself for a while (a confirmation prompt): the
/// bars are cleared and do not draw until [`ReportControl::resume`], so they cannot
/// redraw over the question.
#[derive(Debug, Clone)]
pub struct ReportControl(mpsc::UnboundedSender<Control>);

impl std::fmt::Debug for Control {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Control::Quiet(_) => "Quiet",
            Control::Resume => "Resume",
        })
    }
}

/// The handle and its receiver, for [`report_with`].
pub fn control() -> (ReportControl, ControlReceiver) {
    let (tx, rx) = mpsc::unbounded_channel();
    (ReportControl(tx), ControlReceiver(rx))
}

pub struct ControlReceiver(mpsc::UnboundedReceiver<Control>);

impl ReportControl {
    /// Returns once every event sent before the call has been shown and the bars are
    /// off the screen (at once if the reporter has ended).
    pub async fn quiet(&self) {
        let (tx, rx) = oneshot::channel();
        if self.0.send(Control::Quiet(tx)).is_ok() {
            let _ = rx.await;
        }
    }

    pub fn resume(&self) {
        let _ = self.0.send(Control::Resume);
    }
}

/// Consumes events until the channel closes.
pub async fn report(rx: EventReceiver, style: Style) {
    let (_keep, ctl) = control();
    report_with(rx, style, ctl).await;
}

/// [`report`], obeying a [`ReportControl`].
pub async fn report_with(mut rx: EventReceiver, style: Style, ControlReceiver(mut ctl): ControlReceiver) {
    let mut r = Human::new(style);
    let mut ctl_open = true;
    loop {
        tokio::select! {
            ev = rx.recv() => match ev {
                Some(ev) => r.event(&ev),
                None => break,
            },
            c = ctl.recv(), if ctl_open => match c {
                Some(Control::Quiet(ack)) => {
                    // Events sent before the request are already queued: show them
                    // first, so nothing prints after the question.
                    while let Some(ev) = rx.try_recv() {
                        r.event(&ev);
                    }
                    r.quiet = true;
                    if let Some(b) = &r.bar {
                        b.set_draw_target(ProgressDrawTarget::hidden());
                    }
                    let _ = ack.send(());
                }
                Some(Control::Resume) => {
                    r.quiet = false;
                    if let Some(b) = &r.bar
                        && r.bars
                    {
                        b.set_draw_target(ProgressDrawTarget::stderr());
                    }
                }
                None => ctl_open = false,
            },
        }
    }
    if let Some(b) = r.bar.take() {
        b.finish_and_clear();
    }
}

/// The terminal reporter's state.
struct Human {
    style: Style,
    bars: bool,
    paint: Paint,
    timestamps: bool,
    quiet: bool,
    bar: Option<ProgressBar>,
    /// Checks that failed so far (shown on the bar; the check report lists them,
    /// grouped, at the end).
    check_errors: usize,
    /// Per step, in the order steps first finished: how often it ran (`ok`), wrote a
    /// file (`changed`), found the file as wanted (`unchanged`), failed.
    steps: Vec<(String, StepCounts)>,
    /// Per node in flight: its file steps that changed something, and those that did not.
    files: std::collections::HashMap<String, (usize, usize)>,
}

#[derive(Debug, Default, Clone, Copy)]
struct StepCounts {
    ok: usize,
    changed: usize,
    unchanged: usize,
    failed: usize,
}

impl Human {
    fn new(style: Style) -> Human {
        let (bars, color, timestamps) = match style {
            Style::Json => (false, false, false),
            Style::Human {
                bars,
                color,
                timestamps,
            } => (bars, color, timestamps),
        };
        Human {
            style,
            bars,
            paint: Paint(color),
            timestamps,
            quiet: false,
            bar: None,
            check_errors: 0,
            steps: Vec::new(),
            files: std::collections::HashMap::new(),
        }
    }

    fn event(&mut self, ev: &RunEvent) {
        match self.style {
            Style::Json => {
                if let Ok(line) = serde_json::to_string(ev) {
                    let mut out = std::io::stdout().lock();
                    let _ = writeln!(out, "{line}");
                }
            }
            Style::Human { .. } => self.human(ev),
        }
    }

    fn new_bar(&self, len: usize, what: &str) -> ProgressBar {
        let b = ProgressBar::with_draw_target(
            Some(len as u64),
            if self.bars && !self.quiet {
                ProgressDrawTarget::stderr()
            } else {
                ProgressDrawTarget::hidden()
            },
        );
        if let Ok(s) = ProgressStyle::with_template("{prefix:>12} [{bar:30}] {pos}/{len} {elapsed} {msg}")
            .map(|s| s.progress_chars("=> "))
        {
            b.set_style(s);
        }
        b.set_prefix(what.to_string());
        b
    }

    fn line(&self, text: String) {
        let text = if self.timestamps {
            let now = jiff::Zoned::now();
            format!("{} {text}", now.strftime("%H:%M:%S"))
        } else {
            text
        };
        match &self.bar {
            Some(b) if !b.is_hidden() => b.println(text),
            _ => {
                let mut out = std::io::stdout().lock();
                let _ = writeln!(out, "{text}");
            }
        }
    }

    fn finish_bar(&mut self) {
        if let Some(b) = self.bar.take() {
            b.finish_and_clear();
        }
    }

    /// One line per step: on how many nodes it ran, changed a file, found it as
    /// wanted, failed.
    fn step_summary(&self) {
        if self.steps.is_empty() {
            return;
        }
        let p = self.paint;
        let width = self.steps.iter().map(|(n, _)| n.len()).max().unwrap_or(0);
        self.line("steps:".to_string());
        for (name, c) in &self.steps {
            let mut parts = Vec::new();
            if c.ok > 0 {
                parts.push(format!("{} {}", p.ok("ok"), c.ok));
            }
            if c.changed > 0 {
                parts.push(format!("{} {}", p.ok("changed"), c.changed));
            }
            if c.unchanged > 0 {
                parts.push(format!("unchanged {}", c.unchanged));
            }
            if c.failed > 0 {
                parts.push(format!("{} {}", p.failed("failed"), c.failed));
            }
            self.line(format!("  {name:<width$}  {}", parts.join(", ")));
        }
    }

    fn human(&mut self, ev: &RunEvent) {
        let p = self.paint;
        match ev {
            RunEvent::CheckStarted { nodes } => {
                self.line(format!("checking {}", plural(*nodes, "node")));
                self.check_errors = 0;
                self.bar = Some(self.new_bar(*nodes, "check"));
            }
            RunEvent::NodeChecked { error, .. } => {
                if error.is_some() {
                    self.check_errors += 1;
                }
                if let Some(b) = &self.bar {
                    if self.check_errors > 0 {
                        b.set_message(p.failed(&plural(self.check_errors, "error")));
                    }
                    b.inc(1);
                    // The check is over: its bar goes, so the report and a prompt
                    // after it stand alone.
                    if b.length().is_some_and(|l| b.position() >= l) {
                        self.finish_bar();
                    }
                }
            }
            RunEvent::PhaseStarted { phase, nodes } => {
                self.finish_bar();
                self.line(format!("{phase}: {}", plural(*nodes, "node")));
                self.bar = Some(self.new_bar(*nodes, phase));
            }
            RunEvent::NodeStarted { .. } => {}
            RunEvent::StepFinished {
                node,
                step,
                status,
                error,
                ..
            } => {
                let i = match self.steps.iter().position(|(n, _)| n == step) {
                    Some(i) => i,
                    None => {
                        self.steps.push((step.clone(), StepCounts::default()));
                        self.steps.len() - 1
                    }
                };
                let c = &mut self.steps[i].1;
                match status {
                    StepStatus::Ok => c.ok += 1,
                    StepStatus::Changed => c.changed += 1,
                    StepStatus::Unchanged => c.unchanged += 1,
                    StepStatus::Failed => c.failed += 1,
                }
                let f = self.files.entry(node.clone()).or_default();
                match status {
                    StepStatus::Changed => f.0 += 1,
                    StepStatus::Unchanged => f.1 += 1,
                    _ => {}
                }
                if *status == StepStatus::Failed {
                    self.line(format!(
                        "  {node}: step `{step}` {}: {}",
                        p.failed("failed"),
                        error.as_deref().unwrap_or("")
                    ));
                }
            }
            RunEvent::NodeDrain { node, state, detail } => {
                let detail = detail.as_ref().map(|d| format!(" ({d})")).unwrap_or_default();
                self.line(format!("  {node}: {}{detail}", p.state(state)));
            }
            RunEvent::NodeRetry { node, attempt, after } => {
                self.line(format!(
                    "  {node}: attempt {attempt} in {}",
                    humantime::format_duration(*after)
                ));
            }
            RunEvent::NodeFinished { node, state, .. } => {
                // File steps say whether they changed anything on the node.
                let files = match self.files.remove(node) {
                    Some((0, 0)) | None => String::new(),
                    Some((0, same)) => format!(" ({} unchanged)", plural(same, "file")),
                    Some((changed, 0)) => format!(" ({} changed)", plural(changed, "file")),
                    Some((changed, same)) => {
                        format!(" ({} changed, {same} unchanged)", plural(changed, "file"))
                    }
                };
                // Held and skipped nodes said why in their drain or maintenance line.
                let said = match state {
                    NodeFinal::Succeeded => p.ok("ok"),
                    NodeFinal::Failed => p.failed("FAILED"),
                    NodeFinal::Held => p.held("held"),
                    NodeFinal::Skipped => p.held("skipped"),
                };
                self.line(format!("  {node}: {said}{files}"));
                if let Some(b) = &self.bar {
                    b.inc(1);
                }
            }
            RunEvent::Soak { duration } => {
                self.line(format!(
                    "canary passed; soaking for {}",
                    humantime::format_duration(*duration)
                ));
            }
            RunEvent::Waiting { text, .. } => {
                self.line(format!("waiting for {text}; nodes in flight go on"));
            }
            RunEvent::Continuing => {
                self.line("continuing: nodes start again".to_string());
            }
            RunEvent::NodeInMaintenance { node, reason } => {
                self.line(format!("  {node}: skipped, in {reason}"));
            }
            RunEvent::RunFinished { .. } => {
                self.finish_bar();
                self.step_summary();
            }
        }
    }
}
