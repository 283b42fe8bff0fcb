//! The broad class of a template failure.

/// Lets callers react to the class of failure (for example, point at the template source for
/// syntax errors, or at the context for undefined names) without parsing message text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TemplateErrorKind {
    /// The template or expression does not parse.
    Syntax,
    /// A variable or attribute the template used was not in the context. Undefined values are
    /// never rendered as empty strings, because an empty argument to `rm -rf` is a disaster.
    Undefined,
    /// A top-level name is not among those a hook provides; found at validation time.
    UnknownVariable { name: String, available: Vec<String> },
    /// A filter (`{{ x | name }}`) the engine does not have; found at validation time.
    UnknownFilter { name: String },
    /// A test (`{% if x is name %}`) the engine does not have; found at validation time.
    UnknownTest { name: String },
    /// A name under a top-level one (`vars.pakage`, `node.vars.gpu`) that will not exist
    /// when the template is rendered; found at validation time.
    UnknownAttribute { name: String },
    /// A command switches shell quoting off in a way drover refuses (`| safe`,
    /// `{% autoescape %}`); `| raw` is the one audited way.
    QuotingOff { how: String },
    /// Rendering used up its fuel, so a runaway loop was stopped.
    OutOfFuel,
    /// Any other failure while rendering: bad filter arguments, a value that cannot be
    /// shell-quoted, and so on.
    Render,
}
