//! The manifest version: SHA-256 of the manifest's canonical JSON.
//!
//! Canonical JSON, as the reference SDK (and Go's `SortJSON`) produce it: object keys sorted by UTF-16
//! code units, no whitespace, strings escaped as `JSON.stringify` does, integers in decimal, and
//! then `<`, `>` and `&` anywhere in the text replaced by `\u003c`, `\u003e`, `\u0026` (Go's HTML-safe
//! escaping). Memory and storage amounts are named `size`, resource values are strings.

use std::fmt::Write as _;

use serde::Serialize;
use sha2::{Digest, Sha256};

use super::js;
use super::manifest::ManifestGroup;

/// The canonical JSON text of any serialisable value.
pub fn canonical_json<T: Serialize>(value: &T) -> Result<String, serde_json::Error> {
    let value = serde_json::to_value(value)?;
    let mut out = String::new();
    write_value(&value, &mut out);
    Ok(html_escape(&out))
}

/// The canonical JSON of a manifest, exactly the bytes that are hashed.
pub fn manifest_json(groups: &[ManifestGroup]) -> String {
    // Serialising these plain structs cannot fail: every map key is a string.
    canonical_json(&groups).unwrap_or_default()
}

/// SHA-256 of the manifest's canonical JSON: the deployment version stored on chain.
pub fn manifest_version(groups: &[ManifestGroup]) -> [u8; 32] {
    Sha256::digest(manifest_json(groups).as_bytes()).into()
}

/// Lowercase hex of bytes.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().fold(String::new(), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

fn html_escape(text: &str) -> String {
    text.replace('<', "\\u003c")
        .replace('>', "\\u003e")
        .replace('&', "\\u0026")
}

fn write_value(value: &serde_json::Value, out: &mut String) {
    match value {
        serde_json::Value::Null => out.push_str("null"),
        serde_json::Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        serde_json::Value::Number(n) => {
            if n.is_f64() {
                out.push_str(&js::number_to_string(n.as_f64().unwrap_or(f64::NAN)));
            } else {
                out.push_str(&n.to_string());
            }
        }
        serde_json::Value::String(s) => write_string(s, out),
        serde_json::Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_value(item, out);
            }
            out.push(']');
        }
        serde_json::Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort_by(|a, b| js::utf16_cmp(a, b));
            out.push('{');
            for (i, key) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_string(key, out);
                out.push(':');
                write_value(&map[key], out);
            }
            out.push('}');
        }
    }
}

fn write_string(s: &str, out: &mut String) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canonical_json_sorts_keys_and_escapes_like_the_sdk() {
        let value = serde_json::json!({
            "b": [1, "x<y>&z"],
            "a": {"d": null, "c": "line\nbreak\u{1}\"q\""},
            "B": true
        });
        // Node: escapeHtml(stableStringify(value)) with escapeHtml replacing < > & by \u003c \u003e \u0026
        let want = r#"{"B":true,"a":{"c":"line\nbreak\u0001\"q\"","d":null},"b":[1,"x\u003cy\u003e\u0026z"]}"#;
        assert_eq!(canonical_json(&value).unwrap(), want);
    }

    #[test]
    fn hex_is_lowercase_two_digits_per_byte() {
        assert_eq!(hex(&[0, 15, 255, 16]), "000fff10");
    }
}
