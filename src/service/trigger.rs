//! Who or what started a run: recorded on the run, so an operator reading the history
//! of a node can tell a hand-started run from one a commit or a converge pass started.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Trigger {
    /// `drover run` at a terminal or in a script; `user` is the login name.
    Cli { user: String },
    /// A commit the daemon's git watcher found.
    GitCommit {
        sha: String,
        author: String,
        subject: String,
    },
    /// A request to the daemon's API, by the name of the token that made it.
    Api { token_name: String },
    /// A Slack slash command, by the Slack user.
    Slack { user: String },
    /// A webhook, by its configured name.
    Webhook { name: String },
    /// The daemon's converge pass found nodes that drifted from the version in force.
    Converge,
}

impl Trigger {
    /// The CLI's trigger: the user from `$USER` (`$LOGNAME`), as a shell knows it.
    pub fn cli() -> Trigger {
        let user = std::env::var("USER")
            .or_else(|_| std::env::var("LOGNAME"))
            .unwrap_or_else(|_| "unknown".to_string());
        Trigger::Cli { user }
    }

    /// The commit a run is of, when a commit triggered it.
    pub fn commit(&self) -> Option<&str> {
        match self {
            Trigger::GitCommit { sha, .. } => Some(sha),
            _ => None,
        }
    }
}

impl std::fmt::Display for Trigger {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Trigger::Cli { user } => write!(f, "cli ({user})"),
            Trigger::GitCommit { sha, author, subject } => {
                write!(
                    f,
                    "commit {} by {author}: {subject}",
                    sha.get(..12).unwrap_or(sha)
                )
            }
            Trigger::Api { token_name } => write!(f, "api (token {token_name})"),
            Trigger::Slack { user } => write!(f, "slack ({user})"),
            Trigger::Webhook { name } => write!(f, "webhook {name}"),
            Trigger::Converge => f.write_str("converge"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_trigger_round_trips_through_json_with_its_kind() {
        let t = Trigger::GitCommit {
            sha: "0123456789abcdef".into(),
            author: "Ada <ada@example.org>".into(),
            subject: "kernel 6.1".into(),
        };
        let v = serde_json::to_value(&t).unwrap();
        assert_eq!(v["kind"], "git_commit");
        assert_eq!(serde_json::from_value::<Trigger>(v).unwrap(), t);
        assert_eq!(t.commit(), Some("0123456789abcdef"));
        assert_eq!(
            serde_json::to_value(Trigger::Converge).unwrap(),
            serde_json::json!({"kind": "converge"})
        );
    }
}
