//! A whole site: drover.yml, its inventory and its workflows, loaded and cross-checked.

use std::collections::HashMap;
use std::path::{Component, Path as FsPath, PathBuf};
use std::sync::Arc;

use super::name_scope::workflow_scopes;
use super::quoting_opt_out::{QuotingOptOut, hook_opt_outs, workflow_opt_outs};
use crate::diag::{Diagnostic, Problem};
use crate::inventory::{Inventory, RawInventory};
use crate::site::{RawSite, Site};
use crate::template::TemplateEngine;
use crate::workflow::{Change, RawWorkflow, Workflow, WorkflowContext, check_hook_names};
use crate::yaml::{Document, Path};

/// The name of the site config file in a site directory.
pub const SITE_FILE: &str = "drover.yml";

#[derive(Debug)]
pub struct Project {
    pub site_file: String,
    pub site: Site,
    pub inventory: Inventory,
    pub workflows: Vec<Workflow>,
    /// Shared with the engine, which renders with the same configuration.
    pub templates: Arc<TemplateEngine>,
    /// Alarm triggers (`POST /hooks/{name}`), each with the workflow it runs.
    pub triggers: Vec<super::AlarmTrigger>,
    /// Every `| raw` in a command or hook, for review (`validate --json`).
    pub quoting_opt_outs: Vec<QuotingOptOut>,
    /// Things accepted that may not do what was meant, in file order.
    pub warnings: Vec<Diagnostic>,
}

impl Project {
    /// Loads and checks everything under a site. Reports every problem in every file,
    /// sorted by file (in the order they are read) and then by position; a file that
    /// fails to parse does not hide the problems of the others.
    pub fn load(path: &FsPath) -> Result<Project, Vec<Diagnostic>> {
        let mut diags = Vec::new();
        let mut files = Vec::new();
        let project = Self::load_into(path, &mut diags, &mut files);
        finish(project, diags)
    }

    /// [`load`](Self::load) for a command on one workflow (`plan`, `check`, `run`): a
    /// broken *other* workflow file is a warning, not a reason to refuse. A broken site
    /// config or inventory still blocks everything, and so does a problem in the file of
    /// the workflow `wanted` picks (or any problem, when no valid workflow is picked).
    pub fn load_for(path: &FsPath, wanted: &dyn Fn(&Workflow) -> bool) -> Result<Project, Vec<Diagnostic>> {
        let mut diags = Vec::new();
        let mut files = Vec::new();
        let project = Self::load_into(path, &mut diags, &mut files);
        if let Some(p) = &project
            && let Some(w) = p.workflows.iter().find(|w| wanted(w))
        {
            for d in &mut diags {
                if !d.warning && d.file != w.file && files.contains(&d.file) {
                    d.warning = true;
                    d.message = format!(
                        "{} (in another workflow; `{}` goes on without it)",
                        d.message, w.name
                    );
                }
            }
        }
        finish(project, diags)
    }

