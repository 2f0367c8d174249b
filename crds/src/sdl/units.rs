//! Sizes and CPU units as the reference SDK converts them.
//!
//! Sizes: a decimal number, one letter, then optional letters, case-insensitive. The first letter is
//! the prefix `k m g t p e` (powers 1..6); the base is 1024 when the rest is exactly `i`, else 1000
//! (so `1Gi` = 1024³, `1G` and `1gb` = 1000³, `100mb` = 10⁸, and `1gib` = 1000³). A first letter that
//! is not a prefix (`100b`) leaves the number as is. The result is rounded up to a whole number.
//!
//! CPU: a number is cores (× 1000 to millicores); a string is a decimal number with optional letters,
//! `m` meaning millicores and anything else meaning cores.

use super::js;
use super::model::NumberOrString;

const PREFIXES: &str = "kmgtpe";

/// Bytes for a size string, or `None` when the text is not a size (the SDK throws "Invalid size
/// string").
pub fn size_bytes(text: &str) -> Option<f64> {
    let lower = text.to_lowercase();
    let number_end = lower
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(lower.len());
    let (number, letters) = lower.split_at(number_end);
    let mut letters_iter = letters.chars();
    let prefix = letters_iter.next()?;
    let unit: String = letters_iter.collect();
    if number.is_empty()
        || !prefix.is_ascii_alphabetic()
        || !unit.chars().all(|c| c.is_ascii_alphabetic())
    {
        return None;
    }
    let value = js::parse_float_digits(number);
    let base: f64 = if unit == "i" { 1024.0 } else { 1000.0 };
    let result = match PREFIXES.find(prefix) {
        Some(power) => value * base.powi(power as i32 + 1),
        None => value,
    };
    Some(result.ceil())
}

/// Millicores for a CPU amount (possibly fractional, as in the SDK), or `None` if a string is not of
/// the form digits[.digits]letters.
pub fn cpu_millis(units: &NumberOrString) -> Option<f64> {
    match units {
        NumberOrString::Number(n) => Some(n * 1000.0),
        NumberOrString::Text(text) => {
            let lower = text.to_lowercase();
            let number_end = lower
                .find(|c: char| !(c.is_ascii_digit() || c == '.'))
                .unwrap_or(lower.len());
            let (number, unit) = lower.split_at(number_end);
            if number.is_empty() || !unit.chars().all(|c| c.is_ascii_alphabetic()) {
                return None;
            }
            let value = js::parse_float_digits(number);
            Some(if unit == "m" { value } else { value * 1000.0 })
        }
    }
}

/// The size as the decimal text that goes on chain and into the manifest.
pub fn size_text(text: &str) -> Option<String> {
    size_bytes(text).map(js::number_to_string)
}

/// Millicores as the decimal text that goes on chain and into the manifest.
pub fn cpu_text(units: &NumberOrString) -> Option<String> {
    cpu_millis(units).map(js::number_to_string)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_use_binary_base_only_for_a_bare_i() {
        assert_eq!(size_bytes("512Mi"), Some(536_870_912.0));
        assert_eq!(size_bytes("1Gi"), Some(1_073_741_824.0));
        assert_eq!(size_bytes("1G"), Some(1e9));
        assert_eq!(size_bytes("1gb"), Some(1e9));
        assert_eq!(size_bytes("100mb"), Some(1e8));
        assert_eq!(size_bytes("1gib"), Some(1e9));
        assert_eq!(size_bytes("2Ti"), Some(2_199_023_255_552.0));
        assert_eq!(size_bytes("1.5Ki"), Some(1536.0));
        assert_eq!(size_bytes("0.3k"), Some(300.0));
        assert_eq!(size_bytes("100b"), Some(100.0));
        assert_eq!(size_bytes("1073741824"), None);
        assert_eq!(size_bytes("Gi"), None);
        assert_eq!(size_bytes("1 Gi"), None);
    }

    #[test]
    fn cpu_units_become_millicores() {
        let text = |s: &str| NumberOrString::Text(s.into());
        assert_eq!(cpu_text(&text("100m")).as_deref(), Some("100"));
        assert_eq!(cpu_text(&text("0.5")).as_deref(), Some("500"));
        assert_eq!(cpu_text(&text("2")).as_deref(), Some("2000"));
        // Node: parseFloat("1.001") * 1000 === 1000.9999999999999
        assert_eq!(
            cpu_text(&text("1.001")).as_deref(),
            Some("1000.9999999999999")
        );
        assert_eq!(
            cpu_text(&NumberOrString::Number(0.25)).as_deref(),
            Some("250")
        );
        assert_eq!(cpu_text(&text("1 core")), None);
    }
}
