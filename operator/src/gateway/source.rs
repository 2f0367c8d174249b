//! Where the gateway finds this provider's `Lease` resources and writes the manifests it accepted:
//! the [`LeaseSource`] trait, over the cluster ([`KubeLeaseSource`]) or in memory
//! ([`MemoryLeaseSource`], for tests).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, OnceLock};

use async_trait::async_trait;
use crds::resources::{Lease, LeaseManifest, LeasePhase};
use kube::api::{ListParams, Patch, PatchParams};
use kube::{Api, Client, ResourceExt};

pub(crate) use super::lease_index::{LeaseCounts, LeaseSummary};

use crate::lease_secret;
use crate::provider::store::FIELD_MANAGER;

/// Labels the provider puts on each `Lease` resource (see the bid engine).
pub(crate) use crds::resources::{DSEQ_LABEL, OWNER_LABEL};

/// A failed read or write of Lease resources.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct SourceError(pub String);

/// This provider's leases, as the gateway needs them.
#[async_trait]
pub trait LeaseSource: Send + Sync {
    /// The Lease resources of deployment `dseq`, of `owner` (any owner when `None`).
    async fn leases(&self, owner: Option<&str>, dseq: u64) -> Result<Vec<Lease>, SourceError>;
    /// Every Lease resource.
    async fn all(&self) -> Result<Vec<Lease>, SourceError>;
    /// Waits up to `limit` for this source's memory to hold a lease of deployment `dseq`
    /// (before listing them: a lease not known yet is usually being created); whether it does.
    /// A source without such a memory does not wait.
    async fn wait_for_dseq(&self, _dseq: u64, _limit: std::time::Duration) -> bool {
        false
    }
    /// The Lease resource `name`, as it is now (`None`: gone).
    async fn lease(&self, name: &str) -> Result<Option<Lease>, SourceError> {
        Ok(self.all().await?.into_iter().find(|l| l.name_any() == name))
    }
    /// How many leases are live and have a manifest (for the provider's status), from memory.
    async fn counts(&self) -> Result<LeaseCounts, SourceError>;
    /// Every lease's id, liveness and manifest version, from memory where the source can.
    async fn summaries(&self) -> Result<Vec<LeaseSummary>, SourceError> {
        Ok(self.all().await?.iter().map(LeaseSummary::of).collect())
    }
    /// Every Lease resource as far as the hosts and leased-IP endpoints it holds (at least what
    /// `lease_index::holdings` keeps): from memory where the source can, with this source's own
    /// writes in it as soon as they are answered.
    async fn holdings(&self) -> Result<Vec<Lease>, SourceError> {
        self.all().await
    }
    /// Sets `spec.manifest` of `lease`, and `spec.deploymentManifest` to `deployment_manifest`
    /// (the whole manifest, JSON, as verified); registry credentials go to a Secret instead
    /// (see [`crate::lease_secret`]).
    async fn write_manifest(
        &self,
        lease: &Lease,
        manifest: &LeaseManifest,
        deployment_manifest: &str,
    ) -> Result<(), SourceError>;
    /// The whole manifest `lease` holds, as verified (credentials included): what the
    /// deployment's other providers are served.
    async fn whole_manifest(&self, lease: &Lease) -> Result<Option<String>, SourceError>;
    /// Sets `spec.manifest.hostnames` of the Lease resource `name` (which has a manifest): the
    /// hosts it keeps when another deployment of its owner takes some over.
    async fn write_hostnames(&self, name: &str, hostnames: &[String]) -> Result<(), SourceError>;
    /// Sets `spec.manifest.ipEndpoints` of the Lease resource `name` (which has a manifest) and
    /// changes its `ipAddresses`: an entry with an address sets it, one without removes it.
    async fn write_ip_endpoints(
        &self,
        name: &str,
        endpoints: &[String],
        addresses: &BTreeMap<String, Option<String>>,
    ) -> Result<(), SourceError>;
}

