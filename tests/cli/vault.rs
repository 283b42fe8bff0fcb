//! Ansible Vault: files and inline values made by the real `ansible-vault` decrypt;
//! a wrong password or a changed byte is refused before anything runs; the plaintexts
//! appear in no output, log or the state database.

use std::path::Path;
use std::process::{Command, Stdio};

use super::ansible::ansible_bin;

const SECRETS: [&str; 3] = ["correct-horse-1", "tok-2-prod", "inline-3-value"];

fn write(root: &Path, rel: &str, text: &str) {
    let p = root.join(rel);
    std::fs::create_dir_all(p.parent().expect("parent")).expect("mkdir");
    std::fs::write(p, text).expect("write");
}

fn vault(bin: &Path, site: &Path, args: &[&str]) -> String {
    let out = Command::new(bin.join("ansible-vault"))
        .args(args)
        .current_dir(site)
        .stdin(Stdio::null())
        .output()
        .expect("run ansible-vault");
    assert!(
        out.status.success(),
        "ansible-vault {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

struct Out {
    code: i32,
    text: String,
}

fn drover(site: &Path, bin: &Path, args: &[&str], env: &[(&str, &str)]) -> Out {
    let mut c = Command::new(env!("CARGO_BIN_EXE_drover"));
    c.args(args)
        .current_dir(site)
        .env("NO_COLOR", "1")
        .env("DROVER_ANSIBLE_PLAYBOOK", bin.join("ansible-playbook"))
        .stdin(Stdio::null());
    for (k, v) in env {
        c.env(k, v);
    }
    let out = c.output().expect("run drover");
    let text = format!(
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!text.contains("panicked"), "{text}");
    Out {
        code: out.status.code().unwrap_or(-1),
        text,
    }
}

/// A local-transport site whose workflow reads a 1.1 vault file, a 1.2 (vault id)
/// file and an inline value, all made by `ansible-vault`, and puts them into a command,
/// a file on the "node" and an `ansible:` step's extra vars.
fn site(bin: &Path) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("site");
    let s = dir.path();
    write(
        s,
        "drover.yml",
        "transport: local\nvault: { password_file: .vault-pass }\n",
    );
    write(s, ".vault-pass", "hunter2\n");
    write(s, "inventory.yml", "nodes:\n  n1: { host: 127.0.0.1 }\n");
    write(s, "vars/secrets.yml", &format!("db_password: {}\n", SECRETS[0]));
    vault(
        bin,
        s,
        &[
            "encrypt",
            "--vault-password-file",
            ".vault-pass",
            "vars/secrets.yml",
        ],
    );
    write(s, "vars/prod.yml", &format!("api_token: {}\n", SECRETS[1]));
    vault(
        bin,
        s,
        &["encrypt", "--vault-id", "prod@.vault-pass", "vars/prod.yml"],
    );
    let inline = vault(
        bin,
        s,
        &[
            "encrypt_string",
            "--vault-password-file",
            ".vault-pass",
            SECRETS[2],
            "--name",
            "inline_secret",
        ],
    );
    assert!(
        std::fs::read_to_string(s.join("vars/secrets.yml"))
            .expect("read the vault file")
            .starts_with("$ANSIBLE_VAULT;1.1;AES256")
    );
    assert!(
        std::fs::read_to_string(s.join("vars/prod.yml"))
            .expect("read the vault file")
            .starts_with("$ANSIBLE_VAULT;1.2;AES256;prod")
    );
    let inline: String = inline.lines().map(|l| format!("  {l}\n")).collect();
    write(
        s,
        "playbooks/site.yml",
        "- hosts: all\n  gather_facts: false\n  tasks:\n    - name: write the token\n      ansible.builtin.copy: { dest: \"{{ out }}\", content: \"{{ token }}\\n\" }\n",
    );
    write(
        s,
        "workflows/w.yml",
        &format!(
            "name: w\nversion: 1\ntargets: {{ nodes: [n1] }}\ncanary: {{ size: 0 }}\nvars_files: [../vars/secrets.yml, ../vars/prod.yml]\nvars:\n{inline}\
             steps:\n  - name: use them\n    change: hot\n    \
             local: \"echo said {{{{ vars.db_password }}}} {{{{ vars.api_token }}}} {{{{ vars.inline_secret }}}}; \
             printf '%s %s %s' {{{{ vars.db_password }}}} {{{{ vars.api_token }}}} {{{{ vars.inline_secret }}}} > {{{{ site.state_dir }}}}/seen\"\n  \
             - name: ansible too\n    change: hot\n    \
             ansible: {{ playbook: ../playbooks/site.yml, extra_vars: {{ token: \"{{{{ vars.api_token }}}}\", out: \"{{{{ site.state_dir }}}}/token\" }} }}\n  \
             - name: db conf\n    change: hot\n    \
             template: {{ src: files/db.conf.j2, dest: \"{{{{ site.state_dir }}}}/db.conf\" }}\n"
        ),
    );
    write(
        s,
        "workflows/files/db.conf.j2",
        "user=app\npassword={{ vars.db_password }}\nport=80\n",
    );
    dir
}

#[test]
fn vault_files_and_inline_values_decrypt_and_never_show() {
    let Some(bin) = ansible_bin() else { return };
    let dir = site(&bin);
    let s = dir.path();
    let sp = s.to_str().unwrap();
    let mut seen = String::new();
    let validate = drover(s, &bin, &["validate", sp, "--json"], &[]);
    assert_eq!(validate.code, 0, "{}", validate.text);
    seen += &validate.text;
    let check = drover(s, &bin, &["check", "w", "--site", sp, "--json"], &[]);
    seen += &check.text;
    let check = drover(s, &bin, &["check", "w", "--site", sp], &[]);
    seen += &check.text;
    let plan = drover(s, &bin, &["plan", "w", "--site", sp, "--json"], &[]);
    seen += &plan.text;
    let run = drover(s, &bin, &["run", "w", "--site", sp, "--yes", "--json"], &[]);
    assert_eq!(run.code, 0, "{}", run.text);
    seen += &run.text;
    let human = drover(s, &bin, &["run", "w", "--site", sp, "--yes"], &[]);
    seen += &human.text;
    // `--diff` of a template with a vault value in it, on both sides of the diff (the
    // file on the node was written by the run): masked.
    let conf = s.join(".drover/db.conf");
    let written = std::fs::read_to_string(&conf).unwrap();
    assert_eq!(written, format!("user=app\npassword={}\nport=80\n", SECRETS[0]));
    std::fs::write(&conf, written.replace("port=80", "port=81")).unwrap();
    let diff = drover(s, &bin, &["check", "w", "--site", sp, "--diff"], &[]);
    assert!(
        diff.text
            .contains(" user=app\n password=********\n-port=81\n+port=80\n"),
        "{}",
        diff.text
    );
    seen += &diff.text;
    seen += &drover(s, &bin, &["check", "w", "--site", sp, "--diff", "--json"], &[]).text;
    seen += &drover(s, &bin, &["run", "w", "--site", sp, "--dry-run", "--diff"], &[]).text;

    // Decrypted right: the command and the playbook got the plaintexts.
    assert_eq!(
        std::fs::read_to_string(s.join(".drover/seen")).unwrap(),
        SECRETS.join(" ")
    );
    assert_eq!(
        std::fs::read_to_string(s.join(".drover/token")).unwrap(),
        format!("{}\n", SECRETS[1])
    );

    let run_id = run
        .text
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .find_map(|e| e["run"].as_str().map(str::to_string))
        .unwrap_or_else(|| panic!("no run id\n{}", run.text));
    seen += &drover(s, &bin, &["runs", "show", &run_id, "--site", sp, "--json"], &[]).text;
    seen += &drover(s, &bin, &["runs", "list", "--site", sp, "--json"], &[]).text;
    let logs = drover(s, &bin, &["runs", "logs", &run_id, "--site", sp], &[]);
    assert!(
        logs.text.contains("said ******** ******** ********"),
        "{}",
        logs.text
    );
    seen += &logs.text;
    // Every log file and the state database, bytes as they are on disk.
    let mut files = Vec::new();
    for sub in [".drover", ".drover/logs"] {
        for e in std::fs::read_dir(s.join(sub)).unwrap().flatten() {
            if e.path().is_file() && !["seen", "token", "db.conf"].iter().any(|n| e.file_name() == *n) {
                files.push(e.path());
            }
        }
    }
    assert!(
        files.iter().any(|f| f.to_string_lossy().ends_with("drover.db")),
        "{files:?}"
    );
    for f in &files {
        seen += &String::from_utf8_lossy(&std::fs::read(f).unwrap());
    }
    for secret in SECRETS {
        assert!(!seen.contains(secret), "`{secret}` leaked:\n{seen}");
    }
}

#[test]
fn a_wrong_password_or_a_changed_byte_is_refused_and_nothing_runs() {
    let Some(bin) = ansible_bin() else { return };
    let dir = site(&bin);
    let s = dir.path();
    let sp = s.to_str().unwrap();
    write(s, "drover.yml", "transport: local\nvault: { env: VAULT_PW }\n");
    let out = drover(
        s,
        &bin,
        &["run", "w", "--site", sp, "--yes"],
        &[("VAULT_PW", "not-it")],
    );
    assert_eq!(out.code, drover::exit_code::INVALID_CONFIG, "{}", out.text);
    assert!(
        out.text.contains("cannot decrypt `../vars/secrets.yml`"),
        "{}",
        out.text
    );
    assert!(
        out.text
            .contains("wrong vault password, or the vault data was changed"),
        "{}",
        out.text
    );
    assert!(
        out.text.contains("cannot decrypt this `!vault` value"),
        "{}",
        out.text
    );
    assert!(!s.join(".drover/seen").exists(), "nothing ran");
    let out = drover(s, &bin, &["validate", sp], &[]);
    assert!(
        out.text
            .contains("the vault password variable `VAULT_PW` is not set"),
        "{}",
        out.text
    );

    // The right password, but one byte of the ciphertext flipped.
    let path = s.join("vars/secrets.yml");
    let mut text = std::fs::read_to_string(&path).unwrap().into_bytes();
    let at = text.len() - 5;
    text[at] = if text[at] == b'0' { b'1' } else { b'0' };
    std::fs::write(&path, text).unwrap();
    let out = drover(
        s,
        &bin,
        &["run", "w", "--site", sp, "--yes"],
        &[("VAULT_PW", "hunter2")],
    );
    assert_eq!(out.code, drover::exit_code::INVALID_CONFIG, "{}", out.text);
    assert!(
        out.text.contains("cannot decrypt `../vars/secrets.yml`"),
        "{}",
        out.text
    );
    assert!(
        !out.text.contains("cannot decrypt `../vars/prod.yml`"),
        "{}",
        out.text
    );
    assert!(!s.join(".drover/seen").exists(), "nothing ran");
}

#[test]
fn drover_reads_what_ansible_vault_writes_and_the_other_way() {
    let Some(bin) = ansible_bin() else { return };
    let dir = tempfile::tempdir().unwrap();
    let s = dir.path();
    write(s, "pw", "pw-1\n");
    write(s, "a.txt", "line one\nline two\n");
    vault(&bin, s, &["encrypt", "--vault-id", "dev@pw", "a.txt"]);
    let text = std::fs::read_to_string(s.join("a.txt")).unwrap();
    let v = drover::vault::VaultText::parse(&text).unwrap();
    assert_eq!(v.id.as_deref(), Some("dev"));
    assert_eq!(v.decrypt(b"pw-1").unwrap(), b"line one\nline two\n");
    let ours = drover::vault::VaultText::encrypt(b"from drover\n", b"pw-1", None).unwrap();
    write(s, "b.txt", &ours);
    assert_eq!(
        vault(&bin, s, &["view", "--vault-password-file", "pw", "b.txt"]),
        "from drover\n"
    );
}

/// What the inventory refuses (a `!vault` value) an `ansible:` step's playbook may keep
/// in its own `host_vars/`: Ansible decrypts it with the password drover passes on.
#[test]
fn a_playbooks_own_vault_host_vars_decrypt_with_the_sites_password() {
    let Some(bin) = ansible_bin() else { return };
    let dir = site(&bin);
    let s = dir.path();
    let sp = s.to_str().unwrap();
    write(s, "playbooks/host_vars/n1.yml", "bmc_password: bmc-4-secret\n");
    vault(
        &bin,
        s,
        &[
            "encrypt",
            "--vault-password-file",
            ".vault-pass",
            "playbooks/host_vars/n1.yml",
        ],
    );
    write(
        s,
        "playbooks/bmc.yml",
        "- hosts: all\n  gather_facts: false\n  tasks:\n    - name: write the bmc password\n      no_log: true\n      \
         ansible.builtin.copy: { dest: \"{{ out }}\", content: \"{{ bmc_password }}\\n\" }\n",
    );
    write(
        s,
        "workflows/w.yml",
        "name: w\nversion: 1\ntargets: { nodes: [n1] }\ncanary: { size: 0 }\nsteps:\n  - name: bmc\n    change: hot\n    \
         ansible: { playbook: ../playbooks/bmc.yml, check_mode: false, extra_vars: { out: \"{{ site.state_dir }}/bmc\" } }\n",
    );
    let run = drover(s, &bin, &["run", "w", "--site", sp, "--yes"], &[]);
    assert_eq!(run.code, 0, "{}", run.text);
    assert_eq!(
        std::fs::read_to_string(s.join(".drover/bmc")).unwrap(),
        "bmc-4-secret\n"
    );
    // The same value in the inventory is refused (tests/cli/validate_errors.rs).
}

/// A failing step that prints vault values: the stop notification the outbox holds for
/// Slack and the webhooks quotes the step's last output lines, masked like the run log.
#[test]
fn a_stop_notification_quotes_the_failed_output_with_vault_values_masked() {
    let Some(bin) = ansible_bin() else { return };
    let dir = site(&bin);
    let s = dir.path();
    let sp = s.to_str().unwrap();
    write(
        s,
        "workflows/fails.yml",
        "name: fails\nversion: 1\ntargets: { nodes: [n1] }\ncanary: { size: 0 }\n\
         vars_files: [../vars/secrets.yml, ../vars/prod.yml]\nsteps:\n  - name: breaks\n    change: hot\n    \
         local: \"echo leaked {{ vars.db_password }} {{ vars.api_token }}; exit 3\"\n",
    );
    let run = drover(s, &bin, &["run", "fails", "--site", sp, "--yes"], &[]);
    assert_ne!(run.code, 0, "{}", run.text);
    let db = rusqlite::Connection::open(s.join(".drover/drover.db")).unwrap();
    let rows: Vec<(String, String)> = db
        .prepare("SELECT kind, payload FROM outbox ORDER BY id")
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    let stop = rows
        .iter()
        .find(|(kind, _)| kind == "run_stopped")
        .unwrap_or_else(|| panic!("no run_stopped notice: {rows:?}\n{}", run.text));
    assert!(stop.1.contains("leaked ******** ********"), "{}", stop.1);
    for (_, payload) in &rows {
        for secret in SECRETS {
            assert!(!payload.contains(secret), "`{secret}` in a notice: {payload}");
        }
    }
}
