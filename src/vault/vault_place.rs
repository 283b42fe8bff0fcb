//! Where inline `!vault |` values are read, and the error for one anywhere else.
//!
//! The YAML loader reads the `!vault` tag in every file (as Ansible's JSON form,
//! `{ __ansible_vault: TEXT }`), but only a workflow's `vars:` decrypts it. Anywhere else
//! that form would reach drover as a mapping: a confusing type error ("expected a
//! string, found a mapping") in drover.yml, or, in the inventory's free-form `vars`, an
//! undecrypted mapping handed to templates and to Ansible. Such a value is refused where
//! it was written instead, saying where vault values go.

use crate::diag::Problem;
use crate::yaml::{Node, Path, Value};

/// The kind of file a `!vault` value was found in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VaultPlace {
    /// `drover.yml`: its secrets are `{ env: VAR }` or `{ file: PATH }` references.
    Site,
    /// The inventory: read by every command, most of which have no business with the
    /// vault password, and shown by them (node vars in plans and listings).
    Inventory,
    /// A workflow: `vars:` (at any depth) decrypts them; no other key does.
    Workflow,
}

const WHERE: &str = "vault values are read in a workflow's `vars:` and `vars_files:`, and steps use them as `{{ vars.NAME }}`";

impl VaultPlace {
    /// A problem for every inline vault value of `root` outside the places that read
    /// them, in document order.
    pub fn misplaced(self, root: &Node) -> Vec<Problem> {
        let mut found = Vec::new();
        walk(root, &Path::root(), &mut found);
        let allowed: &[&str] = match self {
            VaultPlace::Workflow => &["vars"],
            VaultPlace::Site | VaultPlace::Inventory => &[],
        };
        found
            .into_iter()
            .filter(|p| !allowed.iter().any(|a| p.starts_with(&Path::root().key(*a))))
            .map(|p| {
                let (what, help) = match self {
                    VaultPlace::Site => (
                        "drover.yml",
                        format!("{WHERE}; drover.yml's own secrets are `{{ env: VAR }}` or `{{ file: PATH }}`"),
                    ),
                    VaultPlace::Inventory => (
                        "the inventory",
                        format!("{WHERE}; a per-node secret: a var keyed by node name (`{{{{ vars.NAME[node.name] }}}}`); an `ansible:` playbook's own host_vars are decrypted by Ansible"),
                    ),
                    VaultPlace::Workflow => (
                        "this key of a workflow",
                        format!("{WHERE}; move it into `vars:` and write `{{{{ vars.NAME }}}}` here"),
                    ),
                };
                Problem::value(
                    p.clone(),
                    format!("a `!vault` value at `{p}`: {what} does not read Ansible Vault values"),
                )
                .with_help(help)
            })
            .collect()
    }
}

/// Paths of the loader's vault values (`{ __ansible_vault: TEXT }`) under `node`.
fn walk(node: &Node, at: &Path, found: &mut Vec<Path>) {
    match &node.value {
        Value::Map(entries) if entries.len() == 1 && entries[0].key == super::VAULT_KEY => {
            found.push(at.clone());
        }
        Value::Map(entries) => {
            for e in entries {
                walk(&e.value, &at.key(e.key.clone()), found);
            }
        }
        Value::Seq(items) => {
            for (i, x) in items.iter().enumerate() {
                walk(x, &at.index(i), found);
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An inline vault value whose text is indented by `n` spaces.
    fn v(n: usize) -> String {
        let pad = " ".repeat(n);
        format!("!vault |\n{pad}$ANSIBLE_VAULT;1.1;AES256\n{pad}6162\n")
    }

    fn paths(place: VaultPlace, src: &str) -> Vec<String> {
        let (root, errors) = crate::yaml::load(src);
        assert!(errors.is_empty(), "{errors:?}");
        place
            .misplaced(&root.unwrap())
            .iter()
            .map(|p| p.path.to_string())
            .collect()
    }

    #[test]
    fn a_workflow_reads_vault_values_only_under_vars() {
        let src = format!(
            "vars:\n  a: {}  b:\n    - x\n    - c: {}env:\n  X: {}steps:\n  - run: {}",
            v(4),
            v(8),
            v(4),
            v(6)
        );
        assert_eq!(paths(VaultPlace::Workflow, &src), ["env.X", "steps[0].run"]);
    }

    #[test]
    fn the_site_and_the_inventory_read_none() {
        let src = format!("nodes:\n  n1:\n    vars:\n      pw: {}vars:\n  x: {}", v(8), v(4));
        assert_eq!(paths(VaultPlace::Inventory, &src), ["nodes.n1.vars.pw", "vars.x"]);
        assert_eq!(paths(VaultPlace::Site, &src).len(), 2);
        assert!(paths(VaultPlace::Site, "vars: { a: 1 }\n").is_empty());
    }
}
