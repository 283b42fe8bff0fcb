//! The one place drover turns templates into commands and files.

use std::collections::{BTreeSet, HashSet};
use std::sync::{Arc, Mutex, PoisonError};

use minijinja::syntax::SyntaxConfig;
use minijinja::value::Serde;
use minijinja::{AutoEscape, Environment, ErrorKind, State, UndefinedBehavior, Value};

use super::opt_out::{OptOutKind, opt_outs};
use super::references::{self, RefKind, Reference};
use super::shell_quote::{SHELL, format_value, quote_filter, tojson_filter};
use super::template_error::TemplateError;
use super::template_error_kind::TemplateErrorKind;
use super::template_info::TemplateInfo;

/// Filters drover adds to minijinja's.
const DROVER_FILTERS: [&str; 2] = ["raw", "quote"];

/// Names offered in "did you mean" and "available" help: minijinja's built-in filters
/// (and a few common Jinja2 names). Only those the engine really has are shown, so the
/// list stays true whatever minijinja version or features are built in; validation itself
/// asks the engine, not this list.
const FILTER_NAMES: [&str; 56] = [
    "abs",
    "attr",
    "batch",
    "bool",
    "capitalize",
    "center",
    "chain",
    "count",
    "d",
    "default",
    "dictsort",
    "e",
    "escape",
    "filesizeformat",
    "first",
    "float",
    "format",
    "groupby",
    "indent",
    "int",
    "items",
    "join",
    "last",
    "length",
    "lines",
    "list",
    "lower",
    "map",
    "max",
    "min",
    "pprint",
    "reject",
    "rejectattr",
    "replace",
    "reverse",
    "round",
    "safe",
    "select",
    "selectattr",
    "slice",
    "sort",
    "split",
    "string",
    "striptags",
    "sum",
    "title",
    "tojson",
    "trim",
    "truncate",
    "unique",
    "upper",
    "urlencode",
    "wordcount",
    "wordwrap",
    "xmlattr",
    "zip",
];

/// As [`FILTER_NAMES`], for tests.
const TEST_NAMES: [&str; 36] = [
    "boolean",
    "defined",
    "divisibleby",
    "endingwith",
    "eq",
    "equalto",
    "escaped",
    "even",
    "false",
    "filter",
    "float",
    "ge",
    "greaterthan",
    "gt",
    "in",
    "int",
    "integer",
    "iterable",
    "le",
    "lessthan",
    "lower",
    "lt",
    "mapping",
    "ne",
    "none",
    "number",
    "odd",
    "safe",
    "sameas",
    "sequence",
    "startingwith",
    "string",
    "test",
    "true",
    "undefined",
    "upper",
];

/// Instructions a single render may execute. Real commands and config files use a few
/// thousand at most; a mistaken loop should fail in milliseconds, not hang a rollout.
const FUEL: u64 = 100_000;

/// Renders workflow commands (shell-quoted) and file templates (verbatim) with one set of
/// rules: strict undefined names, bounded work, templates' trailing newlines kept.
///
/// Two environments are kept rather than switching auto-escaping by template name, so the
/// choice between "command" and "file" is made by which method the caller picks and cannot be
/// undone by how a template happens to be named.
#[derive(Debug)]
pub struct TemplateEngine {
    /// Every `{{ ... }}` is shell-quoted unless marked safe.
    commands: Environment<'static>,
    /// No escaping: file contents are written as rendered.
    files: Environment<'static>,
    /// Sources rendered so far. Each environment's loader serves exactly these (a
    /// template is "named" by its source), so a source is parsed once and the parsed
    /// template reused by every later render — on every node, for every hook call —
    /// while an `include` of any other name still finds nothing.
    sources: Arc<Mutex<HashSet<String>>>,
}

impl Default for TemplateEngine {
    fn default() -> Self {
        Self::new()
    }
}

impl TemplateEngine {
    pub fn new() -> Self {
        let mut commands = base_environment();
        commands.set_auto_escape_callback(|_| AutoEscape::Custom(SHELL.into()));
        commands.set_formatter(format_value);
        commands.add_filter("tojson", tojson_filter);

        let mut files = base_environment();
        files.set_auto_escape_callback(|_| AutoEscape::None);

        let sources: Arc<Mutex<HashSet<String>>> = Arc::default();
        for env in [&mut commands, &mut files] {
            let known = Arc::clone(&sources);
            env.set_loader(move |name: &str| {
                let known = known.lock().unwrap_or_else(PoisonError::into_inner);
                Ok(known.contains(name).then(|| name.to_string()))
            });
        }
        TemplateEngine {
            commands,
            files,
            sources,
        }
    }

