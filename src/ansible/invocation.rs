//! One `ansible-playbook` command for one node: the files it reads (an inventory of
//! that node alone, extra vars, the callback plugin) in a private directory, and the
//! command line and environment.

use std::io::Write as _;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use serde_json::{Map, Value, json};

use crate::transport::ShellLine;

/// The callback plugin (`ANSIBLE_STDOUT_CALLBACK=drover`).
const CALLBACK: &str = include_str!("drover_callback.py");

/// How ansible reaches the node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NodeReach {
    /// ssh's arguments, which drover's own connection uses (through its master's
    /// control socket, so no new handshake, and the same identity, known_hosts, port
    /// and options if ssh has to connect anew).
    Ssh(Vec<String>),
    /// The local transport (simulated nodes): `ansible_connection=local`.
    Local,
}

/// A private directory (0700) for one invocation's files, removed when dropped: the
/// extra vars and the vault password never sit anywhere another user can read.
#[derive(Debug)]
pub struct Workdir {
    path: PathBuf,
}

impl Workdir {
    pub fn new() -> std::io::Result<Workdir> {
        static NEXT: AtomicU64 = AtomicU64::new(1);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let path = std::env::temp_dir().join(format!("drover-ansible-{}-{n}", std::process::id()));
        std::fs::DirBuilder::new().mode(0o700).create(&path)?;
        Ok(Workdir { path })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The callback's task results.
    pub fn events(&self) -> PathBuf {
        self.path.join("events.jsonl")
    }

    /// Writes `name` readable by the owner only.
    pub fn write(&self, name: &str, bytes: &[u8]) -> std::io::Result<PathBuf> {
        let p = self.path.join(name);
        if let Some(parent) = p.parent() {
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(parent)?;
        }
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&p)?;
        f.write_all(bytes)?;
        Ok(p)
    }
}

impl Drop for Workdir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.path);
    }
}

/// What to run against one node.
#[derive(Debug, Clone)]
pub struct Invocation<'a> {
    pub program: &'a Path,
    /// A playbook file, or a role directory (drover writes a play for it).
    pub playbook: Option<&'a Path>,
    pub role: Option<&'a Path>,
    pub node: &'a str,
    pub host: &'a str,
    pub port: Option<u16>,
    pub user: Option<&'a str>,
    pub reach: NodeReach,
    /// The node's inventory vars, then the step's `inventory_vars` over them.
    pub host_vars: Map<String, Value>,
    /// The node's inventory groups (`all` and `ungrouped` are Ansible's own).
    pub groups: Vec<String>,
    pub tags: &'a [String],
    pub skip_tags: &'a [String],
    pub extra_vars: Map<String, Value>,
    /// `--check --diff`: report what would change, change nothing.
    pub check: bool,
    /// For vault-encrypted files the playbook itself reads.
    pub vault_password: Option<&'a [u8]>,
}

/// The prepared command: run it with `sh -c` and these variables set.
pub struct Prepared {
    pub command: ShellLine,
    pub env: Vec<(String, String)>,
}

