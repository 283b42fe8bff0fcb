//! A number of nodes, written as a count (`5`) or a share of some total (`"10%"`).

use std::borrow::Cow;
use std::fmt;

use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::{Deserialize, Deserializer, Serialize, Serializer, de};

use super::limits::MAX_NODES;

/// A count or a percentage. Percentages are resolved against a total (the targets, a
/// group, a batch) only once that total is known, in the plan.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Amount {
    Count(u64),
    /// Between 0 and 100 inclusive.
    Percent(f64),
}

impl Amount {
    /// Rounds a share of `total` up, so "10%" of 5 nodes is one node rather than none:
    /// a batch or budget of zero would silently stop a rollout.
    pub fn of_ceil(self, total: usize) -> usize {
        match self {
            Amount::Count(n) => usize::try_from(n).unwrap_or(usize::MAX),
            Amount::Percent(p) => ((p / 100.0) * total as f64 - 1e-9).ceil().max(0.0) as usize,
        }
    }

    /// Rounds a share of `total` down: for budgets of failures, where "10%" of 5 nodes
    /// tolerating one failure would be more than was asked for.
    pub fn of_floor(self, total: usize) -> usize {
        match self {
            Amount::Count(n) => usize::try_from(n).unwrap_or(usize::MAX),
            Amount::Percent(p) => ((p / 100.0) * total as f64 + 1e-9).floor().max(0.0) as usize,
        }
    }

    pub fn is_zero(self) -> bool {
        match self {
            Amount::Count(n) => n == 0,
            Amount::Percent(p) => p == 0.0,
        }
    }

    /// A count of nodes, refused above [`MAX_NODES`]: no inventory has more, so a larger
    /// number is a typo.
    pub fn count(n: u64) -> Result<Amount, String> {
        if n > MAX_NODES {
            return Err(format!(
                "amount `{n}` is above the limit of {MAX_NODES} nodes (the most an inventory may have)"
            ));
        }
        Ok(Amount::Count(n))
    }

    pub fn parse(s: &str) -> Result<Amount, String> {
        let t = s.trim();
        let Some(num) = t.strip_suffix('%') else {
            return t
                .parse::<u64>()
                .map_err(|_| {
                    format!(
                        "invalid amount `{s}`: expected a whole number like `5` or a percentage like `10%`"
                    )
                })
                .and_then(Amount::count);
        };
        let p: f64 = num.trim().parse().map_err(|_| {
            format!("invalid percentage `{s}`: expected a number followed by `%`, like `10%`")
        })?;
        if !(0.0..=100.0).contains(&p) {
            return Err(format!("invalid percentage `{s}`: must be between 0% and 100%"));
        }
        Ok(Amount::Percent(p))
    }
}

impl fmt::Display for Amount {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Amount::Count(n) => write!(f, "{n}"),
            Amount::Percent(p) => write!(f, "{p}%"),
        }
    }
}

impl<'de> Deserialize<'de> for Amount {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(AmountVisitor)
    }
}

struct AmountVisitor;

impl de::Visitor<'_> for AmountVisitor {
    type Value = Amount;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a whole number like `5` or a percentage like `\"10%\"`")
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Amount, E> {
        Amount::count(v).map_err(E::custom)
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Amount, E> {
        u64::try_from(v)
            .map_err(|_| E::custom(format!("invalid amount `{v}`: must not be negative")))
            .and_then(|v| self.visit_u64(v))
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Amount, E> {
        Err(E::custom(format!(
            "invalid amount `{v}`: expected a whole number, or a percentage written as `\"{v}%\"`"
        )))
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Amount, E> {
        Amount::parse(v).map_err(E::custom)
    }
}

impl Serialize for Amount {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Amount::Count(n) => s.serialize_u64(*n),
            Amount::Percent(_) => s.collect_str(self),
        }
    }
}

impl JsonSchema for Amount {
    fn schema_name() -> Cow<'static, str> {
        "Amount".into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "description": "A number of nodes (`5`) or a percentage of a total (`\"10%\"`).",
            "oneOf": [
                { "type": "integer", "minimum": 0, "maximum": MAX_NODES },
                { "type": "string", "pattern": "^\\s*[0-9]+(\\.[0-9]+)?\\s*%\\s*$" }
            ]
        })
    }
}

/// Batch sizes: one amount repeated, or a list whose last entry repeats
/// (`[1, "10%", "50%"]`: one node, then 10% of the bulk, then halves until done).
#[derive(Debug, Clone, PartialEq)]
pub struct BatchSizes(pub Vec<Amount>);

impl<'de> Deserialize<'de> for BatchSizes {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> de::Visitor<'de> for V {
            type Value = BatchSizes;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a batch size (`5` or `\"10%\"`) or a list of them like `[1, \"10%\", \"50%\"]`")
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<BatchSizes, E> {
                AmountVisitor.visit_u64(v).map(|a| BatchSizes(vec![a]))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<BatchSizes, E> {
                AmountVisitor.visit_i64(v).map(|a| BatchSizes(vec![a]))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<BatchSizes, E> {
                AmountVisitor.visit_f64(v).map(|a| BatchSizes(vec![a]))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<BatchSizes, E> {
                AmountVisitor.visit_str(v).map(|a| BatchSizes(vec![a]))
            }
            fn visit_seq<A: de::SeqAccess<'de>>(self, mut seq: A) -> Result<BatchSizes, A::Error> {
                let mut v = Vec::new();
                while let Some(a) = seq.next_element::<Amount>()? {
                    v.push(a);
                }
                Ok(BatchSizes(v))
            }
        }
        d.deserialize_any(V)
    }
}

impl Serialize for BatchSizes {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.0.serialize(s)
    }
}

impl JsonSchema for BatchSizes {
    fn schema_name() -> Cow<'static, str> {
        "BatchSizes".into()
    }

    fn json_schema(g: &mut SchemaGenerator) -> Schema {
        let one = g.subschema_for::<Amount>();
        json_schema!({
            "description": "Batch size: one amount, or a list whose last entry repeats, like `[1, \"10%\", \"50%\"]`.",
            "oneOf": [ one, { "type": "array", "items": one, "minItems": 1 } ]
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentages_round_the_safe_way() {
        let ten = Amount::parse("10%").unwrap();
        assert_eq!(ten.of_ceil(5), 1);
        assert_eq!(ten.of_floor(5), 0);
        assert_eq!(ten.of_ceil(100), 10);
        assert_eq!(ten.of_floor(100), 10);
        assert_eq!(
            Amount::parse("150%").unwrap_err(),
            "invalid percentage `150%`: must be between 0% and 100%"
        );
        assert_eq!(
            Amount::parse("abc").unwrap_err(),
            "invalid amount `abc`: expected a whole number like `5` or a percentage like `10%`"
        );
    }
}
