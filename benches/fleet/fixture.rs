//! The same 5-operation change, written once per tool, and the check that it was done.

use std::fmt::Write as _;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use drover_testbed::Testbed;

/// The small file every tool copies.
pub const CONF: &str = "listen = 8080\nworkers = 4\n";
/// The value of the template's variable.
const APP: &str = "demo";

/// Where each tool's input lives for one testbed.
pub struct Fixture {
    pub n: usize,
    /// A drover site (`drover.yml`, inventory, `workflows/bench.yml`).
    pub site: PathBuf,
    /// `ansible.cfg`, `inventory.ini`, `playbook.yml`, `files/`, `templates/`.
    pub ansible: PathBuf,
    /// `inventory.py`, `deploy.py`, `files/`, `templates/`.
    pub pyinfra: PathBuf,
    /// The floor: `node.sh` (one node's five ssh commands) and `app.conf`.
    pub floor: PathBuf,
    /// The testbed's client config, which every OpenSSH-based tool uses.
    pub ssh_config: PathBuf,
}

impl Fixture {
    pub fn write(dir: &Path, bed: &Testbed) -> Fixture {
        let n = bed.nodes().len();
        let fx = Fixture {
            n,
            site: dir.join("site"),
            ansible: dir.join("ansible"),
            pyinfra: dir.join("pyinfra"),
            floor: dir.join("floor"),
            ssh_config: bed.ssh_config(),
        };
        fx.write_drover(bed);
        fx.write_ansible(bed);
        fx.write_pyinfra(bed);
        fx.write_floor();
        fx
    }

    /// For the kex bench: drover's `ssh.kex_algorithms` (`None` leaves ssh's own
    /// preference). That bench measures CPU time on a shared machine, where a handshake
    /// may wait its turn past the default 10 s, so it allows `connect_timeout: 60s`.
    pub fn set_kex(&self, bed: &Testbed, kex: Option<&str>) {
        let kex = kex
            .map(|k| format!("  kex_algorithms: {k}\n"))
            .unwrap_or_default();
        self.write_drover_yml(bed, &format!("  connect_timeout: 60s\n{kex}"));
    }

    fn write_drover_yml(&self, bed: &Testbed, extra: &str) {
        write(
            &self.site.join("drover.yml"),
            &format!(
                "state_dir: state\nssh:\n  config: {}\n  forks: {}\n{extra}",
                bed.ssh_config().display(),
                self.n
            ),
        );
    }

    fn write_drover(&self, bed: &Testbed) {
        let site = &self.site;
        mkdir(&site.join("workflows/files"));
        self.write_drover_yml(bed, "");
        write(&site.join("inventory.yml"), &bed.inventory_yaml());
        write(&site.join("workflows/files/app.conf"), CONF);
        write(
            &site.join("workflows/files/motd.j2"),
            "node {{ node.name }} runs {{ vars.app }}\n",
        );
        // Steps 2-4 have no check: they are helper steps, run wherever step 1 is needed.
        // Step 5's check says "done", so it never runs: the check that finds nothing to do.
        write(
            &site.join("workflows/bench.yml"),
            &format!(
                "name: bench\nversion: 1\ntargets: {{ nodes: [\"@all\"] }}\ncanary: {{ size: 0 }}\n\
                 strategy: {{ batch: \"100%\" }}\nvars: {{ app: {APP} }}\nsteps:\n\
                 \x20 - name: app dir\n    run: mkdir -p {{{{ node.vars.state }}}}/app\n    check: test -d {{{{ node.vars.state }}}}/app && exit 0 || exit 1\n    change: hot\n\
                 \x20 - name: config\n    copy: {{ src: files/app.conf, dest: \"{{{{ node.vars.state }}}}/app/app.conf\", mode: \"0644\" }}\n    change: hot\n\
                 \x20 - name: motd\n    template: {{ src: files/motd.j2, dest: \"{{{{ node.vars.state }}}}/app/motd\" }}\n    change: hot\n\
                 \x20 - name: kernel\n    run: uname -r | grep -q .\n    change: hot\n\
                 \x20 - name: nothing to do\n    run: echo never\n    check: \"true\"\n    change: hot\n"
            ),
        );
    }

