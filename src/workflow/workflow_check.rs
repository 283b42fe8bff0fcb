//! From [`RawWorkflow`] to [`Workflow`]: every problem found, each at its path.

use std::collections::HashMap;
use std::path::{Path as FsPath, PathBuf};
use std::time::Duration;

use super::raw_workflow::{Change, NodeOrder, RawAnsible, RawCopy, RawStep, RawWorkflow, RebootVia};
use super::raw_workflow_drain::RawWorkflowDrain;
use super::workflow::{
    Action, AnsiblePlay, AnsibleSource, Canary, CanarySelect, DEFAULT_BOOT_ID_COMMAND,
    DEFAULT_REBOOT_COMMAND, FileCopy, Reboot, RetryPolicy, Step, Strategy, WaitFor, Workflow,
};
use crate::diag::{Problem, did_you_mean};
use crate::hostlist;
use crate::inventory::{Inventory, NodeId, check_node_name};
use crate::site::DrainHooks;
use crate::template::TemplateEngine;
use crate::units::{Amount, limits};
use crate::yaml::{Node, Path, Value};

/// Names a command template may use.
pub const COMMAND_SCOPE: [&str; 4] = ["node", "vars", "workflow", "site"];

pub const DEFAULT_STEP_TIMEOUT: Duration = Duration::from_secs(600);
pub const DEFAULT_REBOOT_TIMEOUT: Duration = Duration::from_secs(900);

const ACTIONS: [&str; 7] = [
    "run", "copy", "template", "reboot", "wait_for", "local", "ansible",
];

/// What a workflow is checked against.
pub struct WorkflowContext<'a> {
    /// None when the inventory is invalid: then targets and canary nodes are checked
    /// for syntax only, and everything that does not need the inventory (window,
    /// strategy, steps, templates) is checked as usual.
    pub inventory: Option<&'a Inventory>,
    /// Window names defined by the site config.
    pub windows: Vec<&'a str>,
    pub templates: &'a TemplateEngine,
    /// The directory `copy`/`template` sources are relative to.
    pub dir: &'a FsPath,
    /// The loaded tree, to tell `reboot:` (null) from a missing key.
    pub tree: &'a Node,
    /// Whether the site config has drain hooks.
    pub site_drain: bool,
    /// The site's drain is `scheduler: slurm`.
    pub site_slurm: bool,
    /// Directories (canonical) that `copy`/`template` sources must resolve inside: the
    /// site directory and the site's `files.extra_roots`.
    pub file_roots: &'a [PathBuf],
    /// The site's vault password, for `vars_files` and inline `!vault |` values.
    pub keyring: &'a crate::vault::Keyring,
}

