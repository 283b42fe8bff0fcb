//! The own checks of a node's file steps (those without a `check:`) in one command: one
//! `sha256sum` and one `stat` for all their files, instead of a shell, a `sha256sum`
//! and a `stat` per file. Each file's verdict is what [`super::file_commands::file_check`]
//! would have said of it alone.

use std::collections::{HashMap, HashSet};

use crate::transport::ShellLine;

/// Most output one command of the check may print: well inside the 16 KiB tail a
/// command's output keeps, so no file's line is ever cut off.
const MAX_OUTPUT: usize = 8 * 1024;

/// What a file step wants of its file on the node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileWant {
    pub dest: String,
    /// sha256 of the content, hex.
    pub hash: String,
    pub mode: Option<u32>,
    pub owner: Option<String>,
}

impl FileWant {
    /// Whether the shared command can answer for this file: an absolute destination
    /// that `sha256sum` and `stat` print as it is (no newline, carriage return or
    /// backslash, which `sha256sum` escapes), and an owner given as `user:group` or not
    /// at all (a bare user means that user's group, which only `id` on the node knows).
    /// Any other file is checked alone, as before.
    pub fn shareable(&self) -> bool {
        self.dest.starts_with('/')
            && !self.dest.contains(['\n', '\r', '\\'])
            && self.owner.as_deref().is_none_or(|o| o.contains(':'))
    }

    /// A generous bound on what the command prints for this file (its `sha256sum` and
    /// `stat` lines).
    fn output_len(&self) -> usize {
        64 + 2 + 1 + 6 + 1 + 2 * 33 + 1 + self.owner.as_ref().map_or(0, String::len) + 2 * self.dest.len()
    }
}

/// Splits shareable files into groups whose output fits [`MAX_OUTPUT`], in order.
pub fn groups<'a>(files: &[&'a FileWant]) -> Vec<Vec<&'a FileWant>> {
    let mut out: Vec<Vec<&FileWant>> = Vec::new();
    let mut size = 0;
    for f in files {
        let len = f.output_len();
        match out.last_mut() {
            Some(g) if size + len <= MAX_OUTPUT => {
                g.push(f);
                size += len;
            }
            _ => {
                out.push(vec![f]);
                size = len;
            }
        }
    }
    out
}

/// The command: for the regular files among `files`, their `sha256sum` lines, a line
/// `drover-stat`, then `MODE USER:GROUP NAME` for each (`stat` of the name itself, as
/// the single-file check does). Always exits 0: the verdicts come from the output.
pub fn command(files: &[&FileWant]) -> ShellLine {
    let mut line = ShellLine::new().code("set --; for f in");
    for f in files {
        line = line.code(" ").value(&f.dest);
    }
    line.code(
        "; do [ -f \"$f\" ] && set -- \"$@\" \"$f\"; done; if [ $# -gt 0 ]; then sha256sum -- \"$@\" 2>/dev/null; echo drover-stat; stat -c '%a %U:%G %n' -- \"$@\" 2>/dev/null; fi; exit 0",
    )
}

