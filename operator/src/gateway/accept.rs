//! Whether a manifest the tenant sent is accepted, as a pure function of what was sent and what
//! the chain and this provider hold: [`accept`]. Every rejection is a [`Rejection`] with a message
//! for the tenant and an HTTP status (and a gRPC code).
//!
//! The checks follow the Go provider's manifest service: the sender owns the deployment, the
//! manifest's version (SHA-256 of its canonical JSON, exactly as received) is the deployment's hash
//! on chain, and every lease this provider holds for the deployment finds its group in the manifest,
//! asking for no more than the group on chain.

use std::collections::BTreeMap;

use chain_client::akash::base::resources::v1beta4 as res;
use chain_client::akash::deployment::v1::deployment::State as DeploymentState;
use chain_client::akash::deployment::v1beta4::ResourceUnit;
use chain_client::chain::QueryDeploymentResponse;
use crds::resources::{Lease, LeaseManifest};
use crds::sdl::ManifestGroup;
use crds::sdl::manifest::ManifestResources;
use kube::ResourceExt;
use sha2::{Digest, Sha256};

/// Why a request was refused; the message is meant for the tenant.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Rejection {
    /// No client certificate, or one the chain does not hold as valid.
    #[error("{0}")]
    Unauthenticated(String),
    /// The request body is larger than the gateway accepts.
    #[error("the request body is larger than {max} bytes")]
    TooLarge { max: usize },
    /// Accepted, but too large to keep: a `Lease` resource holds its group's part and the whole
    /// manifest, and the API server's store refuses larger objects.
    #[error(
        "the manifest needs {size} bytes in a Lease resource (its group's part and the whole manifest); \
         the cluster stores at most {max}"
    )]
    TooLargeToStore { size: usize, max: usize },
    /// The body is not JSON, or not manifest groups.
    #[error("{0}")]
    Malformed(String),
    /// The manifest's version is not the deployment's hash on chain.
    #[error("manifest version {got} does not match the deployment's hash {want}")]
    VersionMismatch { got: String, want: String },
    /// The sender is not the owner of what it asks about.
    #[error("{0}")]
    Forbidden(String),
    /// No such deployment or lease (on chain, or held by this provider).
    #[error("{0}")]
    NotFound(String),
    /// The manifest does not fit the leases this provider holds.
    #[error("{0}")]
    Mismatch(String),
    /// The chain or the cluster could not be asked; try again.
    #[error("{0}")]
    Unavailable(String),
    /// Serving as many peers as allowed at once; ask another holder, or again later.
    #[error("{0}")]
    Busy(String),
}

impl Rejection {
    /// The HTTP status of the REST answer.
    pub fn http_status(&self) -> u16 {
        match self {
            Self::Unauthenticated(_) => 401,
            Self::TooLarge { .. } | Self::TooLargeToStore { .. } => 413,
            Self::Malformed(_) | Self::VersionMismatch { .. } => 400,
            Self::Forbidden(_) => 403,
            Self::NotFound(_) => 404,
            Self::Mismatch(_) => 422,
            Self::Unavailable(_) => 503,
            Self::Busy(_) => 429,
        }
    }

    /// The gRPC status code of the gRPC answer.
    pub fn grpc_code(&self) -> tonic::Code {
        match self {
            Self::Unauthenticated(_) => tonic::Code::Unauthenticated,
            Self::TooLarge { .. } | Self::TooLargeToStore { .. } => tonic::Code::ResourceExhausted,
            Self::Malformed(_) | Self::VersionMismatch { .. } => tonic::Code::InvalidArgument,
            Self::Forbidden(_) => tonic::Code::PermissionDenied,
            Self::NotFound(_) => tonic::Code::NotFound,
            Self::Mismatch(_) => tonic::Code::FailedPrecondition,
            Self::Unavailable(_) => tonic::Code::Unavailable,
            Self::Busy(_) => tonic::Code::ResourceExhausted,
        }
    }
}

/// What an accepted manifest writes: per Lease resource (by name), its verified group.
pub type Accepted = Vec<(String, LeaseManifest)>;

/// The manifest bytes one `Lease` resource may hold: etcd refuses requests over 1.5 MiB by default,
/// and the rest of the object (metadata, managed fields, status) needs some of that.
pub const LEASE_MANIFEST_BUDGET: usize = 1_400_000;

/// Refuses, before anything is written, a manifest whose Lease resources would be too large to
/// store (`whole_len`: the whole manifest's bytes, kept beside each group's part). Checked for
/// every lease first, so that a deployment is never stored for some of its leases only.
pub fn check_storable(accepted: &Accepted, whole_len: usize) -> Result<(), Rejection> {
    for (_, manifest) in accepted {
        let group = serde_json::to_vec(manifest)
            .map_err(|e| Rejection::Malformed(format!("the manifest cannot be stored: {e}")))?
            .len();
        let size = group + whole_len;
        if size > LEASE_MANIFEST_BUDGET {
            return Err(Rejection::TooLargeToStore {
                size,
                max: LEASE_MANIFEST_BUDGET,
            });
        }
    }
    Ok(())
}

