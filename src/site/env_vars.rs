//! `env:`: environment variables for commands drover runs on the controller (drain
//! hooks with `run_on: controller`, `local:` steps), at site and workflow level.

use indexmap::IndexMap;

use crate::diag::Problem;
use crate::yaml::Path;

/// Checks variable names (`[A-Za-z_][A-Za-z0-9_]*`) and values (one line, no NUL).
pub fn check_env(
    env: &IndexMap<String, String>,
    path: &Path,
) -> Result<IndexMap<String, String>, Vec<Problem>> {
    let mut p = Vec::new();
    for (k, v) in env {
        let ok_name = k
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
            && k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
        if !ok_name {
            p.push(Problem::key(
                path.key(k.clone()),
                format!("invalid environment variable name `{k}`: use letters, digits and `_`, not starting with a digit"),
            ));
        } else if v.contains('\0') {
            p.push(Problem::value(
                path.key(k.clone()),
                "an environment value cannot hold a NUL byte",
            ));
        }
    }
    if p.is_empty() { Ok(env.clone()) } else { Err(p) }
}

/// `site`'s variables with `workflow`'s over them.
pub fn merge_env(
    site: &IndexMap<String, String>,
    workflow: &IndexMap<String, String>,
) -> IndexMap<String, String> {
    let mut env = site.clone();
    env.extend(workflow.iter().map(|(k, v)| (k.clone(), v.clone())));
    env
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn workflow_values_win_and_bad_names_are_refused() {
        let site: IndexMap<String, String> = [("SLURM_CONF", "/etc/slurm.conf"), ("A", "1")]
            .map(|(k, v)| (k.into(), v.into()))
            .into();
        let wf: IndexMap<String, String> = [("A", "2")].map(|(k, v)| (k.into(), v.into())).into();
        let m = merge_env(&site, &wf);
        assert_eq!(m["A"], "2");
        assert_eq!(m["SLURM_CONF"], "/etc/slurm.conf");
        let bad: IndexMap<String, String> = [("1X", "v")].map(|(k, v)| (k.into(), v.into())).into();
        assert!(check_env(&bad, &Path::root().key("env")).is_err());
    }
}
