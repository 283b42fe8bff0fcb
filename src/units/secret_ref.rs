//! Where a secret comes from: an environment variable or a file, never the YAML itself.

use std::borrow::Cow;
use std::fmt;

use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::{Deserialize, Deserializer, Serialize, de};

/// A reference to a secret. Config files live in git; a token written into one is a
/// token leaked, so inline strings are refused at parse time.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum SecretRef {
    Env(String),
    File(String),
}

impl SecretRef {
    /// Reads the secret. The error names the variable or file, never the value.
    pub fn read(&self) -> Result<String, String> {
        match self {
            SecretRef::Env(name) => {
                std::env::var(name).map_err(|_| format!("environment variable `{name}` is not set"))
            }
            SecretRef::File(path) => {
                crate::bounded_read::read_regular_text(std::path::Path::new(path), Some(1024 * 1024))
                    .map(|s| s.trim_end_matches(['\n', '\r']).to_string())
                    .map_err(|e| format!("cannot read secret file `{path}`: {e}"))
            }
        }
    }
}

impl fmt::Display for SecretRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SecretRef::Env(n) => write!(f, "env:{n}"),
            SecretRef::File(p) => write!(f, "file:{p}"),
        }
    }
}

impl<'de> Deserialize<'de> for SecretRef {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> de::Visitor<'de> for V {
            type Value = SecretRef;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("`{ env: VARIABLE }` or `{ file: /path/to/secret }`")
            }
            fn visit_str<E: de::Error>(self, _: &str) -> Result<SecretRef, E> {
                Err(E::custom(
                    "secrets are never written inline: use `{ env: VARIABLE }` or `{ file: /path/to/secret }`",
                ))
            }
            fn visit_map<A: de::MapAccess<'de>>(self, mut map: A) -> Result<SecretRef, A::Error> {
                let mut found: Option<SecretRef> = None;
                while let Some(k) = map.next_key::<String>()? {
                    let v: String = map.next_value()?;
                    let r = match k.as_str() {
                        "env" => SecretRef::Env(v),
                        "file" => SecretRef::File(v),
                        other => {
                            return Err(de::Error::custom(format!(
                                "unknown key `{other}` in secret reference: expected `env` or `file`"
                            )));
                        }
                    };
                    if found.is_some() {
                        return Err(de::Error::custom(
                            "a secret reference takes exactly one of `env` or `file`",
                        ));
                    }
                    found = Some(r);
                }
                found.ok_or_else(|| {
                    de::Error::custom("a secret reference takes exactly one of `env` or `file`")
                })
            }
        }
        d.deserialize_any(V)
    }
}

impl JsonSchema for SecretRef {
    fn schema_name() -> Cow<'static, str> {
        "SecretRef".into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "description": "A secret read from an environment variable or a file; never written inline.",
            "oneOf": [
                { "type": "object", "properties": { "env": { "type": "string" } }, "required": ["env"], "additionalProperties": false },
                { "type": "object", "properties": { "file": { "type": "string" } }, "required": ["file"], "additionalProperties": false }
            ]
        })
    }
}
