//! The SDL document as typed values.
//!
//! The model keeps what the author wrote: maps in document order, numbers that may be written as
//! strings (`cpu.units`, `gpu.units`, `pricing.amount`) as either, optional fields as `Option`. Turning it
//! back into YAML gives a document with the same meaning. Values are checked by
//! [`crate::sdl::validate`] before they reach these types, so the types themselves stay permissive.

use indexmap::IndexMap;
use schemars::JsonSchema;
use serde::{Deserialize, Deserializer, Serialize};

/// Ordered map from names to values, in the order of the document.
pub type Named<T> = IndexMap<String, T>;

/// A whole SDL document (version 2.0 or 2.1).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SdlDocument {
    /// `"2.0"` or `"2.1"`.
    pub version: String,
    /// Files to include (kept, not interpreted).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub include: Option<Vec<String>>,
    /// The containers to run, by service name.
    pub services: Named<Service>,
    /// Compute and placement profiles.
    pub profiles: Profiles,
    /// For each service, the placements it runs in: `deployment.<service>.<placement>`.
    pub deployment: Named<Named<DeploymentPlacement>>,
    /// Named IP endpoints (`kind: ip`) that exposes can lease.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endpoints: Option<Named<EndpointDecl>>,
    /// Reclamation window the tenant asks for (AEP-82).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reclamation: Option<Reclamation>,
}

/// One service: a container image and how it is exposed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Service {
    pub image: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub command: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub args: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub env: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expose: Option<Vec<Expose>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dependencies: Option<Vec<Dependency>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub params: Option<ServiceParams>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credentials: Option<Credentials>,
}

/// A service this one depends on.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Dependency {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service: Option<String>,
}

/// One exposed container port.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Expose {
    /// Container port.
    #[serde(deserialize_with = "whole_number")]
    pub port: u16,
    /// External port; defaults to `port`.
    #[serde(
        rename = "as",
        default,
        deserialize_with = "opt_whole_number",
        skip_serializing_if = "Option::is_none"
    )]
    pub as_port: Option<u16>,
    /// `tcp` (default) or `udp`, either case.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub proto: Option<String>,
    /// Who may connect: other services, the world (`global`), a leased IP.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to: Option<Vec<ExposeTo>>,
    /// Host names the ingress accepts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub accept: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http_options: Option<HttpOptions>,
}

/// One destination of an expose.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ExposeTo {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub global: Option<bool>,
    /// Name of an `endpoints` entry (a leased IP).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ip: Option<String>,
}

/// Ingress proxy settings of an expose.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct HttpOptions {
    #[serde(
        default,
        deserialize_with = "opt_whole_number",
        skip_serializing_if = "Option::is_none"
    )]
    pub max_body_size: Option<u64>,
    #[serde(
        default,
        deserialize_with = "opt_whole_number",
        skip_serializing_if = "Option::is_none"
    )]
    pub read_timeout: Option<u64>,
    #[serde(
        default,
        deserialize_with = "opt_whole_number",
        skip_serializing_if = "Option::is_none"
    )]
    pub send_timeout: Option<u64>,
    #[serde(
        default,
        deserialize_with = "opt_whole_number",
        skip_serializing_if = "Option::is_none"
    )]
    pub next_tries: Option<u64>,
    #[serde(
        default,
        deserialize_with = "opt_whole_number",
        skip_serializing_if = "Option::is_none"
    )]
    pub next_timeout: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_cases: Option<Vec<String>>,
}

/// `params` of a service: volume mounts and API permissions.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ServiceParams {
    /// Mounts by compute-profile volume name. A `null` entry is kept so validation can name it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub storage: Option<Named<Option<StorageMount>>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub permissions: Option<Permissions>,
}

/// Where a volume is mounted.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct StorageMount {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mount: Option<String>,
    #[serde(rename = "readOnly", default, skip_serializing_if = "Option::is_none")]
    pub read_only: Option<bool>,
}

/// Kubernetes API access granted to the service: its pods get a ServiceAccount token bound to a
/// Role in the lease namespace.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Permissions {
    /// Any of `deployment`, `logs`, `events`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub read: Option<Vec<String>>,
}

/// What `params.permissions.read` may name: the values the Go SDL's schema allows
/// (`pkg.akt.dev/go/sdl`, `sdl-input.schema.yaml`). The TypeScript SDK's schema allows only
/// `deployment` and `logs`; the Go provider's rule registry knows `logs` and `events` and grants
/// nothing of its own for `deployment` (which still gets the service its token).
pub const READ_PERMISSIONS: [&str; 3] = ["deployment", "logs", "events"];

