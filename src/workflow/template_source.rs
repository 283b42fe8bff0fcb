//! Every template a workflow holds, with where it is written: for the checks that look
//! at all of them (names that will exist, places that switch quoting off).

use super::workflow::{Action, DEFAULT_BOOT_ID_COMMAND, DEFAULT_REBOOT_COMMAND, Workflow};
use crate::yaml::Path;

/// How a template is used, which decides what it may contain.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TemplateUse {
    /// Rendered into a shell command (shell-quoted).
    Command,
    /// A drain hook: a command with `run` and `reason` in scope too.
    Hook,
    /// A `when:` condition (an expression).
    Condition,
    /// A `template:` step's file, read from `path` (the step's `src`); not shell-quoted.
    File,
    /// A value rendered as text, not shell-quoted (an `ansible.extra_vars` string).
    Text,
}

/// One template of a workflow.
#[derive(Debug, Clone)]
pub struct TemplateSource<'a> {
    /// Where it is written (for a file template: the step's `src`).
    pub path: Path,
    /// The step it belongs to, if any.
    pub step: Option<&'a str>,
    pub text: std::borrow::Cow<'a, str>,
    pub usage: TemplateUse,
}

impl Workflow {
    /// Every template of the workflow. File templates are read from disk;
    /// one that cannot be read is left out (validation has reported it).
    pub fn template_sources(&self) -> Vec<TemplateSource<'_>> {
        let mut out = Vec::new();
        let root = Path::root();
        if let Some(h) = &self.drain {
            for (key, text) in [
                ("drain", &h.drain),
                ("drained", &h.drained),
                ("resume", &h.resume),
            ] {
                out.push(TemplateSource {
                    path: root.key("drain").key(key),
                    step: None,
                    text: text.as_str().into(),
                    usage: TemplateUse::Hook,
                });
            }
        }
        for (i, s) in self.steps.iter().enumerate() {
            let sp = root.key("steps").index(i);
            let step = Some(s.name.as_str());
            let add = |path: Path, text: &str, usage: TemplateUse| (path, text.to_string(), usage);
            let mut items: Vec<(Path, String, TemplateUse)> = Vec::new();
            match &s.action {
                Action::Run(c) => items.push(add(sp.key("run"), c, TemplateUse::Command)),
                Action::Local(c) => items.push(add(sp.key("local"), c, TemplateUse::Command)),
                Action::Copy(f) => items.push(add(sp.key("copy").key("dest"), &f.dest, TemplateUse::Command)),
                Action::Template(f) => {
                    items.push(add(sp.key("template").key("dest"), &f.dest, TemplateUse::Command));
                    if let Ok(text) =
                        crate::bounded_read::read_regular_text(&f.src, Some(crate::yaml::MAX_FILE_BYTES))
                    {
                        items.push((sp.key("template").key("src"), text, TemplateUse::File));
                    }
                }
                Action::Ansible(a) => {
                    for (k, v) in &a.extra_vars {
                        value_templates(v, &sp.key("ansible").key("extra_vars").key(k.clone()), &mut items);
                    }
                }
                Action::WaitFor(w) => items.push(add(
                    sp.key("wait_for").key("command"),
                    &w.command,
                    TemplateUse::Command,
                )),
                Action::Reboot(r) => {
                    for (j, h) in r.health.iter().enumerate() {
                        items.push(add(
                            sp.key("reboot").key("health").index(j),
                            h,
                            TemplateUse::Command,
                        ));
                    }
                    if r.command != DEFAULT_REBOOT_COMMAND {
                        items.push(add(
                            sp.key("reboot").key("command"),
                            &r.command,
                            TemplateUse::Command,
                        ));
                    }
                    if r.boot_id != DEFAULT_BOOT_ID_COMMAND {
                        items.push(add(
                            sp.key("reboot").key("boot_id"),
                            &r.boot_id,
                            TemplateUse::Command,
                        ));
                    }
                }
            }
            if let Some(c) = &s.check {
                items.push(add(sp.key("check"), c, TemplateUse::Command));
            }
            if let Some(w) = &s.when {
                items.push(add(sp.key("when"), w, TemplateUse::Condition));
            }
            out.extend(items.into_iter().map(|(path, text, usage)| TemplateSource {
                path,
                step,
                text: text.into(),
                usage,
            }));
        }
        out
    }
}

/// The strings of an `ansible.extra_vars` value, at any depth: templates rendered as text.
fn value_templates(v: &serde_json::Value, path: &Path, out: &mut Vec<(Path, String, TemplateUse)>) {
    match v {
        serde_json::Value::String(t) => out.push((path.clone(), t.clone(), TemplateUse::Text)),
        serde_json::Value::Array(items) => {
            for (i, x) in items.iter().enumerate() {
                value_templates(x, &path.index(i), out);
            }
        }
        serde_json::Value::Object(m) => {
            for (k, x) in m {
                value_templates(x, &path.key(k.clone()), out);
            }
        }
        _ => {}
    }
}
