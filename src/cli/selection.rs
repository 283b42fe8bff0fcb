//! What `check`, `plan` and `run` share: loading the site, finding the workflow,
//! `--limit`, `--tags` and `--extra-vars`.

use std::collections::HashSet;
use std::io::Write;
use std::path::PathBuf;

use clap::Args;

use crate::diag::did_you_mean;
use crate::exit_code;
use crate::inventory::{Inventory, NodeId};
use crate::project::Project;
use crate::site::{Site, SiteTransport};
use crate::workflow::Workflow;

pub use crate::service::TransportKind;

#[derive(Debug, Clone, Args)]
pub struct Target {
    /// The workflow's name (or its file name).
    pub workflow: String,
    /// The site: a directory with drover.yml, or the file itself.
    #[arg(long, default_value = ".")]
    pub site: PathBuf,
    /// Only these nodes: names, host lists (`n[001-010]`) and `@group`s, comma-separated.
    #[arg(long)]
    pub limit: Option<String>,
    /// Machine-readable output.
    #[arg(long)]
    pub json: bool,
    /// How nodes are reached (default: the site's `transport`, else ssh).
    #[arg(long, value_enum)]
    pub transport: Option<TransportKind>,
    /// Let `--transport local` run a site that does not declare `transport: local`:
    /// every command of every node then runs on this machine.
    #[arg(long)]
    pub allow_local: bool,
    /// Prefix each progress line with the time (HH:MM:SS).
    #[arg(long)]
    pub timestamps: bool,
    /// Colour on (from the global `--color`).
    #[arg(skip)]
    pub color: bool,
}

/// A failure before anything was run: message and exit code.
pub struct Refusal(pub String, pub i32);

impl Refusal {
    pub fn usage(m: impl Into<String>) -> Self {
        Refusal(m.into(), exit_code::USAGE)
    }
}

impl From<crate::service::Refusal> for Refusal {
    /// The CLI's exit code for each kind of refusal.
    fn from(r: crate::service::Refusal) -> Refusal {
        let code = match r.kind {
            crate::service::RefusalKind::InvalidConfig => exit_code::INVALID_CONFIG,
            crate::service::RefusalKind::Usage => exit_code::USAGE,
            crate::service::RefusalKind::OutOfDate => exit_code::OUT_OF_DATE,
            crate::service::RefusalKind::WindowClosed => exit_code::WINDOW_CLOSED,
            crate::service::RefusalKind::NothingSelected => exit_code::NOTHING_SELECTED,
            crate::service::RefusalKind::NodesLeased => exit_code::NODES_LEASED,
            crate::service::RefusalKind::Interrupted => exit_code::INTERRUPTED,
            crate::service::RefusalKind::Failure => exit_code::FAILURE,
        };
        Refusal(r.message, code)
    }
}

/// The transport a command uses: `--transport`, else the site's. The local transport
/// runs every node's commands on this machine, so it is refused for a site that does
/// not declare `transport: local` (a real fleet's kernel workflow would reboot the
/// controller) unless `--allow-local` says so, and then drover says what it is about to
/// run where.
pub fn transport(
    site: &Site,
    requested: Option<TransportKind>,
    allow_local: bool,
    workflow: &str,
    err: &mut dyn Write,
) -> Result<TransportKind, Refusal> {
    let declared = match site.transport {
        SiteTransport::Ssh => TransportKind::Ssh,
        SiteTransport::Local => TransportKind::Local,
    };
    let kind = requested.unwrap_or(declared);
    if kind == TransportKind::Local && declared != TransportKind::Local {
        let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
            .map(|h| h.trim().to_string())
            .unwrap_or_else(|_| "this machine".into());
        let user = std::env::var("USER").unwrap_or_else(|_| "this user".into());
        if !allow_local {
            return Err(Refusal::usage(format!(
                "--transport local would run every command of `{workflow}` on this machine ({host}), once per node, \
                 and {} does not declare `transport: local`\n\
                 help: the local transport is for sites whose nodes are simulated on the controller (see examples/demo); \
                 pass --allow-local to run it here anyway",
                site.root.join("drover.yml").display()
            )));
        }
        let _ = writeln!(
            err,
            "warning: --allow-local: `{workflow}` runs on {host} as {user}, once per node: its steps, checks and \
             hooks act on this machine, not on the nodes"
        );
    }
    Ok(kind)
}

