//! A template failure, detached from minijinja's error type.

use super::references::RefKind;
use super::template_error_kind::TemplateErrorKind;
use crate::diag::Problem;
use crate::yaml::Path;

/// Carries just what drover's diagnostics need (class, message, line within the template
/// source) so callers neither depend on minijinja's error type nor print its multi-line
/// debug dump.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{detail}")]
pub struct TemplateError {
    kind: TemplateErrorKind,
    message: String,
    detail: String,
    /// Kept small (with `help` boxed) so the error stays cheap to return.
    line: Option<u32>,
    help: Option<Box<str>>,
}

impl TemplateError {
    pub fn kind(&self) -> &TemplateErrorKind {
        &self.kind
    }

    /// The specific complaint without the class prefix, for use after a caller's own
    /// "syntax error in command:" style prefix.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// The class and the specific complaint together (`syntax error: unexpected ...`); this
    /// is also the `Display` form.
    pub fn detail(&self) -> &str {
        &self.detail
    }

    /// 1-based line within the template source, so the caller can map it onto the line of
    /// the YAML file the template came from.
    pub fn line(&self) -> Option<usize> {
        self.line.map(|l| l as usize)
    }

    /// What to do about it, when there is more to say than the message.
    pub fn help(&self) -> Option<&str> {
        self.help.as_deref()
    }

    /// The error as a validation problem with the template at `path`: the message is
    /// `invalid template: ...`, and the line within the template is kept so that the
    /// diagnostic can point at it.
    pub fn problem(&self, path: Path) -> Problem {
        let p =
            Problem::value(path, format!("invalid template: {}", self.message)).in_template_line(self.line());
        match &self.help {
            Some(h) => p.with_help(h.as_ref()),
            None => p,
        }
    }

    pub(crate) fn unknown_variable(name: &str, allowed: &[&str], line: Option<usize>) -> Self {
        let available: Vec<String> = allowed.iter().map(|s| (*s).to_owned()).collect();
        let message = format!(
            "unknown variable `{name}` in template; available: {}",
            available.join(", ")
        );
        TemplateError {
            kind: TemplateErrorKind::UnknownVariable {
                name: name.to_owned(),
                available,
            },
            detail: message.clone(),
            message,
            line: line.and_then(|l| u32::try_from(l).ok()),
            help: None,
        }
    }

    /// An unknown filter or test, found by [`TemplateEngine::check`](super::TemplateEngine::check).
    pub(crate) fn unknown_name(what: RefKind, name: &str, line: usize, help: String) -> Self {
        let (kind, message) = match what {
            RefKind::Filter => (
                TemplateErrorKind::UnknownFilter {
                    name: name.to_owned(),
                },
                format!("unknown filter `{name}` in template"),
            ),
            RefKind::Test => (
                TemplateErrorKind::UnknownTest {
                    name: name.to_owned(),
                },
                format!("unknown test `{name}` in template"),
            ),
        };
        TemplateError {
            kind,
            detail: message.clone(),
            message,
            line: u32::try_from(line).ok(),
            help: Some(help.into()),
        }
    }

    /// A validation finding other than syntax: its kind, message, line and help.
    pub(crate) fn found(
        kind: TemplateErrorKind,
        message: String,
        line: Option<usize>,
        help: Option<String>,
    ) -> Self {
        TemplateError {
            kind,
            detail: message.clone(),
            message,
            line: line.and_then(|l| u32::try_from(l).ok()),
            help: help.map(String::into_boxed_str),
        }
    }

    pub(crate) fn undefined(message: String) -> Self {
        TemplateError {
            kind: TemplateErrorKind::Undefined,
            detail: format!("undefined value: {message}"),
            message,
            line: None,
            help: None,
        }
    }
}

impl From<minijinja::Error> for TemplateError {
    fn from(err: minijinja::Error) -> Self {
        use minijinja::ErrorKind as K;
        let kind = match err.kind() {
            K::SyntaxError | K::BadEscape => TemplateErrorKind::Syntax,
            K::UndefinedError => TemplateErrorKind::Undefined,
            K::UnknownFilter => TemplateErrorKind::UnknownFilter {
                name: name_in_detail(err.detail()),
            },
            K::UnknownTest => TemplateErrorKind::UnknownTest {
                name: name_in_detail(err.detail()),
            },
            K::OutOfFuel => TemplateErrorKind::OutOfFuel,
            _ => TemplateErrorKind::Render,
        };
        let class = err.kind().to_string();
        let (message, detail) = match err.detail() {
            Some(d) => (d.to_owned(), format!("{class}: {d}")),
            None => (class.clone(), class),
        };
        TemplateError {
            kind,
            message,
            detail,
            line: err.line().and_then(|l| u32::try_from(l).ok()),
            help: None,
        }
    }
}

/// minijinja words a render-time unknown filter as `filter NAME is unknown`.
fn name_in_detail(detail: Option<&str>) -> String {
    detail
        .and_then(|d| d.split_whitespace().nth(1))
        .unwrap_or_default()
        .to_owned()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // a failed unwrap is a failed test
mod tests {
    use super::*;

    #[test]
    fn unknown_variable_message() {
        let e = TemplateError::unknown_variable("nod", &["node", "vars", "workflow"], None);
        assert_eq!(
            e.to_string(),
            "unknown variable `nod` in template; available: node, vars, workflow"
        );
        assert_eq!(e.message(), e.detail());
        assert_eq!(e.line(), None);
    }

    #[test]
    fn from_minijinja_splits_class_and_detail() {
        let e: TemplateError =
            minijinja::Error::new(minijinja::ErrorKind::SyntaxError, "unexpected `}`").into();
        assert_eq!(e.kind(), &TemplateErrorKind::Syntax);
        assert_eq!(e.message(), "unexpected `}`");
        assert_eq!(e.detail(), "syntax error: unexpected `}`");
        assert_eq!(e.to_string(), e.detail());
    }
}
