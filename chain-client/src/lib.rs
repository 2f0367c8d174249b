//! The Akash chain API as the provider and the tenant controller use it: the Akash messages
//! (compiled from this crate's own `.proto` files), the `Chain` trait with its gRPC + CometBFT RPC
//! implementation, keys, signing, and on-chain certificates. Knows nothing of Kubernetes.
//!
//! # Messages
//!
//! `proto/` holds our own definitions of the active Akash API (`akash.deployment.v1`/`v1beta4`,
//! `akash.market.v1`/`v1beta5`, `akash.escrow.{id,types,v1}`, `akash.provider.v1beta4`,
//! `akash.cert.v1`, `akash.audit.v1`, `akash.base.*`) and of the provider gateway
//! (`akash.provider.v1.ProviderRPC`, `akash.provider.lease.v1.LeaseRPC`, with `akash.inventory.v1`
//! and `akash.manifest.v2beta3`). `build.rs` compiles them with protox (no system `protoc`) into
//! prost messages and tonic clients and servers, in a module tree that mirrors the packages, e.g.
//! [`akash::market::v1beta5::MsgCreateBid`] or
//! [`akash::provider::lease::v1::lease_rpc_server::LeaseRpcServer`]. Cosmos types (`Coin`,
//! `DecCoin`, `PageRequest`, ...) are those of [`cosmos_sdk_proto`]. Every message implements
//! [`prost::Name`], so [`to_any`] (or [`prost_types::Any::from_msg`]) wraps it for a transaction.
//!
//! Wire facts to know (all checked against the official TypeScript SDK by `tests/`):
//! - `DecCoin.amount` and escrow `Balance.amount` are `LegacyDec`s, which travel as the integer
//!   value × 10¹⁸ ("1.5" is sent as "1500000000000000000"); see [`dec`].
//! - `ResourceValue.val` is a `math.Int` whose bytes are its base-10 text (b"1000").
//! - `Deposit.sources` is encoded packed, like the Go chain; SDK 1.0.0-alpha.25 writes it
//!   unpacked. Both forms decode everywhere.
//! - The AEP-82 reclamation fields (`MsgCreateDeployment.reclamation`, `MsgCreateBid` and
//!   `Bid.reclamation_window`, `Order`/`Deployment.reclamation`, `Lease.reclamation`, market
//!   `Params` windows, `MsgLeaseStartReclaim`, `EventLeaseReclaimStarted`) are newer than that SDK
//!   version; they are checked to extend its messages without colliding with any field it knows.

pub mod cert;
pub mod chain;
pub mod dec;
pub mod error;
pub mod events;
#[cfg(any(test, feature = "fake"))]
pub mod fake;
pub mod follow;
pub mod grpc;
pub mod keys;
pub mod node;
pub mod rpc;
pub mod signer;
pub mod transport;
pub mod tx;

pub use chain::Chain;
pub use error::{ChainError, Result};

#[allow(
    clippy::all,
    clippy::pedantic,
    missing_docs,
    rustdoc::all,
    unreachable_pub,
    non_camel_case_types
)]
mod generated {
    include!(concat!(env!("OUT_DIR"), "/akash_api.rs"));
}

pub use generated::akash;
pub use generated::k8s;

/// The Cosmos protobuf types the Akash messages are built from (`Coin`, `DecCoin`, pagination).
pub use cosmos_sdk_proto;

/// Wraps a message into a `google.protobuf.Any` with its type URL, ready for a Cosmos transaction.
pub fn to_any<M: prost::Name>(msg: &M) -> prost_types::Any {
    prost_types::Any {
        type_url: M::type_url(),
        value: prost::Message::encode_to_vec(msg),
    }
}
