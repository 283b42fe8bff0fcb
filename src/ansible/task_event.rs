//! One task result, as drover's callback plugin writes it.

use serde::Deserialize;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TaskStatus {
    Ok,
    Changed,
    Failed,
    /// Failed, with `ignore_errors`.
    Ignored,
    Unreachable,
    Skipped,
    /// The play's `hosts:` matched no host (the callback's own event).
    NoHosts,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct TaskEvent {
    pub host: String,
    pub task: String,
    #[serde(default)]
    pub action: String,
    pub status: TaskStatus,
    /// Why a task failed or its host was unreachable (not for `no_log` tasks).
    #[serde(default)]
    pub msg: Option<String>,
    /// `--diff` of a changed task (not for `no_log` tasks).
    #[serde(default)]
    pub diff: Option<String>,
}

impl TaskEvent {
    /// Parses the callback's JSON lines; a line cut short (ansible killed mid-write) is
    /// skipped.
    pub fn parse_lines(text: &str) -> Vec<TaskEvent> {
        text.lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_parse_and_a_cut_line_is_skipped() {
        let text = "{\"host\":\"n1\",\"task\":\"a\",\"action\":\"copy\",\"status\":\"changed\",\"diff\":\"+x\"}\n\
                    {\"host\":\"n1\",\"task\":\"b\",\"status\":\"failed\",\"msg\":\"boom\"}\n{\"host\":";
        let ev = TaskEvent::parse_lines(text);
        assert_eq!(ev.len(), 2);
        assert_eq!(ev[0].status, TaskStatus::Changed);
        assert_eq!(ev[0].diff.as_deref(), Some("+x"));
        assert_eq!(ev[1].msg.as_deref(), Some("boom"));
    }
}
