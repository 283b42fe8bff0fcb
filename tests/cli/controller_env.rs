//! `env:` of the site and the workflow reaches commands drover runs on the controller.

use drover::exit_code;

use super::bed::{Bed, workflow};

#[test]
fn env_reaches_controller_hooks_and_local_steps_workflow_over_site() {
    let bed = Bed::start(1, false);
    let out_dir = bed.tb.dir().join("nodes");
    let seen = out_dir.join("hook-env");
    let local = out_dir.join("local-env");
    let hooks = format!(
        "env: {{ SLURM_CONF: /etc/site-slurm.conf, WHO: site }}\n\
         drain:\n  run_on: controller\n  drain: \"printf '%s %s' \\\"$SLURM_CONF\\\" \\\"$WHO\\\" > {}\"\n  drained: \"test -e {}\"\n  resume: \"true\"\n",
        seen.display(),
        seen.display()
    );
    bed.site_with_config("", &hooks);
    let steps = format!(
        "- name: on controller\n  local: \"printf '%s' \\\"$WHO\\\" > {}\"\n  change: drain\n",
        local.display()
    );
    bed.write(
        "workflows/w.yml",
        &workflow(
            "env: { WHO: workflow }\nstrategy: { batch: [\"100%\"] }\n",
            &steps,
        ),
    );
    let out = bed.drover(&["run", "w", "--yes", "--json", "--tags", "drain"]);
    out.expect(exit_code::OK);
    assert_eq!(
        std::fs::read_to_string(&seen).unwrap_or_else(|e| panic!("the drain hook did not run ({e})\n{out}")),
        "/etc/site-slurm.conf workflow",
        "{out}"
    );
    assert_eq!(
        std::fs::read_to_string(&local).expect("the local step ran"),
        "workflow",
        "{out}"
    );
}

#[test]
fn a_bad_variable_name_is_a_validation_error() {
    let bed = Bed::start(1, false);
    bed.site_with_config("", "env: { \"1BAD\": x }\n");
    bed.write(
        "workflows/w.yml",
        &workflow("", "- name: a\n  run: \"true\"\n  change: hot\n"),
    );
    let out = bed.drover(&["check", "w"]);
    assert_ne!(out.code, exit_code::OK, "{out}");
    assert!(
        out.stderr.contains("invalid environment variable name `1BAD`"),
        "{out}"
    );
}