impl Workflow {
    pub fn from_raw(
        raw: &RawWorkflow,
        file: &str,
        cx: &WorkflowContext<'_>,
    ) -> Result<Workflow, Vec<Problem>> {
        let mut p = Vec::new();
        let root = Path::root();

        if let Err(m) = check_node_name(&raw.name) {
            p.push(Problem::value(
                root.key("name"),
                m.replace("node name", "workflow name"),
            ));
        }
        let version = match u32::try_from(raw.version) {
            Ok(v) if v > 0 => v,
            _ if raw.version > 0 => {
                p.push(Problem::value(
                    root.key("version"),
                    format!(
                        "workflow version `{}` is too large: versions go up to {}",
                        raw.version,
                        u32::MAX
                    ),
                ));
                0
            }
            _ => {
                p.push(
                    Problem::value(
                        root.key("version"),
                        format!(
                            "workflow version must be a positive integer, found `{}`",
                            raw.version
                        ),
                    )
                    .with_help("start at 1 and raise it with every change to the steps"),
                );
                0
            }
        };

        // Targets and exclusions resolve against the inventory now, so a typo in a group
        // name fails validation instead of silently targeting nothing.
        let targets_path = root.key("targets");
        if raw.targets.nodes.is_empty() {
            p.push(Problem::value(
                targets_path.key("nodes"),
                "`targets.nodes` is empty: the workflow would do nothing",
            ));
        }
        let targets = select(cx, &raw.targets.nodes, &targets_path.key("nodes"), &mut p);
        select(cx, &raw.targets.exclude, &targets_path.key("exclude"), &mut p);

        let canary = canary(raw, cx, &targets, &mut p);
        let strategy = strategy(raw, &mut p);
        group_budgets(raw, cx, &mut p);

        if let Some(w) = &raw.window
            && !cx.windows.contains(&w.as_str())
        {
            let pr = Problem::value(root.key("window"), format!("unknown window `{w}`"));
            p.push(match did_you_mean(w, cx.windows.iter().copied()) {
                Some(m) => pr.with_help(format!("did you mean `{m}`?")),
                None if cx.windows.is_empty() => {
                    pr.with_help("the site config (drover.yml) defines no `windows:`")
                }
                None => pr.with_help(format!(
                    "windows defined in drover.yml: {}",
                    cx.windows.join(", ")
                )),
            });
        }
        if strategy.all_at_once && raw.canary.is_some() {
            p.push(
                Problem::key(
                    root.key("canary"),
                    "`canary` cannot be used with `strategy.all_at_once: true`",
                )
                .with_help("all_at_once runs every target in one batch; remove one of them"),
            );
        }

        let (drain, no_drain) = match &raw.drain {
            Some(RawWorkflowDrain::Hooks(d)) => (
                DrainHooks::from_raw(d, cx.templates)
                    .map_err(|e| p.extend(e.into_iter().map(|x| x.under(&root.key("drain")))))
                    .ok(),
                None,
            ),
            Some(RawWorkflowDrain::None(reason)) => (None, Some(reason.clone())),
            None => (None, None),
        };
        // Partition budgets and job-aware ordering read Slurm: they need its scheduler.
        let slurm = match &drain {
            Some(d) => d.is_slurm(),
            None => cx.site_slurm && no_drain.is_none(),
        };
        if !slurm {
            let sp = root.key("strategy");
            if raw.strategy.max_unavailable_per_partition.is_some() {
                p.push(
                    Problem::key(
                        sp.key("max_unavailable_per_partition"),
                        "`max_unavailable_per_partition` needs `drain: { scheduler: slurm }` (partitions are Slurm's)",
                    )
                    .with_help("set `scheduler: slurm` in the site's (or this workflow's) `drain:`, or use `max_unavailable_per_group`"),
                );
            }
            if raw.strategy.order == NodeOrder::SoonestIdle {
                p.push(
                    Problem::value(
                        sp.key("order"),
                        "`order: soonest_idle` needs `drain: { scheduler: slurm }`: it reads running jobs from squeue",
                    )
                    .with_help("set `scheduler: slurm` in the site's (or this workflow's) `drain:`, or use `order: inventory`"),
                );
            }
        }
        // `scontrol reboot` is Slurm's: the node must be one slurmctld drains and resumes.
        if !slurm {
            for (i, s) in raw.steps.iter().enumerate() {
                if s.reboot.as_ref().is_some_and(|r| r.via == RebootVia::Slurm) {
                    p.push(
                        Problem::value(
                            root.key("steps").index(i).key("reboot").key("via"),
                            format!(
                                "step `{}` reboots with `via: slurm`, which needs `drain: {{ scheduler: slurm }}`",
                                s.name
                            ),
                        )
                        .with_help("set `scheduler: slurm` in the site's (or this workflow's) `drain:`, or use `via: ssh` with a `command`"),
                    );
                }
            }
        }
        if let Some(a) = raw.strategy.max_unavailable_per_partition
            && a.is_zero()
        {
            p.push(
                Problem::value(
                    root.key("strategy").key("max_unavailable_per_partition"),
                    "`max_unavailable_per_partition: 0` would never let a node be changed",
                )
                .with_help("use 1 or more (or a percentage)"),
            );
        }
        // A drain step with nothing to drain the node would run on a node doing its work.
        if raw.drain.is_none() && !cx.site_drain {
            for (i, s) in raw.steps.iter().enumerate() {
                if s.change == Some(Change::Drain) {
                    p.push(
                        Problem::value(
                            root.key("steps").index(i).key("change"),
                            format!(
                                "step `{}` is `change: drain`, but no drain hooks are configured",
                                s.name
                            ),
                        )
                        .with_help(
                            "add `drain:` hooks to drover.yml or to this workflow, or declare that \
                             its nodes need no drain: `drain: { none: \"the reason\" }`",
                        ),
                    );
                }
            }
        }

        if raw.steps.is_empty() {
            p.push(Problem::value(
                root.key("steps"),
                "`steps` is empty: the workflow would do nothing",
            ));
        }
        let mut names: HashMap<&str, usize> = HashMap::new();
        let mut steps = Vec::new();
        for (i, s) in raw.steps.iter().enumerate() {
            let sp = root.key("steps").index(i);
            if let Some(first) = names.insert(s.name.as_str(), i) {
                p.push(
                    Problem::value(sp.key("name"), format!("step name `{}` is used twice", s.name))
                        .with_help(format!("steps[{first}] has the same name; step names identify steps in logs and run state")),
                );
            }
            if let Some(step) = step(s, &sp, cx, &mut p) {
                steps.push(step);
            }
        }

        let (vars, mut revealed) = reveal(raw, cx, &mut p);
        if cx.keyring.configured() && steps.iter().any(|s| matches!(s.action, Action::Ansible(_))) {
            match cx.keyring.password() {
                Ok(pw) => revealed.vault_password = Some(pw.to_vec()),
                Err(e) => p.push(
                    Problem::value(root.clone(), format!("the vault password for `ansible:` steps: {e}"))
                        .with_help("drover passes drover.yml's `vault:` password to ansible-playbook (`--vault-password-file`)"),
                ),
            }
        }

        let env = crate::site::check_env(&raw.env, &root.key("env"))
            .map_err(|e| p.extend(e))
            .unwrap_or_default();

        let converge = raw.converge.as_ref().map(|c| c.every.get());
        if let Some(every) = converge {
            let at = root.key("converge").key("every");
            limits::CONVERGE_EVERY.check_duration(at.clone(), every, &mut p);
            if every < Duration::from_secs(1) {
                p.push(Problem::value(
                    at,
                    format!(
                        "`converge.every` is {}: expected at least 1s",
                        humantime::format_duration(every)
                    ),
                ));
            }
        }

        if !p.is_empty() {
            return Err(p);
        }
        Ok(Workflow {
            name: raw.name.clone(),
            version,
            description: raw.description.clone(),
            tags: raw.tags.clone(),
            file: file.to_string(),
            targets: raw.targets.nodes.clone(),
            exclude: raw.targets.exclude.clone(),
            canary,
            strategy,
            window: raw.window.clone(),
            drain,
            no_drain,
            vars,
            revealed: std::sync::Arc::new(revealed),
            env,
            converge,
            unreachable: raw.unreachable,
            steps,
            on_failure: Vec::new(),
        })
    }
}

