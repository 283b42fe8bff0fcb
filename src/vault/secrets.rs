//! Decrypted values, and masking them wherever text leaves drover.

use std::borrow::Cow;

/// What stands for a secret in logs, records, errors and output.
pub const MASK: &str = "********";

/// The plaintexts of every decrypted vault value of a workflow, longest first (so a
/// secret that contains another is masked whole).
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Secrets(Vec<String>);

impl std::fmt::Debug for Secrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Secrets({} values)", self.0.len())
    }
}

impl Secrets {
    pub fn add(&mut self, s: &str) {
        // Whitespace around a value (a vars file's trailing newline) is not part of it.
        let s = s.trim();
        if !s.is_empty() && !self.0.iter().any(|x| x == s) {
            self.0.push(s.to_string());
            self.0.sort_by_key(|x| std::cmp::Reverse(x.len()));
        }
    }

    /// Every string (and number) in `v`, at any depth.
    pub fn add_all(&mut self, v: &serde_json::Value) {
        match v {
            serde_json::Value::String(s) => self.add(s),
            serde_json::Value::Number(n) => self.add(&n.to_string()),
            serde_json::Value::Array(items) => items.iter().for_each(|x| self.add_all(x)),
            serde_json::Value::Object(m) => m.values().for_each(|x| self.add_all(x)),
            _ => {}
        }
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// `text` with every secret replaced by [`MASK`].
    pub fn redact<'a>(&self, text: &'a str) -> Cow<'a, str> {
        let mut out = Cow::Borrowed(text);
        for s in &self.0 {
            if out.contains(s.as_str()) {
                out = Cow::Owned(out.replace(s.as_str(), MASK));
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_secret_is_masked_the_longest_first() {
        let mut s = Secrets::default();
        s.add("abc");
        s.add("abcdef\n");
        s.add_all(&serde_json::json!({ "n": 4711, "l": ["zz"] }));
        assert_eq!(
            s.redact("x abcdef y abc z 4711 zz"),
            "x ******** y ******** z ******** ********"
        );
        assert!(matches!(s.redact("nothing"), Cow::Borrowed(_)));
        assert_eq!(format!("{s:?}"), "Secrets(4 values)");
    }
}
