//! A template failure, detached from minijinja's error type.

use super::template_error_kind::TemplateErrorKind;

/// Carries just what drover's diagnostics need (class, message, line within the template
/// source) so callers neither depend on minijinja's error type nor print its multi-line
/// debug dump.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{detail}")]
pub struct TemplateError {
    kind: TemplateErrorKind,
    message: String,
    detail: String,
    line: Option<usize>,
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
        self.line
    }

    pub(crate) fn unknown_variable(name: &str, allowed: &[&str]) -> Self {
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
            line: None,
        }
    }

    pub(crate) fn undefined(message: String) -> Self {
        TemplateError {
            kind: TemplateErrorKind::Undefined,
            detail: format!("undefined value: {message}"),
            message,
            line: None,
        }
    }
}

impl From<minijinja::Error> for TemplateError {
    fn from(err: minijinja::Error) -> Self {
        use minijinja::ErrorKind as K;
        let kind = match err.kind() {
            K::SyntaxError | K::BadEscape => TemplateErrorKind::Syntax,
            K::UndefinedError => TemplateErrorKind::Undefined,
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
            line: err.line(),
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // a failed unwrap is a failed test
mod tests {
    use super::*;

    #[test]
    fn unknown_variable_message() {
        let e = TemplateError::unknown_variable("nod", &["node", "vars", "workflow"]);
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