fn canary(raw: &RawWorkflow, cx: &WorkflowContext<'_>, targets: &[NodeId], p: &mut Vec<Problem>) -> Canary {
    let path = Path::root().key("canary");
    let Some(c) = &raw.canary else {
        return Canary {
            select: CanarySelect::Inventory,
            soak: Duration::ZERO,
        };
    };
    let soak = c.soak.map_or(Duration::ZERO, |d| d.get());
    limits::CANARY_SOAK.check_duration(path.key("soak"), soak, p);
    let select = match (&c.nodes, c.size) {
        (Some(_), Some(_)) => {
            p.push(Problem::key(
                path.key("size"),
                "`canary` takes `nodes` or `size`, not both",
            ));
            CanarySelect::Inventory
        }
        (Some(nodes), None) => {
            let before = p.len();
            let ids = select(cx, nodes, &path.key("nodes"), p);
            if p.len() == before
                && !ids.is_empty()
                && !targets.is_empty()
                && !ids.iter().any(|id| targets.contains(id))
            {
                p.push(
                    Problem::value(
                        path.key("nodes"),
                        "none of the canary nodes is a target of this workflow",
                    )
                    .with_help("canary nodes must be among `targets`; the canary phase would be empty"),
                );
            }
            CanarySelect::Nodes(nodes.clone())
        }
        (None, Some(size)) => CanarySelect::Size(size),
        (None, None) => CanarySelect::Inventory,
    };
    Canary { select, soak }
}

/// `max_unavailable_per_group` names inventory groups (or `*`) and allows at least one.
fn group_budgets(raw: &RawWorkflow, cx: &WorkflowContext<'_>, p: &mut Vec<Problem>) {
    let path = Path::root().key("strategy").key("max_unavailable_per_group");
    for (name, amount) in &raw.strategy.max_unavailable_per_group {
        let at = path.key(name.clone());
        if amount.is_zero() {
            p.push(
                Problem::value(
                    at.clone(),
                    format!("`{name}: 0` would never let a node of it be changed"),
                )
                .with_help("use 1 or more; put nodes that must never be touched on the blacklist"),
            );
        }
        if let Some(inv) = cx.inventory
            && name != "*"
            && !inv.groups().contains_key(name)
        {
            let pr = Problem::value(at, format!("unknown group `{name}`"));
            p.push(
                match did_you_mean(name, inv.groups().keys().map(String::as_str)) {
                    Some(m) => pr.with_help(format!("did you mean `{m}`?")),
                    None => {
                        pr.with_help("use a group from the inventory's `groups:`, or `*` for every group")
                    }
                },
            );
        }
    }
}

/// Resolves node selectors against the inventory, reporting every bad entry. Without an
/// inventory, only the syntax of host lists is checked and nothing is selected.
fn select(cx: &WorkflowContext<'_>, entries: &[String], path: &Path, p: &mut Vec<Problem>) -> Vec<NodeId> {
    match cx.inventory {
        Some(inv) => inv.select(entries, path).unwrap_or_else(|e| {
            p.extend(e);
            Vec::new()
        }),
        None => {
            for (i, e) in entries.iter().enumerate() {
                if !e.starts_with('@')
                    && let Err(err) = hostlist::expand(e)
                {
                    p.push(Problem::value(path.index(i), err.to_string()));
                }
            }
            Vec::new()
        }
    }
}