    fn write_ansible(&self, bed: &Testbed) {
        let a = &self.ansible;
        mkdir(&a.join("files"));
        mkdir(&a.join("templates"));
        write(&a.join("files/app.conf"), CONF);
        write(
            &a.join("templates/motd.j2"),
            "node {{ inventory_hostname }} runs {{ app }}\n",
        );
        // Hosts by name: ssh resolves them through the testbed's ssh_config (`-F`), like
        // drover and the floor do.
        let mut inv = String::from("[nodes]\n");
        for node in bed.nodes() {
            let _ = writeln!(inv, "{} state={}", node.name, node.state_dir.display());
        }
        let _ = writeln!(inv, "\n[nodes:vars]\napp={APP}");
        write(&a.join("inventory.ini"), &inv);
        // The control path dir is set per run (ANSIBLE_SSH_CONTROL_PATH_DIR) so every run
        // starts without masters, like drover's.
        write(
            &a.join("ansible.cfg"),
            &format!(
                "[defaults]\ninventory = {inv}\nforks = {n}\ngathering = explicit\n\
                 host_key_checking = True\ninterpreter_python = /usr/bin/python3\n\
                 retry_files_enabled = False\n\n\
                 [ssh_connection]\npipelining = True\n\
                 ssh_args = -F {cfg} -o ControlMaster=auto -o ControlPersist=60s\n\
                 control_path = %(directory)s/%%C\n",
                inv = a.join("inventory.ini").display(),
                n = self.n,
                cfg = bed.ssh_config().display(),
            ),
        );
        write(
            &a.join("playbook.yml"),
            "- hosts: nodes\n\
             \x20 gather_facts: false\n\
             \x20 tasks:\n\
             \x20   - name: app dir\n\
             \x20     ansible.builtin.file: { path: \"{{ state }}/app\", state: directory }\n\
             \x20   - name: config\n\
             \x20     ansible.builtin.copy: { src: files/app.conf, dest: \"{{ state }}/app/app.conf\", mode: \"0644\" }\n\
             \x20   - name: motd\n\
             \x20     ansible.builtin.template: { src: templates/motd.j2, dest: \"{{ state }}/app/motd\" }\n\
             \x20   - name: kernel\n\
             \x20     ansible.builtin.command: uname -r\n\
             \x20     register: kernel\n\
             \x20     failed_when: kernel.rc != 0 or kernel.stdout | length == 0\n\
             \x20   - name: nothing to do\n\
             \x20     ansible.builtin.file: { path: \"{{ state }}\", state: directory }\n",
        );
    }

    fn write_pyinfra(&self, bed: &Testbed) {
        let p = &self.pyinfra;
        mkdir(&p.join("files"));
        mkdir(&p.join("templates"));
        write(&p.join("files/app.conf"), CONF);
        write(
            &p.join("templates/motd.j2"),
            "node {{ host.name }} runs {{ app }}\n",
        );
        // paramiko is given the testbed's key, known_hosts and strict checking explicitly,
        // and the testbed's ssh_config for anything else it reads from one.
        let mut inv = String::from("# drover bench: generated.\nhosts = [\n");
        for node in bed.nodes() {
            let _ = writeln!(
                inv,
                "    ({name:?}, {{\"ssh_hostname\": {host:?}, \"ssh_port\": {port}, \
                 \"ssh_user\": {user:?}, \"ssh_key\": {key:?}, \"ssh_known_hosts_file\": {known:?}, \
                 \"ssh_strict_host_key_checking\": \"yes\", \"ssh_config_file\": {cfg:?}, \
                 \"state\": {state:?}, \"app\": {APP:?}}}),",
                name = node.name,
                host = node.host,
                port = node.port,
                user = bed.user(),
                key = bed.identity().display().to_string(),
                known = bed.known_hosts().display().to_string(),
                cfg = bed.ssh_config().display().to_string(),
                state = node.state_dir.display().to_string(),
            );
        }
        inv.push_str("]\n");
        write(&p.join("inventory.py"), &inv);
        write(
            &p.join("deploy.py"),
            "from pyinfra import host\n\
             from pyinfra.operations import files, server\n\n\
             node_dir = host.data.state\n\
             files.directory(name=\"app dir\", path=f\"{node_dir}/app\")\n\
             files.put(name=\"config\", src=\"files/app.conf\", dest=f\"{node_dir}/app/app.conf\", mode=\"644\")\n\
             files.template(name=\"motd\", src=\"templates/motd.j2\", dest=f\"{node_dir}/app/motd\", app=host.data.app)\n\
             # Fails the operation, and so the deploy, when uname -r prints nothing.\n\
             server.shell(name=\"kernel\", commands=[\"uname -r | grep -q .\"])\n\
             # The node dir exists: pyinfra's facts find nothing to change.\n\
             files.directory(name=\"nothing to do\", path=node_dir)\n",
        );
    }

