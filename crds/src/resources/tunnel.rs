use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::common::{Condition, LeaseRef};

/// One cross-provider workload connection of the overlay: a service of this lease talking to a
/// service of the same deployment that another provider runs, or the serving end of one.
#[derive(CustomResource, Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[kube(
    group = "akash.network",
    version = "v1",
    kind = "Tunnel",
    plural = "tunnels",
    namespaced,
    status = "TunnelStatus",
    shortname = "atun",
    category = "akash",
    printcolumn = r#"{"name":"Role","type":"string","jsonPath":".spec.role"}"#,
    printcolumn = r#"{"name":"Service","type":"string","jsonPath":".spec.localService"}"#,
    printcolumn = r#"{"name":"Peer","type":"string","jsonPath":".spec.peerProvider"}"#,
    printcolumn = r#"{"name":"Mode","type":"string","jsonPath":".spec.mode"}"#,
    printcolumn = r#"{"name":"Established","type":"boolean","jsonPath":".status.established"}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#
)]
#[serde(rename_all = "camelCase")]
pub struct TunnelSpec {
    /// This provider's lease the connection belongs to.
    pub lease_id: LeaseRef,
    /// Whether this side calls the remote service or serves a local one.
    pub role: TunnelRole,
    /// The service on this side (the caller's workload, or the served workload).
    pub local_service: String,
    /// The port of the service the connection reaches.
    #[schemars(range(min = 1, max = 65535))]
    pub port: u16,
    /// The other provider's bech32 address.
    pub peer_provider: String,
    /// The other provider's overlay endpoint, `host:port`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub peer_endpoint: Option<String>,
    /// The service on the other side.
    pub peer_service: String,
    #[serde(default)]
    pub mode: TunnelMode,
}

/// Which end of a connection this side is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum TunnelRole {
    Client,
    Server,
}

/// How the connection is carried between providers.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum TunnelMode {
    /// One TLS 1.3 tunnel per connection pair (the default).
    #[default]
    #[serde(rename = "mTLS")]
    Mtls,
    WireGuard,
}

/// Whether the connection is up, and what it carried.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct TunnelStatus {
    #[serde(default)]
    pub established: bool,
    /// Since when it is established (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub since: Option<String>,
    /// SHA-256 fingerprint of the peer's certificate.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub peer_certificate_sha256: Option<String>,
    #[serde(default)]
    pub bytes_sent: u64,
    #[serde(default)]
    pub bytes_received: u64,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
}
