//! The node-side shell of `copy` and `template` steps: compare a destination with the
//! content drover would write, replace it atomically, and (for `--diff`) say what
//! differs. Every value is quoted by [`ShellLine`].

use crate::transport::ShellLine;

/// How much of a file on the node `--diff` reads (and of the new content it compares):
/// the first 8 KiB, base64 on the probe's stdout, stays well inside the 16 KiB a
/// command's output keeps.
pub const DIFF_BYTES: usize = 8 * 1024;

/// `f=DEST; case ... esac; ` : the destination, refused unless absolute.
fn file_dest(dest: &str) -> ShellLine {
    ShellLine::new().code("f=").value(dest).code(
        "; case \"$f\" in /*) ;; *) echo \"destination $f is not an absolute path\" >&2; exit 2;; esac; ",
    )
}

/// The tests of `$f` against what a file step wants, one per property, and the
/// commands that give a temporary file `$t` the mode (unless [`temp_file`] made it with
/// that mode) and owner.
struct FileTests {
    /// A regular file with the content (sha256).
    content: ShellLine,
    mode: Option<ShellLine>,
    owner: Option<ShellLine>,
    apply: ShellLine,
}

fn file_tests(hash: &str, mode: Option<u32>, owner: Option<&str>) -> FileTests {
    // `sha256sum` of its input prints `HASH  -`: compared whole, without `cut`.
    let content = ShellLine::new()
        .code("[ -f \"$f\" ] && [ \"$(sha256sum < \"$f\")\" = ")
        .value(format!("{hash}  -"))
        .code(" ]");
    let mut apply = ShellLine::new();
    let mode = mode.map(|m| {
        let made = m & !0o666 == 0;
        let m = format!("{m:o}");
        if !made {
            apply = std::mem::take(&mut apply)
                .code(" && chmod ")
                .value(&m)
                .code(" \"$t\"");
        }
        ShellLine::new()
            .code("[ \"$(stat -c %a \"$f\")\" = ")
            .value(&m)
            .code(" ]")
    });
    let owner = owner.map(|o| {
        let want = match o.split_once(':') {
            Some(_) => ShellLine::new().value(o),
            None => ShellLine::new()
                .value(format!("{o}:"))
                .code("\"$(id -gn ")
                .value(o)
                .code(")\""),
        };
        apply = std::mem::take(&mut apply)
            .code(" && chown ")
            .value(o)
            .code(" \"$t\"");
        ShellLine::new()
            .code("[ \"$(stat -c %U:%G \"$f\")\" = ")
            .line(&want)
            .code(" ]")
    });
    FileTests {
        content,
        mode,
        owner,
        apply,
    }
}

/// `t=...`: a new temporary file next to `$f`, empty, made by the shell itself (no
/// `mktemp` process): `$f.drover.$$` created exclusively (`set -C`: it fails on
/// anything already there, a symlink too), and `mktemp`'s own name when that fails (a
/// dead run's leftover of the same pid). Made with the step's mode when a umask can give
/// it (no execute or special bits), else 0600 as `mktemp` makes it, for `chmod` later.
fn temp_file(mode: Option<u32>) -> ShellLine {
    let made = mode.filter(|m| m & !0o666 == 0);
    let umask = made.map_or(0o077, |m| 0o777 & !m);
    let line = ShellLine::new()
        .code("t=\"$f.drover.$$\"; { umask ")
        .value(format!("{umask:03o}"))
        .code(
            "; set -C; true > \"$t\" && [ -f \"$t\" ] && [ ! -h \"$t\" ]; } 2>/dev/null && set +C || { set +C; t=$(mktemp \"$f.drover.XXXXXX\")",
        );
    match made {
        Some(m) => line.code(" && chmod ").value(format!("{m:o}")).code(" \"$t\"; }"),
        None => line.code("; }"),
    }
}

/// The test that `$f` already has the content (sha256 `hash`), mode and owner, and the
/// commands that give a temporary file `$t` the mode and owner.
fn file_same(hash: &str, mode: Option<u32>, owner: Option<&str>) -> (ShellLine, ShellLine) {
    let t = file_tests(hash, mode, owner);
    let mut same = t.content;
    for test in [&t.mode, &t.owner].into_iter().flatten() {
        same = same.code(" && ").line(test);
    }
    (same, t.apply)
}