impl Permissions {
    /// The resources the service may read (none when `read` is absent or empty).
    pub fn read(&self) -> &[String] {
        self.read.as_deref().unwrap_or_default()
    }
}

/// Private registry credentials.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Credentials {
    pub host: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    pub username: String,
    pub password: String,
}

/// `profiles`: compute and placement.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Profiles {
    pub compute: Named<ComputeProfile>,
    pub placement: Named<PlacementProfile>,
}

/// One compute profile.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ComputeProfile {
    pub resources: ComputeResources,
}

/// The resources of a compute profile.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ComputeResources {
    pub cpu: Cpu,
    pub memory: Memory,
    pub storage: StorageSpec,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gpu: Option<Gpu>,
}

/// A number written either as a YAML number or as a string (`1`, `"0.5"`, `"100m"`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum NumberOrString {
    Number(f64),
    Text(String),
}

/// CPU request: `units` in cores (`0.5`, `"2"`) or millicores (`"100m"`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Cpu {
    pub units: NumberOrString,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attributes: Option<Named<serde_json::Value>>,
}

/// Memory request, e.g. `512Mi`, `1Gi`, `1G`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Memory {
    pub size: String,
}

/// One volume, or a list of volumes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum StorageSpec {
    One(StorageVolume),
    Many(Vec<StorageVolume>),
}

impl StorageSpec {
    /// The volumes in document order.
    pub fn volumes(&self) -> &[StorageVolume] {
        match self {
            StorageSpec::One(volume) => std::slice::from_ref(volume),
            StorageSpec::Many(volumes) => volumes,
        }
    }
}

/// One storage volume of a compute profile.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct StorageVolume {
    /// Volume name; unnamed volumes are called `default` on chain.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    pub size: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attributes: Option<StorageAttributes>,
}

/// Storage class and persistence.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct StorageAttributes {
    /// `default`, `beta1`, `beta2`, `beta3` or `ram`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub class: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub persistent: Option<BoolOrString>,
}

/// A flag written as a YAML boolean or as a string (`"true"`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum BoolOrString {
    Bool(bool),
    Text(String),
}

/// GPU request.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Gpu {
    pub units: NumberOrString,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attributes: Option<GpuAttributes>,
}

/// GPU vendors and models.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct GpuAttributes {
    /// By vendor (`nvidia`): a list of acceptable models, or `null` for any model.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vendor: Option<Named<Option<Vec<GpuModel>>>>,
}

/// One acceptable GPU model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct GpuModel {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    /// GPU memory, e.g. `80Gi`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ram: Option<String>,
    /// `pcie` or `sxm`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interface: Option<String>,
}

/// One placement profile: where to run and at what price.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PlacementProfile {
    /// Provider attributes required.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attributes: Option<Named<serde_json::Value>>,
    /// Auditors who must have signed the provider's attributes.
    #[serde(rename = "signedBy", default, skip_serializing_if = "Option::is_none")]
    pub signed_by: Option<SignedBy>,
    /// Maximum price per block, by compute profile.
    pub pricing: Named<Price>,
}

/// Auditor requirements.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SignedBy {
    #[serde(rename = "allOf", default, skip_serializing_if = "Option::is_none")]
    pub all_of: Option<Vec<String>>,
    #[serde(rename = "anyOf", default, skip_serializing_if = "Option::is_none")]
    pub any_of: Option<Vec<String>>,
}

/// A price: `amount` of `denom` (`uakt` or `uact`) per block.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Price {
    pub denom: String,
    pub amount: NumberOrString,
}

/// How many instances of a service run in a placement, with which compute profile.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DeploymentPlacement {
    pub profile: String,
    #[serde(deserialize_with = "whole_number")]
    pub count: u32,
}

/// A named endpoint; `kind` is `ip`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct EndpointDecl {
    pub kind: String,
}

/// The reclamation window the tenant asks for (AEP-82).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Reclamation {
    /// Minimum window, a duration such as `1h`.
    pub min_window: String,
}

/// Accepts integers and whole floating-point numbers (`80.0`), as YAML and JSON Schema do.
fn whole_number<'de, D, T>(deserializer: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: TryFrom<u64>,
{
    let value = f64::deserialize(deserializer)?;
    if value.fract() != 0.0 || value < 0.0 || value > u64::MAX as f64 {
        return Err(serde::de::Error::custom(format!(
            "{value} is not a whole number"
        )));
    }
    T::try_from(value as u64)
        .map_err(|_| serde::de::Error::custom(format!("{value} is out of range")))
}

fn opt_whole_number<'de, D, T>(deserializer: D) -> Result<Option<T>, D::Error>
where
    D: Deserializer<'de>,
    T: TryFrom<u64>,
{
    whole_number(deserializer).map(Some)
}