fn strategy(raw: &RawWorkflow, p: &mut Vec<Problem>) -> Strategy {
    let s = &raw.strategy;
    let path = Path::root().key("strategy");
    let batch = s
        .batch
        .clone()
        .map_or_else(|| vec![Amount::Percent(10.0)], |b| b.0);
    if s.batch.is_some() && batch.is_empty() {
        p.push(
            Problem::value(path.key("batch"), "`batch` is an empty list")
                .with_help("give at least one size, like `[1, \"10%\"]`"),
        );
    }
    for (i, b) in batch.iter().enumerate() {
        if b.is_zero() {
            let at = match &s.batch {
                Some(bs) if bs.0.len() > 1 => path.key("batch").index(i),
                _ => path.key("batch"),
            };
            p.push(
                Problem::value(at, format!("batch size `{b}` would never start a node"))
                    .with_help("batch sizes must be at least 1 node"),
            );
        }
    }
    let max_unavailable = s.max_unavailable.unwrap_or(Amount::Percent(10.0));
    if max_unavailable.is_zero() {
        p.push(
            Problem::value(
                path.key("max_unavailable"),
                "`max_unavailable: 0` would never let a node be changed",
            )
            .with_help("use 1 or more, or a percentage like \"10%\""),
        );
    }
    let r = &s.retries;
    let backoff = r.backoff.unwrap_or(2.0);
    if !(1.0..=10.0).contains(&backoff) {
        p.push(Problem::value(
            path.key("retries").key("backoff"),
            format!("invalid backoff `{backoff}`: expected a factor between 1.0 and 10.0"),
        ));
    }
    let rp = path.key("retries");
    if let Some(n) = r.count {
        limits::RETRY_COUNT.check_count(rp.key("count"), n.into(), p);
    }
    if let Some(d) = r.delay {
        limits::RETRY_DELAY.check_duration(rp.key("delay"), d.get(), p);
    }
    if let Some(d) = r.max_delay {
        limits::RETRY_MAX_DELAY.check_duration(rp.key("max_delay"), d.get(), p);
    }
    let retries = RetryPolicy {
        count: r.count.unwrap_or(0),
        delay: r.delay.map_or(Duration::from_secs(10), |d| d.get()),
        backoff,
        max_delay: r.max_delay.map_or(Duration::from_secs(300), |d| d.get()),
    };
    Strategy {
        batch,
        max_unavailable,
        max_unavailable_per_group: s.max_unavailable_per_group.clone(),
        max_unavailable_per_partition: s.max_unavailable_per_partition,
        order: s.order,
        failure_per_batch: s.failure_budget.per_batch,
        failure_per_run: s.failure_budget.per_run.unwrap_or(Amount::Count(0)),
        retries,
        all_at_once: s.all_at_once,
    }
}

/// Steps written outside a workflow file (an alarm trigger's `quiesce:` lists in
/// drover.yml), checked as a workflow's: each at `at[i]` of `cx.tree`. Names must be
/// unique among `taken` (the steps they run with) and each other.
pub fn check_steps(
    raw: &[RawStep],
    at: &Path,
    cx: &WorkflowContext<'_>,
    taken: &mut HashMap<String, String>,
    p: &mut Vec<Problem>,
) -> Vec<Step> {
    let mut out = Vec::new();
    for (i, s) in raw.iter().enumerate() {
        let sp = at.index(i);
        if let Some(first) = taken.insert(s.name.clone(), format!("{at}[{i}]")) {
            p.push(
                Problem::value(sp.key("name"), format!("step name `{}` is used twice", s.name)).with_help(
                    format!("{first} has the same name; step names identify steps in logs and run state"),
                ),
            );
        }
        if let Some(step) = step(s, &sp, cx, p) {
            out.push(step);
        }
    }
    out
}

