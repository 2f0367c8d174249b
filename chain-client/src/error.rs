//! The chain client's error type.
//!
//! A Cosmos SDK transaction that fails reports `(codespace, code, log)`. The codes of the `sdk`
//! codespace that the provider acts on get a variant of their own (see
//! `cosmos-sdk/types/errors/errors.go`); everything else is [`ChainError::Other`]. No variant carries
//! key material: messages are built from the chain's log, addresses and numbers only.

/// The Cosmos SDK's own codespace.
pub const SDK_CODESPACE: &str = "sdk";

/// `ErrUnauthorized`.
pub const CODE_UNAUTHORIZED: u32 = 4;
/// `ErrInsufficientFunds`.
pub const CODE_INSUFFICIENT_FUNDS: u32 = 5;
/// `ErrOutOfGas`.
pub const CODE_OUT_OF_GAS: u32 = 11;
/// `ErrInsufficientFee`.
pub const CODE_INSUFFICIENT_FEE: u32 = 13;
/// `ErrTxInMempoolCache`.
pub const CODE_TX_IN_MEMPOOL_CACHE: u32 = 19;
/// `ErrWrongSequence`.
pub const CODE_WRONG_SEQUENCE: u32 = 32;

/// Errors of every chain operation: queries, transactions and the event stream.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChainError {
    /// sdk/5: the account cannot pay the fee or the deposit.
    #[error("insufficient funds: {log}")]
    InsufficientFunds { log: String },
    /// sdk/4: wrong signer or a signature that does not verify.
    #[error("unauthorized: {log}")]
    Unauthorized { log: String },
    /// sdk/32: the transaction's sequence is not the account's. `expected`/`got` are parsed from
    /// the chain's log when it has them.
    #[error("account sequence mismatch (expected {expected:?}, got {got:?}): {log}")]
    SequenceMismatch {
        expected: Option<u64>,
        got: Option<u64>,
        log: String,
    },
    /// sdk/11: the transaction used more gas than its limit.
    #[error("out of gas: {log}")]
    OutOfGas { log: String },
    /// sdk/13: the fee is below the node's minimum gas price.
    #[error("insufficient fee: {log}")]
    InsufficientFee { log: String },
    /// sdk/19: the very same transaction is already in the mempool.
    #[error("transaction already in the mempool cache: {log}")]
    TxInMempoolCache { log: String },
    /// Any other failure reported by the chain.
    #[error("chain error {codespace}/{code}: {log}")]
    Other {
        codespace: String,
        code: u32,
        log: String,
    },
    /// A deadline passed (e.g. the transaction was not included in a block in time).
    #[error("timed out: {0}")]
    Timeout(String),
    /// The node could not be reached or answered at the transport level.
    #[error("transport: {0}")]
    Transport(String),
    /// An answer could not be decoded.
    #[error("decode: {0}")]
    Decode(String),
    /// The request could not be built (bad configuration, bad key, bad message).
    #[error("invalid request: {0}")]
    Invalid(String),
}

impl ChainError {
    /// Maps an ABCI result (`code` ≠ 0) to a variant.
    pub fn from_abci(codespace: &str, code: u32, log: &str) -> Self {
        let log = log.to_owned();
        if codespace == SDK_CODESPACE {
            match code {
                CODE_UNAUTHORIZED => return Self::Unauthorized { log },
                CODE_INSUFFICIENT_FUNDS => return Self::InsufficientFunds { log },
                CODE_OUT_OF_GAS => return Self::OutOfGas { log },
                CODE_INSUFFICIENT_FEE => return Self::InsufficientFee { log },
                CODE_TX_IN_MEMPOOL_CACHE => return Self::TxInMempoolCache { log },
                CODE_WRONG_SEQUENCE => {
                    let (expected, got) = parse_sequence_mismatch(&log).unzip();
                    return Self::SequenceMismatch { expected, got, log };
                }
                _ => {}
            }
        }
        Self::Other {
            codespace: codespace.to_owned(),
            code,
            log,
        }
    }

    /// A short, fixed label for metrics (no unbounded cardinality).
    pub fn metric_label(&self) -> &'static str {
        match self {
            Self::InsufficientFunds { .. } => "insufficient_funds",
            Self::Unauthorized { .. } => "unauthorized",
            Self::SequenceMismatch { .. } => "sequence_mismatch",
            Self::OutOfGas { .. } => "out_of_gas",
            Self::InsufficientFee { .. } => "insufficient_fee",
            Self::TxInMempoolCache { .. } => "tx_in_mempool_cache",
            Self::Other { .. } => "other",
            Self::Timeout(_) => "timeout",
            Self::Transport(_) => "transport",
            Self::Decode(_) => "decode",
            Self::Invalid(_) => "invalid",
        }
    }

    /// Whether the failure can go away by itself (a retry later may succeed).
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            Self::SequenceMismatch { .. }
                | Self::TxInMempoolCache { .. }
                | Self::Timeout(_)
                | Self::Transport(_)
        )
    }
}

/// Reads `(expected, got)` from the SDK's log "account sequence mismatch, expected 7, got 6:
/// incorrect account sequence".
pub fn parse_sequence_mismatch(log: &str) -> Option<(u64, u64)> {
    let number_after = |key: &str| -> Option<u64> {
        let start = log.find(key)? + key.len();
        let digits: String = log[start..]
            .trim_start()
            .chars()
            .take_while(char::is_ascii_digit)
            .collect();
        digits.parse().ok()
    };
    Some((number_after("expected")?, number_after("got")?))
}

/// Shorthand for results of chain operations.
pub type Result<T, E = ChainError> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sdk_codes_map_to_their_variants() {
        let cases = [
            (4, "unauthorized"),
            (5, "insufficient_funds"),
            (11, "out_of_gas"),
            (13, "insufficient_fee"),
            (19, "tx_in_mempool_cache"),
            (32, "sequence_mismatch"),
            (2, "other"),
        ];
        for (code, label) in cases {
            assert_eq!(
                ChainError::from_abci("sdk", code, "x").metric_label(),
                label,
                "code {code}"
            );
        }
    }

    #[test]
    fn codes_of_other_codespaces_are_not_sdk_errors() {
        // Code 5 in the market module is not "insufficient funds".
        let e = ChainError::from_abci("market", 5, "bid exists");
        assert_eq!(
            e,
            ChainError::Other {
                codespace: "market".into(),
                code: 5,
                log: "bid exists".into()
            }
        );
        assert_eq!(e.to_string(), "chain error market/5: bid exists");
    }

    #[test]
    fn sequence_mismatch_numbers_come_from_the_log() {
        let e = ChainError::from_abci(
            "sdk",
            32,
            "account sequence mismatch, expected 7, got 6: incorrect account sequence",
        );
        let ChainError::SequenceMismatch { expected, got, .. } = e else {
            panic!("not a sequence mismatch: {e:?}");
        };
        assert_eq!((expected, got), (Some(7), Some(6)));
    }

    #[test]
    fn sequence_mismatch_without_numbers_still_maps() {
        assert_eq!(parse_sequence_mismatch("incorrect account sequence"), None);
        assert_eq!(parse_sequence_mismatch("expected 12, got x"), None);
        assert_eq!(
            parse_sequence_mismatch("account sequence mismatch, expected 120, got 118"),
            Some((120, 118))
        );
        let e = ChainError::from_abci("sdk", 32, "incorrect account sequence");
        assert!(matches!(
            e,
            ChainError::SequenceMismatch {
                expected: None,
                got: None,
                ..
            }
        ));
    }
}