    /// Check without rendering, for `drover validate`: the context (node facts, vars) is
    /// not known yet, but a typo in a template should still be caught before a rollout
    /// starts. Refuses syntax errors and filters and tests the engine does not have
    /// (minijinja itself only notices those when a render reaches them; see
    /// [`references`](super::references) for how they are found).
    pub fn check(&self, source: &str) -> Result<TemplateInfo, TemplateError> {
        let (info, unknown) = self.parse(source)?;
        unknown.map_or(Ok(info), Err)
    }

    /// [`check`](Self::check), and also refuse names the hook does not provide, so `nod.name`
    /// is reported at validation time instead of failing on the first canary node. Of an
    /// unknown name and an unknown filter or test, the one on the earlier line is reported.
    pub fn check_names(&self, source: &str, allowed: &[&str]) -> Result<(), TemplateError> {
        let (info, unknown) = self.parse(source)?;
        let name = only_allowed(&info, allowed, |name| {
            references::template_name_line(source, name)
        })
        .err();
        first_of(unknown, name)
    }

    /// [`check_names`](Self::check_names) for a template that becomes a shell command:
    /// also refuses the ways of switching quoting off other than `| raw` (`| safe`, an
    /// `{% autoescape %}` block), so that every opt-out reads the same and is listed by
    /// `validate --json`.
    pub fn check_command(&self, source: &str, allowed: &[&str]) -> Result<(), TemplateError> {
        self.check_names(source, allowed)?;
        for o in opt_outs(source) {
            let (how, help) = match o.kind {
                OptOutKind::Raw => continue,
                OptOutKind::Safe => (
                    "`| safe`",
                    "write `| raw`: it does the same, and is the one opt-out drover documents and lists for review",
                ),
                OptOutKind::Autoescape => (
                    "`{% autoescape %}`",
                    "a block would switch quoting off for everything in it; mark each value that is shell code with `| raw`",
                ),
            };
            return Err(TemplateError::found(
                TemplateErrorKind::QuotingOff { how: how.to_string() },
                format!("{how} switches shell quoting off in a command"),
                Some(o.line),
                Some(help.to_string()),
            ));
        }
        Ok(())
    }

    /// Check of a `when:` condition, the expression counterpart of
    /// [`check`](Self::check).
    pub fn check_expression(&self, expr: &str) -> Result<TemplateInfo, TemplateError> {
        let (info, unknown) = self.parse_expression(expr)?;
        unknown.map_or(Ok(info), Err)
    }

    /// [`check_expression`](Self::check_expression) plus the allowed-names check of
    /// [`check_names`](Self::check_names).
    pub fn check_expression_names(&self, expr: &str, allowed: &[&str]) -> Result<(), TemplateError> {
        let (info, unknown) = self.parse_expression(expr)?;
        let name = only_allowed(&info, allowed, |name| {
            references::expression_name_line(expr, name)
        })
        .err();
        first_of(unknown, name)
    }

    /// The dotted names a template reads from its context (`vars.pkg`, `node.vars.gpu`),
    /// engine globals and the template's own variables left out: for
    /// [`Scope::check`](super::Scope::check).
    pub fn referenced_names(&self, source: &str) -> Result<BTreeSet<String>, TemplateError> {
        let template = self.commands.template_from_str(source)?;
        Ok(self.info(template.undeclared_variables(true)).variables)
    }

    /// [`referenced_names`](Self::referenced_names) of a `when:` expression.
    pub fn referenced_names_in_expression(&self, expr: &str) -> Result<BTreeSet<String>, TemplateError> {
        let expression = self.commands.compile_expression(expr)?;
        Ok(self.info(expression.undeclared_variables(true)).variables)
    }

    /// Parses a template: a syntax error is the error; otherwise what it reads, and its
    /// first unknown filter or test, if any.
    fn parse(&self, source: &str) -> Result<(TemplateInfo, Option<TemplateError>), TemplateError> {
        let template = self.commands.template_from_str(source)?;
        refuse_loading_tags(source)?;
        let unknown = self
            .known_filters_and_tests(&references::template_references(source))
            .err();
        Ok((self.info(template.undeclared_variables(false)), unknown))
    }