fn step(s: &RawStep, sp: &Path, cx: &WorkflowContext<'_>, p: &mut Vec<Problem>) -> Option<Step> {
    let before = p.len();
    // Which action keys are present, as written (so `reboot:` with no value counts).
    let present: Vec<&str> = match cx.tree.get(sp).map(|n| &n.value) {
        Some(Value::Map(entries)) => entries
            .iter()
            .map(|e| e.key.as_str())
            .filter(|k| ACTIONS.contains(k))
            .collect(),
        _ => Vec::new(),
    };
    match present.len() {
        0 => p.push(
            Problem::value(sp.clone(), format!("step `{}` has no action", s.name)).with_help(
                "give exactly one of `run`, `copy`, `template`, `reboot`, `wait_for`, `local`, `ansible`",
            ),
        ),
        1 => {}
        _ => p.push(
            Problem::key(
                sp.key(present[1]),
                format!(
                    "step `{}` has more than one action: `{}`",
                    s.name,
                    present.join("`, `")
                ),
            )
            .with_help("a step does exactly one thing; split it into several steps"),
        ),
    }
    let change = match s.change {
        Some(c) => c,
        None => {
            p.push(
                Problem::value(sp.clone(), format!("step `{}` has no `change`", s.name))
                    .with_help("say whether it is safe on a live node: `change: hot`, or needs a drained node: `change: drain`"),
            );
            Change::Hot
        }
    };
    let tpl = |path: Path, src: &str, p: &mut Vec<Problem>| {
        if let Err(e) = cx.templates.check_command(src, &COMMAND_SCOPE) {
            p.push(e.problem(path));
        }
    };
    if let Some(c) = &s.check {
        tpl(sp.key("check"), c, p);
    }
    if let Some(w) = &s.when
        && let Err(e) = cx.templates.check_expression_names(w, &COMMAND_SCOPE)
    {
        p.push(e.problem(sp.key("when")));
    }
    let timeout = s.timeout.map_or(DEFAULT_STEP_TIMEOUT, |d| d.get());
    if timeout.is_zero() {
        p.push(Problem::value(
            sp.key("timeout"),
            "a timeout of zero would fail every node",
        ));
    }
    limits::STEP_TIMEOUT.check_duration(sp.key("timeout"), timeout, p);
    if let Some(n) = s.retries {
        limits::STEP_RETRIES.check_count(sp.key("retries"), n.into(), p);
    }

    let action = if let Some(cmd) = &s.run {
        tpl(sp.key("run"), cmd, p);
        Some(Action::Run(cmd.clone()))
    } else if let Some(cmd) = &s.local {
        tpl(sp.key("local"), cmd, p);
        Some(Action::Local(cmd.clone()))
    } else if let Some(a) = &s.ansible {
        ansible_play(s, a, &sp.key("ansible"), cx, p).map(Action::Ansible)
    } else if let Some(c) = &s.copy {
        Some(Action::Copy(file_copy(c, &sp.key("copy"), cx, false, p)))
    } else if let Some(c) = &s.template {
        Some(Action::Template(file_copy(c, &sp.key("template"), cx, true, p)))
    } else if let Some(w) = &s.wait_for {
        tpl(sp.key("wait_for").key("command"), &w.command, p);
        if let Some(d) = w.interval {
            limits::WAIT_FOR_INTERVAL.check_duration(sp.key("wait_for").key("interval"), d.get(), p);
        }
        if let Some(d) = w.timeout {
            limits::WAIT_FOR_TIMEOUT.check_duration(sp.key("wait_for").key("timeout"), d.get(), p);
        }
        Some(Action::WaitFor(WaitFor {
            command: w.command.clone(),
            interval: w.interval.map_or(Duration::from_secs(5), |d| d.get()),
            timeout: w.timeout.map_or(DEFAULT_STEP_TIMEOUT, |d| d.get()),
        }))
    } else if present.contains(&"reboot") {
        let r = s.reboot.clone().unwrap_or_default();
        if let Some(d) = r.timeout {
            limits::REBOOT_TIMEOUT.check_duration(sp.key("reboot").key("timeout"), d.get(), p);
        }
        for (i, h) in r.health.iter().enumerate() {
            tpl(sp.key("reboot").key("health").index(i), h, p);
        }
        for (key, src) in [("command", &r.command), ("boot_id", &r.boot_id)] {
            if let Some(src) = src {
                tpl(sp.key("reboot").key(key), src, p);
            }
        }
        if r.via == RebootVia::Slurm && r.command.is_some() {
            p.push(
                Problem::key(
                    sp.key("reboot").key("command"),
                    "`command` is not used with `via: slurm`: slurmctld runs the site's `RebootProgram`",
                )
                .with_help("remove `command`, or use `via: ssh` to run it on the node"),
            );
        }
        if s.change == Some(Change::Hot) {
            p.push(
                Problem::value(
                    sp.key("change"),
                    format!("step `{}` reboots the node but is marked `change: hot`", s.name),
                )
                .with_help("a reboot takes the node out of service: use `change: drain`"),
            );
        }
        Some(Action::Reboot(Reboot {
            timeout: r.timeout.map_or(DEFAULT_REBOOT_TIMEOUT, |d| d.get()),
            health: r.health,
            health_interval: r
                .health_interval
                .map_or(super::workflow::DEFAULT_HEALTH_INTERVAL, |d| d.get()),
            command: r.command.unwrap_or_else(|| DEFAULT_REBOOT_COMMAND.to_string()),
            boot_id: r.boot_id.unwrap_or_else(|| DEFAULT_BOOT_ID_COMMAND.to_string()),
            via: r.via,
        }))
    } else {
        None
    };
    if p.len() > before {
        return None;
    }
    Some(Step {
        name: s.name.clone(),
        action: action?,
        change,
        check: s.check.clone(),
        when: s.when.clone(),
        timeout,
        retries: s.retries,
    })
}

