//! Workflows: one change, its targets, its rollout strategy and its steps.

mod file_mode;
mod name_check;
mod raw_workflow;
mod raw_workflow_drain;
mod revealed;
mod template_source;
#[expect(clippy::module_inception, reason = "the type is named after the concept")]
mod workflow;
mod workflow_check;

pub use file_mode::FileMode;
pub use name_check::{Scopes, check_hook_names};
pub use raw_workflow::{
    Change, NodeOrder, RawAnsible, RawCanary, RawConverge, RawCopy, RawFailureBudget, RawReboot, RawRetries,
    RawStep, RawStrategy, RawTargets, RawWaitFor, RawWorkflow, RebootVia, Unreachable,
};
pub use raw_workflow_drain::RawWorkflowDrain;
pub use revealed::Revealed;
pub use template_source::{TemplateSource, TemplateUse};
pub use workflow::{
    Action, AnsiblePlay, AnsibleSource, Canary, CanarySelect, DEFAULT_BOOT_ID_COMMAND,
    DEFAULT_REBOOT_COMMAND, FileCopy, Reboot, RetryPolicy, Step, Strategy, WaitFor, Workflow,
};
pub use workflow_check::{
    COMMAND_SCOPE, DEFAULT_REBOOT_TIMEOUT, DEFAULT_STEP_TIMEOUT, WorkflowContext, check_steps,
};
