//! An event as a Slack Block Kit message that reads on a phone: the summary in bold,
//! the facts as two-column fields, output in a code block, the next step last.

use serde_json::{Value, json};

use super::notice_text::NoticeText;
use crate::store::{Notice, NoticeKind};

/// Slack's limit on a section's text; longer output is cut from the front (the last
/// lines matter most).
const SECTION_MAX: usize = 2900;
/// Slack shows at most 10 fields per section.
const FIELDS_MAX: usize = 10;

fn icon(n: &Notice) -> &'static str {
    match n.kind {
        // Finished, but not everywhere: not a green tick.
        NoticeKind::RunFinished if n.payload.get("status").is_some_and(|s| s != "succeeded") => ":warning:",
        NoticeKind::RunStarted => ":arrow_forward:",
        NoticeKind::RunResumed => ":repeat:",
        NoticeKind::CanaryPassed => ":large_green_circle:",
        NoticeKind::RunStopped => ":red_circle:",
        NoticeKind::NodeHeld => ":raised_hand:",
        NoticeKind::Paused => ":double_vertical_bar:",
        NoticeKind::Resumed => ":arrow_forward:",
        NoticeKind::WaitingForWindow => ":hourglass:",
        NoticeKind::CommitRejected => ":no_entry:",
        NoticeKind::RunFinished => ":white_check_mark:",
    }
}

/// Slack's three control characters in text.
pub fn escape(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;")
}

fn tail(s: &str, max: usize) -> &str {
    let mut start = s.len().saturating_sub(max);
    while !s.is_char_boundary(start) {
        start += 1;
    }
    &s[start..]
}

/// The message body for `chat.postMessage` or an incoming webhook (without channel
/// and thread, which the sink adds).
pub fn slack_message(n: &Notice) -> Value {
    let t = NoticeText::of(n);
    let mut blocks = vec![json!({
        "type": "section",
        "text": { "type": "mrkdwn", "text": format!("{} *{}*", icon(n), escape(&t.summary)) }
    })];
    let fields: Vec<Value> = t
        .fields
        .iter()
        .take(FIELDS_MAX)
        .map(|(k, v)| json!({ "type": "mrkdwn", "text": format!("*{}*\n{}", escape(k), escape(v)) }))
        .collect();
    if !fields.is_empty() {
        blocks.push(json!({ "type": "section", "fields": fields }));
    }
    if let Some(q) = &t.quote {
        let q = tail(q, SECTION_MAX).replace("```", "'''");
        blocks.push(json!({
            "type": "section",
            "text": { "type": "mrkdwn", "text": format!("```{}```", escape(&q)) }
        }));
    }
    if let Some(h) = &t.hint {
        blocks.push(json!({
            "type": "context",
            "elements": [{ "type": "mrkdwn", "text": escape(h) }]
        }));
    }
    json!({ "text": escape(&t.summary), "blocks": blocks })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn notice(kind: NoticeKind, payload: Value) -> Notice {
        Notice {
            id: 1,
            key: "k".into(),
            kind,
            run: Some("mark-1".into()),
            payload,
            at: jiff::Timestamp::UNIX_EPOCH,
        }
    }

    #[test]
    fn a_stop_names_the_node_step_output_budget_and_how_to_resume() {
        let n = notice(
            NoticeKind::RunStopped,
            json!({
                "workflow": "mark", "version": 3, "status": "stopped", "duration_ms": 65000,
                "counts": {"failed": 1, "succeeded": 2},
                "outcome": {"outcome": "stopped", "stop": {"reason": "run_budget", "failed": 1, "budget": 0}},
                "nodes_failed": {"total": 1, "first": [{"node": "n02", "state": "failed", "reason": "exit 3",
                    "last_step": {"step": "upgrade", "status": "failed", "exit_code": 3, "output": "E: <broken> & gone"}}]},
                "resume": "drover runs resume mark-1",
            }),
        );
        let m = slack_message(&n);
        let text = m.to_string();
        assert_eq!(m["text"], "mark v3 stopped");
        for want in [
            "n02 (failed) at upgrade: exit 3",
            "the run's failure budget: 1 failed, 0 allowed",
            "E: &lt;broken&gt; &amp; gone",
            "To resume: `drover runs resume mark-1`",
            "1m 5s",
        ] {
            assert!(text.contains(want), "{want} in {text}");
        }
    }

    #[test]
    fn a_run_that_could_not_check_some_nodes_is_no_green_tick_and_names_them() {
        let n = notice(
            NoticeKind::RunFinished,
            json!({
                "workflow": "mark", "version": 3, "status": "completed_with_failures", "duration_ms": 2000,
                "counts": {"succeeded": 2},
                "outcome": {"outcome": "completed_with_failures", "failed": 3, "check_failed": ["n03", "n04", "n05"]},
                "nodes_failed": {"total": 0, "first": []},
            }),
        );
        let m = slack_message(&n);
        let text = m.to_string();
        assert_eq!(m["text"], "mark v3 completed with failures");
        assert!(
            text.contains(":warning: *mark v3 completed with failures*"),
            "{text}"
        );
        assert!(text.contains("Check failed, not touched*\\nn[03-05]"), "{text}");
        let mut ok = n.clone();
        ok.payload = json!({"workflow": "mark", "version": 3, "status": "succeeded", "outcome": {"outcome": "succeeded"}});
        let text = slack_message(&ok).to_string();
        assert!(
            text.contains(":white_check_mark: *mark v3 succeeded*") && !text.contains("Check failed"),
            "{text}"
        );
    }

    #[test]
    fn a_start_names_trigger_commit_and_node_counts() {
        let n = notice(
            NoticeKind::RunStarted,
            json!({"workflow": "mark", "version": 1, "commit": "0123456789abcdef", "author": "ann",
                   "subject": "bump", "nodes": 5, "canary": 1, "drain": 2, "hot": 3,
                   "trigger": {"kind": "slack", "user": "U1"}}),
        );
        let text = slack_message(&n).to_string();
        for want in [
            "mark v1 started",
            "slack (U1)",
            "0123456789 by ann: bump",
            "5 (1 canary, 2 drain, 3 hot)",
        ] {
            assert!(text.contains(want), "{want} in {text}");
        }
    }
}
