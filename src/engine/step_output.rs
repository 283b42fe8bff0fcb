//! What a step that ran to a good end produced, for the journal and the run's events.

use super::event::StepStatus;
use crate::transport::ExecOutput;

/// Lines of output a step's record keeps (the journal caps the bytes too).
const TAIL_LINES: usize = 20;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StepOutput {
    pub status: StepStatus,
    /// None for steps that run no single command (a reboot, a `wait_for`'s many tries).
    pub exit_code: Option<i32>,
    pub output_tail: String,
}

impl StepOutput {
    pub fn of(status: StepStatus, o: &ExecOutput) -> StepOutput {
        StepOutput {
            status,
            exit_code: o.code,
            output_tail: o.last_lines(TAIL_LINES),
        }
    }

    pub fn bare(status: StepStatus) -> StepOutput {
        StepOutput {
            status,
            exit_code: None,
            output_tail: String::new(),
        }
    }
}