    /// [`parse`](Self::parse) for an expression.
    fn parse_expression(&self, expr: &str) -> Result<(TemplateInfo, Option<TemplateError>), TemplateError> {
        let expression = self.commands.compile_expression(expr)?;
        let unknown = self
            .known_filters_and_tests(&references::expression_references(expr))
            .err();
        Ok((self.info(expression.undeclared_variables(false)), unknown))
    }

    /// The first filter or test in `refs` that the engine does not have, as an error.
    /// Both environments have the same filters and tests, so asking one is enough.
    fn known_filters_and_tests(&self, refs: &[Reference]) -> Result<(), TemplateError> {
        if refs.is_empty() {
            return Ok(());
        }
        let probe = self.commands.template_from_str("")?;
        let mut state = probe.new_state();
        for r in refs {
            if !exists(&mut state, r.kind, &r.name) {
                return Err(TemplateError::unknown_name(
                    r.kind,
                    &r.name,
                    r.line,
                    unknown_name_help(&mut state, r),
                ));
            }
        }
        Ok(())
    }

    /// Renders a command: every interpolated value is shell-quoted unless it went through
    /// `safe`/`raw` (or was already quoted by `quote`). `ctx` should be a JSON object whose
    /// keys become the template's top-level names.
    pub fn render(&self, source: &str, ctx: &serde_json::Value) -> Result<String, TemplateError> {
        self.know(source);
        Ok(self.commands.get_template(source)?.render(context(ctx))?)
    }

    /// Lets the loaders serve `source` (see `sources`).
    fn know(&self, source: &str) {
        let mut known = self.sources.lock().unwrap_or_else(PoisonError::into_inner);
        if !known.contains(source) {
            known.insert(source.to_string());
        }
    }

    /// Renders a file template: same strictness and limits as [`render`](Self::render), but
    /// values are written verbatim, because quoting belongs to shells, not to config files.
    /// `quote` is still available for files that are themselves scripts.
    pub fn render_file(&self, source: &str, ctx: &serde_json::Value) -> Result<String, TemplateError> {
        self.know(source);
        Ok(self.files.get_template(source)?.render(context(ctx))?)
    }

    /// Evaluates a `when:` condition with Jinja truthiness. An expression that ends up
    /// undefined is an error rather than false: a misspelled fact must not quietly skip a
    /// step on every node.
    pub fn eval_bool(&self, expr: &str, ctx: &serde_json::Value) -> Result<bool, TemplateError> {
        let expression = self.commands.compile_expression(expr)?;
        let value = expression.eval(context(ctx))?;
        if value.is_undefined() {
            return Err(TemplateError::undefined(format!(
                "condition `{}` is undefined",
                expr.trim()
            )));
        }
        Ok(value.is_true())
    }

    /// Engine globals (`range`, `namespace`, ...) are always there, so they are not
    /// "variables" a hook must provide.
    fn info(&self, names: HashSet<String>) -> TemplateInfo {
        let globals: HashSet<&str> = self.commands.globals().map(|(name, _)| name).collect();
        let variables: BTreeSet<String> = names
            .into_iter()
            .filter(|name| !globals.contains(name.split('.').next().unwrap_or(name)))
            .collect();
        TemplateInfo { variables }
    }
}

/// Settings shared by command and file rendering.
fn base_environment() -> Environment<'static> {
    let mut env = Environment::new();
    env.set_undefined_behavior(UndefinedBehavior::Strict);
    env.set_fuel(Some(FUEL));
    // Debug info is what lets undefined errors name the missing expression (`vars.nope`);
    // it is on by default only in debug builds. It costs nothing until an error happens.
    env.set_debug(true);
    // `build` only fails for custom delimiters, and these are the defaults; the
    // trailing-newline tests guard against this ever being skipped.
    if let Ok(syntax) = SyntaxConfig::builder().keep_trailing_newline(true).build() {
        env.set_syntax(syntax);
    }
    // `raw` disables shell quoting for one value (`{{ vars.cmd | raw }}`): an alias of `safe`
    // whose name says what it does in a command. Harmless in files, so templates can be shared.
    env.add_filter("raw", minijinja::filters::safe);
    env.add_filter("quote", quote_filter);
    env
}

