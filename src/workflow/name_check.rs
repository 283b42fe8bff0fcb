//! Every template of a workflow checked against the names its renders will have.

use super::template_source::TemplateUse;
use super::workflow::Workflow;
use crate::diag::Problem;
use crate::site::DrainHooks;
use crate::template::{Scope, TemplateEngine};
use crate::yaml::Path;

/// The scopes a workflow's templates are rendered in: commands (and conditions and file
/// templates) see the command context; drain hooks see `run` and `reason` too.
#[derive(Debug, Clone)]
pub struct Scopes {
    pub commands: Scope,
    pub hooks: Scope,
}

impl Workflow {
    /// Problems for every name a template reads that its render will not have, each at
    /// the template (a file template: at its `src`, with the line in the file).
    pub fn check_template_names(&self, scopes: &Scopes, templates: &TemplateEngine) -> Vec<Problem> {
        let mut p = Vec::new();
        for t in self.template_sources() {
            let names = match t.usage {
                TemplateUse::Condition => templates.referenced_names_in_expression(&t.text),
                _ => templates.referenced_names(&t.text),
            };
            // A template that does not parse has been reported already.
            let Ok(names) = names else { continue };
            let scope = match t.usage {
                TemplateUse::Hook => &scopes.hooks,
                _ => &scopes.commands,
            };
            if let Err(e) = scope.check(&names, &t.text) {
                p.push(match t.usage {
                    TemplateUse::File => {
                        let line = e
                            .line()
                            .map(|l| format!(" (line {l} of the file)"))
                            .unwrap_or_default();
                        let pr =
                            Problem::value(t.path, format!("invalid template file: {}{line}", e.message()));
                        match e.help() {
                            Some(h) => pr.with_help(h),
                            None => pr,
                        }
                    }
                    _ => e.problem(t.path),
                });
            }
        }
        p
    }
}

/// The site's drain hooks checked against a workflow's hook scope, located in drover.yml.
pub fn check_hook_names(hooks: &DrainHooks, scope: &Scope, templates: &TemplateEngine) -> Vec<Problem> {
    let mut p = Vec::new();
    for (key, text) in [
        ("drain", &hooks.drain),
        ("drained", &hooks.drained),
        ("resume", &hooks.resume),
    ] {
        if let Ok(names) = templates.referenced_names(text)
            && let Err(e) = scope.check(&names, text)
        {
            p.push(e.problem(Path::root().key("drain").key(key)));
        }
    }
    p
}
