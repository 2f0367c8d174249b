use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// The on-chain identity of a lease: the order it fills and the provider that won it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct LeaseRef {
    /// The tenant's bech32 account address (`akash1…`).
    #[schemars(regex(pattern = r"^akash1[02-9ac-hj-np-z]{38,58}$"))]
    pub owner: String,
    /// Deployment sequence (the deployment's id within the owner's account).
    #[schemars(range(min = 1))]
    pub dseq: u64,
    /// Group sequence within the deployment, from 1.
    #[schemars(range(min = 1))]
    pub gseq: u32,
    /// Order sequence within the group, from 1.
    #[schemars(range(min = 1))]
    pub oseq: u32,
    /// The provider's bech32 account address.
    #[schemars(regex(pattern = r"^akash1[02-9ac-hj-np-z]{38,58}$"))]
    pub provider: String,
}

impl LeaseRef {
    /// The namespace the lease's workloads run in.
    pub fn namespace(&self) -> String {
        crate::sdl::names::lease_namespace(&self.names_id())
    }

    /// The same id as [`crate::sdl::names`] takes it.
    pub fn names_id(&self) -> crate::sdl::names::LeaseId {
        crate::sdl::names::LeaseId {
            owner: self.owner.clone(),
            dseq: self.dseq,
            gseq: self.gseq,
            oseq: self.oseq,
            provider: self.provider.clone(),
        }
    }
}

impl std::fmt::Display for LeaseRef {
    /// `owner/dseq/gseq/oseq/provider`, the form the Akash tools print.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}/{}/{}/{}/{}",
            self.owner, self.dseq, self.gseq, self.oseq, self.provider
        )
    }
}

/// An order on chain: the tenant's deployment group and the order within it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct OrderRef {
    /// The tenant's bech32 account address (`akash1…`).
    #[schemars(regex(pattern = r"^akash1[02-9ac-hj-np-z]{38,58}$"))]
    pub owner: String,
    #[schemars(range(min = 1))]
    pub dseq: u64,
    #[schemars(range(min = 1))]
    pub gseq: u32,
    #[schemars(range(min = 1))]
    pub oseq: u32,
}

impl OrderRef {
    /// The name of the provider's objects for this order (its `Bid`, and its `Lease` once won):
    /// `<owner>-<dseq>-<gseq>-<oseq>`, a valid Kubernetes name since bech32 is lowercase.
    pub fn object_name(&self) -> String {
        format!("{}-{}-{}-{}", self.owner, self.dseq, self.gseq, self.oseq)
    }
}

impl std::fmt::Display for OrderRef {
    /// `owner/dseq/gseq/oseq`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}/{}/{}/{}",
            self.owner, self.dseq, self.gseq, self.oseq
        )
    }
}

impl LeaseRef {
    /// The order this lease fills.
    pub fn order(&self) -> OrderRef {
        OrderRef {
            owner: self.owner.clone(),
            dseq: self.dseq,
            gseq: self.gseq,
            oseq: self.oseq,
        }
    }
}

/// A price per block, as the chain states it (a decimal coin).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Price {
    /// `uakt` or `uact`.
    #[schemars(regex(pattern = r"^u(akt|act)$"))]
    pub denom: String,
    /// A non-negative decimal amount per block, such as `1000` or `12.5`.
    #[schemars(regex(pattern = r"^[0-9]+(\.[0-9]+)?$"))]
    pub amount: String,
}

/// A status condition, in the shape Kubernetes' own resources use.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Condition {
    /// The aspect this condition describes, such as `Ready` or `ManifestReceived`.
    #[serde(rename = "type")]
    pub type_: String,
    /// `True`, `False` or `Unknown`.
    #[schemars(regex(pattern = r"^(True|False|Unknown)$"))]
    pub status: String,
    /// A CamelCase word for the cause of the last transition.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub reason: String,
    /// What happened, for people.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub message: String,
    /// When `status` last changed (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_transition_time: Option<String>,
    /// The `.metadata.generation` this condition was computed from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
}
