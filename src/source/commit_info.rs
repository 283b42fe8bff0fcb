//! The commit a site version comes from, as runs and reports name it.

use jiff::Timestamp;
use serde::Serialize;

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CommitInfo {
    /// The full hex id.
    pub sha: String,
    /// `Name <email>` of the author.
    pub author: String,
    /// The first line of the message.
    pub subject: String,
    /// The committer's time (signatures' `valid-after`/`valid-before` are checked at it).
    #[serde(serialize_with = "rfc3339")]
    pub time: Timestamp,
}

fn rfc3339<S: serde::Serializer>(at: &Timestamp, s: S) -> Result<S::Ok, S::Error> {
    s.collect_str(at)
}

impl CommitInfo {
    pub fn of(commit: &git2::Commit<'_>) -> CommitInfo {
        let a = commit.author();
        let author = match (a.name(), a.email()) {
            (Some(n), Some(e)) => format!("{n} <{e}>"),
            (Some(n), None) => n.to_string(),
            (None, Some(e)) => format!("<{e}>"),
            (None, None) => String::new(),
        };
        CommitInfo {
            sha: commit.id().to_string(),
            author,
            subject: commit.summary().unwrap_or_default().to_string(),
            time: Timestamp::from_second(commit.committer().when().seconds())
                .unwrap_or(Timestamp::UNIX_EPOCH),
        }
    }

    /// The first 12 hex digits, for messages.
    pub fn short(&self) -> &str {
        self.sha.get(..12).unwrap_or(&self.sha)
    }
}

impl std::fmt::Display for CommitInfo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({}, \"{}\")", self.short(), self.author, self.subject)
    }
}
