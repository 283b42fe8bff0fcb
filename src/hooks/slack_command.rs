//! What a slash command's text asks for: `/drover run mark --limit n[01-04] --dry-run`.

/// The ephemeral answer to `help`, an unknown command or bad arguments.
pub const HELP: &str = "Commands:\n\
`status` — runs in progress and pauses\n\
`run WORKFLOW [--limit HOSTS] [--dry-run]` — roll a workflow out now (or only plan it)\n\
`pause [reason]` — no new node starts in any run\n\
`resume` — lift the pause\n\
`abort RUN` — stop a run: no new node starts, nodes in flight finish\n\
`nodes NODES` — whether nodes are in maintenance\n\
`maintenance on|off NODES [reason]` — automation off or back on for nodes\n\
`help` — this";

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SlackCommand {
    Status,
    Run {
        workflow: String,
        limit: Option<String>,
        dry_run: bool,
    },
    Pause {
        reason: Option<String>,
    },
    Resume,
    Abort {
        run: String,
    },
    Nodes {
        nodes: String,
    },
    Maintenance {
        on: bool,
        nodes: String,
        reason: Option<String>,
    },
    Help,
}

impl SlackCommand {
    /// Parses the text after the slash command; the error says what was wrong, for the
    /// line before the help.
    pub fn parse(text: &str) -> Result<SlackCommand, String> {
        let words: Vec<&str> = text.split_whitespace().collect();
        let rest = |from: usize| {
            let r = words.get(from..).map(|w| w.join(" ")).unwrap_or_default();
            (!r.is_empty()).then_some(r)
        };
        match words.as_slice() {
            [] | ["help"] => Ok(SlackCommand::Help),
            ["status"] => Ok(SlackCommand::Status),
            ["run", workflow, opts @ ..] => {
                let (mut limit, mut dry_run) = (None, false);
                let mut it = opts.iter();
                while let Some(o) = it.next() {
                    match *o {
                        "--dry-run" => dry_run = true,
                        "--limit" => match it.next() {
                            Some(l) => limit = Some((*l).to_string()),
                            None => return Err("`--limit` needs hosts, like `--limit n[01-04]`".into()),
                        },
                        other => return Err(format!("`run` does not take `{other}`")),
                    }
                }
                Ok(SlackCommand::Run {
                    workflow: (*workflow).to_string(),
                    limit,
                    dry_run,
                })
            }
            ["run"] => Err("`run` needs a workflow".into()),
            ["pause", ..] => Ok(SlackCommand::Pause { reason: rest(1) }),
            ["resume"] => Ok(SlackCommand::Resume),
            ["abort", run] => Ok(SlackCommand::Abort {
                run: (*run).to_string(),
            }),
            ["abort", ..] => Err("`abort` takes one run id".into()),
            ["nodes", nodes] => Ok(SlackCommand::Nodes {
                nodes: (*nodes).to_string(),
            }),
            ["maintenance", on @ ("on" | "off"), nodes, ..] => Ok(SlackCommand::Maintenance {
                on: *on == "on",
                nodes: (*nodes).to_string(),
                reason: rest(3),
            }),
            ["maintenance", ..] => Err("`maintenance` takes `on` or `off`, then nodes".into()),
            [other, ..] => Err(format!("unknown command `{other}`")),
        }
    }

    /// Whether the command changes anything (and so needs `slack.allowed`).
    pub fn mutates(&self) -> bool {
        matches!(
            self,
            SlackCommand::Run { .. }
                | SlackCommand::Pause { .. }
                | SlackCommand::Resume
                | SlackCommand::Abort { .. }
                | SlackCommand::Maintenance { .. }
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_each_command_and_says_what_is_wrong() {
        assert_eq!(
            SlackCommand::parse("run mark --limit n[01-02] --dry-run"),
            Ok(SlackCommand::Run {
                workflow: "mark".into(),
                limit: Some("n[01-02]".into()),
                dry_run: true
            })
        );
        assert_eq!(
            SlackCommand::parse("maintenance on n03 disk swap"),
            Ok(SlackCommand::Maintenance {
                on: true,
                nodes: "n03".into(),
                reason: Some("disk swap".into())
            })
        );
        assert_eq!(
            SlackCommand::parse("pause"),
            Ok(SlackCommand::Pause { reason: None })
        );
        assert_eq!(SlackCommand::parse(""), Ok(SlackCommand::Help));
        assert_eq!(
            SlackCommand::parse("frobnicate"),
            Err("unknown command `frobnicate`".into())
        );
        assert_eq!(
            SlackCommand::parse("run mark --limit"),
            Err("`--limit` needs hosts, like `--limit n[01-04]`".into())
        );
        assert!(SlackCommand::parse("maintenance maybe n1").is_err());
        assert!(SlackCommand::parse("abort").is_err());
    }
}