impl Invocation<'_> {
    /// The inventory: this node alone, in its groups, with its address and vars.
    pub fn inventory(&self) -> Value {
        let mut hv = self.host_vars.clone();
        hv.insert("ansible_host".into(), json!(self.host));
        if let Some(p) = self.port {
            hv.insert("ansible_port".into(), json!(p));
        }
        if let Some(u) = self.user {
            hv.insert("ansible_user".into(), json!(u));
        }
        match &self.reach {
            NodeReach::Ssh(args) => {
                hv.insert("ansible_connection".into(), json!("ssh"));
                // `ansible_ssh_args` replaces Ansible's defaults (its own ControlMaster
                // and ControlPersist), and comes first on ssh's command line, where ssh
                // takes the first value of each option.
                let line: Vec<String> = args.iter().map(|a| crate::transport::quote(a)).collect();
                hv.insert("ansible_ssh_args".into(), json!(line.join(" ")));
            }
            NodeReach::Local => {
                hv.insert("ansible_connection".into(), json!("local"));
            }
        }
        // The controller's own Python for a local "node" (what Ansible itself runs on);
        // found on a remote node as Ansible does, without its discovery warning.
        let python = match self.reach {
            NodeReach::Local => "{{ ansible_playbook_python }}",
            NodeReach::Ssh(_) => "auto_silent",
        };
        hv.entry("ansible_python_interpreter")
            .or_insert_with(|| json!(python));
        let mut children = Map::new();
        for g in &self.groups {
            if g != "all" && g != "ungrouped" {
                children.insert(g.clone(), json!({ "hosts": { self.node: null } }));
            }
        }
        json!({ "all": { "hosts": { self.node: hv }, "children": children } })
    }

    /// Writes the files into `dir` and builds the command.
    pub fn prepare(&self, dir: &Workdir) -> std::io::Result<Prepared> {
        let inventory = dir.write(
            "inventory.json",
            serde_json::to_string_pretty(&self.inventory())
                .unwrap_or_default()
                .as_bytes(),
        )?;
        let extra = dir.write(
            "extra_vars.json",
            Value::Object(self.extra_vars.clone()).to_string().as_bytes(),
        )?;
        dir.write("callback_plugins/drover.py", CALLBACK.as_bytes())?;
        dir.write("events.jsonl", b"")?;
        let (playbook, cwd) = match (self.playbook, self.role) {
            (Some(p), _) => (p.to_path_buf(), p.parent().map(Path::to_path_buf)),
            (None, Some(role)) => {
                // By name, from its parent directory (`ANSIBLE_ROLES_PATH` below): task
                // names read `ntp : install chrony`, and the roles beside it (its
                // dependencies) are found.
                let name = role
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default();
                let play = json!([{ "name": format!("role {name}"), "hosts": "all",
                    "roles": [{ "role": name }] }]);
                let p = dir.write("play.yml", play.to_string().as_bytes())?;
                (p, role.parent().map(Path::to_path_buf))
            }
            (None, None) => return Err(std::io::Error::other("no playbook or role")),
        };
        let mut cmd = ShellLine::new();
        // The playbook's directory: where Ansible finds an `ansible.cfg` of the site's.
        if let Some(cwd) = cwd {
            cmd = cmd.code("cd ").value(cwd.display().to_string()).code(" && ");
        }
        cmd = cmd
            .code("exec ")
            .value(self.program.display().to_string())
            .code(" -i ")
            .value(inventory.display().to_string())
            .code(" --limit ")
            .value(self.node)
            .code(" -e ")
            .value(format!("@{}", extra.display()));
        if !self.tags.is_empty() {
            cmd = cmd.code(" --tags ").value(self.tags.join(","));
        }
        if !self.skip_tags.is_empty() {
            cmd = cmd.code(" --skip-tags ").value(self.skip_tags.join(","));
        }
        if self.check {
            cmd = cmd.code(" --check --diff");
        }
        if let Some(pw) = self.vault_password {
            let f = dir.write("vault_password", pw)?;
            cmd = cmd.code(" --vault-password-file ").value(f.display().to_string());
        }
        cmd = cmd.code(" ").value(playbook.display().to_string());
        let d = dir.path();
        let mut env = vec![
            ("ANSIBLE_STDOUT_CALLBACK".into(), "drover".into()),
            (
                "ANSIBLE_CALLBACK_PLUGINS".into(),
                d.join("callback_plugins").display().to_string(),
            ),
            ("DROVER_ANSIBLE_EVENTS".into(), dir.events().display().to_string()),
            ("ANSIBLE_NOCOLOR".into(), "1".into()),
            ("ANSIBLE_FORCE_COLOR".into(), "0".into()),
            ("ANSIBLE_RETRY_FILES_ENABLED".into(), "0".into()),
            ("ANSIBLE_LOCAL_TEMP".into(), d.join("tmp").display().to_string()),
        ];
        if let Some(parent) = self.role.and_then(Path::parent) {
            env.push(("ANSIBLE_ROLES_PATH".into(), parent.display().to_string()));
        }
        Ok(Prepared { command: cmd, env })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn inv<'a>(program: &'a Path, playbook: &'a Path) -> Invocation<'a> {
        Invocation {
            program,
            playbook: Some(playbook),
            role: None,
            node: "n1",
            host: "10.0.0.1",
            port: Some(2222),
            user: Some("root"),
            reach: NodeReach::Ssh(vec!["-o".into(), "UserKnownHostsFile=\"/a b\" /c".into()]),
            host_vars: [("rack".to_string(), json!(3))].into_iter().collect(),
            groups: vec!["all".into(), "rack03".into()],
            tags: &[],
            skip_tags: &[],
            extra_vars: Map::new(),
            check: true,
            vault_password: Some(b"pw"),
        }
    }

    #[test]
    fn the_inventory_holds_the_node_its_address_groups_and_ssh_arguments() {
        let (prog, pb) = (
            PathBuf::from("/opt/a/ansible-playbook"),
            PathBuf::from("/site/p.yml"),
        );
        let i = inv(&prog, &pb).inventory();
        let h = &i["all"]["hosts"]["n1"];
        assert_eq!(h["ansible_host"], "10.0.0.1");
        assert_eq!(h["ansible_port"], 2222);
        assert_eq!(h["rack"], 3);
        assert_eq!(h["ansible_ssh_args"], "-o 'UserKnownHostsFile=\"/a b\" /c'");
        assert!(i["all"]["children"].get("all").is_none());
        assert!(i["all"]["children"]["rack03"]["hosts"].get("n1").is_some());
    }

    #[test]
    fn files_are_private_and_the_command_checks_with_diff() {
        use std::os::unix::fs::PermissionsExt;
        let (prog, pb) = (
            PathBuf::from("/opt/a/ansible-playbook"),
            PathBuf::from("/site/p.yml"),
        );
        let dir = Workdir::new().unwrap();
        let p = inv(&prog, &pb).prepare(&dir).unwrap();
        let c = p.command.as_str().to_string();
        assert!(
            c.starts_with("cd /site && exec /opt/a/ansible-playbook -i "),
            "{c}"
        );
        assert!(c.contains(" --limit n1 "), "{c}");
        assert!(c.contains(" --check --diff --vault-password-file "), "{c}");
        assert!(c.ends_with(" /site/p.yml"), "{c}");
        let mode = |f: &str| {
            std::fs::metadata(dir.path().join(f))
                .unwrap()
                .permissions()
                .mode()
                & 0o777
        };
        assert_eq!(mode("vault_password"), 0o600);
        assert_eq!(mode("extra_vars.json"), 0o600);
        assert_eq!(mode(""), 0o700);
        let path = dir.path().to_path_buf();
        drop(dir);
        assert!(!path.exists());
    }
}