/// The shape every file step's node-side code shares: if `dest` already has the
/// content (sha256 `hash`), mode and owner, `skip` and say `unchanged`; else `write`
/// the content into a new temporary file `$t`, give it the mode and owner, and move it
/// over `dest` atomically. Every value is quoted by [`ShellLine`].
fn file_replace(
    dest: &str,
    hash: &str,
    mode: Option<u32>,
    owner: Option<&str>,
    skip: &ShellLine,
    write: &ShellLine,
) -> ShellLine {
    let (same, apply) = file_same(hash, mode, owner);
    file_dest(dest)
        .code("if ")
        .line(&same)
        .code("; then ")
        .line(skip)
        .code("echo unchanged; else ")
        .line(&temp_file(mode))
        .code(" && ")
        .line(write)
        .line(&apply)
        .code(" && mv -f \"$t\" \"$f\" && echo changed || { rm -f \"$t\"; exit 1; }; fi")
}

/// The node-side script of a file step: compare the content hash (and mode and owner)
/// of `dest` with the upload on stdin, and replace the file atomically only when they
/// differ.
pub fn file_command(dest: &str, hash: &str, mode: Option<u32>, owner: Option<&str>) -> ShellLine {
    let write = ShellLine::new().code("cat > \"$t\"");
    file_replace(dest, hash, mode, owner, &ShellLine::new(), &write)
}

/// A file step inside a script of steps: like [`file_command`], but the script's input
/// carries every file step's content one after another, each followed by a newline
/// ([`FRAMED_END`]), so this one reads exactly its `len` bytes and that newline (also
/// when the file is current). A short read (the input was cut) replaces nothing: `head`
/// then met the end of the input, so the shell's own `read` of the newline fails. That
/// costs no process, where counting the bytes written (`wc -c`) cost one.
pub fn file_command_framed(
    dest: &str,
    hash: &str,
    len: usize,
    mode: Option<u32>,
    owner: Option<&str>,
) -> ShellLine {
    let len = u64::try_from(len).unwrap_or(u64::MAX);
    let skip = ShellLine::new()
        .code("head -c ")
        .number(len)
        .code(" > /dev/null; IFS= read -r e; ");
    let write = ShellLine::new()
        .code("head -c ")
        .number(len)
        .code(" > \"$t\" && IFS= read -r e && [ -z \"$e\" ]");
    file_replace(dest, hash, mode, owner, &skip, &write)
}

/// The most content [`file_command_inline`] carries in its text.
pub const INLINE_BYTES: usize = 64 * 1024;

/// [`file_command_framed`] with the content in the command's text (`printf`, a builtin:
/// no `head` process), for a script a held shell reads from its input, so the content
/// is never in a command line. `None` for content a shell word cannot hold (a NUL
/// byte, not UTF-8) or longer than [`INLINE_BYTES`]: that one travels framed.
pub fn file_command_inline(
    dest: &str,
    hash: &str,
    content: &[u8],
    mode: Option<u32>,
    owner: Option<&str>,
) -> Option<ShellLine> {
    let text = std::str::from_utf8(content).ok()?;
    if text.len() > INLINE_BYTES || text.contains('\0') {
        return None;
    }
    let write = ShellLine::new().code("printf %s ").value(text).code(" > \"$t\"");
    Some(file_replace(dest, hash, mode, owner, &ShellLine::new(), &write))
}

/// What the script's input carries after each file step's content
/// ([`file_command_framed`]).
pub const FRAMED_END: &[u8] = b"\n";

/// The check of a file step without a check of its own: exits 0 when `dest` already
/// has the content (sha256 `hash`), mode and owner, else 1 (missing, changed by hand,
/// or a destination that is not absolute, which the step itself then refuses with the
/// reason).
pub fn file_check(dest: &str, hash: &str, mode: Option<u32>, owner: Option<&str>) -> ShellLine {
    let (same, _) = file_same(hash, mode, owner);
    ShellLine::new()
        .code("f=")
        .value(dest)
        .code("; case \"$f\" in /*) ;; *) exit 1;; esac; if ")
        .line(&same)
        .code("; then exit 0; else exit 1; fi")
}

