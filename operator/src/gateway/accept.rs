//! Whether a manifest the tenant sent is accepted, as a pure function of what was sent and what
//! the chain and this provider hold: [`accept`]. Every rejection is a [`Rejection`] with a message
//! for the tenant and an HTTP status (and a gRPC code).
//!
//! The checks follow the Go provider's manifest service: the sender owns the deployment, the
//! manifest's version (SHA-256 of its canonical JSON, exactly as received) is the deployment's hash
//! on chain, and every lease this provider holds for the deployment finds its group in the manifest,
//! asking for no more than the group on chain: the same amounts and attributes (GPU models,
//! storage classes, `persistent`, `ram`), the same endpoints, no more global exposes than those
//! endpoints, no more replicas ([`check_fits`]).

use chain_client::akash::deployment::v1::deployment::State as DeploymentState;
use chain_client::chain::QueryDeploymentResponse;
use crds::resources::{Lease, LeaseManifest};
use crds::sdl::ManifestGroup;
use kube::ResourceExt;
use sha2::{Digest, Sha256};

use crate::workload::build::check_fits;

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
    /// A gRPC manifest whose JSON form (what is hashed and stored) outgrew what a `Lease`
    /// resource can store; converting it was stopped there.
    #[error(
        "the manifest's JSON form is larger than {max} bytes, more than a Lease resource can store"
    )]
    JsonTooLarge { max: usize },
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
    /// The manifest names a host this lease may not have: another tenant's lease holds it, the
    /// provider blocks it, or it is under the provider's ingress domain and not the lease's own.
    #[error("{0}")]
    HostnameTaken(String),
}

impl Rejection {
    /// The HTTP status of the REST answer.
    pub(crate) fn http_status(&self) -> u16 {
        match self {
            Self::Unauthenticated(_) => 401,
            Self::TooLarge { .. } | Self::TooLargeToStore { .. } | Self::JsonTooLarge { .. } => 413,
            Self::Malformed(_) | Self::VersionMismatch { .. } => 400,
            Self::Forbidden(_) => 403,
            Self::NotFound(_) => 404,
            Self::Mismatch(_) => 422,
            Self::Unavailable(_) => 503,
            Self::Busy(_) => 429,
            Self::HostnameTaken(_) => 409,
        }
    }

    /// The gRPC status code of the gRPC answer.
    pub(crate) fn grpc_code(&self) -> tonic::Code {
        match self {
            Self::Unauthenticated(_) => tonic::Code::Unauthenticated,
            Self::TooLarge { .. } | Self::TooLargeToStore { .. } | Self::JsonTooLarge { .. } => {
                tonic::Code::ResourceExhausted
            }
            Self::Malformed(_) | Self::VersionMismatch { .. } => tonic::Code::InvalidArgument,
            Self::Forbidden(_) => tonic::Code::PermissionDenied,
            Self::NotFound(_) => tonic::Code::NotFound,
            Self::Mismatch(_) => tonic::Code::FailedPrecondition,
            Self::Unavailable(_) => tonic::Code::Unavailable,
            Self::Busy(_) => tonic::Code::ResourceExhausted,
            Self::HostnameTaken(_) => tonic::Code::AlreadyExists,
        }
    }
}

/// What an accepted manifest writes: per Lease resource (by name), its verified group.
pub(crate) type Accepted = Vec<(String, LeaseManifest)>;

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
        let leased = crate::chain_groups::leased_units(&spec.resources);
        check_fits(group, &leased)
            .map_err(|e| Rejection::Mismatch(format!("group {}: {e}", group.name)))?;
        accepted.push((
            lease.name_any(),
            LeaseManifest {
                version: got.clone(),
                group: group.clone(),
                leased,
                hostnames: None,
                ip_endpoints: None,
                ip_addresses: Default::default(),
                secret_name: None,
            },
        ));
    }
    Ok(accepted)
}

#[cfg(test)]
mod tests;