fn file_copy(
    c: &RawCopy,
    path: &Path,
    cx: &WorkflowContext<'_>,
    is_template: bool,
    p: &mut Vec<Problem>,
) -> FileCopy {
    let src = cx.dir.join(&c.src);
    // Sources come from the site (after symlinks): a workflow must not ship the
    // controller's own files (`/etc/shadow`, `../../../../etc/passwd`) to nodes.
    let real = std::fs::canonicalize(&src).ok();
    if let Some(real) = &real
        && !cx.file_roots.iter().any(|r| real.starts_with(r))
    {
        let roots: Vec<String> = cx
            .file_roots
            .iter()
            .map(|r| format!("`{}`", r.display()))
            .collect();
        p.push(
            Problem::value(
                path.key("src"),
                format!(
                    "`{}` resolves to `{}`, outside the site",
                    c.src,
                    real.display()
                ),
            )
            .with_help(format!(
                "sources must be inside {}; copy the file into the site, or allow its directory in drover.yml with `files: {{ extra_roots: [DIR] }}`",
                match roots.as_slice() {
                    [] => "the site directory".to_string(),
                    [one] => one.clone(),
                    many => format!("one of {}", many.join(", ")),
                }
            )),
        );
        return FileCopy {
            src,
            dest: c.dest.clone(),
            mode: c.mode,
            owner: c.owner.clone(),
            secret: c.secret,
        };
    }
    match crate::bounded_read::read_regular_text(&src, Some(crate::yaml::MAX_FILE_BYTES)) {
        // Template files see the same names as commands (`node`, `vars`, `workflow`).
        Ok(text) if is_template => {
            if let Err(e) = cx.templates.check_names(&text, &COMMAND_SCOPE) {
                let line = e
                    .line()
                    .map(|l| format!(" (line {l} of `{}`)", c.src))
                    .unwrap_or_default();
                let pr = Problem::value(
                    path.key("src"),
                    format!("invalid template in `{}`: {}{line}", c.src, e.message()),
                );
                p.push(match e.help() {
                    Some(h) => pr.with_help(h),
                    None => pr,
                });
            }
        }
        Ok(_) => {}
        Err(_) if src.is_dir() => p.push(
            Problem::value(path.key("src"), format!("`{}` is a directory, not a file", c.src)).with_help(
                format!(
                    "`src` names one file, relative to the workflow's directory, `{}`",
                    cx.dir.display()
                ),
            ),
        ),
        Err(e) if src.is_file() && is_template => {
            p.push(Problem::value(
                path.key("src"),
                format!("cannot read template `{}`: {e}", c.src),
            ));
        }
        Err(_) if src.is_file() => {}
        // A FIFO or device: reading it could block `validate` or never end.
        Err(e) if src.exists() => p.push(Problem::value(
            path.key("src"),
            format!("cannot read `{}`: {e}", c.src),
        )),
        Err(_) => p.push(
            Problem::value(path.key("src"), format!("file `{}` not found", c.src)).with_help(format!(
                "paths are relative to the workflow's directory, `{}`",
                cx.dir.display()
            )),
        ),
    }
    // A destination may start with a template (`{{ node.vars.root }}/etc/x`); the rendered
    // path is checked on the node.
    if !c.dest.starts_with('/') && !c.dest.trim_start().starts_with("{{") {
        p.push(Problem::value(
            path.key("dest"),
            format!("destination `{}` is not an absolute path", c.dest),
        ));
    } else if let Err(e) = cx.templates.check_command(&c.dest, &COMMAND_SCOPE) {
        p.push(e.problem(path.key("dest")));
    }
    if let Some(o) = &c.owner {
        let ok = o.split(':').count() <= 2
            && o.split(':')
                .all(|part| crate::inventory::check_user(part).is_ok());
        if !ok {
            p.push(Problem::value(
                path.key("owner"),
                format!("invalid owner `{o}`: expected `user` or `user:group`"),
            ));
        }
    }
    // The resolved path is what the engine reads: a symlink changed after validation
    // cannot point the run elsewhere.
    FileCopy {
        src: real.unwrap_or(src),
        dest: c.dest.clone(),
        mode: c.mode,
        owner: c.owner.clone(),
        secret: c.secret,
    }
}