/// [`file_check`] that, when the file differs, also says how (for `--diff`), in the
/// same round trip: one line `drover-file C M O SIZE MODE OWNER` (C, M, O: 1 when the
/// content, mode, owner are as wanted), or `drover-file missing` / `drover-file other`
/// (not a regular file); then, unless `secret` or the content is the same, the first
/// [`DIFF_BYTES`] of the file in base64. The exit code is [`file_check`]'s.
pub fn file_diff_probe(
    dest: &str,
    hash: &str,
    mode: Option<u32>,
    owner: Option<&str>,
    secret: bool,
) -> ShellLine {
    let (same, _) = file_same(hash, mode, owner);
    let t = file_tests(hash, mode, owner);
    let mut line = ShellLine::new()
        .code("f=")
        .value(dest)
        .code("; case \"$f\" in /*) ;; *) exit 1;; esac; if ")
        .line(&same)
        .code("; then exit 0; fi; if [ -f \"$f\" ]; then c=0; ")
        .line(&t.content)
        .code(" && c=1; m=1; o=1; ");
    if let Some(m) = &t.mode {
        line = line.line(m).code(" || m=0; ");
    }
    if let Some(o) = &t.owner {
        line = line.line(o).code(" || o=0; ");
    }
    line = line.code(
        "printf 'drover-file %s %s %s %s %s %s\\n' \"$c\" \"$m\" \"$o\" \"$(wc -c < \"$f\")\" \"$(stat -c %a \"$f\")\" \"$(stat -c %U:%G \"$f\")\"; ",
    );
    if !secret {
        let cap = u64::try_from(DIFF_BYTES).unwrap_or(u64::MAX);
        line = line
            .code("[ \"$c\" = 1 ] || head -c ")
            .number(cap)
            .code(" \"$f\" | base64; ");
    }
    line.code(
        "elif [ -e \"$f\" ] || [ -L \"$f\" ]; then echo 'drover-file other'; else echo 'drover-file missing'; fi; exit 1",
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sh(cmd: &ShellLine) -> (Option<i32>, String) {
        let out = std::process::Command::new("sh")
            .arg("-c")
            .arg(cmd.as_str())
            .output()
            .unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
        )
    }

    fn sha(bytes: &[u8]) -> String {
        use sha2::{Digest, Sha256};
        hex::encode(Sha256::digest(bytes))
    }

    /// Runs `cmds` one after another in one shell, each in a subshell reading from the
    /// same `stdin`, as a script of steps does.
    fn sh_framed(cmds: &[ShellLine], stdin: &[u8]) -> Vec<String> {
        use std::io::Write;
        let mut text = String::new();
        for c in cmds {
            text.push_str(&format!("( {} ); echo \"rc=$?\"; ", c.as_str()));
        }
        let mut child = std::process::Command::new("sh")
            .arg("-c")
            .arg(text)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        child.stdin.take().unwrap().write_all(stdin).unwrap();
        let out = child.wait_with_output().unwrap();
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(str::to_string)
            .collect()
    }

    #[test]
    fn framed_file_steps_take_their_share_of_one_input_and_a_cut_one_replaces_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b) = (dir.path().join("a"), dir.path().join("b"));
        let cmd = |p: &std::path::Path, content: &[u8]| {
            file_command_framed(
                p.to_str().unwrap(),
                &sha(content),
                content.len(),
                Some(0o640),
                None,
            )
        };
        let mut input = b"first\n".to_vec();
        input.extend_from_slice(FRAMED_END);
        input.extend_from_slice(b"second, no newline");
        input.extend_from_slice(FRAMED_END);
        let out = sh_framed(&[cmd(&a, b"first\n"), cmd(&b, b"second, no newline")], &input);
        assert_eq!(out, ["changed", "rc=0", "changed", "rc=0"]);
        assert_eq!(std::fs::read(&a).unwrap(), b"first\n");
        assert_eq!(std::fs::read(&b).unwrap(), b"second, no newline");
        // Current: still reads its share, so the next step gets its own.
        let mut input = b"first\n".to_vec();
        input.extend_from_slice(FRAMED_END);
        input.extend_from_slice(b"new b");
        input.extend_from_slice(FRAMED_END);
        let out = sh_framed(&[cmd(&a, b"first\n"), cmd(&b, b"new b")], &input);
        assert_eq!(out, ["unchanged", "rc=0", "changed", "rc=0"]);
        assert_eq!(std::fs::read(&b).unwrap(), b"new b");
        // Cut inside the content, and cut just after it (no end of frame): nothing
        // replaced, no temporary file left.
        for cut in [&b"new"[..], &b"new b again"[..]] {
            let out = sh_framed(&[cmd(&b, b"new b again")], cut);
            assert_eq!(out, ["rc=1"], "cut to {cut:?}");
            assert_eq!(std::fs::read(&b).unwrap(), b"new b", "cut to {cut:?}");
        }
        let left: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .flatten()
            .map(|e| e.file_name())
            .collect();
        assert_eq!(left.len(), 2, "{left:?}");
    }

    #[test]
    fn the_composed_test_is_the_one_files_always_had() {
        let (same, apply) = file_same("ab", Some(0o640), Some("root"));
        assert_eq!(
            same.as_str(),
            "[ -f \"$f\" ] && [ \"$(sha256sum < \"$f\")\" = 'ab  -' ] && [ \"$(stat -c %a \"$f\")\" = 640 ] && [ \"$(stat -c %U:%G \"$f\")\" = root:\"$(id -gn root)\" ]"
        );
        assert_eq!(
            apply.as_str(),
            " && chown root \"$t\"",
            "0640 is made by the umask, no chmod"
        );
        let (_, apply) = file_same("ab", Some(0o750), None);
        assert_eq!(apply.as_str(), " && chmod 750 \"$t\"");
    }

    /// The shell makes the temporary file itself, with the step's mode where a umask
    /// gives it (else `chmod`; no mode: 0600, as `mktemp` made it); a name already taken
    /// next to the file (here a symlink planted at the shell's own choice) is not
    /// followed: `mktemp` names another, and the target is never written.
    #[test]
    fn the_temporary_file_is_made_by_the_shell_with_the_mode_and_never_follows_a_link() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let mode_of = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o7777;
        for (name, mode, want) in [
            ("a", Some(0o640), 0o640),
            ("b", Some(0o755), 0o755),
            ("c", Some(0o4750), 0o4750),
            ("d", None, 0o600),
            ("e", Some(0o000), 0o000),
        ] {
            let f = dir.path().join(name);
            let content = format!("{name}\n");
            let mut input = content.clone().into_bytes();
            input.extend_from_slice(FRAMED_END);
            let cmd = file_command_framed(
                f.to_str().unwrap(),
                &sha(content.as_bytes()),
                content.len(),
                mode,
                None,
            );
            assert_eq!(sh_framed(&[cmd], &input), ["changed", "rc=0"], "{name}");
            assert_eq!(std::fs::read_to_string(&f).unwrap(), content);
            assert_eq!(mode_of(&f), want, "{name}: {:o}", mode_of(&f));
        }
        // The shell's `$$` is the pid of the `sh -c` that runs the command: a link named
        // as its temporary file would be, made by that very command before it runs.
        let f = dir.path().join("target.conf");
        let victim = dir.path().join("victim");
        std::fs::write(&victim, "keep\n").unwrap();
        let plant = ShellLine::new()
            .code("ln -s ")
            .value(victim.to_str().unwrap())
            .code(" ")
            .value(f.to_str().unwrap())
            .code(".drover.$$; ")
            .line(&file_command(
                f.to_str().unwrap(),
                &sha(b"new\n"),
                Some(0o644),
                None,
            ));
        let out = std::process::Command::new("sh")
            .arg("-c")
            .arg(plant.as_str())
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .and_then(|mut c| {
                use std::io::Write;
                c.stdin.take().unwrap().write_all(b"new\n")?;
                c.wait_with_output()
            })
            .unwrap();
        assert_eq!(String::from_utf8_lossy(&out.stdout), "changed\n");
        assert_eq!(std::fs::read_to_string(&f).unwrap(), "new\n");
        assert_eq!(mode_of(&f), 0o644);
        assert_eq!(
            std::fs::read_to_string(&victim).unwrap(),
            "keep\n",
            "the link was followed"
        );
    }

    #[test]
    fn the_diff_probe_says_what_differs_and_keeps_the_checks_exit_codes() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("a b.conf");
        let dest = f.to_str().unwrap();
        let want = b"new\n";
        // Missing.
        let (code, out) = sh(&file_diff_probe(dest, &sha(want), None, None, false));
        assert_eq!((code, out.as_str()), (Some(1), "drover-file missing\n"));
        // Different content: the header, then the content in base64.
        std::fs::write(&f, b"old\n").unwrap();
        let (code, out) = sh(&file_diff_probe(dest, &sha(want), None, None, false));
        assert_eq!(code, Some(1));
        let mut lines = out.lines();
        let header = lines.next().unwrap();
        assert!(header.starts_with("drover-file 0 1 1 4 "), "{header}");
        assert_eq!(lines.collect::<String>(), "b2xkCg==");
        // A secret: the header only.
        let (code, out) = sh(&file_diff_probe(dest, &sha(want), None, None, true));
        assert_eq!(code, Some(1));
        assert_eq!(out.lines().count(), 1, "{out}");
        // Same content, another mode: no content sent.
        std::fs::write(&f, want).unwrap();
        let (code, out) = sh(&file_diff_probe(dest, &sha(want), Some(0o600), None, false));
        assert_eq!(code, Some(1));
        assert!(out.starts_with("drover-file 1 0 1 4 "), "{out}");
        assert_eq!(out.lines().count(), 1, "{out}");
        // As wanted: exit 0, nothing printed.
        let mode = {
            use std::os::unix::fs::PermissionsExt;
            std::fs::metadata(&f).unwrap().permissions().mode() & 0o7777
        };
        let (code, out) = sh(&file_diff_probe(dest, &sha(want), Some(mode), None, false));
        assert_eq!((code, out.as_str()), (Some(0), ""));
        // A directory.
        let (code, out) = sh(&file_diff_probe(
            dir.path().to_str().unwrap(),
            &sha(want),
            None,
            None,
            false,
        ));
        assert_eq!((code, out.as_str()), (Some(1), "drover-file other\n"));
        // Not absolute: like the check, exit 1 and nothing said.
        let (code, out) = sh(&file_diff_probe("rel/x", &sha(want), None, None, false));
        assert_eq!((code, out.as_str()), (Some(1), ""));
    }

    /// A file step with its content in its text writes exactly that content (quotes,
    /// backslashes, `$(...)`, `%`, trailing newlines and all) with its mode, and says
    /// `unchanged` the second time; content a shell word cannot hold, or too much of it,
    /// is not put in the text at all.
    #[test]
    fn a_file_step_with_its_content_in_its_text_writes_exactly_that() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let dest = dir.path().join("app.conf");
        let d = dest.to_str().unwrap();
        let content = "it's a \"file\" \\n %s $(touch nope) `id`\n\tend\n\n\n".as_bytes();
        let cmd = file_command_inline(d, &sha(content), content, Some(0o640), None).unwrap();
        assert!(!cmd.as_str().contains("head"), "{}", cmd.as_str());
        assert_eq!(sh(&cmd), (Some(0), "changed\n".to_string()));
        assert_eq!(std::fs::read(&dest).unwrap(), content);
        let mode = std::fs::metadata(&dest).unwrap().permissions().mode() & 0o7777;
        assert_eq!(mode, 0o640);
        assert!(!dir.path().join("nope").exists());
        assert_eq!(sh(&cmd), (Some(0), "unchanged\n".to_string()));
        let empty = file_command_inline(d, &sha(b""), b"", None, None).unwrap();
        assert_eq!(sh(&empty), (Some(0), "changed\n".to_string()));
        assert_eq!(std::fs::read(&dest).unwrap(), b"");
        let leftovers: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .flatten()
            .map(|e| e.file_name())
            .collect();
        assert_eq!(leftovers.len(), 1, "{leftovers:?}");
        for (bad, why) in [
            (b"a\0b".to_vec(), "a NUL byte"),
            (vec![0xff, 0xfe], "not UTF-8"),
            (vec![b'x'; INLINE_BYTES + 1], "too long"),
        ] {
            assert!(
                file_command_inline(d, &sha(&bad), &bad, None, None).is_none(),
                "{why}"
            );
        }
    }
}