fn context(ctx: &serde_json::Value) -> Value {
    Value::from(Serde(ctx))
}

/// Whether the engine has the filter or test `name`. minijinja has no public lookup, but
/// applying one that does not exist fails with `UnknownFilter`/`UnknownTest` before any
/// argument is looked at; one that exists fails on the missing arguments instead.
fn exists(state: &mut State<'_, '_>, kind: RefKind, name: &str) -> bool {
    match kind {
        RefKind::Filter => {
            !matches!(state.apply_filter(name, &[]), Err(e) if e.kind() == ErrorKind::UnknownFilter)
        }
        RefKind::Test => {
            !matches!(state.perform_test(name, &[]), Err(e) if e.kind() == ErrorKind::UnknownTest)
        }
    }
}

/// "did you mean" among the names the engine has, or the list of them.
fn unknown_name_help(state: &mut State<'_, '_>, r: &Reference) -> String {
    let (candidates, ours, what): (&[&str], &[&str], &str) = match r.kind {
        RefKind::Filter => (&FILTER_NAMES, &DROVER_FILTERS, "filters"),
        RefKind::Test => (&TEST_NAMES, &[], "tests"),
    };
    let builtin: Vec<&str> = candidates
        .iter()
        .copied()
        .filter(|c| exists(state, r.kind, c))
        .collect();
    if let Some(m) = crate::diag::did_you_mean(&r.name, builtin.iter().chain(ours).copied()) {
        return format!("did you mean `{m}`?");
    }
    let ticked = |names: &[&str]| names.iter().map(|n| format!("`{n}`")).collect::<Vec<_>>();
    match ticked(ours).as_slice() {
        [] => format!("available {what}: {}", builtin.join(", ")),
        [a, b] => format!(
            "available {what}: drover's {a} and {b}, and the built-in {}",
            builtin.join(", ")
        ),
        mine => format!(
            "available {what}: drover's {}, and the built-in {}",
            mine.join(", "),
            builtin.join(", ")
        ),
    }
}

/// The error on the earlier line (one whose line is unknown counts as last).
fn first_of(a: Option<TemplateError>, b: Option<TemplateError>) -> Result<(), TemplateError> {
    let line = |e: &TemplateError| e.line().unwrap_or(usize::MAX);
    match (a, b) {
        (Some(a), Some(b)) if line(&b) < line(&a) => Err(b),
        (Some(e), _) | (None, Some(e)) => Err(e),
        (None, None) => Ok(()),
    }
}

fn only_allowed(
    info: &TemplateInfo,
    allowed: &[&str],
    line_of: impl Fn(&str) -> Option<usize>,
) -> Result<(), TemplateError> {
    match info
        .variables
        .iter()
        .find(|name| !allowed.contains(&name.as_str()))
    {
        Some(name) => Err(TemplateError::unknown_variable(name, allowed, line_of(name))),
        None => Ok(()),
    }
}