    /// Loads into `diags` (errors and warnings); `files` gets every workflow file read.
    fn load_into(path: &FsPath, diags: &mut Vec<Diagnostic>, files: &mut Vec<String>) -> Option<Project> {
        let site_path = if path.is_dir() {
            path.join(SITE_FILE)
        } else {
            path.to_path_buf()
        };
        let site_file = display(&site_path);
        if !path.exists() {
            diags.push(
                Diagnostic::file(display(path), format!("`{}` does not exist", display(path))).with_help(
                    format!("give a site directory (a directory with a {SITE_FILE}) or its {SITE_FILE}"),
                ),
            );
            return None;
        }
        if path.is_dir() && !site_path.exists() {
            let dir = match display(path).as_str() {
                "." => "the current directory".to_string(),
                d => format!("`{d}`"),
            };
            diags.push(Diagnostic::file(
                site_file,
                format!("no {SITE_FILE} in {dir}: a site is a directory with a {SITE_FILE}"),
            ));
            return None;
        }
        let root = site_path
            .parent()
            .map_or_else(|| PathBuf::from("."), FsPath::to_path_buf);
        let root = if root.as_os_str().is_empty() {
            PathBuf::from(".")
        } else {
            root
        };
        let templates = Arc::new(TemplateEngine::new());

        let (site_doc, warnings) = Document::read(&site_path, &site_file)
            .map_err(|e| diags.extend(e))
            .ok()?;
        diags.extend(warnings);
        if !refuse_vault(&site_doc, crate::vault::VaultPlace::Site, diags) {
            return None;
        }
        let (raw, unknown): (RawSite, _) = site_doc.decode().map_err(|e| diags.extend(e)).ok()?;
        diags.extend(unknown);
        let site = Site::from_raw(&raw, &root, &templates)
            .map_err(|ps| diags.extend(ps.iter().map(|p| site_doc.diagnostic(p))))
            .ok()?;
        let mut quoting_opt_outs = site
            .drain
            .as_ref()
            .map(|h| hook_opt_outs(h, &site_doc))
            .unwrap_or_default();

        let inventory = load_inventory(&site.inventory, diags);
        if let Some(inv) = &inventory {
            diags.extend(
                unknown_ssh_groups(&site, inv)
                    .iter()
                    .map(|p| site_doc.diagnostic(p)),
            );
        }

        let mut workflows = Vec::new();
        let mut names: HashMap<String, String> = HashMap::new();
        // Every workflow name a file declares, valid or not: a lifecycle entry naming a
        // workflow whose file has errors is already reported there, not again here.
        let mut declared: std::collections::BTreeSet<String> = std::collections::BTreeSet::new();
        // Read once, when the first vault data needs it.
        let keyring = crate::vault::Keyring::new(site.vault.clone());
        for file in workflow_files(&site.workflows, diags) {
            let shown = display(&file);
            files.push(shown.clone());
            let (doc, warnings) = match Document::read(&file, &shown) {
                Ok(d) => d,
                Err(e) => {
                    diags.extend(e);
                    continue;
                }
            };
            diags.extend(warnings);
            if !refuse_vault(&doc, crate::vault::VaultPlace::Workflow, diags) {
                continue;
            }
            let raw: RawWorkflow = match doc.decode::<RawWorkflow>() {
                Ok((r, unknown)) => {
                    diags.extend(unknown);
                    declared.insert(r.name.clone());
                    r
                }
                Err(e) => {
                    diags.extend(e);
                    continue;
                }
            };
            let dir = file
                .parent()
                .map_or_else(|| PathBuf::from("."), FsPath::to_path_buf);
            // Without a valid inventory, targets and canary nodes cannot be resolved;
            // everything else is still checked.
            let cx = WorkflowContext {
                inventory: inventory.as_ref(),
                windows: site.windows.keys().map(String::as_str).collect(),
                templates: &templates,
                dir: &dir,
                tree: &doc.root,
                site_drain: site.drain.is_some(),
                site_slurm: site.drain.as_ref().is_some_and(|d| d.is_slurm()),
                file_roots: &site.file_roots,
                keyring: &keyring,
            };
            match Workflow::from_raw(&raw, &shown, &cx) {
                Ok(w) => {
                    // Names every template will find on every target, now that targets
                    // resolve; the site's hooks are checked for the workflows that use them.
                    if let Some(inv) = &inventory
                        && let Some(scopes) = workflow_scopes(&w, inv, &site, &serde_json::Map::new())
                    {
                        let problems = w.check_template_names(&scopes, &templates);
                        if !problems.is_empty() {
                            diags.extend(problems.iter().map(|p| doc.diagnostic(p)));
                            continue;
                        }
                        if w.drain.is_none()
                            && w.steps.iter().any(|s| s.change == Change::Drain)
                            && let Some(h) = &site.drain
                        {
                            for p in check_hook_names(h, &scopes.hooks, &templates) {
                                let d = site_doc.diagnostic(&p);
                                let d = Diagnostic {
                                    message: format!("{} (for workflow `{}`)", d.message, w.name),
                                    ..d
                                };
                                if !diags.contains(&d) {
                                    diags.push(d);
                                }
                            }
                        }
                    }
                    if let Some(other) = names.insert(w.name.clone(), shown.clone()) {
                        diags.push(
                            doc.diagnostic(
                                &Problem::value(
                                    Path::root().key("name"),
                                    format!("workflow name `{}` is also used by `{other}`", w.name),
                                )
                                .with_help("workflow names identify runs and must be unique"),
                            ),
                        );
                    }
                    if let Some(inv) = &inventory {
                        let outside = w.canary_outside_targets(inv);
                        if !outside.is_empty() {
                            diags.push(
                                doc.diagnostic(
                                    &Problem::value(
                                        Path::root().key("canary").key("nodes"),
                                        format!(
                                            "canary {} not among the targets and left out of the canary phase",
                                            match outside.as_slice() {
                                                [one] => format!("node `{}` is", inv.node(*one).name),
                                                many => format!("nodes `{}` are", inv.names(many)),
                                            }
                                        ),
                                    )
                                    .with_help("canary nodes are taken from the targets; add them to `targets` or drop them here"),
                                )
                                .as_warning(),
                            );
                        }
                    }
                    quoting_opt_outs.extend(workflow_opt_outs(&w, &doc));
                    workflows.push(w);
                }
                Err(ps) => diags.extend(ps.iter().map(|p| doc.diagnostic(p))),
            }
        }

        // The API's lifecycle operations run these by name: a typo must fail validation,
        // not surface as a 422 the first time someone commissions a node.
        for (op, name) in [
            ("commission", &site.lifecycle.commission),
            ("decommission", &site.lifecycle.decommission),
            ("maintenance", &site.lifecycle.maintenance),
        ] {
            if let Some(name) = name
                && !declared.contains(name)
            {
                let known = declared.iter().map(|n| format!("`{n}`")).collect::<Vec<_>>();
                diags.push(
                    site_doc.diagnostic(
                        &Problem::value(
                            Path::root().key("lifecycle").key(op),
                            format!("no workflow named `{name}` for the {op} operation"),
                        )
                        .with_help(if known.is_empty() {
                            "the site has no workflows; add one under the workflows directory".to_string()
                        } else {
                            format!("the site's workflows: {}", known.join(", "))
                        }),
                    ),
                );
            }
        }

        let mut trigger_problems = Vec::new();
        let triggers = super::alarm_trigger::check_triggers(
            &raw.triggers,
            &workflows,
            &declared,
            &WorkflowContext {
                inventory: inventory.as_ref(),
                windows: site.windows.keys().map(String::as_str).collect(),
                templates: &templates,
                dir: &root,
                tree: &site_doc.root,
                site_drain: site.drain.is_some(),
                site_slurm: site.drain.as_ref().is_some_and(|d| d.is_slurm()),
                file_roots: &site.file_roots,
                keyring: &keyring,
            },
            site.drain.is_some(),
            &mut trigger_problems,
        );
        diags.extend(trigger_problems.iter().map(|p| site_doc.diagnostic(p)));

        Some(Project {
            site_file,
            site,
            triggers,
            inventory: inventory?,
            workflows,
            templates,
            quoting_opt_outs,
            warnings: Vec::new(),
        })
    }

