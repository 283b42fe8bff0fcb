//! Shell quoting of interpolated values: the formatter and the filters around it.
//!
//! Commands are handed to a remote `sh -c`, so a value that reached a command unquoted could
//! run arbitrary code on every node of a fleet. Quoting is therefore the default and
//! dropping it is a visible, deliberate act in the template (`| raw`).

use std::borrow::Cow;

use minijinja::value::Kwargs;
use minijinja::{AutoEscape, Error, ErrorKind, Output, State, Value, escape_formatter};

/// The custom auto-escape mode under which [`format_value`] quotes. Templates rendered with any
/// other mode (file templates use none) go through minijinja's default formatter untouched.
pub(crate) const SHELL: &str = "shell";

/// POSIX-shell quoting via shlex, which leaves words that need no quoting (`n001`,
/// `/etc/hosts`) bare so rendered commands stay readable in logs.
pub(crate) fn quote(s: &str) -> Result<Cow<'_, str>, Error> {
    // A NUL byte cannot be passed through argv at all; quoting cannot make it safe, and
    // silently truncating the argument would run a different command than the one shown.
    shlex::try_quote(s).map_err(|_| {
        Error::new(
            ErrorKind::InvalidOperation,
            "cannot shell-quote a value containing a nul byte",
        )
    })
}

/// Writes safe values (marked by `safe`/`raw`/`quote`, or produced by macros and `set` blocks,
/// whose content was already escaped) as they are, and quotes the string form of everything
/// else, lists and maps included: a list interpolated whole becomes one quoted word rather
/// than something the shell would split and glob.
pub(crate) fn format_value(out: &mut Output, state: &mut State, value: &Value) -> Result<(), Error> {
    let shell = matches!(state.auto_escape(), AutoEscape::Custom(name) if name == SHELL);
    if !shell {
        return escape_formatter(out, state, value);
    }
    if value.is_safe()
        && let Some(text) = value.as_str()
    {
        return out.write_str(text).map_err(Error::from);
    }
    let text = value.to_string();
    out.write_str(&quote(&text)?).map_err(Error::from)
}

/// `quote`: forces shell quoting, and is how a file template that writes a script quotes
/// values. The result is marked safe so that auto-escaping does not quote it a second time.
/// It always quotes its input, even a safe one: `{{ x | raw | quote }}` is one quoted word.
pub(crate) fn quote_filter(value: String) -> Result<Value, Error> {
    Ok(Value::from_safe_string(quote(&value)?.into_owned()))
}

/// Replaces the built-in `tojson` in command templates. The built-in marks its output safe
/// (safe for HTML), which here would mean unquoted: the JSON string `"$(reboot)"` inside double
/// quotes still runs `reboot` in the shell. Returning a plain string lets the formatter quote
/// it like any other value.
pub(crate) fn tojson_filter(value: &Value, indent: Option<Value>, kwargs: Kwargs) -> Result<Value, Error> {
    let json = minijinja::filters::tojson(value, indent, kwargs)?;
    Ok(match json.as_str() {
        Some(text) => Value::from(text),
        None => json,
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // a failed unwrap is a failed test
mod tests {
    use super::*;

    #[test]
    fn plain_words_stay_bare() {
        for word in ["n001", "/etc/hosts", "nginx-1.2", "a_b:c@d+e"] {
            assert_eq!(shlex::try_quote(word).unwrap(), word);
            assert_eq!(quote(word).unwrap(), word);
        }
    }

    #[test]
    fn dangerous_characters_are_quoted() {
        assert_eq!(quote("a b").unwrap(), "'a b'");
        assert_eq!(quote("x; touch /tmp/p").unwrap(), "'x; touch /tmp/p'");
        assert_eq!(quote("$(id)").unwrap(), "'$(id)'");
        assert_eq!(quote("`id`").unwrap(), "'`id`'");
        assert_eq!(quote("a\nb").unwrap(), "'a\nb'");
        assert_eq!(quote("").unwrap(), "''");
        // shlex uses double quotes where that needs no escaping; still one word.
        assert_eq!(quote("it's").unwrap(), "\"it's\"");
    }

    /// The shell, not our expectations of shlex's output, is the judge of correct quoting.
    #[test]
    fn sh_reads_back_the_original() {
        let nasty = [
            "a b",
            "x; touch /nonexistent",
            "$(id)",
            "`id`",
            "it's",
            "it's $HOME and \"quotes\" \\ and `ticks`",
            "line1\nline2",
            "*",
            "~root",
            "!x ^y #z",
            "",
            "é ü",
        ];
        for text in nasty {
            let script = format!("printf '%s' {}", quote(text).unwrap());
            let out = std::process::Command::new("sh")
                .arg("-c")
                .arg(&script)
                .output()
                .unwrap();
            assert!(out.status.success(), "{script}");
            assert_eq!(String::from_utf8(out.stdout).unwrap(), text, "{script}");
        }
    }

    #[test]
    fn nul_is_refused() {
        let err = quote("a\0b").unwrap_err();
        assert!(err.to_string().contains("nul byte"), "{err}");
    }
}