/// Whether the lease still runs (or waits for its manifest): not closing, not closed.
pub(crate) fn is_live(lease: &Lease) -> bool {
    !matches!(
        lease.status.as_ref().and_then(|s| s.phase),
        Some(LeasePhase::Closing | LeasePhase::Closed)
    )
}

/// Lease resources in one namespace of a cluster.
#[derive(Clone)]
pub struct KubeLeaseSource {
    api: Api<Lease>,
    client: Client,
    /// Where the Secrets with manifests' registry credentials go.
    secrets_namespace: String,
    /// Started by the first [`LeaseSource::counts`].
    index: Arc<OnceLock<super::lease_index::LeaseIndex>>,
}

impl KubeLeaseSource {
    pub fn new(client: Client, namespace: &str) -> Self {
        Self {
            api: Api::namespaced(client.clone(), namespace),
            client,
            secrets_namespace: namespace.to_owned(),
            index: Arc::default(),
        }
    }

    /// The watch of every Lease's summary, started by the first caller.
    fn index(&self) -> &super::lease_index::LeaseIndex {
        self.index
            .get_or_init(|| super::lease_index::LeaseIndex::watch(self.api.clone()))
    }

    /// Keeps registry credentials in Secrets of `namespace` (by default the Leases' own).
    pub fn with_secrets_namespace(mut self, namespace: &str) -> Self {
        namespace.clone_into(&mut self.secrets_namespace);
        self
    }

    /// Merges `patch` into the Lease `name` as this provider's field manager; `what` names the
    /// written part in the error.
    ///
    /// A merge patch, not server-side apply (which the rest of the operator uses): the three
    /// writes here each set a part of `spec.manifest` (the manifest, its hosts, its IP
    /// endpoints), and rely on what a merge does that an apply does not. Under one apply field
    /// manager, writing the hosts alone would remove the rest of the manifest this manager
    /// applied before; `null` removes an `ipAddresses` entry or an older version's
    /// `secretName` whoever wrote it, where an apply only removes what its own manager wrote
    /// (and those fields were written by updates, owned by no apply manager). Apply here would
    /// need the whole manifest in every write and a migration of field ownership.
    async fn merge_patch(
        &self,
        name: &str,
        patch: &serde_json::Value,
        what: &str,
    ) -> Result<(), SourceError> {
        let params = PatchParams {
            field_manager: Some(FIELD_MANAGER.to_owned()),
            ..Default::default()
        };
        let written = self
            .api
            .patch(name, &params, &Patch::Merge(patch))
            .await
            .map_err(|e| SourceError(format!("writing the {what} of Lease {name}: {e}")))?;
        // The next reservation reads the index, which the watch may not have updated yet.
        if let Some(index) = self.index.get() {
            index.note_written(&written);
        }
        Ok(())
    }
}

#[async_trait]
impl LeaseSource for KubeLeaseSource {
    async fn lease(&self, name: &str) -> Result<Option<Lease>, SourceError> {
        self.api
            .get_opt(name)
            .await
            .map_err(|e| SourceError(format!("reading Lease {name}: {e}")))
    }

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

    async fn counts(&self) -> Result<LeaseCounts, SourceError> {
        self.index().counts().await.map_err(SourceError)
    }

    async fn wait_for_dseq(&self, dseq: u64, limit: std::time::Duration) -> bool {
        self.index().wait_for_dseq(dseq, limit).await
    }

    async fn summaries(&self) -> Result<Vec<LeaseSummary>, SourceError> {
        self.index().summaries().await.map_err(SourceError)
    }

    async fn holdings(&self) -> Result<Vec<Lease>, SourceError> {
        self.index().holdings().await.map_err(SourceError)
    }