pub fn load(t: &Target, color: bool, err: &mut dyn Write) -> Result<(Project, usize), i32> {
    let wanted = |w: &Workflow| {
        w.name == t.workflow || w.file == t.workflow || w.file.ends_with(&format!("/{}", t.workflow))
    };
    // Another workflow's broken file is a warning here; the site, the inventory and the
    // chosen workflow must be valid.
    let project = Project::load_for(&t.site, &wanted).map_err(|diags| {
        for d in &diags {
            let _ = writeln!(err, "{}\n", d.render(color));
        }
        let n = diags.iter().filter(|d| !d.warning).count();
        let _ = writeln!(
            err,
            "error: the site is invalid ({n} problem{}); run `drover validate` for details",
            if n == 1 { "" } else { "s" }
        );
        exit_code::INVALID_CONFIG
    })?;
    for d in &project.warnings {
        let _ = writeln!(err, "{}\n", d.render(color));
    }
    let found = project.workflows.iter().position(wanted);
    match found {
        Some(i) => Ok((project, i)),
        None => {
            let names: Vec<&str> = project.workflows.iter().map(|w| w.name.as_str()).collect();
            let hint = match did_you_mean(&t.workflow, names.iter().copied()) {
                Some(m) => format!("did you mean `{m}`?"),
                None => format!("workflows: {}", names.join(", ")),
            };
            let _ = writeln!(err, "error: no workflow named `{}`\nhelp: {hint}", t.workflow);
            Err(exit_code::USAGE)
        }
    }
}

pub use crate::service::split_list;

pub fn limit(inv: &Inventory, limit: Option<&str>) -> Result<Option<HashSet<NodeId>>, Refusal> {
    let Some(l) = limit else { return Ok(None) };
    let mut set = HashSet::new();
    for e in split_list(l) {
        let ids = inv.resolve(&e).map_err(|p| {
            Refusal::usage(format!(
                "--limit: {}{}",
                p.message,
                p.help.map(|h| format!("\nhelp: {h}")).unwrap_or_default()
            ))
        })?;
        set.extend(ids);
    }
    if set.is_empty() {
        return Err(Refusal::usage("--limit selects no node"));
    }
    Ok(Some(set))
}

/// Which steps `--tags` selects (see [`crate::service::selected_steps`]).
pub fn selected_steps(wf: &Workflow, tags: Option<&str>) -> Result<Vec<bool>, Refusal> {
    crate::service::selected_steps(wf, tags).map_err(Refusal::from)
}

/// The workflow's templates checked again with `--extra-vars` in `vars`, before any node
/// is touched: an extra value that replaces a mapping can take away a name a template
/// reads (`vars.cfg.port`), which validation (without the extra values) could not see.
pub fn recheck_names(
    project: &Project,
    wf: &Workflow,
    extra: &serde_json::Map<String, serde_json::Value>,
) -> Result<(), Refusal> {
    if extra.is_empty() {
        return Ok(());
    }
    let Some(scopes) = crate::project::workflow_scopes(wf, &project.inventory, &project.site, extra) else {
        return Ok(());
    };
    let problems = wf.check_template_names(&scopes, &project.templates);
    let Some(first) = problems.first() else {
        return Ok(());
    };
    Err(Refusal(
        format!(
            "with --extra-vars, {} `{}`: {}{}",
            wf.file,
            first.path,
            first.message,
            first
                .help
                .as_ref()
                .map(|h| format!("\nhelp: {h}"))
                .unwrap_or_default()
        ),
        exit_code::INVALID_CONFIG,
    ))
}

/// The largest `--extra-vars @FILE`: far above any real set of variables, and small
/// enough that `@/dev/zero` or a runaway generator is refused rather than read forever.
pub const MAX_EXTRA_VARS_BYTES: u64 = crate::yaml::MAX_FILE_BYTES;

