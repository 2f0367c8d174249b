//! [`Price`]: a non-negative decimal with the chain's 18 places (`LegacyDec`), as an integer of
//! 10⁻¹⁸ units.

use std::fmt;
use std::str::FromStr;

use super::PricingError;

const SCALE: u128 = 1_000_000_000_000_000_000;
const PLACES: usize = 18;

/// A non-negative amount with 18 decimal places, ordered, with checked arithmetic.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Price(u128);

impl Price {
    pub const ZERO: Price = Price(0);

    /// From units of 10⁻¹⁸ (the `LegacyDec` wire integer).
    pub const fn from_atto(atto: u128) -> Price {
        Price(atto)
    }

    /// Units of 10⁻¹⁸.
    pub const fn atto(self) -> u128 {
        self.0
    }

    /// A whole number.
    pub fn from_int(n: u64) -> Price {
        Price(u128::from(n) * SCALE)
    }

    /// Parses a human decimal (`"12"`, `"1.5"`, `"0.000001"`) with at most 18 places.
    pub fn parse(text: &str) -> Result<Price, PricingError> {
        Self::parse_with(text, false)
    }

    /// Like [`Price::parse`], dropping places beyond the 18th (for rates given as floats).
    pub(crate) fn parse_truncating(text: &str) -> Result<Price, PricingError> {
        Self::parse_with(text, true)
    }

    fn parse_with(text: &str, truncate: bool) -> Result<Price, PricingError> {
        let bad = || PricingError::InvalidDecimal(text.to_owned());
        let (int_part, frac_part) = text.split_once('.').unwrap_or((text, ""));
        let digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
        if int_part.is_empty() || !digits(int_part) || !digits(frac_part) {
            return Err(bad());
        }
        if text.contains('.') && frac_part.is_empty() {
            return Err(bad());
        }
        let frac_part = if frac_part.len() > PLACES {
            if !truncate {
                return Err(bad());
            }
            &frac_part[..PLACES]
        } else {
            frac_part
        };
        let int: u128 = int_part.trim_start_matches('0').parse().or_else(|_| {
            if int_part.trim_start_matches('0').is_empty() {
                Ok(0)
            } else {
                Err(bad())
            }
        })?;
        let frac: u128 = format!("{frac_part:0<PLACES$}")
            .parse()
            .map_err(|_| bad())?;
        int.checked_mul(SCALE)
            .and_then(|v| v.checked_add(frac))
            .map(Price)
            .ok_or_else(bad)
    }

    /// From the `LegacyDec` wire form (`"1500000000000000000"` is 1.5), as in `DecCoin.amount`.
    pub fn from_wire(text: &str) -> Result<Price, PricingError> {
        if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
            return Err(PricingError::InvalidDecimal(text.to_owned()));
        }
        text.parse()
            .map(Price)
            .map_err(|_| PricingError::InvalidDecimal(text.to_owned()))
    }

    /// The `LegacyDec` wire form.
    pub fn to_wire(self) -> String {
        self.0.to_string()
    }

    /// With all 18 places, as Go's `LegacyDec.String()` (`"1.500000000000000000"`).
    pub fn to_fixed(self) -> String {
        format!("{}.{:018}", self.0 / SCALE, self.0 % SCALE)
    }

    pub fn checked_add(self, other: Price) -> Option<Price> {
        self.0.checked_add(other.0).map(Price)
    }

    /// `self × n`.
    pub fn checked_mul(self, n: u128) -> Option<Price> {
        self.0.checked_mul(n).map(Price)
    }

    /// `self × n ÷ d`, rounded up (so a tiny rate never prices a large quantity at zero).
    pub fn checked_mul_div_ceil(self, n: u128, d: u128) -> Option<Price> {
        if d == 0 {
            return None;
        }
        self.0.checked_mul(n).map(|v| Price(v.div_ceil(d)))
    }

    pub fn is_zero(self) -> bool {
        self.0 == 0
    }
}

impl fmt::Display for Price {
    /// The shortest decimal: `1.5`, `12`, `0.000001`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let int = self.0 / SCALE;
        let frac = self.0 % SCALE;
        if frac == 0 {
            return write!(f, "{int}");
        }
        let frac = format!("{frac:018}");
        write!(f, "{int}.{}", frac.trim_end_matches('0'))
    }
}

impl FromStr for Price {
    type Err = PricingError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Price::parse(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_display_and_wire() {
        let p = Price::parse("1.5").unwrap();
        assert_eq!(p.to_wire(), "1500000000000000000");
        assert_eq!(p.to_string(), "1.5");
        assert_eq!(p.to_fixed(), "1.500000000000000000");
        assert_eq!(Price::from_wire("1500000000000000000").unwrap(), p);
        assert_eq!(Price::parse("0012").unwrap().to_string(), "12");
        assert_eq!(Price::parse("0.000000000000000001").unwrap().atto(), 1);
        assert_eq!(Price::parse("0").unwrap(), Price::ZERO);
        for bad in [
            "",
            "1.",
            ".5",
            "-1",
            "1e5",
            "abc",
            "1.2.3",
            "0.0000000000000000001",
        ] {
            assert!(Price::parse(bad).is_err(), "{bad:?}");
        }
        assert_eq!(
            Price::parse_truncating("0.00000000000000000199")
                .unwrap()
                .atto(),
            1
        );
        assert!(Price::from_wire("1.5").is_err());
    }

    #[test]
    fn compares_and_computes() {
        let max = Price::parse("100").unwrap();
        assert!(Price::parse("100.000001").unwrap() > max);
        assert!(Price::parse("99.999999").unwrap() < max);
        let rate = Price::parse("0.002").unwrap();
        assert_eq!(
            rate.checked_mul_div_ceil(3 << 20, 1 << 20).unwrap(),
            Price::parse("0.006").unwrap()
        );
        assert_eq!(
            Price::from_atto(1)
                .checked_mul_div_ceil(1, 1 << 20)
                .unwrap()
                .atto(),
            1,
            "rounds up"
        );
        assert!(Price::from_atto(u128::MAX).checked_mul(2).is_none());
    }
}
