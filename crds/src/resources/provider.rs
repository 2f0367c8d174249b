use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::common::Condition;

/// This provider's identity and settings on chain. Cluster-scoped: one per provider. The operator
/// registers it on chain (create or update) and reports the on-chain state in the status.
#[derive(CustomResource, Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[kube(
    group = "akash.network",
    version = "v1",
    kind = "Provider",
    plural = "providers",
    status = "ProviderStatus",
    shortname = "aprov",
    category = "akash",
    printcolumn = r#"{"name":"Host URI","type":"string","jsonPath":".spec.hostUri"}"#,
    printcolumn = r#"{"name":"Address","type":"string","jsonPath":".status.address"}"#,
    printcolumn = r#"{"name":"Registered","type":"boolean","jsonPath":".status.registered"}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#
)]
#[serde(rename_all = "camelCase")]
pub struct ProviderSpec {
    /// Where tenants reach this provider's gateway, such as `https://provider.example.com:8443`.
    #[schemars(regex(pattern = r"^https://[^\s/]+(:[0-9]{1,5})?/?$"))]
    pub host_uri: String,
    /// Attributes tenants' placement requirements match against (`region`, `tier`, ...).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub attributes: Vec<Attribute>,
    /// Contact details published on chain.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub info: Option<ProviderInfo>,
    /// How this provider prices its bids.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pricing: Option<PricingStrategy>,
}

/// A key-value attribute as the chain stores it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Attribute {
    #[schemars(length(min = 1, max = 128))]
    pub key: String,
    #[schemars(length(max = 256))]
    pub value: String,
}

/// A provider's public contact details.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct ProviderInfo {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub email: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub website: String,
}

/// Bid pricing: per-resource rates (`scale`), or an external script given the order as JSON.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum PricingStrategy {
    Scale(ScalePricing),
    /// A program that reads the order on stdin and prints a price.
    Script {
        path: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        timeout_seconds: Option<u32>,
    },
}

/// Rates per unit of each resource, in the bid denomination per block.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ScalePricing {
    /// Per thousandth of a CPU.
    #[serde(default)]
    pub cpu: f64,
    /// Per MiB of memory.
    #[serde(default)]
    pub memory: f64,
    /// Per MiB of storage, by storage class.
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub storage: std::collections::BTreeMap<String, f64>,
    /// Per GPU, by model (`*` for any model without a rate of its own).
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub gpu: std::collections::BTreeMap<String, f64>,
    /// Per endpoint (global port).
    #[serde(default)]
    pub endpoint: f64,
    /// Per leased IP.
    #[serde(default)]
    pub ip: f64,
}

/// What the chain says about this provider.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ProviderStatus {
    /// The provider's bech32 account address, from its key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address: Option<String>,
    /// True once the chain holds a provider record equal to the spec.
    #[serde(default)]
    pub registered: bool,
    /// The host URI the chain holds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub on_chain_host_uri: Option<String>,
    /// The serial of the provider's valid on-chain certificate.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub certificate_serial: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
}
