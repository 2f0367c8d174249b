//! `akash-devnet`: a local single-node chain that speaks the Akash API.
//!
//! The pieces, each in a file of its own:
//! - [`state`]: accounts and balances, the whole application state, cloned to run a transaction on a copy;
//! - [`store`]: the embedded database under `--home` (redb): state, blocks and transaction results;
//! - [`ante`]: what a real chain checks before a transaction's messages run (decode, signers,
//!   fee, sequence, signature, gas), with Cosmos SDK error codes;
//! - [`bank`]: the bank module (`MsgSend`); [`deployment`]: `MsgCreateDeployment` with its groups,
//!   orders and escrow account; [`provider`]: `MsgCreateProvider`, `MsgUpdateProvider`;
//!   [`market`]: `MsgCreateBid`; [`lease`]: `MsgCreateLease`;
//!   [`close`]: `MsgCloseBid`, `MsgCloseLease`, `MsgCloseDeployment`; [`group`]: `MsgCloseGroup`,
//!   `MsgPauseGroup`, `MsgStartGroup`; [`escrow`]: settlement and `MsgWithdrawLease`;
//!   [`cert`]: `MsgCreateCertificate`, `MsgRevokeCertificate` and the certificate query;
//!   [`audit`]: `MsgSignProviderAttributes`, `MsgDeleteProviderAttributes` and the audit queries;
//! - [`node`]: the mempool and block production;
//! - [`rpc`]: CometBFT JSON-RPC over HTTP; [`ws`]: its websocket and event subscriptions, with
//!   [`query`], CometBFT's event query language; [`grpc`]: the Cosmos gRPC services; [`grpc_akash`]: the
//!   Akash deployment and market queries;
//! - [`whitepaper`]: the whitepaper's matching and lease-confirmation rules, applied at the end of
//!   each block when enabled;
//! - [`genesis`]: the well-known test accounts a fresh home is funded with;
//! - [`sign`]: builds and signs transactions (SIGN_MODE_DIRECT) with cosmrs, for tests and tools.

pub mod abci_query;
pub mod ante;
pub mod audit;
pub mod bank;
pub mod cert;
pub mod close;
pub mod deployment;
pub mod escrow;
pub mod events;
pub mod gas;
pub mod genesis;
pub mod group;
pub mod grpc;
pub mod grpc_akash;
pub mod lease;
pub mod market;
pub mod msgs;
pub mod node;
pub mod provider;
pub mod query;
pub mod rpc;
pub mod server;
pub mod sign;
pub mod state;
pub mod store;
pub mod time;
pub mod whitepaper;
pub mod ws;

/// Bech32 prefix of account addresses.
pub const BECH32_PREFIX: &str = "akash";
/// The staking and fee denomination.
pub const DENOM_AKT: &str = "uakt";
/// The compute (pricing) denomination.
pub const DENOM_ACT: &str = "uact";