    pub fn workflow(&self, name: &str) -> Option<&Workflow> {
        self.workflows.iter().find(|w| w.name == name)
    }

    pub fn trigger(&self, name: &str) -> Option<&super::AlarmTrigger> {
        self.triggers.iter().find(|t| t.name == name)
    }

    /// This site with `wf` among its workflows (in place of one of the same name): what
    /// an alarm trigger's run is started on, so the run service finds the workflow it
    /// runs by name like any other.
    pub fn with_workflow(&self, wf: Workflow) -> Project {
        let mut workflows: Vec<Workflow> = self
            .workflows
            .iter()
            .filter(|w| w.name != wf.name)
            .cloned()
            .collect();
        workflows.push(wf);
        Project {
            site_file: self.site_file.clone(),
            site: self.site.clone(),
            inventory: self.inventory.clone(),
            workflows,
            templates: Arc::clone(&self.templates),
            triggers: self.triggers.clone(),
            quoting_opt_outs: self.quoting_opt_outs.clone(),
            warnings: self.warnings.clone(),
        }
    }
}

/// Sorts, then splits the warnings off: the project is only given when no error is left.
fn finish(project: Option<Project>, mut diags: Vec<Diagnostic>) -> Result<Project, Vec<Diagnostic>> {
    sort_by_file_and_position(&mut diags);
    let (warnings, errors): (Vec<Diagnostic>, Vec<Diagnostic>) = diags.into_iter().partition(|d| d.warning);
    match project {
        Some(mut p) if errors.is_empty() => {
            p.warnings = warnings;
            Ok(p)
        }
        _ => {
            let mut all: Vec<Diagnostic> = errors.into_iter().chain(warnings).collect();
            sort_by_file_and_position(&mut all);
            Err(all)
        }
    }
}

