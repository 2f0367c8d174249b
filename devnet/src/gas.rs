//! A deterministic gas meter: a base cost, a cost per transaction byte, per signature and per
//! message. The numbers follow the Cosmos SDK's defaults where it has one (10 per byte, 1000 per
//! secp256k1 signature verification).

/// Gas every transaction pays up front (the ante handler's store reads and writes).
pub const BASE_GAS: u64 = 20_000;
/// Gas per byte of the raw transaction (`TxSizeCostPerByte`).
pub const PER_BYTE_GAS: u64 = 10;
/// Gas per secp256k1 signature (`SigVerifyCostSecp256k1`).
pub const PER_SIGNATURE_GAS: u64 = 1_000;
/// Gas per message executed.
pub const PER_MESSAGE_GAS: u64 = 30_000;

/// Counts gas against a limit.
#[derive(Debug, Clone)]
pub struct GasMeter {
    limit: u64,
    used: u64,
}

/// The meter ran past its limit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutOfGas {
    pub location: &'static str,
    pub limit: u64,
    pub used: u64,
}

impl std::fmt::Display for OutOfGas {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "out of gas in location: {}; gasWanted: {}, gasUsed: {}",
            self.location, self.limit, self.used
        )
    }
}

impl GasMeter {
    pub fn new(limit: u64) -> Self {
        Self { limit, used: 0 }
    }

    /// A meter without limit, for simulation.
    pub fn infinite() -> Self {
        Self::new(u64::MAX)
    }

    pub fn limit(&self) -> u64 {
        self.limit
    }

    pub fn used(&self) -> u64 {
        self.used
    }

    /// Adds `amount`; past the limit the meter stays over it and reports where.
    pub fn consume(&mut self, amount: u64, location: &'static str) -> Result<(), OutOfGas> {
        self.used = self.used.saturating_add(amount);
        if self.used > self.limit {
            return Err(OutOfGas {
                location,
                limit: self.limit,
                used: self.used,
            });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn meter_stops_past_its_limit() {
        let mut m = GasMeter::new(100);
        m.consume(60, "a").unwrap();
        m.consume(40, "b").unwrap();
        let e = m.consume(1, "txSize").unwrap_err();
        assert_eq!(
            e.to_string(),
            "out of gas in location: txSize; gasWanted: 100, gasUsed: 101"
        );
        assert_eq!(m.used(), 101);
    }
}
