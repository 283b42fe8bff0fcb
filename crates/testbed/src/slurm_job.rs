//! A finished job, as `jobcomp/filetxt` records it.

/// One line of the job completion file: enough to tell whether a rollout hurt a job.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SlurmJob {
    pub id: u32,
    /// `COMPLETED`, `FAILED`, `NODE_FAIL`, `CANCELLED`, `REQUEUED`, ...
    pub state: String,
    /// `ExitCode=` as Slurm writes it: `exit:signal`.
    pub exit_code: String,
    pub nodes: String,
    pub start: String,
    pub end: String,
}

impl SlurmJob {
    /// Parses `JobId=1 ... JobState=COMPLETED ... NodeList=node002 ... ExitCode=0:0`.
    pub fn parse(line: &str) -> Option<SlurmJob> {
        let field = |key: &str| {
            line.split_whitespace()
                .find_map(|kv| kv.strip_prefix(key)?.strip_prefix('='))
                .map(str::to_string)
        };
        Some(SlurmJob {
            id: field("JobId")?.parse().ok()?,
            state: field("JobState")?,
            exit_code: field("ExitCode").unwrap_or_default(),
            nodes: field("NodeList").unwrap_or_default(),
            start: field("StartTime").unwrap_or_default(),
            end: field("EndTime").unwrap_or_default(),
        })
    }

    /// Ran to its end and exited 0.
    pub fn succeeded(&self) -> bool {
        self.state == "COMPLETED" && self.exit_code == "0:0"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_jobcomp_line() {
        let j = SlurmJob::parse(
            "JobId=2 UserId=root(0) GroupId=root(0) Name=wrap JobState=COMPLETED Partition=batch \
             TimeLimit=UNLIMITED StartTime=2026-12-01T20:40:22 EndTime=2026-12-01T20:40:24 \
             NodeList=node002 NodeCnt=1 ProcCnt=1 WorkDir=/tmp/sp DerivedExitCode=0:0 ExitCode=0:0 ",
        )
        .expect("parses");
        assert_eq!(
            (j.id, j.state.as_str(), j.nodes.as_str()),
            (2, "COMPLETED", "node002")
        );
        assert!(j.succeeded());
        let failed =
            SlurmJob::parse("JobId=3 JobState=FAILED NodeList=node001 ExitCode=0:9").expect("parses");
        assert!(!failed.succeeded());
        assert!(SlurmJob::parse("garbage").is_none());
    }
}