/// `ssh.groups` entries that name no inventory group: their settings would reach no
/// node, and a typo would leave nodes on the site's defaults without a word.
fn unknown_ssh_groups(site: &Site, inv: &Inventory) -> Vec<Problem> {
    let known = inv.groups();
    site.ssh
        .groups
        .iter()
        .filter(|(name, _)| !known.contains_key(name))
        .map(|(name, _)| {
            let at = Path::root().key("ssh").key("groups").key(name.clone());
            let p = Problem::key(at, format!("`{name}` is not a group of the inventory"));
            match crate::diag::did_you_mean(name, known.keys().map(String::as_str)) {
                Some(g) => p.with_help(format!("did you mean `{g}`?")),
                None => p.with_help("`ssh.groups` keys are names from the inventory's `groups:`"),
            }
        })
        .collect()
}

/// Files in the order they were read, problems within a file by position (problems
/// with the file as a whole first).
fn sort_by_file_and_position(diags: &mut [Diagnostic]) {
    let mut order: HashMap<String, usize> = HashMap::new();
    for d in diags.iter() {
        let n = order.len();
        order.entry(d.file.clone()).or_insert(n);
    }
    diags.sort_by_key(|d| (order.get(&d.file).copied(), d.location));
}

/// Reports every inline vault value of `doc` outside the places that decrypt them;
/// `false`: there were some, and the file is not read further (decoding it would only
/// add a confusing type error at the same place).
fn refuse_vault(doc: &Document, place: crate::vault::VaultPlace, diags: &mut Vec<Diagnostic>) -> bool {
    let problems = place.misplaced(&doc.root);
    diags.extend(problems.iter().map(|p| doc.diagnostic(p)));
    problems.is_empty()
}

fn load_inventory(path: &FsPath, diags: &mut Vec<Diagnostic>) -> Option<Inventory> {
    let shown = display(path);
    if !path.exists() {
        diags.push(
            Diagnostic::file(shown, "inventory file not found")
                .with_help(format!("`inventory:` in {SITE_FILE} names it (default `inventory.yml`), relative to the site directory")),
        );
        return None;
    }
    let (doc, warnings) = match Document::read(path, &shown) {
        Ok(d) => d,
        Err(e) => {
            diags.extend(e);
            return None;
        }
    };
    let mut clean = warnings.is_empty();
    diags.extend(warnings);
    if !refuse_vault(&doc, crate::vault::VaultPlace::Inventory, diags) {
        return None;
    }
    let raw: RawInventory = match doc.decode() {
        Ok((r, unknown)) => {
            clean &= unknown.is_empty();
            diags.extend(unknown);
            r
        }
        Err(e) => {
            diags.extend(e);
            return None;
        }
    };
    match Inventory::from_raw(&raw) {
        Ok(inv) if clean => Some(inv),
        Ok(_) => None,
        Err(ps) => {
            diags.extend(ps.iter().map(|p| doc.diagnostic(p)));
            None
        }
    }
}

fn workflow_files(dir: &FsPath, diags: &mut Vec<Diagnostic>) -> Vec<PathBuf> {
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(_) if !dir.exists() => {
            diags.push(
                Diagnostic::file(display(dir), "workflow directory not found")
                    .with_help(format!("`workflows:` in {SITE_FILE} names it (default `workflows`), relative to the site directory")),
            );
            return Vec::new();
        }
        Err(e) => {
            diags.push(Diagnostic::file(
                display(dir),
                format!("cannot read workflow directory: {e}"),
            ));
            return Vec::new();
        }
    };
    let mut files: Vec<PathBuf> = entries
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.is_file() && matches!(p.extension().and_then(|x| x.to_str()), Some("yml" | "yaml")))
        .collect();
    files.sort();
    files
}

/// A path as a user would write it: `a/b/../c` shown as `a/c`.
pub fn display(p: &FsPath) -> String {
    let mut out: Vec<Component<'_>> = Vec::new();
    for c in p.components() {
        match c {
            Component::CurDir if !out.is_empty() => {}
            Component::ParentDir if matches!(out.last(), Some(Component::Normal(_))) => {
                out.pop();
            }
            c => out.push(c),
        }
    }
    let s: PathBuf = out.iter().collect();
    let s = s.to_string_lossy().into_owned();
    s.strip_prefix("./").map(str::to_owned).unwrap_or(s)
}

#[cfg(test)]
mod tests {
    use super::display;
    use std::path::Path;

    #[test]
    fn paths_are_shown_without_dot_dot() {
        assert_eq!(
            display(Path::new("examples/slurm/../../workflows/a.yml")),
            "workflows/a.yml"
        );
        assert_eq!(display(Path::new("./drover.yml")), "drover.yml");
        assert_eq!(display(Path::new("../x/y")), "../x/y");
    }
}
