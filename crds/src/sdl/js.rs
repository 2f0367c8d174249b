//! JavaScript value semantics that the reference SDK's output depends on.
//!
//! The official SDK is JavaScript, so its groups and manifests carry JavaScript's way of turning
//! numbers into text, its `parseFloat`/`parseInt`, its `String(value)`, the order in which it lists an
//! object's keys, and `String.prototype.localeCompare` (ICU root collation) for sorting names. These
//! helpers reproduce exactly those behaviours for the values an SDL can hold.

use std::cmp::Ordering;

/// `Number.prototype.toString()` for a double: shortest round-trip digits, exponent form below 1e-6
/// and from 1e21 up.
pub fn number_to_string(x: f64) -> String {
    if x.is_nan() {
        return "NaN".into();
    }
    if x == 0.0 {
        return "0".into();
    }
    if x.is_infinite() {
        return if x > 0.0 { "Infinity" } else { "-Infinity" }.into();
    }
    if x < 0.0 {
        return format!("-{}", number_to_string(-x));
    }
    // Rust's shortest representation in scientific form: "d.ddde<exp>".
    let sci = format!("{x:e}");
    let (mantissa, exponent) = sci.split_once('e').unwrap_or((sci.as_str(), "0"));
    let digits: String = mantissa.chars().filter(|c| *c != '.').collect();
    let k = digits.len() as i64;
    let n = exponent.parse::<i64>().unwrap_or(0) + 1;
    if k <= n && n <= 21 {
        format!("{digits}{}", "0".repeat((n - k) as usize))
    } else if 0 < n && n <= 21 {
        let (int, frac) = digits.split_at(n as usize);
        format!("{int}.{frac}")
    } else if -6 < n && n <= 0 {
        format!("0.{}{digits}", "0".repeat((-n) as usize))
    } else {
        let sign = if n - 1 < 0 { '-' } else { '+' };
        let (first, rest) = digits.split_at(1);
        let dot = if rest.is_empty() { "" } else { "." };
        format!("{first}{dot}{rest}e{sign}{}", (n - 1).abs())
    }
}

/// `parseFloat` over text made only of digits and dots: the longest leading decimal number, or NaN.
pub fn parse_float_digits(text: &str) -> f64 {
    let mut end = 0;
    let mut seen_dot = false;
    for (i, c) in text.char_indices() {
        match c {
            '0'..='9' => end = i + 1,
            '.' if !seen_dot => {
                seen_dot = true;
                end = i + 1;
            }
            _ => break,
        }
    }
    let prefix = &text[..end];
    if !prefix.chars().any(|c| c.is_ascii_digit()) {
        return f64::NAN;
    }
    prefix.parse::<f64>().unwrap_or(f64::NAN)
}

/// `parseInt(text)` without a radix: optional sign, `0x` for hexadecimal, leading digits; NaN if none.
pub fn parse_int(text: &str) -> f64 {
    let trimmed = text.trim_start();
    let (negative, rest) = match trimmed.as_bytes().first() {
        Some(b'-') => (true, &trimmed[1..]),
        Some(b'+') => (false, &trimmed[1..]),
        _ => (false, trimmed),
    };
    let (radix, body) = if rest.len() >= 2 && (rest.starts_with("0x") || rest.starts_with("0X")) {
        (16, &rest[2..])
    } else {
        (10, rest)
    };
    let mut value = 0f64;
    let mut any = false;
    for c in body.chars() {
        match c.to_digit(radix) {
            Some(d) => {
                value = value * f64::from(radix) + f64::from(d);
                any = true;
            }
            None => break,
        }
    }
    if !any {
        return f64::NAN;
    }
    if negative { -value } else { value }
}

/// `String(value)` for a value read from YAML; `None` for `null`, where `value.toString()` throws.
pub fn to_js_string(value: &serde_json::Value) -> Option<String> {
    match value {
        serde_json::Value::Null => None,
        serde_json::Value::Bool(b) => Some(b.to_string()),
        serde_json::Value::Number(n) => Some(number_to_string(n.as_f64().unwrap_or(f64::NAN))),
        serde_json::Value::String(s) => Some(s.clone()),
        serde_json::Value::Array(items) => Some(
            items
                .iter()
                .map(|item| to_js_string(item).unwrap_or_default())
                .collect::<Vec<_>>()
                .join(","),
        ),
        serde_json::Value::Object(_) => Some("[object Object]".into()),
    }
}

/// Whether JavaScript treats `key` as an array index (such keys come first in `Object.keys`).
fn array_index(key: &str) -> Option<u32> {
    if key.is_empty() || (key.len() > 1 && key.starts_with('0')) {
        return None;
    }
    if !key.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    key.parse::<u32>().ok().filter(|n| *n != u32::MAX)
}

