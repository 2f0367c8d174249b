//! The cross-datacenter overlay. The data plane: mTLS tunnels between providers, each side
//! presenting a short-lived tunnel certificate signed by the key of its provider's on-chain
//! certificate (see [`tunnel_cert`]); the server authorizes each request after the handshake and
//! only then connects the target (see [`server`], [`client`], [`wire`]). The control plane:
//! [`sidecar`] (`akash-provider overlay`) decides from the leases, the manifest and the chain
//! which tunnels run ([`topology`], [`peers`], [`admission`]).

pub(crate) mod admission;
pub mod client;
pub(crate) mod counters;
pub(crate) mod error;
pub(crate) mod local_ports;
pub(crate) mod peers;
pub(crate) mod server;
pub mod sidecar;
pub(crate) mod tls;
pub(crate) mod topology;
pub mod tunnel_cert;
pub(crate) mod wg_data;
pub(crate) mod wire;
pub(crate) mod wireguard;

#[cfg(test)]
mod admission_tests;
#[cfg(test)]
mod tests;

pub use client::{
    ClientHandle, OnChainServerVerifier, ServerVerifier, TunnelClient, TunnelClientConfig,
};
pub use counters::Counters;
pub use error::OverlayError;
pub use server::{AuthorizedTarget, Authorizer, IssuingServerCerts, Refusal, TunnelServer};
pub use tunnel_cert::{Side, TunnelCert, TunnelClaim, VerifiedTunnelPeer};
pub use wire::TunnelRequest;
pub(crate) use wire::WireGuardOffer;

/// Lowercase hex.
pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
