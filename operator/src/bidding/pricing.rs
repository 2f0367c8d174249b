//! Bid prices: the order's maximum, and this provider's price by `scale` rates or by an external
//! script, as the Go provider computes them (`bidengine/pricing.go`, `shellscript.go`).

mod decimal;
mod scale;
mod script;

use std::time::Duration;

use chain_client::akash::deployment::v1beta4::GroupSpec;
use crds::resources::{ReservedUnit, ScalePricing};

pub use decimal::Price;
pub(crate) use script::{ScriptInput, ScriptPricing};

/// Why there is no price.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PricingError {
    #[error("invalid decimal {0:?}")]
    InvalidDecimal(String),
    #[error("the group has no resources")]
    EmptyGroup,
    #[error("resource unit {0} has no price")]
    NoPrice(usize),
    #[error("the group mixes denominations {0} and {1}")]
    MixedDenoms(String, String),
    #[error("every scale rate is zero")]
    AllRatesZero,
    #[error("scale rate {0} is negative or not a number")]
    BadRate(String),
    #[error("no scale rate for storage class {0:?}")]
    NoStorageRate(String),
    #[error("no scale rate for gpu model {0:?} (and no \"*\" rate)")]
    NoGpuRate(String),
    #[error("the placed units ({placed}) do not match the group's ({group})")]
    PlacedMismatch { placed: usize, group: usize },
    #[error("the price overflows")]
    Overflow,
    #[error("the price is zero")]
    Zero,
    #[error("pricing script {path}: cannot start it: {error}")]
    ScriptSpawn { path: String, error: String },
    #[error("pricing script {path} did not finish within {timeout:?}; it was killed")]
    ScriptTimeout { path: String, timeout: Duration },
    #[error("pricing script {path} failed ({status}): {stderr}")]
    ScriptFailed {
        path: String,
        status: String,
        /// The first line of its standard error.
        stderr: String,
    },
    #[error("pricing script {path} printed {output:?}, not a decimal price")]
    ScriptOutput { path: String, output: String },
    #[error("price {price} is above the order's maximum {max}")]
    AboveMax { price: Price, max: Price },
}

impl PricingError {
    /// A short name for metrics.
    #[cfg(test)]
    pub(crate) fn label(&self) -> &'static str {
        match self {
            PricingError::InvalidDecimal(_)
            | PricingError::EmptyGroup
            | PricingError::NoPrice(_)
            | PricingError::MixedDenoms(..) => "order_price",
            PricingError::AllRatesZero | PricingError::BadRate(_) => "config",
            PricingError::NoStorageRate(_) | PricingError::NoGpuRate(_) => "no_rate",
            PricingError::PlacedMismatch { .. } | PricingError::Overflow | PricingError::Zero => {
                "invalid"
            }
            PricingError::ScriptSpawn { .. } => "script_spawn",
            PricingError::ScriptTimeout { .. } => "script_timeout",
            PricingError::ScriptFailed { .. } => "script_failed",
            PricingError::ScriptOutput { .. } => "script_output",
            PricingError::AboveMax { .. } => "above_max",
        }
    }
}

/// The most the tenant pays per block for the group: Σ unit price × count, in the one denom all
/// units share.
pub fn order_max_price(group: &GroupSpec) -> Result<(String, Price), PricingError> {
    let mut denom: Option<&str> = None;
    let mut total = Price::ZERO;
    for (i, unit) in group.resources.iter().enumerate() {
        let coin = unit.price.as_ref().ok_or(PricingError::NoPrice(i))?;
        match denom {
            None => denom = Some(&coin.denom),
            Some(d) if d != coin.denom => {
                return Err(PricingError::MixedDenoms(d.to_owned(), coin.denom.clone()));
            }
            Some(_) => {}
        }
        let price = Price::from_wire(&coin.amount)?;
        total = price
            .checked_mul(u128::from(unit.count))
            .and_then(|p| total.checked_add(p))
            .ok_or(PricingError::Overflow)?;
    }
    let denom = denom.ok_or(PricingError::EmptyGroup)?;
    Ok((denom.to_owned(), total))
}

