//! A workflow's effective content: what, if it changed, makes the fleet need a rollout.
//!
//! That is the workflow file and every file a `copy` or `template` step ships. Not the
//! inventory (a node added is picked up by converge, not by a rollout of every
//! workflow), nor site settings such as drain hooks or windows (they change how a
//! rollout proceeds, not what a node should have).

use std::collections::BTreeMap;
use std::path::Path;

use sha2::{Digest, Sha256};

use crate::project::Project;
use crate::workflow::{Action, Workflow};

/// Workflow name → hex sha256 of its effective content.
pub type Fingerprints = BTreeMap<String, String>;

/// The fingerprints of every workflow of `project`, whose files lie under `root` (paths
/// enter the hash relative to it, so the same content exported elsewhere hashes the same).
pub fn fingerprints(project: &Project, root: &Path) -> Fingerprints {
    project
        .workflows
        .iter()
        .map(|w| (w.name.clone(), fingerprint(w, root)))
        .collect()
}

fn fingerprint(w: &Workflow, root: &Path) -> String {
    let mut h = Sha256::new();
    let mut add = |kind: &str, path: &Path| {
        let shown = path.strip_prefix(root).unwrap_or(path);
        h.update(kind.as_bytes());
        h.update([0]);
        h.update(shown.to_string_lossy().as_bytes());
        h.update([0]);
        // A file that cannot be read hashes as its error: it changes when the file does.
        match std::fs::read(path) {
            Ok(bytes) => {
                h.update((bytes.len() as u64).to_le_bytes());
                h.update(&bytes);
            }
            Err(e) => h.update(format!("unreadable: {}", e.kind()).as_bytes()),
        }
    };
    add("workflow", Path::new(&w.file));
    for step in &w.steps {
        match &step.action {
            Action::Copy(f) => add("copy", &f.src),
            Action::Template(f) => add("template", &f.src),
            _ => {}
        }
    }
    hex::encode(h.finalize())
}
