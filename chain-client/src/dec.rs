//! Wire forms of the Cosmos decimal types in Akash messages.
//!
//! `cosmossdk.io/math.LegacyDec` (used by `DecCoin.amount`, escrow `Balance.amount`) is declared as a
//! protobuf `string`, but gogoproto marshals it as the base-10 integer of `value × 10^18`, not as a
//! decimal: a price of `1.5uact` per block travels as `"1500000000000000000"`. The official
//! TypeScript SDK hides this behind a patch of `DecCoin`; here the generated structs carry the raw
//! wire string and these helpers convert.
//!
//! `math.Int` in a `bytes` field (`ResourceValue.val`) travels as the UTF-8 bytes of its base-10
//! text: 1000 millicpu is `b"1000"`.

use cosmos_sdk_proto::cosmos::base::v1beta1::DecCoin;

/// Decimal places of a `LegacyDec`.
pub const PRECISION: usize = 18;

/// A decimal string that is not a valid `LegacyDec`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecError(pub String);

impl std::fmt::Display for DecError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "invalid decimal {:?}", self.0)
    }
}

impl std::error::Error for DecError {}

/// Converts a human decimal ("1.5", "-0.25", "12") into its `LegacyDec` wire form
/// ("1500000000000000000"). The empty string stays empty (an unset amount).
pub fn to_wire(decimal: &str) -> Result<String, DecError> {
    if decimal.is_empty() {
        return Ok(String::new());
    }
    let err = || DecError(decimal.to_owned());
    let (sign, unsigned) = match decimal.strip_prefix('-') {
        Some(rest) => ("-", rest),
        None => ("", decimal),
    };
    let (int_part, frac_part) = match unsigned.split_once('.') {
        Some((i, f)) => (i, f),
        None => (unsigned, ""),
    };
    let digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    if int_part.is_empty() || !digits(int_part) || !digits(frac_part) {
        return Err(err());
    }
    if unsigned.contains('.') && frac_part.is_empty() {
        return Err(err());
    }
    if frac_part.len() > PRECISION {
        return Err(err());
    }
    let mut atomics = String::with_capacity(int_part.len() + PRECISION);
    atomics.push_str(int_part);
    atomics.push_str(frac_part);
    atomics.extend(std::iter::repeat_n('0', PRECISION - frac_part.len()));
    let trimmed = atomics.trim_start_matches('0');
    if trimmed.is_empty() {
        return Ok("0".to_owned());
    }
    Ok(format!("{sign}{trimmed}"))
}

/// Converts a `LegacyDec` wire string ("1500000000000000000") back into the shortest human
/// decimal ("1.5"), as the TypeScript SDK shows it. The empty string stays empty.
pub fn from_wire(atomics: &str) -> Result<String, DecError> {
    if atomics.is_empty() {
        return Ok(String::new());
    }
    let (sign, unsigned) = match atomics.strip_prefix('-') {
        Some(rest) => ("-", rest),
        None => ("", atomics),
    };
    if unsigned.is_empty() || !unsigned.bytes().all(|b| b.is_ascii_digit()) {
        return Err(DecError(atomics.to_owned()));
    }
    let padded = format!("{unsigned:0>width$}", width = PRECISION + 1);
    let (int_part, frac_part) = padded.split_at(padded.len() - PRECISION);
    let int_part = match int_part.trim_start_matches('0') {
        "" => "0",
        s => s,
    };
    let frac_part = frac_part.trim_end_matches('0');
    let sign = if int_part == "0" && frac_part.is_empty() {
        ""
    } else {
        sign
    };
    if frac_part.is_empty() {
        Ok(format!("{sign}{int_part}"))
    } else {
        Ok(format!("{sign}{int_part}.{frac_part}"))
    }
}

/// A `DecCoin` for a human decimal amount, with the amount in wire form.
pub fn dec_coin(denom: &str, decimal: &str) -> Result<DecCoin, DecError> {
    Ok(DecCoin {
        denom: denom.to_owned(),
        amount: to_wire(decimal)?,
    })
}

/// The human decimal amount of a `DecCoin` received from the chain.
pub fn dec_coin_amount(coin: &DecCoin) -> Result<String, DecError> {
    from_wire(&coin.amount)
}

/// The `ResourceValue` bytes of an integer quantity (`math.Int` text).
pub fn resource_value(quantity: u128) -> crate::akash::base::resources::v1beta4::ResourceValue {
    crate::akash::base::resources::v1beta4::ResourceValue {
        val: quantity.to_string().into_bytes(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn to_wire_scales_by_ten_to_the_eighteen() {
        assert_eq!(to_wire("1.5").unwrap(), "1500000000000000000");
        assert_eq!(to_wire("12").unwrap(), "12000000000000000000");
        assert_eq!(to_wire("0.000000000000000001").unwrap(), "1");
        assert_eq!(to_wire("-0.25").unwrap(), "-250000000000000000");
        assert_eq!(to_wire("0").unwrap(), "0");
        assert_eq!(to_wire("").unwrap(), "");
    }

    #[test]
    fn to_wire_rejects_malformed_decimals() {
        for bad in [
            "1.",
            ".5",
            "abc",
            "1.2.3",
            "1e5",
            "0.0000000000000000001",
            "-",
        ] {
            assert!(to_wire(bad).is_err(), "{bad:?} should be rejected");
        }
    }

    #[test]
    fn from_wire_gives_the_shortest_decimal() {
        assert_eq!(from_wire("1500000000000000000").unwrap(), "1.5");
        assert_eq!(from_wire("12000000000000000000").unwrap(), "12");
        assert_eq!(from_wire("1").unwrap(), "0.000000000000000001");
        assert_eq!(from_wire("-250000000000000000").unwrap(), "-0.25");
        assert_eq!(from_wire("0").unwrap(), "0");
        assert!(from_wire("1.5").is_err());
    }

    #[test]
    fn round_trip() {
        for d in ["3.14159", "1000000000000", "0.5", "-7.000001"] {
            assert_eq!(from_wire(&to_wire(d).unwrap()).unwrap(), d);
        }
    }
}
