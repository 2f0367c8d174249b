//! Gas and fee arithmetic, exact: prices and factors are decimals with 18 fractional digits
//! (as Cosmos `LegacyDec`), held as integers, and every rounding goes up.
//!
//! - gas limit = ⌈simulated gas used × gas adjustment⌉ (default adjustment 1.5);
//! - fee = ⌈gas limit × gas price⌉ in the gas price's denom.

use crate::error::ChainError;

const ONE: u128 = 1_000_000_000_000_000_000;

/// A non-negative decimal with 18 fractional digits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Dec18(u128);

impl Dec18 {
    /// Parses "1.5", "0.025", "3": a `LegacyDec` (see [`crate::dec`]) that is not negative.
    pub fn parse(s: &str) -> Result<Self, ChainError> {
        let bad = || ChainError::Invalid(format!("not a non-negative decimal: {s:?}"));
        if s.is_empty() || s.starts_with('-') {
            return Err(bad());
        }
        crate::dec::to_wire(s)
            .ok()
            .and_then(|wire| wire.parse::<u128>().ok())
            .map(Self)
            .ok_or_else(bad)
    }

    /// `⌈n × self⌉`, or `None` on overflow.
    pub fn mul_ceil(self, n: u64) -> Option<u128> {
        let product = u128::from(n).checked_mul(self.0)?;
        Some(product.div_ceil(ONE))
    }
}

/// A gas price such as `0.025uakt`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GasPrice {
    pub amount: Dec18,
    pub denom: String,
}

impl GasPrice {
    /// Parses `"0.025uakt"`: a decimal followed by a denom.
    pub fn parse(s: &str) -> Result<Self, ChainError> {
        let split = s
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .ok_or_else(|| ChainError::Invalid(format!("gas price without a denom: {s:?}")))?;
        let (amount, denom) = s.split_at(split);
        Ok(Self {
            amount: Dec18::parse(amount)?,
            denom: denom.to_owned(),
        })
    }

    /// `⌈gas_limit × price⌉`.
    pub fn fee_for(&self, gas_limit: u64) -> Result<u128, ChainError> {
        self.amount
            .mul_ceil(gas_limit)
            .ok_or_else(|| ChainError::Invalid(format!("fee overflows for gas limit {gas_limit}")))
    }
}

/// How the signer turns a simulation into a gas limit and a fee.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FeePolicy {
    pub gas_price: GasPrice,
    /// Multiplies the simulated gas (default 1.5).
    pub gas_adjustment: Dec18,
}

impl FeePolicy {
    /// A policy with the default gas adjustment of 1.5.
    pub fn new(gas_price: GasPrice) -> Self {
        Self {
            gas_price,
            gas_adjustment: Dec18(ONE + ONE / 2),
        }
    }

    /// `⌈gas_used × gas_adjustment⌉`, at least 1.
    pub fn gas_limit(&self, gas_used: u64) -> Result<u64, ChainError> {
        let limit = self
            .gas_adjustment
            .mul_ceil(gas_used)
            .and_then(|l| u64::try_from(l).ok())
            .ok_or_else(|| {
                ChainError::Invalid(format!("gas limit overflows for {gas_used} gas"))
            })?;
        Ok(limit.max(1))
    }

    /// The gas limit and the fee coin for a simulated `gas_used`.
    pub fn fee(&self, gas_used: u64) -> Result<Fee, ChainError> {
        let gas_limit = self.gas_limit(gas_used)?;
        Ok(Fee {
            gas_limit,
            amount: self.gas_price.fee_for(gas_limit)?,
            denom: self.gas_price.denom.clone(),
        })
    }
}

/// A transaction fee: gas limit and one coin.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fee {
    pub gas_limit: u64,
    pub amount: u128,
    pub denom: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn price(s: &str) -> GasPrice {
        GasPrice::parse(s).unwrap()
    }

    #[test]
    fn fee_rounds_up_only_when_there_is_a_remainder() {
        let p = price("0.025uakt");
        assert_eq!(p.denom, "uakt");
        assert_eq!(p.fee_for(0).unwrap(), 0);
        assert_eq!(p.fee_for(1).unwrap(), 1); // 0.025 → 1
        assert_eq!(p.fee_for(40).unwrap(), 1); // exactly 1.0
        assert_eq!(p.fee_for(41).unwrap(), 2); // 1.025 → 2
        assert_eq!(p.fee_for(200_000).unwrap(), 5_000);
        assert_eq!(p.fee_for(200_001).unwrap(), 5_001);
    }

    #[test]
    fn smallest_and_largest_prices() {
        let tiny = price("0.000000000000000001uact");
        assert_eq!(tiny.fee_for(1).unwrap(), 1);
        assert_eq!(tiny.fee_for(u64::MAX).unwrap(), 19); // 18.44… → 19
        let zero = price("0uakt");
        assert_eq!(zero.fee_for(u64::MAX).unwrap(), 0);
        let whole = price("3uakt");
        assert_eq!(whole.fee_for(u64::MAX).unwrap(), 3 * u128::from(u64::MAX));
        // u64::MAX × 10^18 × 10^3 does not fit in u128.
        assert!(price("1000uakt").fee_for(u64::MAX).is_err());
    }

    #[test]
    fn gas_limit_is_the_adjusted_simulation_rounded_up() {
        let policy = FeePolicy::new(price("0.025uakt"));
        assert_eq!(policy.gas_limit(100_000).unwrap(), 150_000);
        assert_eq!(policy.gas_limit(3).unwrap(), 5); // 4.5 → 5
        assert_eq!(policy.gas_limit(0).unwrap(), 1);
        assert!(policy.gas_limit(u64::MAX).is_err());
        let fee = policy.fee(80_001).unwrap();
        // 80001 × 1.5 = 120001.5 → 120002; × 0.025 = 3000.05 → 3001.
        assert_eq!(
            fee,
            Fee {
                gas_limit: 120_002,
                amount: 3001,
                denom: "uakt".into()
            }
        );
        let exact = FeePolicy {
            gas_adjustment: Dec18::parse("1").unwrap(),
            ..policy
        };
        assert_eq!(exact.gas_limit(77).unwrap(), 77);
    }

    #[test]
    fn bad_decimals_are_rejected() {
        for s in [
            "",
            ".5",
            "1.",
            "-1",
            "1e3",
            "0.0000000000000000001",
            "1.2.3",
            " 1",
        ] {
            assert!(Dec18::parse(s).is_err(), "{s:?}");
        }
        assert_eq!(Dec18::parse("1.").ok(), None);
        assert!(GasPrice::parse("0.025").is_err());
        assert_eq!(Dec18::parse("2.50").unwrap(), Dec18::parse("2.5").unwrap());
    }
}
