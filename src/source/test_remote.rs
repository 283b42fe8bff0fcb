//! A real git repository in a temp dir, standing in for the site's remote in tests:
//! commits are made with git2 exactly as a user's git makes them (signed ones with
//! `ssh-keygen -Y sign`, put in `gpgsig` by `commit_signed`).

use std::path::{Path, PathBuf};
use std::process::Command;

use git2::{Oid, Repository, Signature};

pub(crate) const SITE: &str = "transport: local\ninventory: inventory.yml\nworkflows: workflows\n";
pub(crate) const INVENTORY: &str = "canary: [n1]\nnodes:\n  n[1-4]: {}\n";

pub(crate) fn workflow(name: &str, version: u32, command: &str) -> String {
    format!(
        "name: {name}\nversion: {version}\ntargets:\n  nodes: [\"n[1-4]\"]\nsteps:\n  - name: s\n    run: '{command}'\n    change: hot\n"
    )
}

pub(crate) struct TestRemote {
    pub(crate) dir: tempfile::TempDir,
    pub(crate) repo: Repository,
}

impl TestRemote {
    pub(crate) fn new() -> TestRemote {
        let dir = tempfile::tempdir().unwrap();
        let repo = Repository::init(dir.path()).unwrap();
        repo.set_head("refs/heads/main").unwrap();
        TestRemote { dir, repo }
    }

    pub(crate) fn url(&self) -> String {
        self.dir.path().to_string_lossy().into_owned()
    }

    /// A valid site with workflows `a` and `b`, committed.
    pub(crate) fn with_site() -> (TestRemote, Oid) {
        let r = TestRemote::new();
        let a = workflow("a", 1, "true");
        let b = workflow("b", 1, "true");
        let c = r.commit(
            &[
                ("drover.yml", SITE),
                ("inventory.yml", INVENTORY),
                ("workflows/a.yml", &a),
                ("workflows/b.yml", &b),
            ],
            "site",
        );
        (r, c)
    }

    fn write(&self, files: &[(&str, &str)]) -> Oid {
        for (rel, text) in files {
            let p = self.dir.path().join(rel);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, text).unwrap();
        }
        let mut index = self.repo.index().unwrap();
        index.add_all(["*"], git2::IndexAddOption::DEFAULT, None).unwrap();
        index.update_all(["*"], None).unwrap();
        index.write().unwrap();
        index.write_tree().unwrap()
    }

    pub(crate) fn remove(&self, rel: &str) {
        std::fs::remove_file(self.dir.path().join(rel)).unwrap();
    }

    fn author() -> Signature<'static> {
        Signature::now("Ada Lovelace", "ada@example.com").unwrap()
    }

    fn parents(&self) -> Vec<git2::Commit<'_>> {
        self.repo
            .head()
            .ok()
            .and_then(|h| h.peel_to_commit().ok())
            .into_iter()
            .collect()
    }

    /// Writes the files and commits them on `main`.
    pub(crate) fn commit(&self, files: &[(&str, &str)], message: &str) -> Oid {
        let tree = self.repo.find_tree(self.write(files)).unwrap();
        let parents = self.parents();
        let refs: Vec<&git2::Commit<'_>> = parents.iter().collect();
        let sig = Self::author();
        self.repo
            .commit(Some("HEAD"), &sig, &sig, message, &tree, &refs)
            .unwrap()
    }

    /// Commits signed with the private key at `key`, the way git does with
    /// `gpg.format=ssh`: the commit object is signed in namespace `git` and the armored
    /// signature stored in its `gpgsig` header.
    pub(crate) fn commit_signed(&self, files: &[(&str, &str)], message: &str, key: &Path) -> Oid {
        let tree = self.repo.find_tree(self.write(files)).unwrap();
        let parents = self.parents();
        let refs: Vec<&git2::Commit<'_>> = parents.iter().collect();
        let sig = Self::author();
        let buf = self
            .repo
            .commit_create_buffer(&sig, &sig, message, &tree, &refs)
            .unwrap();
        let content = std::str::from_utf8(&buf).unwrap().to_string();
        let signature = ssh_sign(key, content.as_bytes());
        let oid = self.repo.commit_signed(&content, &signature, None).unwrap();
        self.repo
            .reference("refs/heads/main", oid, true, "signed commit")
            .unwrap();
        oid
    }

    /// Points `main` at `oid` (a force-push, seen from the watcher).
    pub(crate) fn reset_to(&self, oid: Oid) {
        let obj = self.repo.find_object(oid, None).unwrap();
        self.repo.reset(&obj, git2::ResetType::Hard, None).unwrap();
    }
}

/// `ssh-keygen -Y sign -n git` over `data`: the armored signature.
pub(crate) fn ssh_sign(key: &Path, data: &[u8]) -> String {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("commit");
    std::fs::write(&file, data).unwrap();
    let out = Command::new("ssh-keygen")
        .args(["-q", "-Y", "sign", "-n", "git", "-f"])
        .arg(key)
        .arg(&file)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    std::fs::read_to_string(file.with_extension("sig")).unwrap()
}

/// A new ed25519 key pair made with ssh-keygen: (private key path, public key line).
pub(crate) fn ssh_keygen(dir: &Path, name: &str) -> (PathBuf, String) {
    let key = dir.join(name);
    let out = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-C", name, "-f"])
        .arg(&key)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let public = std::fs::read_to_string(key.with_extension("pub")).unwrap();
    (key, public.trim().to_string())
}