/// An `ansible:` step: one of `playbook` or `role`, inside the site (the rule of copy
/// sources), `ansible-playbook` installed, extra vars that are valid templates.
fn ansible_play(
    s: &RawStep,
    a: &RawAnsible,
    path: &Path,
    cx: &WorkflowContext<'_>,
    p: &mut Vec<Problem>,
) -> Option<AnsiblePlay> {
    let before = p.len();
    if let Err(why) = crate::ansible::find_playbook() {
        p.push(
            Problem::value(path.clone(), format!("step `{}` runs Ansible, but {why}", s.name))
                .with_help(crate::ansible::INSTALL_HINT),
        );
    }
    let source = match (&a.playbook, &a.role) {
        (Some(_), Some(_)) => {
            p.push(Problem::key(
                path.key("role"),
                "`ansible` takes `playbook` or `role`, not both",
            ));
            None
        }
        (None, None) => {
            p.push(
                Problem::value(
                    path.clone(),
                    format!("step `{}`: `ansible` needs a `playbook` or a `role`", s.name),
                )
                .with_help("`ansible: { playbook: site.yml }` or `ansible: { role: roles/ntp }`"),
            );
            None
        }
        (Some(pb), None) => in_site(pb, &path.key("playbook"), cx, false, p).map(AnsibleSource::Playbook),
        (None, Some(r)) => in_site(r, &path.key("role"), cx, true, p).map(AnsibleSource::Role),
    };
    for (k, v) in &a.extra_vars {
        check_value_templates(v, &path.key("extra_vars").key(k.clone()), cx, p);
    }
    if p.len() > before {
        return None;
    }
    Some(AnsiblePlay {
        source: source?,
        tags: a.tags.clone(),
        skip_tags: a.skip_tags.clone(),
        extra_vars: a.extra_vars.clone(),
        check_mode: a.check_mode.unwrap_or(true),
        inventory_vars: a.inventory_vars.clone(),
    })
}

/// Every string in `v` (at any depth) is a template rendered as text.
fn check_value_templates(v: &serde_json::Value, path: &Path, cx: &WorkflowContext<'_>, p: &mut Vec<Problem>) {
    match v {
        serde_json::Value::String(t) => {
            if let Err(e) = cx.templates.check_names(t, &COMMAND_SCOPE) {
                p.push(e.problem(path.clone()));
            }
        }
        serde_json::Value::Array(items) => {
            for (i, x) in items.iter().enumerate() {
                check_value_templates(x, &path.index(i), cx, p);
            }
        }
        serde_json::Value::Object(m) => {
            for (k, x) in m {
                check_value_templates(x, &path.key(k.clone()), cx, p);
            }
        }
        _ => {}
    }
}

/// `rel` (relative to the workflow's directory) resolved after symlinks, when it is a
/// file (or, with `dir`, a directory) inside the site's file roots.
fn in_site(
    rel: &str,
    path: &Path,
    cx: &WorkflowContext<'_>,
    dir: bool,
    p: &mut Vec<Problem>,
) -> Option<PathBuf> {
    let joined = cx.dir.join(rel);
    let Ok(real) = std::fs::canonicalize(&joined) else {
        p.push(
            Problem::value(path.clone(), format!("`{rel}` not found")).with_help(format!(
                "paths are relative to the workflow's directory, `{}`",
                cx.dir.display()
            )),
        );
        return None;
    };
    if !cx.file_roots.iter().any(|r| real.starts_with(r)) {
        p.push(
            Problem::value(
                path.clone(),
                format!("`{rel}` resolves to `{}`, outside the site", real.display()),
            )
            .with_help("playbooks and roles must be inside the site directory or a directory of `files: { extra_roots: [DIR] }`"),
        );
        return None;
    }
    let ok = if dir { real.is_dir() } else { real.is_file() };
    if !ok {
        p.push(Problem::value(
            path.clone(),
            format!(
                "`{rel}` is not a {}",
                if dir {
                    "directory (a role)"
                } else {
                    "file (a playbook)"
                }
            ),
        ));
        return None;
    }
    Some(real)
}