/// Decides on a manifest `body` that `sender` sent for its deployment `dseq`.
///
/// - `deployment`: the deployment on chain (`None`: the chain has none);
/// - `leases`: the Lease resources this provider holds for that deployment and that are not
///   closing, whatever their owner (a lease of someone else's deployment is the sender's only
///   when the sender owns the deployment).
///
/// Nothing is written here; on `Ok` the caller writes every returned manifest, on `Err` nothing.
pub fn accept(
    sender: &str,
    dseq: u64,
    body: &[u8],
    max_bytes: usize,
    deployment: Option<&QueryDeploymentResponse>,
    leases: &[Lease],
) -> Result<Accepted, Rejection> {
    if body.len() > max_bytes {
        return Err(Rejection::TooLarge { max: max_bytes });
    }
    // A Lease resource keeps the whole manifest, so a larger one can never be stored: refuse it
    // before parsing, which costs tens of bytes of memory per byte of JSON.
    if body.len() > LEASE_MANIFEST_BUDGET {
        return Err(Rejection::TooLargeToStore {
            size: body.len(),
            max: LEASE_MANIFEST_BUDGET,
        });
    }
    let value: serde_json::Value = serde_json::from_slice(body)
        .map_err(|e| Rejection::Malformed(format!("the manifest is not valid JSON: {e}")))?;
    let groups: Vec<ManifestGroup> = serde_path_to_error::deserialize(&value).map_err(|e| {
        let path = e.path().to_string();
        Rejection::Malformed(format!(
            "the manifest is not a list of manifest groups: at {path}: {}",
            e.into_inner()
        ))
    })?;

    let Some(found) = deployment.and_then(|d| d.deployment.as_ref()) else {
        return Err(Rejection::NotFound(format!(
            "deployment {dseq} of {sender} does not exist on chain"
        )));
    };
    let id = found.id.clone().unwrap_or_default();
    if id.owner != sender {
        return Err(Rejection::Forbidden(format!(
            "deployment {dseq} belongs to {}, not to {sender}; only its owner may send its manifest",
            id.owner
        )));
    }
    if found.state() != DeploymentState::Active {
        return Err(Rejection::NotFound(format!(
            "deployment {dseq} of {sender} is {} on chain, not active",
            found.state().as_str_name()
        )));
    }

    let canonical = crds::sdl::version::canonical_json(&value)
        .map_err(|e| Rejection::Malformed(format!("the manifest cannot be hashed: {e}")))?;
    let got = crds::sdl::version::hex(&Sha256::digest(canonical.as_bytes()));
    let want = crds::sdl::version::hex(&found.hash);
    if got != want {
        return Err(Rejection::VersionMismatch { got, want });
    }

    let ours: Vec<&Lease> = leases
        .iter()
        .filter(|l| l.spec.lease_id.owner == sender && l.spec.lease_id.dseq == dseq)
        .collect();
    if ours.is_empty() {
        return Err(Rejection::NotFound(format!(
            "this provider holds no lease of deployment {dseq} of {sender}"
        )));
    }
    let chain_groups = deployment.map(|d| d.groups.as_slice()).unwrap_or_default();
    let mut accepted = Vec::with_capacity(ours.len());
    for lease in ours {
        let gseq = lease.spec.lease_id.gseq;
        let Some(spec) = chain_groups
            .iter()
            .find(|g| g.id.as_ref().is_some_and(|id| id.gseq == gseq))
            .and_then(|g| g.group_spec.as_ref())
        else {
            return Err(Rejection::Mismatch(format!(
                "deployment {dseq} has no group {gseq} on chain, which lease {} is for",
                lease.spec.lease_id
            )));
        };
        let Some(group) = groups.iter().find(|g| g.name == spec.name) else {
            let names: Vec<&str> = groups.iter().map(|g| g.name.as_str()).collect();
            return Err(Rejection::Mismatch(format!(
                "the manifest has no group {:?} (group {gseq} of the deployment, leased to this provider); it has {names:?}",
                spec.name
            )));
        };
        check_group(group, &spec.resources)?;
        accepted.push((
            lease.name_any(),
            LeaseManifest {
                version: got.clone(),
                group: group.clone(),
            },
        ));
    }
    Ok(accepted)
}

