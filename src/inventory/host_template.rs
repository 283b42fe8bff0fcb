//! A node's `host` written once for a whole host list: `10.1.0.{{ index }}`.

/// `host` with `{{ name }}` (the node's name) and `{{ index }}` (the number in its name:
/// the last run of digits, without leading zeros) filled in per node. A host with no
/// placeholder is one address, for an entry that names one node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostTemplate {
    parts: Vec<Part>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Part {
    Text(String),
    Name,
    Index,
}

impl HostTemplate {
    pub fn parse(host: &str) -> Result<HostTemplate, String> {
        let mut parts = Vec::new();
        let mut rest = host;
        while let Some(open) = rest.find("{{") {
            if open > 0 {
                parts.push(Part::Text(rest[..open].to_string()));
            }
            let after = &rest[open + 2..];
            let Some(close) = after.find("}}") else {
                return Err(format!("unclosed `{{{{` in host `{host}`"));
            };
            parts.push(match after[..close].trim() {
                "name" => Part::Name,
                "index" => Part::Index,
                other => {
                    return Err(format!(
                        "unknown `{{{{ {other} }}}}` in host `{host}`: expected `{{{{ name }}}}` or `{{{{ index }}}}`"
                    ));
                }
            });
            rest = &after[close + 2..];
        }
        if !rest.is_empty() {
            parts.push(Part::Text(rest.to_string()));
        }
        Ok(HostTemplate { parts })
    }

    /// Whether the host differs per node.
    pub fn varies(&self) -> bool {
        self.parts.iter().any(|p| !matches!(p, Part::Text(_)))
    }

    /// The host of node `name`; an error when `{{ index }}` is used on a name without
    /// digits.
    pub fn render(&self, name: &str) -> Result<String, String> {
        let mut s = String::new();
        for p in &self.parts {
            match p {
                Part::Text(t) => s.push_str(t),
                Part::Name => s.push_str(name),
                Part::Index => s.push_str(&index_of(name).ok_or_else(|| {
                    format!("`{{{{ index }}}}` in host, but node name `{name}` has no number")
                })?),
            }
        }
        Ok(s)
    }
}

fn index_of(name: &str) -> Option<String> {
    let through = name.trim_end_matches(|c: char| !c.is_ascii_digit());
    let digits = &through[through.trim_end_matches(|c: char| c.is_ascii_digit()).len()..];
    if digits.is_empty() {
        return None;
    }
    let trimmed = digits.trim_start_matches('0');
    Some(if trimmed.is_empty() { "0" } else { trimmed }.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn index_and_name_are_filled_in() {
        let t = HostTemplate::parse("10.1.0.{{ index }}").unwrap();
        assert!(t.varies());
        assert_eq!(t.render("n007").unwrap(), "10.1.0.7");
        assert_eq!(t.render("n000").unwrap(), "10.1.0.0");
        assert_eq!(t.render("r2n128-ib").unwrap(), "10.1.0.128");
        let t = HostTemplate::parse("{{name}}.mgmt.example.org").unwrap();
        assert_eq!(t.render("n1").unwrap(), "n1.mgmt.example.org");
        assert!(!HostTemplate::parse("10.0.0.1").unwrap().varies());
    }

    #[test]
    fn unknown_or_broken_placeholders_are_refused() {
        assert!(
            HostTemplate::parse("{{ node }}")
                .unwrap_err()
                .contains("unknown `{{ node }}`")
        );
        assert!(HostTemplate::parse("a{{ index").unwrap_err().contains("unclosed"));
        let t = HostTemplate::parse("h{{ index }}").unwrap();
        assert!(t.render("login").unwrap_err().contains("has no number"));
    }
}
