//! Strings written into generated YAML.

/// A YAML double-quoted scalar (a JSON string is one), so paths, user names and commands
/// with any characters stay strings.
pub(crate) fn quote(s: &str) -> String {
    serde_json::Value::from(s).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quotes_yaml_strings() {
        assert_eq!(quote("root"), "\"root\"");
        assert_eq!(quote("a\"b"), "\"a\\\"b\"");
        assert_eq!(quote("x {{ node.name }}"), "\"x {{ node.name }}\"");
    }
}
