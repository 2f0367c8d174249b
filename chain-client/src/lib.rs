//! The Akash chain API as the provider and the tenant controller use it: the Akash messages
//! (compiled from this crate's own `.proto` files), the `Chain` trait with its gRPC + CometBFT RPC
//! implementation, keys, signing, and on-chain certificates. Knows nothing of Kubernetes.
//!
//! The generated messages live in a module tree that mirrors the protobuf packages, e.g.
//! [`akash::market::v1beta5::MsgCreateBid`]. Every message implements [`prost::Name`], so
//! [`prost_types::Any::from_msg`] (or [`to_any`]) wraps it for a Cosmos transaction.
//!
//! Wire quirks to know (all checked against the official TypeScript SDK by `tests/wire_goldens.rs`):
//! - `DecCoin.amount` and escrow `Balance.amount` are `LegacyDec`s, which travel as the integer
//!   value × 10¹⁸ ("1.5" is sent as "1500000000000000000"); see [`dec`].
//! - `ResourceValue.val` is a `math.Int` whose bytes are its base-10 text (b"1000").

pub mod dec;

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
