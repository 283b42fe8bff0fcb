//! Ansible as a step: `ansible-playbook` run on the controller against one node, with
//! an inventory drover generates for it and drover's own SSH master, and its task
//! results read back through a small callback plugin drover ships.

mod ansible_error;
mod invocation;
mod play_outcome;
mod program;
mod task_event;

pub use ansible_error::AnsibleError;
pub use invocation::{Invocation, NodeReach, Workdir};
pub use play_outcome::PlayOutcome;
pub use program::{INSTALL_HINT, PLAYBOOK_ENV, find_playbook};
pub use task_event::{TaskEvent, TaskStatus};
