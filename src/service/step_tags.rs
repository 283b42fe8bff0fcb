//! Which steps a run runs: `--tags` by change (`hot`, `drain`) or by step name.

use super::refusal::{Refusal, RefusalKind};
use crate::workflow::{Change, Workflow};

/// Which steps `--tags` selects: by change (`hot`, `drain`) or by step name. Without
/// `--tags`, hot steps only: a drain step is never run by accident.
pub fn selected_steps(wf: &Workflow, tags: Option<&str>) -> Result<Vec<bool>, Refusal> {
    let Some(tags) = tags else {
        return Ok(wf.steps.iter().map(|s| s.change == Change::Hot).collect());
    };
    let tags = split_list(tags);
    for t in &tags {
        if t != "hot" && t != "drain" && !wf.steps.iter().any(|s| &s.name == t) {
            let names: Vec<&str> = wf.steps.iter().map(|s| s.name.as_str()).collect();
            return Err(Refusal::new(
                RefusalKind::Usage,
                format!(
                    "--tags: `{t}` is neither `hot`, `drain` nor a step of {}\nhelp: steps: {}",
                    wf.name,
                    names.join(", ")
                ),
            ));
        }
    }
    Ok(wf
        .steps
        .iter()
        .map(|s| {
            let kind = if s.change == Change::Hot { "hot" } else { "drain" };
            tags.iter().any(|t| t == kind || *t == s.name)
        })
        .collect())
}

/// Splits at commas outside brackets: `n[1-3,5],@login` is two entries.
pub fn split_list(s: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut depth = 0usize;
    let mut cur = String::new();
    for c in s.chars() {
        match c {
            '[' => depth += 1,
            ']' => depth = depth.saturating_sub(1),
            ',' if depth == 0 => {
                out.push(std::mem::take(&mut cur).trim().to_string());
                continue;
            }
            _ => {}
        }
        cur.push(c);
    }
    out.push(cur.trim().to_string());
    out.into_iter().filter(|e| !e.is_empty()).collect()
}
