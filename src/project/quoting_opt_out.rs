//! The places a site's commands switch shell quoting off, for `validate --json`: a
//! reviewer audits these lines instead of reading every template.

use serde::Serialize;

use crate::diag::Problem;
use crate::site::DrainHooks;
use crate::template::{OptOutKind, opt_outs};
use crate::workflow::{TemplateUse, Workflow};
use crate::yaml::{Document, Path};

/// One `| raw` in a command (other opt-outs are refused by validation).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct QuotingOptOut {
    pub file: String,
    pub line: usize,
    pub column: usize,
    /// The step, if the command belongs to one (else a drain hook).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub step: Option<String>,
    /// Where in the file: `steps[2].run`, `drain.drain`.
    pub key: String,
    pub what: OptOutKind,
}

/// The opt-outs of a workflow's commands and hooks (file templates are not shell-quoted,
/// so `raw` there changes nothing and is not listed).
pub fn workflow_opt_outs(w: &Workflow, doc: &Document) -> Vec<QuotingOptOut> {
    w.template_sources()
        .into_iter()
        .filter(|t| matches!(t.usage, TemplateUse::Command | TemplateUse::Hook))
        .flat_map(|t| locate(doc, &t.path, t.step, &t.text))
        .collect()
}

/// The opt-outs of the site's drain hooks.
pub fn hook_opt_outs(hooks: &DrainHooks, doc: &Document) -> Vec<QuotingOptOut> {
    [
        ("drain", &hooks.drain),
        ("drained", &hooks.drained),
        ("resume", &hooks.resume),
    ]
    .into_iter()
    .flat_map(|(key, text)| locate(doc, &Path::root().key("drain").key(key), None, text))
    .collect()
}

fn locate(doc: &Document, path: &Path, step: Option<&str>, text: &str) -> Vec<QuotingOptOut> {
    opt_outs(text)
        .into_iter()
        .map(|o| {
            let d =
                doc.diagnostic(&Problem::value(path.clone(), String::new()).in_template_line(Some(o.line)));
            let (line, column) = d.location.map_or((0, 0), |l| (l.line, l.column));
            QuotingOptOut {
                file: d.file,
                line,
                column,
                step: step.map(str::to_owned),
                key: path.to_string(),
                what: o.kind,
            }
        })
        .collect()
}
