//! Reading YAML text into a YAML value the way JavaScript would see it: every number becomes a
//! double (so integers beyond 64 bits are read, rounded, instead of failing), duplicate keys are an
//! error, tags are dropped, merge keys (`<<`) are applied, and mapping keys become text.

use std::fmt;

use serde::Deserialize;
use serde::de::{self, Deserializer, EnumAccess, MapAccess, SeqAccess, VariantAccess, Visitor};
use serde_yaml::{Mapping, Number, Value};

use super::js;

/// Parses YAML text; the error is the YAML parser's message.
pub fn read_yaml(text: &str) -> Result<Value, String> {
    let Loose(mut value) = serde_yaml::from_str(text).map_err(|e| e.to_string())?;
    value.apply_merge().map_err(|e| e.to_string())?;
    Ok(stringify_keys(value))
}

/// A YAML value read without the 64-bit limit on integers.
struct Loose(Value);

impl<'de> Deserialize<'de> for Loose {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(LooseVisitor)
    }
}

struct LooseVisitor;

impl<'de> Visitor<'de> for LooseVisitor {
    type Value = Loose;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any YAML value")
    }

    fn visit_bool<E>(self, v: bool) -> Result<Loose, E> {
        Ok(Loose(Value::Bool(v)))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Loose, E> {
        Ok(Loose(Value::Number(v.into())))
    }
    fn visit_u64<E>(self, v: u64) -> Result<Loose, E> {
        Ok(Loose(Value::Number(v.into())))
    }
    fn visit_i128<E>(self, v: i128) -> Result<Loose, E> {
        Ok(Loose(Value::Number(Number::from(v as f64))))
    }
    fn visit_u128<E>(self, v: u128) -> Result<Loose, E> {
        Ok(Loose(Value::Number(Number::from(v as f64))))
    }
    fn visit_f64<E>(self, v: f64) -> Result<Loose, E> {
        Ok(Loose(Value::Number(Number::from(v))))
    }
    fn visit_str<E>(self, v: &str) -> Result<Loose, E> {
        Ok(Loose(Value::String(v.to_string())))
    }
    fn visit_string<E>(self, v: String) -> Result<Loose, E> {
        Ok(Loose(Value::String(v)))
    }
    fn visit_unit<E>(self) -> Result<Loose, E> {
        Ok(Loose(Value::Null))
    }
    fn visit_none<E>(self) -> Result<Loose, E> {
        Ok(Loose(Value::Null))
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Loose, D::Error> {
        Loose::deserialize(d)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Loose, A::Error> {
        let mut items = Vec::new();
        while let Some(Loose(item)) = seq.next_element()? {
            items.push(item);
        }
        Ok(Loose(Value::Sequence(items)))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Loose, A::Error> {
        let mut out = Mapping::new();
        while let Some((Loose(key), Loose(value))) = map.next_entry()? {
            if out.contains_key(&key) {
                let shown = serde_yaml::to_string(&key).unwrap_or_default();
                return Err(de::Error::custom(format!(
                    "duplicate key {} in a mapping",
                    shown.trim()
                )));
            }
            out.insert(key, value);
        }
        Ok(Loose(Value::Mapping(out)))
    }
    fn visit_enum<A: EnumAccess<'de>>(self, data: A) -> Result<Loose, A::Error> {
        // A tagged value (`!tag value`): the tag is dropped, as JavaScript's YAML reader keeps
        // only the value for the tags an SDL uses.
        let (_tag, variant): (String, _) = data.variant()?;
        variant.newtype_variant::<Loose>()
    }
}

/// Turns every mapping key into the text JavaScript would use for it.
fn stringify_keys(value: Value) -> Value {
    match value {
        Value::Tagged(tagged) => stringify_keys(tagged.value),
        Value::Sequence(items) => Value::Sequence(items.into_iter().map(stringify_keys).collect()),
        Value::Mapping(map) => Value::Mapping(
            map.into_iter()
                .map(|(k, v)| (Value::String(key_text(k)), stringify_keys(v)))
                .collect(),
        ),
        other => other,
    }
}

fn key_text(key: Value) -> String {
    match key {
        Value::String(s) => s,
        Value::Number(n) => js::number_to_string(n.as_f64().unwrap_or(f64::NAN)),
        Value::Bool(b) => b.to_string(),
        Value::Null => "null".into(),
        Value::Tagged(t) => key_text(t.value),
        other => serde_yaml::to_string(&other)
            .unwrap_or_default()
            .trim()
            .to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn big_integers_become_doubles() {
        let v = read_yaml("amount: 123456789012345678901").unwrap();
        let n = v["amount"].as_f64().unwrap();
        assert_eq!(js::number_to_string(n), "123456789012345680000");
    }

    #[test]
    fn duplicate_keys_are_rejected() {
        let err = read_yaml("a: 1\nb: 2\na: 3\n").unwrap_err();
        assert!(err.contains("duplicate key a"), "{err}");
    }

    #[test]
    fn merge_keys_tags_and_numeric_keys() {
        let v = read_yaml("base: &b {x: 1}\nuse:\n  <<: *b\n  y: !!str 2\n10: ten\n").unwrap();
        assert_eq!(v["use"]["x"].as_f64(), Some(1.0));
        assert_eq!(v["use"]["y"].as_str(), Some("2"));
        assert_eq!(v["10"].as_str(), Some("ten"));
    }
}
