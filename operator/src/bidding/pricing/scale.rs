//! Scale pricing: a rate per unit of each resource.

use crds::resources::{ReservedUnit, ScalePricing};

use super::{Price, PricingError};

/// The storage rate key for ephemeral (non-persistent) storage, the Go provider's
/// `sdl.StorageEphemeral`.
pub(crate) const STORAGE_EPHEMERAL: &str = "ephemeral";

const MIB: u128 = 1 << 20;

fn rate(name: &str, value: f64) -> Result<Price, PricingError> {
    if !value.is_finite() || value < 0.0 {
        return Err(PricingError::BadRate(name.to_owned()));
    }
    // Display of an f64 is its shortest round-trip decimal, never in exponent form.
    Price::parse_truncating(&format!("{value}"))
}

pub(super) fn validate(rates: &ScalePricing) -> Result<(), PricingError> {
    let mut all = vec![
        ("cpu".to_owned(), rates.cpu),
        ("memory".to_owned(), rates.memory),
        ("endpoint".to_owned(), rates.endpoint),
        ("ip".to_owned(), rates.ip),
    ];
    all.extend(
        rates
            .storage
            .iter()
            .map(|(k, v)| (format!("storage.{k}"), *v)),
    );
    all.extend(rates.gpu.iter().map(|(k, v)| (format!("gpu.{k}"), *v)));
    let mut any = false;
    for (name, value) in all {
        any |= !rate(&name, value)?.is_zero();
    }
    if !any {
        return Err(PricingError::AllRatesZero);
    }
    Ok(())
}

fn add(total: &mut Price, rate: Price, quantity: u128, per: u128) -> Result<(), PricingError> {
    let part = rate
        .checked_mul_div_ceil(quantity, per)
        .ok_or(PricingError::Overflow)?;
    *total = total.checked_add(part).ok_or(PricingError::Overflow)?;
    Ok(())
}

pub(super) fn price(rates: &ScalePricing, placed: &[ReservedUnit]) -> Result<Price, PricingError> {
    validate(rates)?;
    let cpu = rate("cpu", rates.cpu)?;
    let memory = rate("memory", rates.memory)?;
    let storage = |class: &str| -> Result<Price, PricingError> {
        let value = rates
            .storage
            .get(class)
            .ok_or_else(|| PricingError::NoStorageRate(class.to_owned()))?;
        rate(&format!("storage.{class}"), *value)
    };
    let mut total = Price::ZERO;
    for unit in placed {
        let count = u128::from(unit.count);
        add(&mut total, cpu, u128::from(unit.cpu_millis) * count, 1)?;
        add(
            &mut total,
            memory,
            u128::from(unit.memory_bytes) * count,
            MIB,
        )?;
        if unit.ephemeral_storage_bytes > 0 {
            let bytes = u128::from(unit.ephemeral_storage_bytes) * count;
            add(&mut total, storage(STORAGE_EPHEMERAL)?, bytes, MIB)?;
        }
        for volume in &unit.persistent_storage {
            let bytes = u128::from(volume.bytes) * count;
            add(&mut total, storage(&volume.class)?, bytes, MIB)?;
        }
        if unit.gpus > 0 {
            let model = unit
                .allocated_gpu
                .as_ref()
                .map_or("*", |m| m.model.as_str());
            let value = rates
                .gpu
                .get(model)
                .or_else(|| rates.gpu.get("*"))
                .ok_or_else(|| PricingError::NoGpuRate(model.to_owned()))?;
            let gpu = rate(&format!("gpu.{model}"), *value)?;
            add(&mut total, gpu, u128::from(unit.gpus) * count, 1)?;
        }
        add(
            &mut total,
            rate("endpoint", rates.endpoint)?,
            u128::from(unit.node_ports),
            1,
        )?;
        add(&mut total, rate("ip", rates.ip)?, u128::from(unit.ips), 1)?;
    }
    if total.is_zero() {
        return Err(PricingError::Zero);
    }
    Ok(total)
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use crds::resources::GpuModel;

    use super::super::{Pricing, order_max_price};
    use super::*;
    use crate::inventory::demand_of;
    use crate::inventory::fixtures::group;

    fn rates() -> ScalePricing {
        ScalePricing {
            cpu: 0.01,
            memory: 0.002,
            storage: BTreeMap::from([("ephemeral".into(), 0.0001), ("beta2".into(), 0.0003)]),
            gpu: BTreeMap::from([("a100".into(), 10.0), ("*".into(), 5.0)]),
            endpoint: 0.5,
            ip: 2.0,
        }
    }

    fn placed(model: &str) -> Vec<ReservedUnit> {
        let mut units = demand_of(&group("priced.yaml")).unwrap();
        units[0].allocated_gpu = Some(GpuModel {
            vendor: "nvidia".into(),
            model: model.into(),
        });
        units
    }

    async fn price_of(rates: ScalePricing, placed: &[ReservedUnit]) -> Result<Price, PricingError> {
        let g = group("priced.yaml");
        let (denom, max) = order_max_price(&g).unwrap();
        Pricing::scale(rates)?
            .price("akash1tenant", &g, placed, &denom, &max)
            .await
    }

    #[tokio::test]
    async fn hand_computed_prices() {
        // See the comment in tests/fixtures/orders/priced.yaml.
        let price = price_of(rates(), &placed("a100")).await.unwrap();
        assert_eq!(price.to_string(), "65.812");
        let (_, max) = order_max_price(&group("priced.yaml")).unwrap();
        assert!(price <= max);
        // An h100 has no rate of its own: the "*" rate, 5 instead of 10 per GPU.
        let price = price_of(rates(), &placed("h100")).await.unwrap();
        assert_eq!(price.to_string(), "55.812");
    }

    #[tokio::test]
    async fn a_price_above_the_maximum_is_detectable() {
        let mut expensive = rates();
        expensive.cpu = 1.0;
        let price = price_of(expensive, &placed("a100")).await.unwrap();
        let (_, max) = order_max_price(&group("priced.yaml")).unwrap();
        assert!(price > max, "{price} > {max}");
    }

    #[tokio::test]
    async fn missing_and_zero_rates() {
        let mut r = rates();
        r.storage.remove("beta2");
        let err = price_of(r, &placed("a100")).await.unwrap_err();
        assert_eq!(err, PricingError::NoStorageRate("beta2".into()));
        let mut r = rates();
        r.gpu.remove("*");
        let err = price_of(r, &placed("h100")).await.unwrap_err();
        assert_eq!(
            err.to_string(),
            "no scale rate for gpu model \"h100\" (and no \"*\" rate)"
        );
        let zero = ScalePricing {
            storage: BTreeMap::from([("beta2".into(), 0.0)]),
            ..ScalePricing::default()
        };
        assert_eq!(
            Pricing::scale(zero).unwrap_err(),
            PricingError::AllRatesZero
        );
        let negative = ScalePricing {
            cpu: -1.0,
            ..rates()
        };
        assert_eq!(
            Pricing::scale(negative).unwrap_err(),
            PricingError::BadRate("cpu".into())
        );
    }
}
