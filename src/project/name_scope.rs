//! The names a workflow's templates will have when they are rendered on its targets.

use crate::engine::{site_context, template_context};
use crate::inventory::Inventory;
use crate::site::Site;
use crate::template::Scope;
use crate::workflow::{Scopes, Workflow};
use crate::yaml::Path;

/// The meet of the render contexts of every target (so `node.vars.X` counts only if every
/// target has it), with `extra` as `--extra-vars`. None when the targets do not resolve
/// (reported elsewhere) or select no node.
pub fn workflow_scopes(
    w: &Workflow,
    inv: &Inventory,
    site: &Site,
    extra: &serde_json::Map<String, serde_json::Value>,
) -> Option<Scopes> {
    let targets = inv.select(&w.targets, &Path::root()).ok()?;
    let excluded = inv.select(&w.exclude, &Path::root()).ok()?;
    let site = site_context(site);
    let commands = targets
        .iter()
        .filter(|id| !excluded.contains(id))
        .map(|id| Scope::of(&template_context(inv.node(*id), w, extra, &site)))
        .reduce(|a, b| a.meet(&b))?;
    let hooks = commands.clone().with_leaves(&["run", "reason"]);
    Some(Scopes { commands, hooks })
}