    async fn write_manifest(
        &self,
        lease: &Lease,
        manifest: &LeaseManifest,
        deployment_manifest: &str,
    ) -> Result<(), SourceError> {
        let name = lease.name_any();
        let sealed = lease_secret::seal(
            lease,
            manifest,
            deployment_manifest,
            &self.secrets_namespace,
        )
        .map_err(|e| SourceError(format!("writing the manifest of Lease {name}: {e}")))?;
        // The Secret before the Lease that names it; owned by the Lease, so a crash in between
        // leaves nothing that outlives the lease.
        if let Some(secret) = &sealed.secret {
            lease_secret::create(&self.client, &self.secrets_namespace, secret)
                .await
                .map_err(|e| {
                    SourceError(format!(
                        "storing the registry credentials of Lease {name} in a Secret: {e}"
                    ))
                })?;
        }
        // A merge patch of the manifest fields alone: the lease's other fields are the bid
        // engine's. `secretName` is written even when absent, to drop an older version's.
        let mut stored = serde_json::to_value(&sealed.manifest)
            .map_err(|e| SourceError(format!("encoding the manifest of Lease {name}: {e}")))?;
        stored["secretName"] =
            serde_json::to_value(&sealed.manifest.secret_name).unwrap_or(serde_json::Value::Null);
        let patch = serde_json::json!({ "spec": {
            "manifest": stored,
            "deploymentManifest": sealed.public_manifest,
        } });
        self.merge_patch(&name, &patch, "manifest").await?;
        // The previous version's Secret, now named by nothing (the Lease's deletion would take
        // it too; this frees it now).
        let previous = lease
            .spec
            .manifest
            .as_ref()
            .and_then(|m| m.secret_name.as_ref());
        if let Some(previous) =
            previous.filter(|p| Some(*p) != sealed.manifest.secret_name.as_ref())
            && let Err(e) =
                lease_secret::delete(&self.client, &self.secrets_namespace, previous).await
        {
            tracing::warn!(lease = %name, secret = %previous, error = %e, "deleting the previous manifest's Secret failed; it goes with the Lease");
        }
        Ok(())
    }

    async fn whole_manifest(&self, lease: &Lease) -> Result<Option<String>, SourceError> {
        let Some(manifest) = lease.spec.manifest.as_ref() else {
            return Ok(None);
        };
        match &manifest.secret_name {
            None => Ok(lease.spec.deployment_manifest.clone()),
            Some(secret) => lease_secret::load(&self.client, &self.secrets_namespace, secret)
                .await
                .map(Some)
                .map_err(|e| SourceError(e.to_string())),
        }
    }

    async fn write_hostnames(&self, name: &str, hostnames: &[String]) -> Result<(), SourceError> {
        let patch = serde_json::json!({ "spec": { "manifest": { "hostnames": hostnames } } });
        self.merge_patch(name, &patch, "hosts").await
    }

