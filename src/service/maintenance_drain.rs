//! Draining nodes as they go into maintenance (`drover nodes maintenance on --drain`):
//! the site's own drain hook (its scheduler's), run where the site says, once per node,
//! with the maintenance's reason. Only the drain is asked for: a node's jobs may take
//! hours to end, and maintenance is a human's business from here (the scheduler shows
//! the node draining, then drained, with the reason).

use std::sync::Arc;
use std::time::Duration;

use serde_json::json;

use crate::engine::{node_context, site_context};
use crate::inventory::Node;
use crate::project::Project;
use crate::site::HookHost;
use crate::transport::{Connection, Connector, LocalConnection, SshConnector};

/// How long one drain hook may take (as in a run's drain cycle).
const DRAIN_HOOK_TIMEOUT: Duration = Duration::from_secs(120);

/// Runs the site's drain hook on every node of `names` (all in the inventory), at most
/// `ssh.forks` at once. Each node's result, in the order given: `Err` with why (a
/// template that does not render, the hook's exit code and last lines, a node out of
/// reach).
pub async fn drain_for_maintenance(
    project: &Arc<Project>,
    names: &[String],
    reason: &str,
    local: bool,
) -> Result<Vec<(String, Result<(), String>)>, String> {
    let Some(hooks) = project.site.drain.clone() else {
        return Err("the site has no drain hooks (`drain:` in drover.yml): nothing to drain with".into());
    };
    let ssh = if local || hooks.run_on == HookHost::Controller {
        None
    } else {
        Some(
            SshConnector::new(project.site.ssh_setup(false), &project.inventory)
                .map_err(|e| format!("cannot create the ssh control directory: {e}"))?,
        )
    };
    let site = site_context(&project.site);
    let limit = Arc::new(tokio::sync::Semaphore::new(
        (project.site.ssh.forks as usize).max(1),
    ));
    let mut tasks = tokio::task::JoinSet::new();
    for (i, name) in names.iter().enumerate() {
        let Some(id) = project.inventory.find(name) else {
            continue;
        };
        let node = project.inventory.node(id).clone();
        let cx = json!({
            "node": node_context(&node),
            "vars": {},
            "workflow": { "name": "maintenance", "version": 0 },
            "site": site,
            "run": "maintenance",
            "reason": reason,
        });
        let cmd = project.templates.render(&hooks.drain, &cx);
        let (ssh, limit, project) = (ssh.clone(), Arc::clone(&limit), Arc::clone(project));
        tasks.spawn(async move {
            let _permit = limit.acquire_owned().await;
            let result = match cmd {
                Err(e) => Err(format!("the drain hook does not render: {e}")),
                Ok(cmd) => run(&project, ssh.as_ref(), &node, &cmd).await,
            };
            (i, node.name.clone(), result)
        });
    }
    let mut out = Vec::new();
    while let Some(joined) = tasks.join_next().await {
        match joined {
            Ok(r) => out.push(r),
            Err(e) => return Err(format!("a drain task failed: {e}")),
        }
    }
    if let Some(s) = ssh {
        s.shutdown().await;
    }
    out.sort_by_key(|(i, _, _)| *i);
    Ok(out.into_iter().map(|(_, n, r)| (n, r)).collect())
}

async fn run(project: &Project, ssh: Option<&SshConnector>, node: &Node, cmd: &str) -> Result<(), String> {
    let out = match ssh {
        None => {
            LocalConnection::new(&node.name)
                .with_env(&project.site.env)
                .exec(cmd, None, DRAIN_HOOK_TIMEOUT)
                .await
        }
        Some(ssh) => match ssh.connect(node).await {
            Ok(c) => c.exec(cmd, None, DRAIN_HOOK_TIMEOUT).await,
            Err(e) => return Err(format!("cannot reach the node: {e}")),
        },
    };
    match out {
        Ok(o) if o.success() => Ok(()),
        Ok(o) if o.timed_out => Err(format!(
            "the drain hook timed out after {}",
            humantime::format_duration(DRAIN_HOOK_TIMEOUT)
        )),
        Ok(o) => Err(format!(
            "the drain hook failed (exit {}): {}",
            o.code
                .map_or_else(|| "by a signal".to_string(), |c| c.to_string()),
            o.last_lines(3)
        )),
        Err(e) => Err(format!("the drain hook could not run: {e}")),
    }
}
