//! The raw node calls the transaction path needs, as a trait: the gRPC/CometBFT implementation
//! talks to a node, tests script a fake. Each call is one request; retries and sequence handling
//! live in [`crate::signer`].

use async_trait::async_trait;

use crate::error::Result;

/// An account's signing state as the chain has it (committed state).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountInfo {
    pub address: String,
    pub account_number: u64,
    pub sequence: u64,
    /// The account's compressed secp256k1 public key (33 bytes), once it has signed a
    /// transaction; what verifies the tokens (JWT) it signs.
    pub pub_key: Option<Vec<u8>>,
}

/// The node's answer to `broadcast_tx_sync`: the CheckTx result.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckTxResult {
    pub hash: String,
    pub code: u32,
    pub codespace: String,
    pub log: String,
}

/// A transaction included in a block (the DeliverTx/FinalizeBlock result).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TxResult {
    pub hash: String,
    pub height: u64,
    pub code: u32,
    pub codespace: String,
    pub log: String,
    pub gas_wanted: u64,
    pub gas_used: u64,
}

/// Raw calls to a node, one request each.
#[async_trait]
pub trait TxTransport: Send + Sync {
    /// `cosmos.auth.v1beta1.Query/Account`: account number and sequence. A chain error (e.g. an
    /// unknown account) comes back as a [`crate::ChainError`] variant.
    async fn account(&self, address: &str) -> Result<AccountInfo>;
    /// `cosmos.tx.v1beta1.Service/Simulate`: the gas the transaction uses. A failing simulation
    /// is mapped with [`crate::ChainError::from_abci`] (sequence mismatches included).
    async fn simulate(&self, tx_bytes: Vec<u8>) -> Result<u64>;
    /// CometBFT `broadcast_tx_sync`: the CheckTx result, whatever its code.
    async fn broadcast_sync(&self, tx_bytes: Vec<u8>) -> Result<CheckTxResult>;
    /// The transaction by hash, `None` while it is not in a block.
    async fn get_tx(&self, hash: &str) -> Result<Option<TxResult>>;
}
