//! Why a command drover ran on a node's behalf (a step, a hook, a check) failed.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use crate::template::TemplateError;
use crate::transport::TransportError;

#[derive(Debug, Clone, thiserror::Error)]
pub enum StepError {
    /// Boxed: template errors carry their source text, and this type is returned a lot.
    #[error("template error: {0}")]
    Template(Box<TemplateError>),
    #[error("{0}")]
    Transport(#[from] TransportError),
    #[error("cannot read {}: {source}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: Arc<std::io::Error>,
    },
    #[error("template {}: {source}", path.display())]
    RenderFile {
        path: PathBuf,
        #[source]
        source: Box<TemplateError>,
    },
    #[error("timed out after {}", humantime::format_duration(*.0))]
    TimedOut(Duration),
    /// `tail`: the last lines of its output.
    #[error("exited with code {code}{}", colon(tail))]
    Exited { code: i32, tail: String },
    #[error("killed by a signal{}", colon(tail))]
    Signal { tail: String },
    /// A `wait_for` (or health check) that never passed; `last`: its last failure.
    #[error("still failing after {}: {last}", humantime::format_duration(*after))]
    StillFailing { after: Duration, last: String },
    #[error("{0}")]
    Ansible(crate::ansible::AnsibleError),
    #[error("no connection to the node")]
    NoConnection,
    #[error("a reboot needs the node cycle, which can reconnect")]
    RebootOutsideCycle,
}

impl From<TemplateError> for StepError {
    fn from(e: TemplateError) -> StepError {
        StepError::Template(Box::new(e))
    }
}

impl StepError {
    /// The command's exit code, where it ran to an end.
    pub fn exit_code(&self) -> Option<i32> {
        match self {
            StepError::Exited { code, .. } => Some(*code),
            _ => None,
        }
    }

    /// What the command printed last, where it ran.
    pub fn output_tail(&self) -> &str {
        match self {
            StepError::Exited { tail, .. } | StepError::Signal { tail } => tail,
            StepError::StillFailing { last, .. } => last,
            _ => "",
        }
    }
}

fn colon(tail: &str) -> String {
    if tail.is_empty() {
        String::new()
    } else {
        format!(": {tail}")
    }
}
