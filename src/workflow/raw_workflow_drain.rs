//! A workflow's `drain:`: its own hooks, or an explicit statement that its nodes need none.

use std::borrow::Cow;
use std::fmt;

use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::{Deserialize, Deserializer, de};

use crate::site::RawDrain;

/// `drain:` in a workflow. A `change: drain` step without any drain hooks would run on a
/// node still doing its work; a workflow whose nodes really need no drain (stateless VMs
/// behind a load balancer that takes them out) says so in the file, with the reason, so a
/// reviewer sees the decision instead of a missing setting.
#[derive(Debug, Clone)]
pub enum RawWorkflowDrain {
    /// Hooks for this workflow's nodes, replacing the site's.
    Hooks(RawDrain),
    /// `drain: { none: "why these nodes need no drain" }`.
    None(String),
}

impl<'de> Deserialize<'de> for RawWorkflowDrain {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> de::Visitor<'de> for V {
            type Value = RawWorkflowDrain;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("drain hooks (`drain`, `drained`, `resume`, ...) or `{ none: \"reason\" }`")
            }
            fn visit_map<A: de::MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut entries = serde_json::Map::new();
                while let Some(k) = map.next_key::<String>()? {
                    let v: serde_json::Value = map.next_value()?;
                    entries.insert(k, v);
                }
                match entries.get("none") {
                    Some(reason) => {
                        if entries.len() > 1 {
                            return Err(de::Error::custom(
                                "`drain: { none: ... }` takes no other key: a workflow has drain hooks or says it needs none",
                            ));
                        }
                        match reason.as_str().map(str::trim) {
                            Some(r) if !r.is_empty() => Ok(RawWorkflowDrain::None(r.to_string())),
                            _ => Err(de::Error::custom(
                                "`drain: { none: ... }` needs the reason as a non-empty string, like `none: \"stateless VMs; the load balancer takes them out\"`",
                            )),
                        }
                    }
                    None => RawDrain::deserialize(serde_json::Value::Object(entries))
                        .map(RawWorkflowDrain::Hooks)
                        .map_err(de::Error::custom),
                }
            }
        }
        d.deserialize_map(V)
    }
}

impl JsonSchema for RawWorkflowDrain {
    fn schema_name() -> Cow<'static, str> {
        "WorkflowDrain".into()
    }

    fn json_schema(g: &mut SchemaGenerator) -> Schema {
        let hooks = g.subschema_for::<RawDrain>();
        json_schema!({
            "description": "Drain hooks for this workflow's nodes (replacing the site's), or `{ none: \"reason\" }` to declare that its nodes need no drain.",
            "oneOf": [
                hooks,
                {
                    "type": "object",
                    "properties": { "none": { "type": "string", "minLength": 1, "description": "Why these nodes need no drain." } },
                    "required": ["none"],
                    "additionalProperties": false
                }
            ]
        })
    }
}
