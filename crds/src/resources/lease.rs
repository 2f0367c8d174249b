use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::common::{Condition, LeaseRef, Price};

/// A lease this provider won on chain. The provider creates one per lease in its own namespace;
/// the manifest group arrives once the tenant sent it and it matched the hash on chain.
#[derive(CustomResource, Debug, Clone, PartialEq, Serialize, Deserialize, KubeSchema)]
#[kube(
    group = "akash.network",
    version = "v1",
    kind = "Lease",
    plural = "leases",
    namespaced,
    status = "LeaseStatus",
    shortname = "aleases",
    category = "akash",
    printcolumn = r#"{"name":"Owner","type":"string","jsonPath":".spec.leaseId.owner"}"#,
    printcolumn = r#"{"name":"DSeq","type":"integer","jsonPath":".spec.leaseId.dseq"}"#,
    printcolumn = r#"{"name":"GSeq","type":"integer","jsonPath":".spec.leaseId.gseq","priority":1}"#,
    printcolumn = r#"{"name":"OSeq","type":"integer","jsonPath":".spec.leaseId.oseq","priority":1}"#,
    printcolumn = r#"{"name":"Price","type":"string","jsonPath":".spec.price.amount"}"#,
    printcolumn = r#"{"name":"Denom","type":"string","jsonPath":".spec.price.denom"}"#,
    printcolumn = r#"{"name":"Phase","type":"string","jsonPath":".status.phase"}"#,
    printcolumn = r#"{"name":"Ready","type":"string","jsonPath":".status.ready"}"#,
    printcolumn = r#"{"name":"IPs","type":"string","jsonPath":".status.ips"}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#
)]
#[serde(rename_all = "camelCase")]
pub struct LeaseSpec {
    /// The lease on chain.
    #[x_kube(validation = Rule::new("self == oldSelf").message("leaseId is immutable"))]
    pub lease_id: LeaseRef,
    /// The price per block the lease pays this provider.
    pub price: Price,
    /// The block height at which the lease was created.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_at: Option<i64>,
    /// The tenant's manifest group for this lease, once the gateway received it and checked it
    /// against the deployment's hash on chain. The workload reconciler runs what is here.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub manifest: Option<LeaseManifest>,
    /// The tenant's whole manifest (every group of the deployment), JSON exactly as it was
    /// verified: its version is `manifest.version`, the deployment's hash on chain. The gateway
    /// serves it to the deployment's other providers (peer-to-peer distribution), and the overlay
    /// reads the calls between groups from it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deployment_manifest: Option<String>,
}

/// A verified manifest group.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct LeaseManifest {
    /// The manifest version (the deployment's hash on chain), lowercase hex.
    #[schemars(regex(pattern = r"^[0-9a-f]{64}$"))]
    pub version: String,
    /// The group of the manifest that this lease runs.
    pub group: crate::sdl::ManifestGroup,
    /// The resource units of the lease's group on chain, as `group` was checked against them:
    /// the workloads' quota comes from these, never from the manifest. Empty only in a manifest
    /// an older provider accepted.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub leased: Vec<LeasedUnit>,
    /// The hosts `group` names (`accept`, lowercase) that this lease holds on this provider: no
    /// other tenant's lease may use them while it runs. A host that another deployment of the
    /// same owner took over since is no longer here, and is not served. Absent in a manifest an
    /// older provider accepted: then every host `group` names.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hostnames: Option<Vec<String>>,
    /// The leased-IP endpoints `group` names (`ip` on global exposes) that this lease holds on
    /// this provider. One of another deployment of the same owner that held it first stays
    /// there until the owner moves it (`POST /endpoint/migrate`); until then this lease has no
    /// address for it. Absent in a manifest an older provider accepted: every endpoint it names.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ip_endpoints: Option<Vec<String>>,
    /// The address each endpoint moved here had (endpoint name → IP): the lease asks the load
    /// balancer for that same address.
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub ip_addresses: std::collections::BTreeMap<String, String>,
    /// The Secret in the provider's namespace that holds what this manifest carries and no
    /// reader of `Lease` resources may see: the services' registry credentials, and the whole
    /// manifest with them (as verified). Set when the manifest has credentials; then `group`
    /// and `deploymentManifest` have none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_name: Option<String>,
}

/// One resource unit of a lease's group on chain: `count` replicas of `resources`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct LeasedUnit {
    pub count: u32,
    pub resources: crate::sdl::groups::Resources,
}

/// Where a lease stands, from won to closed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum LeasePhase {
    /// Won on chain; waiting for the tenant's manifest.
    Pending,
    /// The manifest arrived and was verified; workloads are being applied.
    Deploying,
    /// Every service has its replicas ready.
    Active,
    /// Some services are not ready.
    Degraded,
    /// Closed on chain; the workloads are being removed.
    Closing,
    /// Closed and torn down.
    Closed,
}

/// What the provider observed of a lease.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct LeaseStatus {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phase: Option<LeasePhase>,
    /// Ready services over all services, such as `2/3` (for `kubectl get`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ready: Option<String>,
    /// Per service: replicas ready and wanted, and where it is reachable.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub services: Vec<ServiceStatus>,
    /// The lease's leased IP addresses, comma-separated (for `kubectl get`; per service and port
    /// in `services[].ips`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ips: Option<String>,
    /// The height of the last `MsgWithdrawLease` (the lease confirmation).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_withdraw_height: Option<i64>,
    /// The reason the chain gave when the lease closed (`owner`, `unstable`, ...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub closed_reason: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
}

/// One service of a lease as it runs.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ServiceStatus {
    pub name: String,
    pub ready_replicas: i32,
    pub replicas: i32,
    /// Replicas ready for the workload's `minReadySeconds` (its `availableReplicas`).
    #[serde(default)]
    pub available_replicas: i32,
    /// Replicas running the workload's latest template (its `updatedReplicas`).
    #[serde(default)]
    pub updated_replicas: i32,
    /// Hostnames that route to the service over HTTP.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub uris: Vec<String>,
    /// Other global ports, as `externalPort:port/proto`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub forwarded_ports: Vec<String>,
    /// The leased IPs the service answers on (`ip` endpoints), once the load balancer gave
    /// them an address.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ips: Vec<LeasedIpStatus>,
}

/// One port of a service on a leased IP.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct LeasedIpStatus {
    /// The endpoint name (`endpoints.<name>` of the SDL).
    #[serde(default)]
    pub endpoint: String,
    /// The address, as the load balancer reports it.
    pub ip: String,
    /// The port on that address.
    pub external_port: u32,
    /// The container's port.
    pub port: u32,
    /// `TCP` or `UDP`.
    pub protocol: String,
}
