use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::common::{Condition, OrderRef, Price};

/// A bid this provider placed, or is about to place, on an order, and the cluster resources it
/// holds for it. The resource *is* the reservation: the provider creates it before it sends
/// `MsgCreateBid` and deletes it when the bid loses, times out, or its lease is torn down, so a
/// restart neither forgets a reservation nor sends a bid twice.
#[derive(CustomResource, Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[kube(
    group = "akash.network",
    version = "v1",
    kind = "Bid",
    plural = "bids",
    namespaced,
    status = "BidStatus",
    shortname = "abids",
    category = "akash",
    printcolumn = r#"{"name":"Owner","type":"string","jsonPath":".spec.orderId.owner"}"#,
    printcolumn = r#"{"name":"DSeq","type":"integer","jsonPath":".spec.orderId.dseq"}"#,
    printcolumn = r#"{"name":"GSeq","type":"integer","jsonPath":".spec.orderId.gseq","priority":1}"#,
    printcolumn = r#"{"name":"OSeq","type":"integer","jsonPath":".spec.orderId.oseq","priority":1}"#,
    printcolumn = r#"{"name":"Price","type":"string","jsonPath":".spec.price.amount"}"#,
    printcolumn = r#"{"name":"Denom","type":"string","jsonPath":".spec.price.denom"}"#,
    printcolumn = r#"{"name":"Phase","type":"string","jsonPath":".status.phase"}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#
)]
#[serde(rename_all = "camelCase")]
pub struct BidSpec {
    /// The order bid on.
    pub order_id: OrderRef,
    /// The price per block offered for the whole group.
    pub price: Price,
    /// What the bid holds of the cluster while it is open or its lease is active.
    pub resources: Vec<ReservedUnit>,
}

/// One resource unit of a group (`count` replicas of the same shape), as the inventory counts it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ReservedUnit {
    /// Replicas of this shape.
    pub count: u32,
    /// CPU per replica, in thousandths of a core.
    pub cpu_millis: u64,
    /// Memory per replica, in bytes.
    pub memory_bytes: u64,
    /// Ephemeral (non-persistent) storage per replica, in bytes.
    #[serde(default)]
    pub ephemeral_storage_bytes: u64,
    /// Persistent volumes per replica, by storage class.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub persistent_storage: Vec<StorageReservation>,
    /// GPUs per replica.
    #[serde(default)]
    pub gpus: u32,
    /// The GPU models the group accepts (empty with `gpus > 0`: any model).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub gpu_models: Vec<GpuModel>,
    /// The model the inventory chose for the replicas, once it placed them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allocated_gpu: Option<GpuModel>,
    /// Global ports other than HTTP (node ports), per replica set.
    #[serde(default)]
    pub node_ports: u32,
    /// Leased IPs.
    #[serde(default)]
    pub ips: u32,
}

/// Persistent storage of one class.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct StorageReservation {
    /// The storage class (`beta2`, `beta3`, ...).
    pub class: String,
    pub bytes: u64,
}

/// A GPU vendor and model, as node labels and SDL attributes name them (`nvidia`, `a100`).
/// A model of `*` stands for any model of the vendor.
#[derive(
    Debug, Clone, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "camelCase")]
pub struct GpuModel {
    pub vendor: String,
    pub model: String,
}

/// Where a bid stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum BidPhase {
    /// Resources reserved; `MsgCreateBid` not yet confirmed in a block.
    Reserved,
    /// The bid is open on chain.
    Open,
    /// The tenant leased it; the reservation now backs the lease.
    Won,
    /// Lost, timed out or closed; the reservation is being released.
    Closed,
}

/// What the provider observed of its bid.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct BidStatus {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phase: Option<BidPhase>,
    /// The block that included `MsgCreateBid`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bid_height: Option<i64>,
    /// Why the bid closed, or the last error sending it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
}