/// Whether each of `files` is as wanted (content, mode, owner), from [`command`]'s
/// output. A file the output does not list (missing, not a regular file, unreadable) is
/// not.
pub fn verdicts(files: &[&FileWant], stdout: &str) -> Vec<bool> {
    let mut sums = HashSet::new();
    let mut stats: HashMap<&str, (&str, &str)> = HashMap::new();
    let mut in_stats = false;
    for l in stdout.lines() {
        if !in_stats && l == "drover-stat" {
            in_stats = true;
        } else if in_stats {
            let mut parts = l.splitn(3, ' ');
            if let (Some(mode), Some(owner), Some(name)) = (parts.next(), parts.next(), parts.next()) {
                stats.insert(name, (mode, owner));
            }
        } else {
            sums.insert(l);
        }
    }
    files
        .iter()
        .map(|f| {
            let content = sums.contains(format!("{}  {}", f.hash, f.dest).as_str());
            let stat = stats.get(f.dest.as_str());
            let mode = f
                .mode
                .is_none_or(|m| stat.is_some_and(|(have, _)| *have == format!("{m:o}")));
            let owner = f
                .owner
                .as_deref()
                .is_none_or(|o| stat.is_some_and(|(_, have)| *have == o));
            content && mode && owner
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::super::file_commands::file_check;
    use super::*;

    fn sha(bytes: &[u8]) -> String {
        use sha2::{Digest, Sha256};
        hex::encode(Sha256::digest(bytes))
    }

    fn sh(cmd: &str) -> (Option<i32>, String) {
        let out = std::process::Command::new("sh")
            .arg("-c")
            .arg(cmd)
            .output()
            .unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
        )
    }

    fn mode_of(p: &std::path::Path) -> u32 {
        use std::os::unix::fs::PermissionsExt;
        std::fs::metadata(p).unwrap().permissions().mode() & 0o7777
    }

    /// Every kind of file, checked together and alone: the same verdicts.
    #[test]
    fn one_command_gives_each_file_the_verdict_of_its_own_check() {
        let dir = tempfile::tempdir().unwrap();
        let d = |name: &str| dir.path().join(name);
        let want = b"port = 80\n";
        std::fs::write(d("same"), want).unwrap();
        std::fs::write(d("other content"), b"port = 81\n").unwrap();
        std::fs::write(d("other mode"), want).unwrap();
        std::fs::set_permissions(
            d("other mode"),
            std::os::unix::fs::PermissionsExt::from_mode(0o600),
        )
        .unwrap();
        std::fs::create_dir(d("a dir")).unwrap();
        std::fs::write(d("it's;$(odd)"), want).unwrap();
        let user = sh("id -un").1.trim().to_string();
        let group = sh("id -gn").1.trim().to_string();
        let same_mode = mode_of(&d("same"));
        let f = |name: &str, mode: Option<u32>, owner: Option<String>| FileWant {
            dest: d(name).display().to_string(),
            hash: sha(want),
            mode,
            owner,
        };
        let files = [
            f("same", None, None),
            f("same", Some(same_mode), Some(format!("{user}:{group}"))),
            f("same", Some(0o601), None),
            f("same", None, Some(format!("{user}:no-such-group-x"))),
            f("other content", None, None),
            f("other mode", Some(same_mode), None),
            f("missing", None, None),
            f("a dir", None, None),
            f("it's;$(odd)", None, None),
        ];
        let refs: Vec<&FileWant> = files.iter().collect();
        assert!(refs.iter().all(|w| w.shareable()));
        let (code, out) = sh(command(&refs).as_str());
        assert_eq!(code, Some(0), "{out}");
        let got = verdicts(&refs, &out);
        let alone: Vec<bool> = files
            .iter()
            .map(|w| {
                let c = file_check(&w.dest, &w.hash, w.mode, w.owner.as_deref());
                sh(c.as_str()).0 == Some(0)
            })
            .collect();
        assert_eq!(got, alone, "{out}");
        assert_eq!(got, [true, true, false, false, false, false, false, false, true]);
        // None of them a regular file: nothing printed, nothing as wanted.
        let none = [f("missing", None, None), f("a dir", None, None)];
        let refs: Vec<&FileWant> = none.iter().collect();
        let (_, out) = sh(command(&refs).as_str());
        assert_eq!(out, "");
        assert_eq!(verdicts(&refs, &out), [false, false]);
    }

    #[test]
    fn names_the_tools_would_escape_and_bare_owners_are_checked_alone() {
        let w = |dest: &str, owner: Option<&str>| FileWant {
            dest: dest.into(),
            hash: "ab".into(),
            mode: None,
            owner: owner.map(str::to_string),
        };
        assert!(w("/a b/c", Some("root:root")).shareable());
        assert!(!w("/a\\b", None).shareable());
        assert!(!w("/a\nb", None).shareable());
        assert!(!w("rel/x", None).shareable());
        assert!(!w("/x", Some("root")).shareable());
    }

    #[test]
    fn groups_keep_each_commands_output_bounded() {
        let long = FileWant {
            dest: format!("/{}", "x".repeat(1000)),
            hash: "ab".into(),
            mode: Some(0o644),
            owner: None,
        };
        let files: Vec<&FileWant> = std::iter::repeat_n(&long, 10).collect();
        let g = groups(&files);
        assert!(g.len() > 1);
        assert_eq!(g.iter().map(Vec::len).sum::<usize>(), 10);
        assert!(
            g.iter()
                .all(|g| g.iter().map(|f| f.output_len()).sum::<usize>() <= MAX_OUTPUT)
        );
    }
}
