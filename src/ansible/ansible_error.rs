//! Why an `ansible:` step (or its check) failed on a node.

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AnsibleError {
    /// The first task that failed, with Ansible's message.
    #[error("task `{task}` failed{}", colon(msg))]
    TaskFailed { task: String, msg: String },
    #[error("unreachable for ansible (task `{task}`){}", colon(msg))]
    Unreachable { task: String, msg: String },
    /// Ended badly without a failed task: a syntax error in the playbook, a missing
    /// role, bad options. `tail`: the last lines it printed.
    #[error("ansible-playbook exited with code {code}{}", colon(tail))]
    Exited { code: i32, tail: String },
    #[error("ansible-playbook was killed by a signal{}", colon(tail))]
    Signal { tail: String },
    #[error("the play matched no host: does the playbook's `hosts:` include this node (`all`)?")]
    NoHosts,
    #[error("cannot prepare the ansible run: {0}")]
    Prepare(String),
}

fn colon(s: &str) -> String {
    if s.is_empty() {
        String::new()
    } else {
        format!(": {s}")
    }
}