/// Every service of `group` uses a resource unit of the group on chain, with the same resources,
/// and together the services of one unit want no more replicas than the unit's count.
fn check_group(group: &ManifestGroup, units: &[ResourceUnit]) -> Result<(), Rejection> {
    let name = &group.name;
    let mut wanted: BTreeMap<u32, (u64, Vec<&str>)> = BTreeMap::new();
    for service in &group.services {
        let id = service.resources.id;
        let Some(unit) = units
            .iter()
            .find(|u| u.resource.as_ref().is_some_and(|r| r.id == id))
        else {
            return Err(Rejection::Mismatch(format!(
                "group {name}: service {} uses resource unit {id}, which the group on chain does not have",
                service.name
            )));
        };
        if let Some(diff) = resources_differ(&service.resources, unit.resource.as_ref()) {
            return Err(Rejection::Mismatch(format!(
                "group {name}: service {} asks for {diff}",
                service.name
            )));
        }
        let entry = wanted.entry(id).or_default();
        entry.0 += u64::from(service.count);
        entry.1.push(&service.name);
    }
    for (id, (count, services)) in wanted {
        let have = units
            .iter()
            .find(|u| u.resource.as_ref().is_some_and(|r| r.id == id))
            .map(|u| u64::from(u.count))
            .unwrap_or_default();
        if count > have {
            return Err(Rejection::Mismatch(match services.as_slice() {
                [one] => {
                    format!(
                        "group {name}: service {one} wants {count} replicas, the lease has {have}"
                    )
                }
                many => format!(
                    "group {name}: services {} want {count} replicas of resource unit {id} together, the lease has {have}",
                    many.join(", ")
                ),
            }));
        }
    }
    Ok(())
}

fn chain_value(v: Option<&res::ResourceValue>) -> String {
    v.map(|v| String::from_utf8_lossy(&v.val).into_owned())
        .unwrap_or_default()
}

/// Two resource amounts are the same number (text compared when either is not an integer).
fn same_amount(a: &str, b: &str) -> bool {
    let parse = |s: &str| {
        if s.is_empty() {
            Some(0u128)
        } else {
            s.parse::<u128>().ok()
        }
    };
    match (parse(a), parse(b)) {
        (Some(x), Some(y)) => x == y,
        _ => a == b,
    }
}

/// What the service asks for that differs from the unit on chain, in words; `None` when equal.
fn resources_differ(asked: &ManifestResources, unit: Option<&res::Resources>) -> Option<String> {
    let unit = unit.cloned().unwrap_or_default();
    let id = asked.id;
    let cpu = chain_value(unit.cpu.as_ref().and_then(|c| c.units.as_ref()));
    if !same_amount(&asked.cpu.units.val, &cpu) {
        return Some(format!(
            "{} millicores of CPU per replica, resource unit {id} of the lease has {cpu}",
            asked.cpu.units.val
        ));
    }
    let memory = chain_value(unit.memory.as_ref().and_then(|m| m.quantity.as_ref()));
    if !same_amount(&asked.memory.size.val, &memory) {
        return Some(format!(
            "{} bytes of memory per replica, resource unit {id} of the lease has {memory}",
            asked.memory.size.val
        ));
    }
    let gpu = chain_value(unit.gpu.as_ref().and_then(|g| g.units.as_ref()));
    if !same_amount(&asked.gpu.units.val, &gpu) {
        return Some(format!(
            "{} GPUs per replica, resource unit {id} of the lease has {gpu}",
            asked.gpu.units.val
        ));
    }
    let mut asked_storage: Vec<(String, String)> = asked
        .storage
        .iter()
        .map(|s| (s.name.clone(), normal(&s.size.val)))
        .collect();
    let mut unit_storage: Vec<(String, String)> = unit
        .storage
        .iter()
        .map(|s| (s.name.clone(), normal(&chain_value(s.quantity.as_ref()))))
        .collect();
    asked_storage.sort();
    unit_storage.sort();
    if asked_storage != unit_storage {
        return Some(format!(
            "storage {asked_storage:?} (name, bytes), resource unit {id} of the lease has {unit_storage:?}"
        ));
    }
    let mut asked_endpoints: Vec<(i32, u32)> = asked
        .endpoints
        .iter()
        .map(|e| (e.kind.unwrap_or(0), e.sequence_number))
        .collect();
    let mut unit_endpoints: Vec<(i32, u32)> = unit
        .endpoints
        .iter()
        .map(|e| (e.kind, e.sequence_number))
        .collect();
    asked_endpoints.sort();
    unit_endpoints.sort();
    if asked_endpoints != unit_endpoints {
        return Some(format!(
            "endpoints {asked_endpoints:?} (kind, sequence), resource unit {id} of the lease has {unit_endpoints:?}"
        ));
    }
    None
}

fn normal(amount: &str) -> String {
    amount
        .parse::<u128>()
        .map(|n| n.to_string())
        .unwrap_or_else(|_| amount.to_owned())
}

#[cfg(test)]
mod tests;
