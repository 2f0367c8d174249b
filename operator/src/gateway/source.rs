//! Where the gateway finds this provider's `Lease` resources and writes the manifests it accepted:
//! the [`LeaseSource`] trait, over the cluster ([`KubeLeaseSource`]) or in memory
//! ([`MemoryLeaseSource`], for tests).

use std::collections::BTreeMap;
use std::sync::Mutex;

use async_trait::async_trait;
use crds::resources::{Lease, LeaseManifest, LeasePhase};
use kube::api::{ListParams, Patch, PatchParams};
use kube::{Api, Client, ResourceExt};

use crate::provider::store::FIELD_MANAGER;

/// Labels the provider puts on each `Lease` resource (see the bid engine).
pub const OWNER_LABEL: &str = "akash.network/owner";
pub const DSEQ_LABEL: &str = "akash.network/dseq";

/// A failed read or write of Lease resources.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct SourceError(pub String);

/// This provider's leases, as the gateway needs them.
#[async_trait]
pub trait LeaseSource: Send + Sync {
    /// The Lease resources of deployment `dseq`, of `owner` (any owner when `None`).
    async fn leases(&self, owner: Option<&str>, dseq: u64) -> Result<Vec<Lease>, SourceError>;
    /// Every Lease resource (for the provider's status).
    async fn all(&self) -> Result<Vec<Lease>, SourceError>;
    /// Sets `spec.manifest` of the Lease resource `name`.
    async fn write_manifest(&self, name: &str, manifest: &LeaseManifest)
    -> Result<(), SourceError>;
}

/// Whether the lease still runs (or waits for its manifest): not closing, not closed.
pub fn is_live(lease: &Lease) -> bool {
    !matches!(
        lease.status.as_ref().and_then(|s| s.phase),
        Some(LeasePhase::Closing | LeasePhase::Closed)
    )
}

/// Lease resources in one namespace of a cluster.
#[derive(Clone)]
pub struct KubeLeaseSource {
    api: Api<Lease>,
}

impl KubeLeaseSource {
    pub fn new(client: Client, namespace: &str) -> Self {
        Self {
            api: Api::namespaced(client, namespace),
        }
    }
}

#[async_trait]
impl LeaseSource for KubeLeaseSource {
    async fn leases(&self, owner: Option<&str>, dseq: u64) -> Result<Vec<Lease>, SourceError> {
        let mut selector = format!("{DSEQ_LABEL}={dseq}");
        if let Some(owner) = owner {
            selector.push_str(&format!(",{OWNER_LABEL}={owner}"));
        }
        let list = self
            .api
            .list(&ListParams::default().labels(&selector))
            .await
            .map_err(|e| SourceError(format!("listing Lease resources ({selector}): {e}")))?;
        Ok(list
            .items
            .into_iter()
            .filter(|l| matches(l, owner, dseq))
            .collect())
    }

    async fn all(&self) -> Result<Vec<Lease>, SourceError> {
        Ok(self
            .api
            .list(&ListParams::default())
            .await
            .map_err(|e| SourceError(format!("listing Lease resources: {e}")))?
            .items)
    }

    async fn write_manifest(
        &self,
        name: &str,
        manifest: &LeaseManifest,
    ) -> Result<(), SourceError> {
        // A merge patch of spec.manifest alone: the lease's other fields are the bid engine's.
        let patch = serde_json::json!({ "spec": { "manifest": manifest } });
        let params = PatchParams {
            field_manager: Some(FIELD_MANAGER.to_owned()),
            ..Default::default()
        };
        self.api
            .patch(name, &params, &Patch::Merge(&patch))
            .await
            .map_err(|e| SourceError(format!("writing the manifest of Lease {name}: {e}")))?;
        Ok(())
    }
}

fn matches(lease: &Lease, owner: Option<&str>, dseq: u64) -> bool {
    lease.spec.lease_id.dseq == dseq && owner.is_none_or(|o| lease.spec.lease_id.owner == o)
}

/// Lease resources in memory, for tests; also a record of what was written.
#[derive(Default)]
pub struct MemoryLeaseSource {
    pub leases: Mutex<BTreeMap<String, Lease>>,
    /// Every manifest write, in order: (Lease name, manifest).
    pub writes: Mutex<Vec<(String, LeaseManifest)>>,
}

impl MemoryLeaseSource {
    pub fn with(leases: impl IntoIterator<Item = Lease>) -> Self {
        let source = Self::default();
        {
            let mut held = source.leases.lock().unwrap_or_else(|p| p.into_inner());
            for lease in leases {
                held.insert(lease.name_any(), lease);
            }
        }
        source
    }

    /// The lease `name` as it is now.
    pub fn get(&self, name: &str) -> Option<Lease> {
        self.leases
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(name)
            .cloned()
    }

    /// How many manifests were written.
    pub fn write_count(&self) -> usize {
        self.writes.lock().unwrap_or_else(|p| p.into_inner()).len()
    }
}

#[async_trait]
impl LeaseSource for MemoryLeaseSource {
    async fn leases(&self, owner: Option<&str>, dseq: u64) -> Result<Vec<Lease>, SourceError> {
        Ok(self
            .leases
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .values()
            .filter(|l| matches(l, owner, dseq))
            .cloned()
            .collect())
    }

    async fn all(&self) -> Result<Vec<Lease>, SourceError> {
        Ok(self
            .leases
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .values()
            .cloned()
            .collect())
    }

    async fn write_manifest(
        &self,
        name: &str,
        manifest: &LeaseManifest,
    ) -> Result<(), SourceError> {
        let mut leases = self.leases.lock().unwrap_or_else(|p| p.into_inner());
        let lease = leases
            .get_mut(name)
            .ok_or_else(|| SourceError(format!("no Lease {name}")))?;
        lease.spec.manifest = Some(manifest.clone());
        self.writes
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push((name.to_owned(), manifest.clone()));
        Ok(())
    }
}
