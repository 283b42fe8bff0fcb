//! What one `ansible-playbook` run did to one node, judged from its task results.

use super::ansible_error::AnsibleError;
use super::task_event::{TaskEvent, TaskStatus};

/// A play that ran to a good end on the node.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PlayOutcome {
    /// Names of the tasks that changed something (in check mode: would change), in
    /// order, each once.
    pub changed: Vec<String>,
    /// Task results seen for the node.
    pub results: usize,
}

impl PlayOutcome {
    /// The node's results decide first: the first failed task (or unreachable host)
    /// names the failure. Only then does the exit code: a play that fails before any
    /// task (a syntax error, a missing role) has no task to name, and `tail` (the end
    /// of its output) says why.
    pub fn judge(
        node: &str,
        code: Option<i32>,
        events: &[TaskEvent],
        tail: &str,
    ) -> Result<PlayOutcome, AnsibleError> {
        let mine: Vec<&TaskEvent> = events.iter().filter(|e| e.host == node).collect();
        for e in &mine {
            let msg = e.msg.clone().unwrap_or_default();
            match e.status {
                TaskStatus::Failed => {
                    return Err(AnsibleError::TaskFailed {
                        task: e.task.clone(),
                        msg: one_line(&msg),
                    });
                }
                TaskStatus::Unreachable => {
                    return Err(AnsibleError::Unreachable {
                        task: e.task.clone(),
                        msg: one_line(&msg),
                    });
                }
                _ => {}
            }
        }
        match code {
            Some(0) => {}
            Some(code) => {
                return Err(AnsibleError::Exited {
                    code,
                    tail: tail.to_string(),
                });
            }
            None => {
                return Err(AnsibleError::Signal {
                    tail: tail.to_string(),
                });
            }
        }
        if mine.is_empty() && events.iter().any(|e| e.status == TaskStatus::NoHosts) {
            return Err(AnsibleError::NoHosts);
        }
        let mut changed: Vec<String> = Vec::new();
        for e in &mine {
            if e.status == TaskStatus::Changed && !changed.contains(&e.task) {
                changed.push(e.task.clone());
            }
        }
        Ok(PlayOutcome {
            changed,
            results: mine.len(),
        })
    }
}

/// Ansible messages run over many lines (a module's stderr); the error is one line.
fn one_line(s: &str) -> String {
    let joined: Vec<&str> = s.lines().map(str::trim).filter(|l| !l.is_empty()).collect();
    let j = joined.join(" | ");
    if j.chars().count() > 500 {
        format!("{}...", j.chars().take(500).collect::<String>())
    } else {
        j
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(host: &str, task: &str, status: TaskStatus) -> TaskEvent {
        TaskEvent {
            host: host.into(),
            task: task.into(),
            action: String::new(),
            status,
            msg: Some("line one\nline two".into()),
            diff: None,
        }
    }

    #[test]
    fn the_first_failed_task_names_the_failure() {
        let e = [
            ev("n1", "a", TaskStatus::Changed),
            ev("n1", "b", TaskStatus::Failed),
            ev("n1", "c", TaskStatus::Failed),
        ];
        assert_eq!(
            PlayOutcome::judge("n1", Some(2), &e, "").unwrap_err(),
            AnsibleError::TaskFailed {
                task: "b".into(),
                msg: "line one | line two".into()
            }
        );
    }

    #[test]
    fn changes_are_listed_once_and_other_hosts_do_not_count() {
        let e = [
            ev("n1", "a", TaskStatus::Changed),
            ev("n1", "a", TaskStatus::Changed),
            ev("n1", "b", TaskStatus::Ok),
            ev("n1", "c", TaskStatus::Ignored),
            ev("n2", "d", TaskStatus::Failed),
        ];
        let o = PlayOutcome::judge("n1", Some(0), &e, "").unwrap();
        assert_eq!(o.changed, vec!["a".to_string()]);
        assert_eq!(o.results, 4);
    }

    #[test]
    fn a_bad_exit_without_a_failed_task_keeps_the_output() {
        let err = PlayOutcome::judge("n1", Some(4), &[], "ERROR! the role 'x' was not found").unwrap_err();
        assert_eq!(
            err.to_string(),
            "ansible-playbook exited with code 4: ERROR! the role 'x' was not found"
        );
        let none = [ev("", "", TaskStatus::NoHosts)];
        assert_eq!(
            PlayOutcome::judge("n1", Some(0), &none, "").unwrap_err(),
            AnsibleError::NoHosts
        );
    }
}
