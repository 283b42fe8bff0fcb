//! File modes for `copy` and `template` steps.

use std::borrow::Cow;
use std::fmt;

use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::{Deserialize, Deserializer, Serialize, Serializer, de};

/// An octal file mode. Only quoted strings are accepted: YAML 1.2 reads an unquoted
/// `0644` as the decimal number 644, which as a mode would be `-w----r--`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FileMode(pub u32);

impl<'de> Deserialize<'de> for FileMode {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl de::Visitor<'_> for V {
            type Value = FileMode;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an octal file mode as a quoted string, like \"0644\"")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<FileMode, E> {
                let digits = v.strip_prefix("0o").unwrap_or(v);
                if (3..=4).contains(&digits.len()) && digits.chars().all(|c| ('0'..='7').contains(&c)) {
                    u32::from_str_radix(digits, 8).map(FileMode).map_err(E::custom)
                } else {
                    Err(E::custom(format!(
                        "invalid file mode `{v}`: expected 3 or 4 octal digits, like \"0644\""
                    )))
                }
            }
            // The number YAML made of the text is no guide to what was meant (`0644` is
            // 644, `0o644` is 420), so the message does not quote it: the caret shows the
            // text as written.
            fn visit_u64<E: de::Error>(self, _: u64) -> Result<FileMode, E> {
                Err(E::custom(
                    "file mode written as a number: write file modes as quoted octal strings, like \"0644\" (YAML reads an unquoted 0644 as the decimal number 644)",
                ))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<FileMode, E> {
                self.visit_u64(v.unsigned_abs())
            }
        }
        d.deserialize_any(V)
    }
}

impl Serialize for FileMode {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(&format_args!("{:04o}", self.0))
    }
}

impl JsonSchema for FileMode {
    fn schema_name() -> Cow<'static, str> {
        "FileMode".into()
    }
    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "type": "string",
            "description": "Octal file mode as a quoted string, like \"0644\".",
            "pattern": "^(0o)?[0-7]{3,4}$"
        })
    }
}
