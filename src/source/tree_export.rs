//! A commit's files written out as they are in the repository, so the site is validated
//! and run from exactly what was committed, never from a work tree someone may be
//! editing.

use std::path::{Path, PathBuf};

use git2::{ObjectType, Repository, Tree};

use super::source_error::SourceError;

/// Writes the whole tree of `commit` into `dest` (made fresh: built under a temporary
/// name and renamed into place, so a crash never leaves a half-written site that looks
/// complete). The whole tree rather than only the site's directory: a site may refer to
/// files outside it (`workflows: ../workflows`). Submodules are left out.
pub fn export_commit(repo: &Repository, commit: git2::Oid, dest: &Path) -> Result<(), SourceError> {
    let tree = repo
        .find_commit(commit)
        .and_then(|c| c.tree())
        .map_err(SourceError::git(format!("read the tree of {commit}")))?;
    let parent = dest.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(parent).map_err(SourceError::io("create", parent))?;
    let tmp = dest.with_extension(format!("tmp-{}", std::process::id()));
    remove_dir(&tmp)?;
    std::fs::create_dir(&tmp).map_err(SourceError::io("create", &tmp))?;
    write_tree(repo, &tree, &tmp)?;
    remove_dir(dest)?;
    std::fs::rename(&tmp, dest).map_err(SourceError::io("rename into place", dest))
}

/// Removes a directory and everything in it, if it is there.
pub fn remove_dir(dir: &Path) -> Result<(), SourceError> {
    match std::fs::remove_dir_all(dir) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(SourceError::io("remove", dir)(e)),
        _ => Ok(()),
    }
}

fn write_tree(repo: &Repository, tree: &Tree<'_>, dir: &Path) -> Result<(), SourceError> {
    for entry in tree.iter() {
        let Some(name) = entry.name() else { continue };
        // git refuses such names too; never let one escape the directory.
        if name.is_empty() || name == "." || name == ".." || name.contains('/') {
            continue;
        }
        let path: PathBuf = dir.join(name);
        match entry.kind() {
            Some(ObjectType::Tree) => {
                let sub = repo
                    .find_tree(entry.id())
                    .map_err(SourceError::git(format!("read tree {}", entry.id())))?;
                std::fs::create_dir(&path).map_err(SourceError::io("create", &path))?;
                write_tree(repo, &sub, &path)?;
            }
            Some(ObjectType::Blob) => {
                let blob = repo
                    .find_blob(entry.id())
                    .map_err(SourceError::git(format!("read blob {}", entry.id())))?;
                match entry.filemode() {
                    0o120000 => {
                        let target = String::from_utf8_lossy(blob.content()).into_owned();
                        std::os::unix::fs::symlink(&target, &path)
                            .map_err(SourceError::io("create the symlink", &path))?;
                    }
                    mode => {
                        std::fs::write(&path, blob.content()).map_err(SourceError::io("write", &path))?;
                        if mode == 0o100755 {
                            use std::os::unix::fs::PermissionsExt;
                            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755))
                                .map_err(SourceError::io("set the mode of", &path))?;
                        }
                    }
                }
            }
            // A submodule (a commit in the tree) is another repository: not part of the site.
            _ => {}
        }
    }
    Ok(())
}
