//! `drover validate`.

use std::io::Write;
use std::path::Path;

use serde_json::json;

use super::plural;
use crate::exit_code;
use crate::project::Project;

pub fn validate(path: &Path, json: bool, color: bool, out: &mut dyn Write, err: &mut dyn Write) -> i32 {
    match Project::load(path) {
        Ok(p) => {
            let inv = &p.inventory;
            if !json {
                for d in &p.warnings {
                    let _ = writeln!(err, "{}\n", d.render(color));
                }
            }
            if json {
                let v = json!({
                    "ok": true,
                    "site": p.site_file,
                    "nodes": inv.nodes().len(),
                    "groups": inv.groups().len(),
                    "ha_groups": inv.ha_groups().len(),
                    "workflows": p.workflows.iter().map(|w| json!({"name": w.name, "version": w.version, "file": w.file})).collect::<Vec<_>>(),
                    "quoting_opt_outs": p.quoting_opt_outs,
                    "errors": [],
                    "warnings": p.warnings,
                });
                let _ = writeln!(out, "{v}");
            } else {
                let _ = writeln!(
                    out,
                    "{}: ok: {}, {}, {}, {}, {}",
                    p.site_file,
                    plural(inv.nodes().len(), "node"),
                    plural(inv.groups().len(), "group"),
                    plural(inv.ha_groups().len(), "HA group"),
                    plural(p.site.windows.len(), "window"),
                    plural(p.workflows.len(), "workflow")
                );
                for w in &p.workflows {
                    let _ = writeln!(
                        out,
                        "  {} v{} ({}, {})",
                        w.name,
                        w.version,
                        w.file,
                        plural(w.steps.len(), "step")
                    );
                }
                match p.quoting_opt_outs.len() {
                    0 => {}
                    n => {
                        let _ = writeln!(
                            out,
                            "{n} unquoted value{} (`| raw`) in commands; `validate --json` lists where",
                            if n == 1 { "" } else { "s" }
                        );
                    }
                }
            }
            exit_code::OK
        }
        Err(all) => {
            let (warnings, diags): (Vec<_>, Vec<_>) = all.iter().partition(|d| d.warning);
            if json {
                let _ = writeln!(
                    out,
                    "{}",
                    json!({ "ok": false, "errors": diags, "warnings": warnings })
                );
            } else {
                for d in &all {
                    let _ = writeln!(err, "{}\n", d.render(color));
                }
                let files: std::collections::BTreeSet<&str> = diags.iter().map(|d| d.file.as_str()).collect();
                let _ = writeln!(
                    err,
                    "error: {} problem{} in {} file{}",
                    diags.len(),
                    if diags.len() == 1 { "" } else { "s" },
                    files.len(),
                    if files.len() == 1 { "" } else { "s" }
                );
            }
            exit_code::INVALID_CONFIG
        }
    }
}