/// The order of `Object.keys` for keys inserted in `keys` order: array indices ascending, then the
/// other keys in insertion order. Returns positions into `keys`.
pub fn object_key_order<'a, I>(keys: I) -> Vec<usize>
where
    I: IntoIterator<Item = &'a str>,
{
    let keys: Vec<&str> = keys.into_iter().collect();
    let mut indices: Vec<(u32, usize)> = Vec::new();
    let mut others = Vec::new();
    for (pos, key) in keys.iter().enumerate() {
        match array_index(key) {
            Some(n) => indices.push((n, pos)),
            None => others.push(pos),
        }
    }
    indices.sort();
    indices
        .into_iter()
        .map(|(_, pos)| pos)
        .chain(others)
        .collect()
}

/// Iterates an ordered map the way JavaScript iterates the object built from it.
pub fn js_entries<V>(map: &indexmap::IndexMap<String, V>) -> Vec<(&String, &V)> {
    object_key_order(map.keys().map(String::as_str))
        .into_iter()
        .filter_map(|pos| map.get_index(pos))
        .collect()
}

/// ASCII in ICU root collation order (primary level); a letter's two cases share a weight.
const PRIMARY_ORDER: &str =
    " _-,;:!?.'\"()[]{}@*/\\&#%`^+<=>|~$0123456789abcdefghijklmnopqrstuvwxyz";

fn primary(c: char) -> u32 {
    let folded = c.to_ascii_lowercase();
    match PRIMARY_ORDER.find(folded) {
        Some(pos) => pos as u32,
        None => 0x100 + c as u32,
    }
}

/// `a.localeCompare(b)` in the root locale, for the ASCII names an SDL uses: punctuation before
/// digits before letters, letters compared without case first, then lowercase before uppercase.
pub fn locale_compare(a: &str, b: &str) -> Ordering {
    let primaries = |s: &str| s.chars().map(primary).collect::<Vec<_>>();
    primaries(a).cmp(&primaries(b)).then_with(|| {
        // Tertiary level: lowercase sorts before uppercase.
        let case = |s: &str| {
            s.chars()
                .map(|c| c.is_ascii_uppercase())
                .collect::<Vec<_>>()
        };
        case(a).cmp(&case(b))
    })
}

/// The default `Array.prototype.sort` order: by UTF-16 code units.
pub fn utf16_cmp(a: &str, b: &str) -> Ordering {
    a.encode_utf16().cmp(b.encode_utf16())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_print_like_javascript() {
        // Expected strings are what `String(x)` prints in Node for the same double.
        let cases = [
            (1000.9999999999999, "1000.9999999999999"),
            (0.1 * 3.0, "0.30000000000000004"),
            (500.0, "500"),
            (1e21, "1e+21"),
            (123456789012345680000.0, "123456789012345680000"),
            (0.000001, "0.000001"),
            (0.0000001, "1e-7"),
            (1.5e-7, "1.5e-7"),
            (-2.5, "-2.5"),
            (5368709120.0, "5368709120"),
        ];
        for (x, want) in cases {
            assert_eq!(number_to_string(x), want, "{x:e}");
        }
    }

    #[test]
    fn parse_helpers_follow_javascript() {
        assert_eq!(parse_float_digits("1.5"), 1.5);
        assert_eq!(parse_float_digits("1.2.3"), 1.2);
        assert!(parse_float_digits(".").is_nan());
        assert_eq!(parse_int("12abc"), 12.0);
        assert_eq!(parse_int("1.9"), 1.0);
        assert_eq!(parse_int("0x10"), 16.0);
        assert!(parse_int("abc").is_nan());
    }

    #[test]
    fn object_keys_put_array_indices_first() {
        let order = object_key_order(["web", "2", "db", "10", "01"]);
        assert_eq!(order, vec![1, 3, 0, 2, 4]);
    }

    #[test]
    fn locale_compare_matches_icu_for_ascii_names() {
        // Node: ["web1","web-2","web","a9","a10","a1","a-1","a_b","a","ab","aB","Ab"].sort(localeCompare)
        let mut names = vec![
            "web1", "web-2", "web", "a9", "a10", "a1", "a-1", "a_b", "a", "ab", "aB", "Ab", "a-b",
        ];
        names.sort_by(|a, b| locale_compare(a, b));
        assert_eq!(
            names,
            vec![
                "a", "a_b", "a-1", "a-b", "a1", "a10", "a9", "ab", "aB", "Ab", "web", "web-2",
                "web1"
            ]
        );
    }
}
