//! Kubernetes quantities (`"500m"`, `"64Gi"`, `"1e3"`) as integers, and the short forms the
//! inventory's messages print. Everything saturates: a malformed or absurd quantity never panics.

/// A parsed quantity in base units (cores, bytes, GPUs), scaled by `scale` (1000 for millicores) and
/// rounded up, as `Quantity.MilliValue()`/`Value()` do. `None` when the text is not a quantity.
/// Negative quantities count as zero.
pub(crate) fn parse(text: &str, scale: u128) -> Option<u64> {
    let text = text.trim();
    let (negative, unsigned) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text.strip_prefix('+').unwrap_or(text)),
    };
    let number_end = unsigned
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(unsigned.len());
    let (number, suffix) = unsigned.split_at(number_end);
    let (int_part, frac_part) = number.split_once('.').unwrap_or((number, ""));
    if int_part.is_empty() && frac_part.is_empty() || frac_part.contains('.') {
        return None;
    }
    // value = digits / 10^frac_len × multiplier (a power of two or of ten, maybe negative).
    let digits: String = format!("{int_part}{frac_part}");
    let digits = digits.trim_start_matches('0');
    let mantissa: u128 = if digits.is_empty() {
        0
    } else if digits.len() > 38 {
        u128::MAX
    } else {
        digits.parse().ok()?
    };
    let mut numerator = mantissa.saturating_mul(scale);
    let mut denominator: u128 = 1;
    let mut ten_exp: i32 = -i32::try_from(frac_part.len()).ok()?;
    match suffix {
        "" => {}
        "Ki" | "Mi" | "Gi" | "Ti" | "Pi" | "Ei" => {
            let power = match suffix {
                "Ki" => 10,
                "Mi" => 20,
                "Gi" => 30,
                "Ti" => 40,
                "Pi" => 50,
                _ => 60,
            };
            numerator = numerator.saturating_mul(1u128 << power);
        }
        "n" => ten_exp -= 9,
        "u" => ten_exp -= 6,
        "m" => ten_exp -= 3,
        "k" => ten_exp += 3,
        "M" => ten_exp += 6,
        "G" => ten_exp += 9,
        "T" => ten_exp += 12,
        "P" => ten_exp += 15,
        "E" => ten_exp += 18,
        exp if exp.starts_with(['e', 'E']) => {
            let value: i32 = exp[1..].parse().ok()?;
            ten_exp = ten_exp.saturating_add(value);
        }
        _ => return None,
    }
    if ten_exp >= 0 {
        for _ in 0..ten_exp.min(40) {
            numerator = numerator.saturating_mul(10);
        }
    } else {
        for _ in 0..(-ten_exp).min(40) {
            denominator = denominator.saturating_mul(10);
        }
    }
    if negative {
        return Some(0);
    }
    let value = numerator.div_ceil(denominator);
    Some(u64::try_from(value).unwrap_or(u64::MAX))
}

/// A CPU quantity in millicores (`"1.5"` is 1500); malformed text counts as zero.
pub(crate) fn millis(text: &str) -> u64 {
    parse(text, 1000).unwrap_or(0)
}

/// A quantity in base units (bytes, devices); malformed text counts as zero.
pub(crate) fn units(text: &str) -> u64 {
    parse(text, 1).unwrap_or(0)
}

/// Bytes in the largest binary unit that divides them exactly: `4Gi`, `512Mi`, `1000` (bytes).
pub(crate) fn fmt_bytes(bytes: u64) -> String {
    const UNITS: [(&str, u32); 5] = [("Pi", 50), ("Ti", 40), ("Gi", 30), ("Mi", 20), ("Ki", 10)];
    if bytes == 0 {
        return "0".to_owned();
    }
    for (suffix, shift) in UNITS {
        let unit = 1u64 << shift;
        if bytes.is_multiple_of(unit) {
            return format!("{}{suffix}", bytes / unit);
        }
    }
    format!("{bytes}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_kubernetes_forms() {
        assert_eq!(millis("16"), 16_000);
        assert_eq!(millis("500m"), 500);
        assert_eq!(millis("1.5"), 1500);
        assert_eq!(millis("0.0001"), 1, "millis round up");
        assert_eq!(units("64Gi"), 64 << 30);
        assert_eq!(units("1Ti"), 1 << 40);
        assert_eq!(units("100M"), 100_000_000);
        assert_eq!(units("1k"), 1000);
        assert_eq!(units("1e3"), 1000);
        assert_eq!(units("1.5Gi"), 3 << 29);
        assert_eq!(units("4"), 4);
        assert_eq!(units("-4"), 0);
        assert_eq!(units("junk"), 0);
        assert_eq!(units("1Zi"), 0);
        assert_eq!(units("99999999999999999999Ei"), u64::MAX);
    }

    #[test]
    fn prints_bytes_in_binary_units() {
        assert_eq!(fmt_bytes(4 << 30), "4Gi");
        assert_eq!(fmt_bytes(512 << 20), "512Mi");
        assert_eq!(fmt_bytes(1000), "1000");
        assert_eq!(fmt_bytes(0), "0");
    }
}
