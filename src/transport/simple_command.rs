//! A user's command that a script's shell can run itself, without a `sh -c` of its own.

/// The words a shell treats as its own in a command's first place: reserved words, and
/// the builtins of dash and bash (a builtin run by the script's shell would see that
/// shell's state, e.g. `set` its variables), and the script's own functions.
const NOT_A_PROGRAM: &[&str] = &[
    "!",
    "{",
    "}",
    "case",
    "do",
    "done",
    "elif",
    "else",
    "esac",
    "fi",
    "for",
    "function",
    "if",
    "in",
    "select",
    "then",
    "time",
    "until",
    "while",
    "[[",
    "]]",
    ".",
    ":",
    "[",
    "alias",
    "bg",
    "bind",
    "break",
    "builtin",
    "caller",
    "cd",
    "chdir",
    "command",
    "compgen",
    "complete",
    "continue",
    "declare",
    "dirs",
    "disown",
    "echo",
    "enable",
    "eval",
    "exec",
    "exit",
    "export",
    "false",
    "fc",
    "fg",
    "getopts",
    "hash",
    "help",
    "history",
    "jobs",
    "kill",
    "let",
    "local",
    "logout",
    "mapfile",
    "popd",
    "printf",
    "pushd",
    "pwd",
    "read",
    "readarray",
    "readonly",
    "return",
    "set",
    "shift",
    "shopt",
    "source",
    "suspend",
    "test",
    "times",
    "trap",
    "true",
    "type",
    "typeset",
    "ulimit",
    "umask",
    "unalias",
    "unset",
    "wait",
    "m",
];

/// A command that is one program with plain words: letters, digits, `-_./:,+@%=` and
/// single-quoted strings (anything but `'` inside), nothing a shell expands or treats
/// as an operator, and a first word that names a program (not a builtin, reserved word,
/// assignment or one of the script's functions, which start with `_`).
///
/// `sh -c` runs such a command by `exec`ing the program with those words, so the script's
/// shell starting it in the background gives the program the same words, environment,
/// signals and exit code, one process fewer: there is no `$$`, `$0` or anything else of
/// a shell for it to see.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SimpleCommand(String);

impl SimpleCommand {
    pub fn parse(command: &str) -> Option<SimpleCommand> {
        let text = command.trim_matches(' ');
        let mut quoted = false;
        for c in text.chars() {
            match c {
                '\'' => quoted = !quoted,
                _ if quoted => {}
                c if c.is_ascii_alphanumeric() => {}
                ' ' | '-' | '_' | '.' | '/' | ':' | ',' | '+' | '@' | '%' | '=' => {}
                _ => return None,
            }
        }
        if quoted {
            return None;
        }
        let first = text.split(' ').next().filter(|w| !w.is_empty())?;
        if first.starts_with('_')
            || first.contains('=')
            || first.contains('\'')
            || NOT_A_PROGRAM.contains(&first)
        {
            return None;
        }
        Some(SimpleCommand(text.to_string()))
    }

    pub(super) fn as_str(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_plain_programs_qualify() {
        for ok in [
            "mkdir -p /var/lib/app",
            "systemctl restart slurmd",
            "mkdir -p '/tmp/a b; $(id)'/app",
            "apt-get install -y pkg=1.2-3",
            "/usr/bin/env FOO=1 prog",
        ] {
            assert!(SimpleCommand::parse(ok).is_some(), "{ok}");
        }
        for no in [
            "uname -r | grep -q .",
            "test -d /x && exit 0",
            "echo $$",
            "kill -KILL $$",
            "echo `id`",
            "rm *.tmp",
            "ls ~",
            "a\nb",
            "cmd # note",
            "'unterminated",
            "set",
            "cd /tmp",
            "exit 3",
            "true",
            "m B 0",
            "_w 5",
            "FOO=1 prog",
            "'mkdir' -p x",
            "if true",
            "cmd > out",
            "cmd < in",
            "(cmd)",
            "{ cmd; }",
            "cmd \\; x",
            "",
            "   ",
        ] {
            assert!(SimpleCommand::parse(no).is_none(), "{no:?}");
        }
    }
}