    fn write_floor(&self) {
        mkdir(&self.floor);
        write(&self.floor.join("app.conf"), CONF);
        write(&self.floor.join("node.sh"), FLOOR_SCRIPT);
        write(&self.floor.join("one-script.sh"), ONE_SCRIPT);
    }
}

/// The floor: per node, the five operations as five ssh commands over one ControlMaster
/// connection (`$CM`), run by `xargs -P N -L 1 sh node.sh NODE STATE`.
const FLOOR_SCRIPT: &str = r#"node=$1; state=$2
s() { ssh -F "$CFG" -o ControlMaster=auto -o "ControlPath=$CM/%C" -o ControlPersist=60s "$node" "$@"; }
s "test -d $state/app || mkdir -p $state/app" &&
s "cat > $state/app/app.conf && chmod 0644 $state/app/app.conf" < "$CONF" &&
printf 'node %s runs demo\n' "$node" | s "cat > $state/app/motd" &&
s "uname -r | grep -q ." &&
s "true"
"#;

/// Every node back to "needs the change".
/// The least any tool can do: one connection and one command per node, the file on
/// its input, no lock, no timeout, no check.
const ONE_SCRIPT: &str = r#"node=$1; state=$2
ssh -F "$CFG" -o ControlMaster=no "$node" "test -d $state/app || mkdir -p $state/app; cat > $state/app/app.conf && chmod 0644 $state/app/app.conf && printf 'node %s runs demo\n' $node > $state/app/motd && uname -r | grep -q . && true" < "$CONF"
"#;

pub fn reset(bed: &Testbed) {
    for node in bed.nodes() {
        let _ = std::fs::remove_dir_all(node.state_dir.join("app"));
    }
}

/// Every node has the change: a user-owned `app` dir, `app.conf` (mode 0644) and the
/// rendered `motd`. Names the first node that does not.
pub fn verify(bed: &Testbed) -> Result<(), String> {
    let uid = std::fs::metadata(bed.dir()).map_err(|e| e.to_string())?.uid();
    for node in bed.nodes() {
        let app = node.state_dir.join("app");
        let owner = std::fs::metadata(&app).map(|m| m.uid());
        if !app.is_dir() || owner.ok() != Some(uid) {
            return Err(format!("{}: no app dir owned by uid {uid}", node.name));
        }
        let conf = app.join("app.conf");
        if std::fs::read_to_string(&conf).ok().as_deref() != Some(CONF) {
            return Err(format!("{}: app.conf missing or wrong", node.name));
        }
        let mode = std::fs::metadata(&conf).map_or(0, |m| m.permissions().mode() & 0o7777);
        if mode != 0o644 {
            return Err(format!("{}: app.conf mode is {mode:o}, not 644", node.name));
        }
        let motd = std::fs::read_to_string(app.join("motd")).unwrap_or_default();
        let want = format!("node {} runs {APP}\n", node.name);
        if motd != want {
            return Err(format!("{}: motd is {motd:?}, not {want:?}", node.name));
        }
    }
    Ok(())
}

fn mkdir(path: &Path) {
    std::fs::create_dir_all(path).unwrap_or_else(|e| panic!("mkdir {}: {e}", path.display()));
}

fn write(path: &Path, text: &str) {
    std::fs::write(path, text).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
}