    async fn write_ip_endpoints(
        &self,
        name: &str,
        endpoints: &[String],
        addresses: &BTreeMap<String, Option<String>>,
    ) -> Result<(), SourceError> {
        // A merge patch: `null` removes an address.
        let patch = serde_json::json!({
            "spec": { "manifest": { "ipEndpoints": endpoints, "ipAddresses": addresses } }
        });
        self.merge_patch(name, &patch, "IP endpoints").await
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

    async fn counts(&self) -> Result<LeaseCounts, SourceError> {
        let leases = self.leases.lock().unwrap_or_else(|p| p.into_inner());
        let summaries: Vec<LeaseSummary> = leases.values().map(LeaseSummary::of).collect();
        Ok(LeaseCounts::of(&summaries))
    }

    async fn write_manifest(
        &self,
        lease: &Lease,
        manifest: &LeaseManifest,
        deployment_manifest: &str,
    ) -> Result<(), SourceError> {
        let name = &lease.name_any();
        let mut leases = self.leases.lock().unwrap_or_else(|p| p.into_inner());
        let lease = leases
            .get_mut(name)
            .ok_or_else(|| SourceError(format!("no Lease {name}")))?;
        lease.spec.manifest = Some(manifest.clone());
        lease.spec.deployment_manifest = Some(deployment_manifest.to_owned());
        self.writes
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push((name.to_owned(), manifest.clone()));
        Ok(())
    }

    async fn whole_manifest(&self, lease: &Lease) -> Result<Option<String>, SourceError> {
        Ok(lease.spec.deployment_manifest.clone())
    }

    async fn write_hostnames(&self, name: &str, hostnames: &[String]) -> Result<(), SourceError> {
        let mut leases = self.leases.lock().unwrap_or_else(|p| p.into_inner());
        let manifest = leases
            .get_mut(name)
            .and_then(|l| l.spec.manifest.as_mut())
            .ok_or_else(|| SourceError(format!("no Lease {name} with a manifest")))?;
        manifest.hostnames = Some(hostnames.to_vec());
        Ok(())
    }

    async fn write_ip_endpoints(
        &self,
        name: &str,
        endpoints: &[String],
        addresses: &BTreeMap<String, Option<String>>,
    ) -> Result<(), SourceError> {
        let mut leases = self.leases.lock().unwrap_or_else(|p| p.into_inner());
        let manifest = leases
            .get_mut(name)
            .and_then(|l| l.spec.manifest.as_mut())
            .ok_or_else(|| SourceError(format!("no Lease {name} with a manifest")))?;
        manifest.ip_endpoints = Some(endpoints.to_vec());
        for (endpoint, address) in addresses {
            match address {
                Some(ip) => manifest.ip_addresses.insert(endpoint.clone(), ip.clone()),
                None => manifest.ip_addresses.remove(endpoint),
            };
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use crds::resources::LeaseRef;

    use super::*;
    use crate::test_support::{self, Seen, recording_client};

    fn lease(owner: &str, dseq: u64) -> Lease {
        let id = LeaseRef {
            owner: owner.into(),
            dseq,
            gseq: 1,
            oseq: 1,
            provider: "akash1provider".into(),
        };
        test_support::lease(&id.order().object_name(), id)
    }

    /// A kube client whose API server answers every list with `listed` and every patch with the
    /// lease, recording (method, path?query, content type, body) of each request.
    fn client(listed: Vec<Lease>) -> (Client, Seen) {
        recording_client("akash-provider", move |parts| {
            let answer = if parts.method == "GET" {
                serde_json::json!({
                    "apiVersion": "akash.network/v1",
                    "kind": "LeaseList",
                    "metadata": {},
                    "items": listed,
                })
            } else {
                serde_json::to_value(&listed[0]).unwrap()
            };
            (200, answer)
        })
    }

    #[tokio::test]
    async fn kube_source_lists_by_labels_and_merge_patches_only_spec_manifest() {
        let mut other = lease("akash1other", 8);
        other.metadata.namespace = Some("akash-provider".into());
        let (client, seen) = client(vec![lease("akash1tenant", 7), other]);
        let source = KubeLeaseSource::new(client, "akash-provider");

        let found = source.leases(Some("akash1tenant"), 7).await.unwrap();
        assert_eq!(
            found.len(),
            1,
            "what the labels let through is checked again"
        );
        let manifest = test_support::empty_manifest(&"ab".repeat(32));
        source
            .write_manifest(&found[0], &manifest, "[]")
            .await
            .unwrap();

        let seen = seen.lock().unwrap();
        let (method, uri, _, _) = &seen[0];
        assert_eq!(method, "GET");
        assert!(
            uri.starts_with("/apis/akash.network/v1/namespaces/akash-provider/leases?"),
            "{uri}"
        );
        assert!(
            uri.contains(
                "labelSelector=akash.network%2Fdseq%3D7%2Cakash.network%2Fowner%3Dakash1tenant"
            ),
            "{uri}"
        );
        let (method, uri, content_type, body) = &seen[1];
        assert_eq!(method, "PATCH");
        assert!(
            uri.starts_with(
                "/apis/akash.network/v1/namespaces/akash-provider/leases/akash1tenant-7-1-1?"
            ),
            "{uri}"
        );
        assert!(uri.contains("fieldManager=akash-provider"), "{uri}");
        assert_eq!(content_type, "application/merge-patch+json");
        let body: serde_json::Value = serde_json::from_slice(body).unwrap();
        assert_eq!(
            body,
            serde_json::json!({ "spec": { "manifest": {
                "version": "ab".repeat(32),
                "group": { "name": "dc", "services": [] },
                "secretName": null,
            }, "deploymentManifest": "[]" } })
        );
    }
}