/// drover's templates are single strings and files with no loader behind them: an
/// `{% include %}`, `{% extends %}`, `{% import %}` or `{% from %}` compiles, then fails
/// with "template not found" on the first canary node. Refused at validation instead.
fn refuse_loading_tags(source: &str) -> Result<(), TemplateError> {
    let found = ["include", "extends", "import", "from"]
        .into_iter()
        .flat_map(|tag| {
            references::block_lines(source, tag)
                .into_iter()
                .map(move |l| (l, tag))
        })
        .min();
    match found {
        Some((line, tag)) => Err(TemplateError::found(
            TemplateErrorKind::Syntax,
            format!("`{{% {tag} %}}` is not supported: drover templates cannot load other templates"),
            Some(line),
            Some(
                "write the text in place, or use a `vars:` value; template files are rendered on their own"
                    .to_string(),
            ),
        )),
        None => Ok(()),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // a failed unwrap is a failed test
mod tests {
    use std::process::Command;
    use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

    use serde_json::json;

    use super::*;
    use crate::template::TemplateErrorKind;

    const HOOK_NAMES: &[&str] = &["node", "vars", "workflow"];

    fn ctx(vars: serde_json::Value) -> serde_json::Value {
        json!({"node": {"name": "n001", "addr": "10.0.0.1"}, "vars": vars, "workflow": {"name": "upgrade"}})
    }

    fn render(source: &str, vars: serde_json::Value) -> String {
        TemplateEngine::new().render(source, &ctx(vars)).unwrap()
    }

    fn render_err(source: &str, vars: serde_json::Value) -> TemplateError {
        TemplateEngine::new().render(source, &ctx(vars)).unwrap_err()
    }

    #[test]
    fn plain_values_and_literal_text_are_untouched() {
        assert_eq!(
            render("ssh {{ node.name }} cat /etc/hosts; echo $HOME", json!({})),
            "ssh n001 cat /etc/hosts; echo $HOME"
        );
        assert_eq!(
            render("{{ vars.path }}", json!({"path": "/etc/hosts"})),
            "/etc/hosts"
        );
    }

    #[test]
    fn numbers_and_bools_render_bare() {
        assert_eq!(render("{{ 3 }}", json!({})), "3");
        assert_eq!(
            render(
                "{{ vars.n }} {{ vars.f }} {{ vars.b }}",
                json!({"n": 42, "f": 2.5, "b": true})
            ),
            "42 2.5 True"
        );
    }

    #[test]
    fn a_template_is_parsed_once_and_reused() {
        let e = TemplateEngine::new();
        let cx = serde_json::json!({"x": "a b"});
        for _ in 0..3 {
            assert_eq!(e.render("echo {{ x }}", &cx).unwrap(), "echo 'a b'");
        }
        assert_eq!(e.commands.templates().count(), 1);
        assert_eq!(e.render("ls {{ x }}", &cx).unwrap(), "ls 'a b'");
        assert_eq!(e.commands.templates().count(), 2);
        // Only rendered sources are served: an include of a value finds nothing, so a
        // value never becomes unquoted template text.
        let cx = serde_json::json!({"x": "rm -rf /"});
        assert!(e.render("{% include x %}", &cx).is_err());
    }

    #[test]
    fn values_are_quoted() {
        let cases = [
            ("a b", "'a b'"),
            ("a;b", "'a;b'"),
            ("$(id)", "'$(id)'"),
            ("`id`", "'`id`'"),
            ("it's", "\"it's\""),
            ("a\nb", "'a\nb'"),
            ("", "''"),
        ];
        for (value, quoted) in cases {
            assert_eq!(render("{{ vars.v }}", json!({"v": value})), quoted, "{value:?}");
        }
    }

    #[test]
    fn lists_and_maps_are_one_quoted_word() {
        assert_eq!(
            render("{{ vars.l }}", json!({"l": ["a b", "c"]})),
            "\"['a b', 'c']\""
        );
        assert_eq!(render("{{ vars.m }}", json!({"m": {"k": "v"}})), "\"{'k': 'v'}\"");
    }

    #[test]
    fn join_with_a_raw_separator_quotes_each_item() {
        let vars = json!({"pkgs": ["nginx", "x; reboot"]});
        assert_eq!(
            render("apt-get install {{ vars.pkgs | join(' ' | raw) }}", vars.clone()),
            "apt-get install nginx 'x; reboot'"
        );
        // A plain separator is a value like any other, so the joined string is one word.
        assert_eq!(render("{{ vars.pkgs | join(' ') }}", vars), "'nginx x; reboot'");
    }

    #[test]
    fn injection_attempt_is_a_single_word() {
        let out = render(
            "apt-get install {{ vars.pkg }}",
            json!({"pkg": "x; touch /tmp/pwned"}),
        );
        assert_eq!(out, "apt-get install 'x; touch /tmp/pwned'");
    }

    #[test]
    fn injection_attempt_does_not_run_in_sh() {
        let nanos = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_nanos();
        let target =
            std::env::temp_dir().join(format!("drover-template-pwned-{}-{nanos}", std::process::id()));
        let target = target.to_str().unwrap().to_owned();
        for payload in [
            format!("x; touch {target}"),
            format!("$(touch {target})"),
            format!("`touch {target}`"),
            format!("x' ; touch {target}; echo '"),
            format!("x\ntouch {target}"),
        ] {
            let command = render("echo {{ vars.pkg }}", json!({"pkg": payload}));
            let out = Command::new("sh").arg("-c").arg(&command).output().unwrap();
            assert!(out.status.success(), "{command}");
            assert_eq!(
                String::from_utf8(out.stdout).unwrap(),
                format!("{payload}\n"),
                "{command}"
            );
            assert!(!std::path::Path::new(&target).exists(), "payload ran: {command}");
        }
    }

    #[test]
    fn safe_and_raw_opt_out() {
        let vars = json!({"cmd": "systemctl restart nginx && echo ok"});
        assert_eq!(
            render("{{ vars.cmd | raw }}", vars.clone()),
            "systemctl restart nginx && echo ok"
        );
        assert_eq!(
            render("{{ vars.cmd | safe }}", vars),
            "systemctl restart nginx && echo ok"
        );
    }

    #[test]
    fn quote_filter_does_not_double_quote() {
        let vars = json!({"v": "a b"});
        assert_eq!(render("{{ vars.v | quote }}", vars.clone()), "'a b'");
        assert_eq!(render("{{ vars.v | e }}", vars.clone()), "'a b'");
        assert_eq!(render("{{ node.name | quote }}", vars), "n001");
    }

    #[test]
    fn tojson_output_is_quoted() {
        let out = render("echo {{ vars.v | tojson }}", json!({"v": "$(id)"}));
        assert_eq!(out, "echo '\"$(id)\"'");
    }

    #[test]
    fn nul_byte_is_an_error() {
        let err = render_err("{{ vars.v }}", json!({"v": "a\u{0}b"}));
        assert_eq!(err.kind(), &TemplateErrorKind::Render);
        assert!(err.message().contains("nul byte"), "{err}");
    }

    #[test]
    fn undefined_is_an_error_naming_the_expression() {
        let err = render_err("echo {{ vars.nope }}", json!({}));
        assert_eq!(err.kind(), &TemplateErrorKind::Undefined);
        assert!(err.to_string().contains("vars.nope"), "{err}");
        assert_eq!(err.line(), Some(1));

        let err = render_err("{{ vars.nope | upper }}", json!({}));
        assert_eq!(err.kind(), &TemplateErrorKind::Undefined);

        let err = render_err("a\n{% if vars.nope %}x{% endif %}", json!({}));
        assert_eq!(err.kind(), &TemplateErrorKind::Undefined);
        assert_eq!(err.line(), Some(2));
    }

    #[test]
    fn defined_test_and_default_still_work() {
        assert_eq!(
            render("{% if vars.x is defined %}y{% else %}n{% endif %}", json!({})),
            "n"
        );
        assert_eq!(render("{{ vars.x | default('d') }}", json!({})), "d");
    }

    #[test]
    fn fuel_stops_runaway_loops() {
        let started = Instant::now();
        let err = render_err("{% for i in range(100000000) %}x{% endfor %}", json!({}));
        assert!(err.line().is_some(), "{err}");

        let err = render_err(
            "{% for i in range(100000) %}{% for j in range(100000) %}x{% endfor %}{% endfor %}",
            json!({}),
        );
        assert_eq!(err.kind(), &TemplateErrorKind::OutOfFuel, "{err}");
        assert!(started.elapsed() < Duration::from_secs(5));
    }

    #[test]
    fn syntax_error_has_line_number() {
        let engine = TemplateEngine::new();
        let err = engine
            .check("echo one\necho two\necho {{ node.name ")
            .unwrap_err();
        assert_eq!(err.kind(), &TemplateErrorKind::Syntax);
        assert_eq!(err.line(), Some(3));
        assert!(err.detail().starts_with("syntax error: "), "{err}");
        assert!(!err.message().starts_with("syntax error"), "{err}");

        let err = engine.render("a\n{% if %}\nb", &ctx(json!({}))).unwrap_err();
        assert_eq!(err.line(), Some(2));
    }

    #[test]
    fn check_lists_variables_without_globals_or_locals() {
        let info = TemplateEngine::new()
            .check(
                "{% for i in range(3) %}{{ loop.index }}{{ i }}{% endfor %}\
                 {% set y = 1 %}{{ y }}{{ vars.a }}{{ node.name }}{{ vars.b }}",
            )
            .unwrap();
        let names: Vec<&str> = info.variables.iter().map(String::as_str).collect();
        assert_eq!(names, ["node", "vars"]);
    }

    #[test]
    fn check_names_reports_first_unknown_sorted() {
        let engine = TemplateEngine::new();
        engine
            .check_names("{{ node.name }} {{ vars.x }} {{ workflow.name }}", HOOK_NAMES)
            .unwrap();
        let err = engine
            .check_names("{{ zz }} {{ nod.name }} {{ vars.x }}", HOOK_NAMES)
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "unknown variable `nod` in template; available: node, vars, workflow"
        );
        assert_eq!(
            err.kind(),
            &TemplateErrorKind::UnknownVariable {
                name: "nod".into(),
                available: vec!["node".into(), "vars".into(), "workflow".into()],
            }
        );
        let err = engine.check_names("{{ x", HOOK_NAMES).unwrap_err();
        assert_eq!(err.kind(), &TemplateErrorKind::Syntax);
    }

    #[test]
    fn unknown_filters_and_tests_fail_the_check() {
        let engine = TemplateEngine::new();
        let err = engine
            .check_names("echo {{ node.name | nosuchfilter }}", HOOK_NAMES)
            .unwrap_err();
        assert_eq!(
            err.kind(),
            &TemplateErrorKind::UnknownFilter {
                name: "nosuchfilter".into()
            }
        );
        assert_eq!(err.to_string(), "unknown filter `nosuchfilter` in template");
        let help = err.help().unwrap();
        assert!(
            help.starts_with("available filters: drover's `raw` and `quote`, and the built-in abs, "),
            "{help}"
        );
        assert!(help.contains(", upper, "), "{help}");

        let err = engine.check("{{ vars.x is nosuchtest }}").unwrap_err();
        assert_eq!(err.to_string(), "unknown test `nosuchtest` in template");
        assert!(
            err.help()
                .unwrap()
                .starts_with("available tests: boolean, defined, "),
            "{err:?}"
        );

        // Typos get a suggestion, drover's own filters included.
        let err = engine.check("{{ x | uper }}").unwrap_err();
        assert_eq!(err.help(), Some("did you mean `upper`?"));
        let err = engine.check("{{ x | qoute }}").unwrap_err();
        assert_eq!(err.help(), Some("did you mean `quote`?"));
        let err = engine.check("{% if x is defind %}{% endif %}").unwrap_err();
        assert_eq!(err.help(), Some("did you mean `defined`?"));
    }

    #[test]
    fn unknown_filters_are_found_where_a_render_would_not_go() {
        let engine = TemplateEngine::new();
        // An untaken branch, a filter block, after a filter that fails at run time, in a
        // `when:` expression: a probe render would miss each of these.
        for (src, line) in [
            ("a\n{% if false %}\n{{ x | nope }}\n{% endif %}", 3),
            ("{% filter nope %}x{% endfilter %}", 1),
            ("{{ 'a' | int(strict=true) }}\n{{ x | nope }}", 2),
        ] {
            let err = engine.check(src).unwrap_err();
            assert_eq!(
                err.kind(),
                &TemplateErrorKind::UnknownFilter { name: "nope".into() },
                "{src}"
            );
            assert_eq!(err.line(), Some(line), "{src}");
        }
        let err = engine
            .check_expression_names("node.vars.gpu is nosuch", HOOK_NAMES)
            .unwrap_err();
        assert_eq!(
            err.kind(),
            &TemplateErrorKind::UnknownTest {
                name: "nosuch".into()
            }
        );
    }

    #[test]
    fn known_filters_and_tests_pass_the_check() {
        let engine = TemplateEngine::new();
        engine
            .check_names(
                "{{ vars.pkgs | join(' ' | raw) }} {{ vars.x | default('a') | upper | quote }} \
                 {{ vars.l | tojson }} {% if vars.x is defined and vars.n is not divisibleby 3 %}{% endif %} \
                 {% filter trim %} x {% endfilter %}{{ 'a|b' | replace('|', ' is ') }}",
                HOOK_NAMES,
            )
            .unwrap();
        engine
            .check_expression_names("node.vars.gpu is defined and vars.l | length > 1", HOOK_NAMES)
            .unwrap();
    }

    #[test]
    fn unknown_variables_carry_their_line() {
        let engine = TemplateEngine::new();
        let err = engine
            .check_names(
                "echo {{ node.name }}\necho {{ x.nod }}\necho {{ nod }}",
                HOOK_NAMES,
            )
            .unwrap_err();
        assert_eq!(err.line(), Some(3));
        let err = engine
            .check_expression_names("node.name and\nnodes", HOOK_NAMES)
            .unwrap_err();
        assert_eq!(err.line(), Some(2));
        // Of an unknown name and an unknown filter, the earlier one is reported.
        let err = engine
            .check_names("{{ nod }}\n{{ x | nope }}", HOOK_NAMES)
            .unwrap_err();
        assert!(
            matches!(err.kind(), TemplateErrorKind::UnknownVariable { .. }),
            "{err}"
        );
        let err = engine
            .check_names("{{ x | nope }}\n{{ nod }}", HOOK_NAMES)
            .unwrap_err();
        assert!(
            matches!(err.kind(), TemplateErrorKind::UnknownFilter { .. }),
            "{err}"
        );
    }

    #[test]
    fn extra_hook_names_are_allowed_when_listed() {
        let engine = TemplateEngine::new();
        let src = "echo {{ reason }} on {{ node.name }}";
        assert!(engine.check_names(src, HOOK_NAMES).is_err());
        let mut names = HOOK_NAMES.to_vec();
        names.push("reason");
        engine.check_names(src, &names).unwrap();
    }

    #[test]
    fn eval_bool_conditions() {
        let engine = TemplateEngine::new();
        let c = ctx(json!({"canary": true, "n": 3, "empty": ""}));
        assert!(engine.eval_bool("vars.canary", &c).unwrap());
        assert!(
            engine
                .eval_bool("node.name == 'n001' and vars.n > 2", &c)
                .unwrap()
        );
        assert!(!engine.eval_bool("vars.n > 5", &c).unwrap());
        assert!(!engine.eval_bool("vars.empty", &c).unwrap());

        let err = engine.eval_bool("vars.nope", &c).unwrap_err();
        assert_eq!(err.kind(), &TemplateErrorKind::Undefined);
        assert!(err.to_string().contains("vars.nope"), "{err}");
        let err = engine.eval_bool("vars.nope == 1", &c).unwrap_err();
        assert_eq!(err.kind(), &TemplateErrorKind::Undefined);
        let err = engine.eval_bool("vars.canary and", &c).unwrap_err();
        assert_eq!(err.kind(), &TemplateErrorKind::Syntax);
    }

    #[test]
    fn check_expression_syntax_and_names() {
        let engine = TemplateEngine::new();
        let info = engine.check_expression("node.name in vars.hosts").unwrap();
        let names: Vec<&str> = info.variables.iter().map(String::as_str).collect();
        assert_eq!(names, ["node", "vars"]);
        assert_eq!(
            engine.check_expression("(a").unwrap_err().kind(),
            &TemplateErrorKind::Syntax
        );
        let err = engine
            .check_expression_names("nodes | length > 1", HOOK_NAMES)
            .unwrap_err();
        assert!(err.to_string().starts_with("unknown variable `nodes`"), "{err}");
    }

    #[test]
    fn trailing_newline_is_kept() {
        let engine = TemplateEngine::new();
        let c = ctx(json!({}));
        assert_eq!(
            engine.render("echo {{ node.name }}\n", &c).unwrap(),
            "echo n001\n"
        );
        assert_eq!(
            engine.render_file("host={{ node.name }}\n", &c).unwrap(),
            "host=n001\n"
        );
    }

    #[test]
    fn render_file_does_not_quote() {
        let engine = TemplateEngine::new();
        let c = ctx(json!({"motd": "it's $(not) run; ok", "l": ["a"]}));
        assert_eq!(
            engine
                .render_file("motd={{ vars.motd }}\nlist={{ vars.l | tojson }}\n", &c)
                .unwrap(),
            "motd=it's $(not) run; ok\nlist=[\"a\"]\n"
        );
        // A file that is itself a script can still ask for quoting.
        assert_eq!(
            engine.render_file("echo {{ vars.motd | quote }}", &c).unwrap(),
            "echo \"it's \"'$(not) run; ok'"
        );
        // Strictness and fuel apply to files too.
        assert_eq!(
            engine.render_file("{{ vars.nope }}", &c).unwrap_err().kind(),
            &TemplateErrorKind::Undefined
        );
    }
}
