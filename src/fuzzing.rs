//! The bodies of the fuzz targets in `fuzz/` (run with `cargo fuzz`), kept in the library
//! so they always compile with it, and so a plain test runs each over a seed corpus
//! (`tests/cli/fuzz_corpus.rs`) where `cargo fuzz` is not available.
//!
//! Each body feeds arbitrary bytes to one parser and checks what must hold for every
//! input: no panic, and for the parsers with an inverse, that the round trip holds.

use crate::diag::Diagnostic;
use crate::inventory::{Inventory, RawInventory};
use crate::site::RawSite;
use crate::template::TemplateEngine;
use crate::units::{Amount, HumanDuration};
use crate::workflow::{COMMAND_SCOPE, RawWorkflow};
use crate::yaml::Document;

fn text(data: &[u8]) -> Option<&str> {
    std::str::from_utf8(data).ok()
}

/// Every diagnostic has a location inside the text it points at.
fn check_located(source: &str, diags: &[Diagnostic]) {
    let lines = source.split('\n').count();
    for d in diags {
        if let Some(l) = d.location {
            assert!(l.line >= 1 && l.line <= lines + 1, "{d:?} outside {lines} lines");
        }
        let _ = d.render(false);
    }
}

/// The YAML loader and the decoders of the three file formats.
pub fn yaml_loader(data: &[u8]) {
    let Some(src) = text(data) else { return };
    match Document::parse("fuzz.yml", src.to_string()) {
        Ok((doc, warnings)) => {
            check_located(src, &warnings);
            match doc.decode::<RawWorkflow>() {
                Ok((_, d)) | Err(d) => check_located(src, &d),
            }
            match doc.decode::<RawSite>() {
                Ok((_, d)) | Err(d) => check_located(src, &d),
            }
            match doc.decode::<RawInventory>() {
                Ok((raw, d)) => {
                    check_located(src, &d);
                    if let Err(ps) = Inventory::from_raw(&raw) {
                        check_located(src, &ps.iter().map(|p| doc.diagnostic(p)).collect::<Vec<_>>());
                    }
                }
                Err(d) => check_located(src, &d),
            }
        }
        Err(d) => check_located(src, &d),
    }
}

/// Host lists: a list that expands compresses to a list naming the same nodes.
pub fn host_lists(data: &[u8]) {
    let Some(src) = text(data) else { return };
    let counted = crate::hostlist::count(src);
    if let Ok(names) = crate::hostlist::expand(src) {
        assert_eq!(
            counted,
            Ok(names.len() as u64),
            "count and expand disagree on {src:?}"
        );
        let mut unique = names.clone();
        unique.sort();
        unique.dedup();
        let compressed = crate::hostlist::compress(&unique);
        if unique.is_empty() {
            return;
        }
        let mut again = crate::hostlist::expand(&compressed)
            .unwrap_or_else(|e| panic!("{compressed:?} (from {src:?}) does not expand: {e}"));
        again.sort();
        again.dedup();
        assert_eq!(again, unique, "{src:?} -> {compressed:?}");
    }
}

/// Templates as validation sees them: commands, `when:` conditions and file templates.
pub fn templates(data: &[u8]) {
    let Some(src) = text(data) else { return };
    let engine = TemplateEngine::new();
    let _ = engine.check(src);
    let _ = engine.check_names(src, &COMMAND_SCOPE);
    let _ = engine.check_expression(src);
    let _ = engine.check_expression_names(src, &COMMAND_SCOPE);
    let _ = crate::template::opt_outs(src);
}

/// Durations and amounts: what parses displays as text that parses to the same value.
pub fn units(data: &[u8]) {
    let Some(src) = text(data) else { return };
    if let Ok(d) = HumanDuration::parse(src) {
        assert!(d.get() <= crate::units::limits::MAX_ANY_DURATION, "{src:?}");
        let shown = d.to_string();
        if !d.get().is_zero() {
            assert_eq!(HumanDuration::parse(&shown), Ok(d), "{src:?} shown as {shown:?}");
        }
    }
    if let Ok(a) = Amount::parse(src) {
        let shown = a.to_string();
        assert_eq!(Amount::parse(&shown), Ok(a), "{src:?} shown as {shown:?}");
        let _ = (a.of_ceil(usize::MAX), a.of_floor(usize::MAX), a.of_ceil(0));
    }
}

/// `--extra-vars`: never a panic, an object or a refusal.
pub fn extra_vars(data: &[u8]) {
    let Some(src) = text(data) else { return };
    if src.starts_with('@') {
        return; // a file name: not the parser
    }
    let _ = crate::cli::parse_extra_vars(src);
}