/// Every `--extra-vars`/`-e`, merged in order (a later value of a name wins). Each is
/// a JSON object (`'{"k": 1}'`), `@file.json`, or Ansible's `key=value` form, several
/// pairs separated by spaces and quoted as in a shell (`-e 'pkg=vim motd="hi there"'`);
/// `key=value` values are strings.
pub fn extra_vars(args: &[String]) -> Result<serde_json::Map<String, serde_json::Value>, Refusal> {
    let mut vars = serde_json::Map::new();
    for a in args {
        vars.extend(one_extra_vars(a)?);
    }
    Ok(vars)
}

fn one_extra_vars(a: &str) -> Result<serde_json::Map<String, serde_json::Value>, Refusal> {
    let (text, from) = match a.strip_prefix('@') {
        Some(path) => (
            crate::bounded_read::read_regular_text(std::path::Path::new(path), Some(MAX_EXTRA_VARS_BYTES))
                .map_err(|e| Refusal::usage(format!("--extra-vars: cannot read {path}: {e}")))?,
            path.to_string(),
        ),
        None if !a.trim_start().starts_with(['{', '[', '"']) && a.contains('=') => return key_values(a),
        None => (a.to_string(), "the argument".to_string()),
    };
    match serde_json::from_str::<serde_json::Value>(&text) {
        Ok(serde_json::Value::Object(m)) => Ok(m),
        Ok(_) => Err(Refusal::usage(format!(
            "--extra-vars: {from} must be a JSON object like {{\"name\": \"value\"}}"
        ))),
        Err(e) => Err(Refusal::usage(format!(
            "--extra-vars: invalid JSON in {from}: {e}\nhelp: pass `key=value` pairs, a JSON object or @file.json"
        ))),
    }
}

/// `a=1 b="two words"`: shell words, each `name=value`.
fn key_values(a: &str) -> Result<serde_json::Map<String, serde_json::Value>, Refusal> {
    let words =
        shlex::split(a).ok_or_else(|| Refusal::usage(format!("--extra-vars: unbalanced quotes in `{a}`")))?;
    let mut vars = serde_json::Map::new();
    for w in words {
        let Some((k, v)) = w.split_once('=') else {
            return Err(Refusal::usage(format!(
                "--extra-vars: `{w}` is not `name=value`\nhelp: pass `key=value` pairs, a JSON object or @file.json"
            )));
        };
        let valid = k
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
            && k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
        if !valid {
            return Err(Refusal::usage(format!(
                "--extra-vars: `{k}` is not a var name (letters, digits and `_`, not starting with a digit)"
            )));
        }
        vars.insert(k.to_string(), serde_json::Value::from(v));
    }
    Ok(vars)
}

#[cfg(test)]
mod tests {
    use super::{extra_vars, split_list};

    fn ev(args: &[&str]) -> Result<serde_json::Value, String> {
        let args: Vec<String> = args.iter().map(ToString::to_string).collect();
        extra_vars(&args).map(serde_json::Value::Object).map_err(|r| r.0)
    }

    #[test]
    fn extra_vars_take_key_value_pairs_json_and_merge_in_order() {
        assert_eq!(
            ev(&["pkg=vim", "motd=\"hello there\" n=3"]).unwrap(),
            serde_json::json!({"pkg": "vim", "motd": "hello there", "n": "3"})
        );
        assert_eq!(
            ev(&[r#"{"pkg": "vim", "n": 3}"#, "pkg=nano"]).unwrap(),
            serde_json::json!({"pkg": "nano", "n": 3})
        );
        assert_eq!(
            ev(&["url=http://x/?a=b"]).unwrap(),
            serde_json::json!({"url": "http://x/?a=b"})
        );
    }

    #[test]
    fn bad_extra_vars_say_what_was_expected() {
        assert!(
            ev(&["pkg=vim oops"])
                .unwrap_err()
                .contains("`oops` is not `name=value`")
        );
        assert!(ev(&["1x=2"]).unwrap_err().contains("`1x` is not a var name"));
        assert!(ev(&["a='b"]).unwrap_err().contains("unbalanced quotes"));
        assert!(ev(&["[1]"]).unwrap_err().contains("must be a JSON object"));
    }

    #[test]
    fn commas_inside_brackets_stay() {
        assert_eq!(split_list("n[1-3,5], @login ,x"), vec!["n[1-3,5]", "@login", "x"]);
    }
}