/// The workflow's vars: `vars` with inline `!vault |` values decrypted, then every
/// `vars_files` entry over them (decrypted when it is a vault file). Returns what may be
/// shown (every decrypted value masked) and the revealed values. Problems name the file
/// and never show decrypted text.
fn reveal(
    raw: &RawWorkflow,
    cx: &WorkflowContext<'_>,
    p: &mut Vec<Problem>,
) -> (
    indexmap::IndexMap<String, serde_json::Value>,
    super::revealed::Revealed,
) {
    let root = Path::root();
    let mut secrets = crate::vault::Secrets::default();
    let mut any = false;
    let mut vars = indexmap::IndexMap::new();
    for (k, v) in &raw.vars {
        let at = root.key("vars").key(k.clone());
        let v = decrypt_inline(v, &at, cx, &mut secrets, &mut any, p);
        vars.insert(k.clone(), v);
    }
    for (i, f) in raw.vars_files.iter().enumerate() {
        let at = root.key("vars_files").index(i);
        let Some(real) = in_site(f, &at, cx, false, p) else {
            continue;
        };
        let text = match crate::bounded_read::read_regular_text(&real, Some(crate::yaml::MAX_FILE_BYTES)) {
            Ok(t) => t,
            Err(e) => {
                p.push(Problem::value(at, format!("cannot read `{f}`: {e}")));
                continue;
            }
        };
        let vault = crate::vault::is_vault(&text);
        let text = if vault {
            match cx.keyring.decrypt(&text) {
                Ok(t) => t,
                Err(e) => {
                    p.push(
                        Problem::value(at, format!("cannot decrypt `{f}` ({}): {e}", real.display()))
                            .with_help("nothing runs until every vault file decrypts; the password comes from drover.yml's `vault:`"),
                    );
                    continue;
                }
            }
        } else {
            text
        };
        let (tree, errors) = crate::yaml::load(&text);
        if let Some(e) = errors.first() {
            // Only the position: the line itself may be a secret.
            p.push(Problem::value(
                at,
                format!(
                    "`{f}`{} is not valid YAML: line {}, column {}: {}",
                    if vault { " (decrypted)" } else { "" },
                    e.at.line,
                    e.at.column,
                    e.message
                ),
            ));
            continue;
        }
        let Some(serde_json::Value::Object(m)) = tree.map(|t| t.to_json()) else {
            p.push(Problem::value(
                at,
                format!("`{f}` must hold a mapping of vars (`name: value`)"),
            ));
            continue;
        };
        for (k, v) in m {
            let v = decrypt_inline(&v, &at, cx, &mut secrets, &mut any, p);
            if vault {
                secrets.add_all(&v);
                any = true;
            }
            vars.insert(k, v);
        }
    }
    if !any {
        return (vars, super::revealed::Revealed::default());
    }
    let shown = vars.iter().map(|(k, v)| (k.clone(), mask(v, &secrets))).collect();
    let revealed = super::revealed::Revealed {
        vars: Some(vars),
        secrets,
        vault_password: None,
    };
    (shown, revealed)
}

/// `v` with every inline vault value (`{ __ansible_vault: TEXT }`) decrypted, at any
/// depth; each plaintext becomes a secret.
fn decrypt_inline(
    v: &serde_json::Value,
    at: &Path,
    cx: &WorkflowContext<'_>,
    secrets: &mut crate::vault::Secrets,
    any: &mut bool,
    p: &mut Vec<Problem>,
) -> serde_json::Value {
    use serde_json::Value as J;
    match v {
        J::Object(m) if m.len() == 1 && m.contains_key(crate::vault::VAULT_KEY) => {
            let text = m
                .get(crate::vault::VAULT_KEY)
                .and_then(J::as_str)
                .unwrap_or_default();
            match cx.keyring.decrypt(text) {
                Ok(plain) => {
                    secrets.add(&plain);
                    *any = true;
                    J::String(plain)
                }
                Err(e) => {
                    p.push(
                        Problem::value(at.clone(), format!("cannot decrypt this `!vault` value: {e}"))
                            .with_help("nothing runs until every vault value decrypts; the password comes from drover.yml's `vault:`"),
                    );
                    J::Null
                }
            }
        }
        J::Object(m) => J::Object(
            m.iter()
                .map(|(k, x)| {
                    (
                        k.clone(),
                        decrypt_inline(x, &at.key(k.clone()), cx, secrets, any, p),
                    )
                })
                .collect(),
        ),
        J::Array(items) => J::Array(
            items
                .iter()
                .enumerate()
                .map(|(i, x)| decrypt_inline(x, &at.index(i), cx, secrets, any, p))
                .collect(),
        ),
        other => other.clone(),
    }
}

/// What may be shown of a value: secrets masked.
fn mask(v: &serde_json::Value, secrets: &crate::vault::Secrets) -> serde_json::Value {
    use serde_json::Value as J;
    match v {
        J::String(s) => J::String(secrets.redact(s).into_owned()),
        J::Number(n) if secrets.redact(&n.to_string()) != n.to_string() => {
            J::String(crate::vault::MASK.into())
        }
        J::Array(items) => J::Array(items.iter().map(|x| mask(x, secrets)).collect()),
        J::Object(m) => J::Object(m.iter().map(|(k, x)| (k.clone(), mask(x, secrets))).collect()),
        other => other.clone(),
    }
}