/// `Err(AboveMax)` when `price` is above `max`.
#[cfg(test)]
pub(crate) fn check_within(price: Price, max: Price) -> Result<(), PricingError> {
    if price > max {
        return Err(PricingError::AboveMax { price, max });
    }
    Ok(())
}

/// How the provider prices a bid.
#[derive(Debug, Clone)]
pub enum Pricing {
    /// Rates per resource; see [`Pricing::scale`].
    Scale(ScalePricing),
    /// An external program given the order as JSON.
    Script(ScriptPricing),
}

impl Pricing {
    /// Scale pricing, checked: no negative or non-finite rate, and not every rate zero.
    pub fn scale(rates: ScalePricing) -> Result<Pricing, PricingError> {
        scale::validate(&rates)?;
        Ok(Pricing::Scale(rates))
    }

    /// This provider's price per block for `group`, whose units `placed` are (the result of
    /// [`crate::inventory::Inventory::place`], with the GPU models chosen). `denom` and `max` are
    /// the order's ([`order_max_price`]); the price is in `denom`. Whether it is above `max` is
    /// for the caller to compare; the script is told `max`.
    ///
    /// Scale: Σ count × (cpu millis × `cpu` + memory MiB × `memory` + ephemeral MiB ×
    /// `storage["ephemeral"]` + persistent MiB × `storage[class]` + GPUs × `gpu[model]` (else
    /// `gpu["*"]`)) + node ports × `endpoint` + leased IPs × `ip`. A `ram` volume is memory and is
    /// priced as memory. Quantities in MiB are exact fractions, rounded up at the 18th place.
    pub async fn price(
        &self,
        owner: &str,
        group: &GroupSpec,
        placed: &[ReservedUnit],
        denom: &str,
        max: &Price,
    ) -> Result<Price, PricingError> {
        if placed.len() != group.resources.len() {
            return Err(PricingError::PlacedMismatch {
                placed: placed.len(),
                group: group.resources.len(),
            });
        }
        match self {
            Pricing::Scale(rates) => scale::price(rates, placed),
            Pricing::Script(script) => {
                let input = ScriptInput::new(group, placed, denom, *max);
                script.run(&input, owner, denom).await
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::inventory::fixtures::group;

    #[test]
    fn order_max_price_sums_unit_price_times_count() {
        let (denom, max) = order_max_price(&group("gpu-a100.yaml")).unwrap();
        assert_eq!(
            (denom.as_str(), max.to_string()),
            ("uact", "1300".to_owned())
        );
        let (_, max) = order_max_price(&group("web.yaml")).unwrap();
        assert_eq!(max.to_string(), "21");
    }

    #[test]
    fn order_max_price_wants_one_denom() {
        let mut g = group("gpu-a100.yaml");
        g.resources[1].price.as_mut().unwrap().denom = "uakt".into();
        assert_eq!(
            order_max_price(&g).unwrap_err(),
            PricingError::MixedDenoms("uact".into(), "uakt".into())
        );
        g.resources[1].price = None;
        assert_eq!(order_max_price(&g).unwrap_err(), PricingError::NoPrice(1));
        g.resources.clear();
        assert_eq!(order_max_price(&g).unwrap_err(), PricingError::EmptyGroup);
    }

    #[test]
    fn a_price_above_the_maximum_is_detected() {
        let (_, max) = order_max_price(&group("web.yaml")).unwrap();
        let over = Price::parse("21.000000000000000001").unwrap();
        assert!(over > max);
        let err = check_within(over, max).unwrap_err();
        assert_eq!(
            err.to_string(),
            "price 21.000000000000000001 is above the order's maximum 21"
        );
        check_within(max, max).unwrap();
    }
}
