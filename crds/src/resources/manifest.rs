use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::common::{Condition, Price};
use crate::sdl::SdlDocument;

/// A tenant's deployment on the Akash marketplace, the Kubernetes way: the SDL in structured form
/// plus what the tenant controller needs to post it on chain, pick the winning bids and deliver it.
#[derive(CustomResource, Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[kube(
    group = "akash.network",
    version = "v1",
    kind = "Manifest",
    plural = "manifests",
    namespaced,
    status = "ManifestStatus",
    shortname = "amani",
    category = "akash",
    printcolumn = r#"{"name":"Phase","type":"string","jsonPath":".status.phase"}"#,
    printcolumn = r#"{"name":"DSeq","type":"integer","jsonPath":".status.dseq"}"#,
    printcolumn = r#"{"name":"Ready","type":"string","jsonPath":".status.ready"}"#,
    printcolumn = r#"{"name":"Version","type":"string","jsonPath":".status.version","priority":1}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#
)]
#[serde(rename_all = "camelCase")]
pub struct ManifestSpec {
    /// The SDL document (version 2.0 or 2.1), as `deploy.yaml` would hold it.
    pub sdl: SdlDocument,
    /// The escrow deposit posted with the deployment.
    #[serde(default = "default_deposit")]
    pub deposit: Price,
    /// Blocks to collect bids for before the cheapest (earliest on ties) wins.
    #[serde(default = "default_wait_blocks")]
    #[schemars(range(min = 1, max = 10000))]
    pub wait_duration_blocks: u32,
    /// The Secret holding the tenant's key (a BIP-39 mnemonic).
    pub key_secret: SecretKeyRef,
    /// Filters applied to bids before the price rule.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bid_filter: Option<BidFilter>,
    /// How the manifest reaches the providers: sent to every one, or to one that the others fetch
    /// it from.
    #[serde(default)]
    pub distribution: Distribution,
    /// The deployment sequence to post as (default: the chain's height when it is posted, as the
    /// Akash tools choose it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1))]
    pub dseq: Option<u64>,
}

fn default_deposit() -> Price {
    Price {
        denom: "uact".into(),
        amount: "5000000".into(),
    }
}

fn default_wait_blocks() -> u32 {
    5
}

/// A key in a Secret of the same namespace.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct SecretKeyRef {
    /// The Secret's name.
    #[schemars(length(min = 1, max = 253))]
    pub name: String,
    /// The key within the Secret (default `mnemonic`).
    #[serde(default = "default_secret_key")]
    pub key: String,
}

fn default_secret_key() -> String {
    "mnemonic".into()
}

/// Which bids may win.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct BidFilter {
    /// Only bids from these provider addresses.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub allowed_providers: Vec<String>,
    /// Only providers whose on-chain attributes include all of these.
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub required_attributes: std::collections::BTreeMap<String, String>,
    /// Only bids at or below this price per block.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_price: Option<Price>,
}

/// How the manifest is distributed to the providers of the deployment.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum Distribution {
    /// The tenant sends it to every provider (today's Akash behaviour).
    #[default]
    SendToAll,
    /// The tenant sends it to one provider; the others fetch it from their peers.
    SeedOne,
}

/// Where a tenant's deployment stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum ManifestPhase {
    /// Invalid spec; nothing was posted. The conditions say why.
    Invalid,
    /// Posting the deployment on chain.
    Creating,
    /// Collecting bids during the wait duration.
    Bidding,
    /// Leases created; delivering the manifest.
    Deploying,
    /// Every service is ready.
    Running,
    /// Some services are not ready, or a provider is being replaced.
    Degraded,
    /// Closing the deployment on chain.
    Closing,
    /// The deployment was closed on chain by someone else (or ran out of funds); nothing runs.
    Closed,
}

/// What the tenant controller observed.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ManifestStatus {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phase: Option<ManifestPhase>,
    /// The deployment sequence on chain.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dseq: Option<u64>,
    /// The manifest version (hex) posted on chain.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// Ready services over all services, such as `2/3`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ready: Option<String>,
    /// Per placement group: the lease and who holds it.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub groups: Vec<GroupLeaseStatus>,
    /// Per service: readiness and endpoints.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub services: Vec<ServiceEndpoints>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
}

/// The lease of one placement group.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct GroupLeaseStatus {
    /// The placement (group) name.
    pub name: String,
    pub gseq: u32,
    /// The order the lease fills (a new order opens when a lease closes).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub oseq: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provider: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub price: Option<Price>,
    /// How many bids the order received.
    #[serde(default)]
    pub bids_seen: u32,
    /// The manifest version that provider runs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub running_version: Option<String>,
    /// Since when (RFC 3339) the provider has been unreachable or its services not ready.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unhealthy_since: Option<String>,
    /// What went wrong last with this group's provider, if anything.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// Providers dropped for this group (they failed to serve it); their bids are not taken again.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub dropped_providers: Vec<String>,
}

/// One service of the deployment as its provider reports it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ServiceEndpoints {
    pub name: String,
    pub ready_replicas: i32,
    pub replicas: i32,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub uris: Vec<String>,
    /// Global ports, as `host:externalPort -> port/proto`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub forwarded_ports: Vec<String>,
    /// Ports on leased IPs, as `ip:externalPort -> port/proto`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub leased_ips: Vec<String>,
}
