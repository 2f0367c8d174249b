//! Where the provider keeps what it must not forget: its `Bid` resources (the reservations) and its
//! `Lease` resources, in its namespace. The engine talks to the [`ProviderStore`] trait so that its
//! logic is unit-tested against `MemoryStore` (built for tests only); [`KubeStore`] is the real
//! one.

#[cfg(test)]
use std::collections::BTreeMap;
#[cfg(test)]
use std::sync::Mutex;

use async_trait::async_trait;
use crds::resources::{Bid, BidStatus, Lease, LeaseStatus};
use futures::{FutureExt, StreamExt};
use k8s_openapi::api::core::v1::Namespace;
use kube::api::{DeleteParams, ListParams, PostParams};
use kube::runtime::reflector::{self, Store};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, Client, ResourceExt};

/// A failed write or read of the provider's resources.
#[derive(Debug, thiserror::Error)]
#[error("{action} {kind} {name}: {source}")]
pub(crate) struct StoreError {
    pub action: &'static str,
    pub kind: &'static str,
    pub name: String,
    #[source]
    pub source: kube::Error,
}

pub(crate) type StoreResult<T> = Result<T, StoreError>;

/// The provider's durable records.
#[async_trait]
pub(crate) trait ProviderStore: Send + Sync {
    async fn list_bids(&self) -> StoreResult<Vec<Bid>>;
    /// Creates the bid; `false` when one of that name already exists (nothing changed).
    async fn create_bid(&self, bid: &Bid) -> StoreResult<bool>;
    async fn set_bid_status(&self, name: &str, status: &BidStatus) -> StoreResult<()>;
    /// Deletes the bid (and so releases its reservation); a missing bid is not an error.
    async fn delete_bid(&self, name: &str) -> StoreResult<()>;
    async fn list_leases(&self) -> StoreResult<Vec<Lease>>;
    /// Every lease without its manifest's content (`spec.manifest` keeps its version and
    /// hosts, not its group; no `deploymentManifest`), from a watch where the store keeps one:
    /// for periodic passes, which then cost no request while nothing changes.
    async fn watched_leases(&self) -> StoreResult<Vec<Lease>> {
        self.list_leases().await
    }
    /// The lease `name` as it is now.
    async fn lease(&self, name: &str) -> StoreResult<Option<Lease>> {
        Ok(self
            .list_leases()
            .await?
            .into_iter()
            .find(|l| l.name_any() == name))
    }
    /// Creates the lease unless one of that name exists; returns whether it created it.
    async fn create_lease(&self, lease: &Lease) -> StoreResult<bool>;
    async fn set_lease_status(&self, name: &str, status: &LeaseStatus) -> StoreResult<()>;
    /// Starts deleting the lease's namespace (and so its workloads); a namespace already gone
    /// or going is not an error. The workload controller does the same when it sees the lease
    /// closed and waits for the namespace to be gone; this does not depend on its watch.
    async fn delete_lease_namespace(&self, namespace: &str) -> StoreResult<()>;
}

/// The store in the provider's namespace of a cluster.
#[derive(Clone)]
pub(crate) struct KubeStore {
    bids: Api<Bid>,
    leases: Api<Lease>,
    namespaces: Api<Namespace>,
    /// The watch behind [`ProviderStore::watched_leases`], started by its first caller.
    watched: std::sync::Arc<std::sync::OnceLock<Store<Lease>>>,
}

/// The field manager of every write the provider makes.
pub(crate) const FIELD_MANAGER: &str = "akash-provider";

impl KubeStore {
    pub(crate) fn new(client: Client, namespace: &str) -> Self {
        Self {
            bids: Api::namespaced(client.clone(), namespace),
            namespaces: Api::all(client.clone()),
            leases: Api::namespaced(client, namespace),
            watched: std::sync::Arc::default(),
        }
    }

    /// A watch of the Lease resources that keeps them without their manifests' content.
    fn watched(&self) -> &Store<Lease> {
        self.watched.get_or_init(|| {
            let (reader, writer) = reflector::store();
            let stream = watcher(
                self.leases.clone(),
                watcher::Config::default().page_size(50),
            )
            .default_backoff()
            .modify(strip_manifest)
            .reflect(writer)
            .applied_objects();
            tokio::spawn(async move {
                let mut stream = std::pin::pin!(stream);
                while let Some(item) = stream.next().await {
                    if let Err(e) = item {
                        tracing::warn!(error = %e, "watching Lease resources failed; retrying");
                    }
                }
            });
            reader
        })
    }
}

/// What periodic passes do not need of a lease, and what makes it large: the manifest group
/// (its version and hosts stay), the whole manifest, the managed fields.
fn strip_manifest(lease: &mut Lease) {
    if let Some(manifest) = lease.spec.manifest.as_mut() {
        manifest.group.services.clear();
        manifest.leased.clear();
    }
    lease.spec.deployment_manifest = None;
    lease.managed_fields_mut().clear();
}

fn err(
    action: &'static str,
    kind: &'static str,
    name: &str,
) -> impl FnOnce(kube::Error) -> StoreError {
    let name = name.to_owned();
    move |source| StoreError {
        action,
        kind,
        name,
        source,
    }
}

fn is_status(e: &kube::Error, code: u16) -> bool {
    matches!(e, kube::Error::Api(s) if s.code == code)
}

#[async_trait]
impl ProviderStore for KubeStore {
    async fn list_bids(&self) -> StoreResult<Vec<Bid>> {
        Ok(self
            .bids
            .list(&ListParams::default())
            .await
            .map_err(err("list", "Bid", "*"))?
            .items
            .into_iter()
            // The engine keeps every Bid between its periodic passes; nothing reads these.
            .map(|mut bid| {
                bid.managed_fields_mut().clear();
                bid
            })
            .collect())
    }

    async fn create_bid(&self, bid: &Bid) -> StoreResult<bool> {
        create_with_status(&self.bids, "Bid", bid, bid.status.as_ref()).await
    }

    async fn set_bid_status(&self, name: &str, status: &BidStatus) -> StoreResult<()> {
        apply_status(&self.bids, "Bid", name, status).await
    }

    async fn delete_lease_namespace(&self, namespace: &str) -> StoreResult<()> {
        match self
            .namespaces
            .delete(namespace, &DeleteParams::background())
            .await
        {
            Ok(_) => Ok(()),
            Err(e) if is_status(&e, 404) => Ok(()),
            Err(e) => Err(err("delete", "Namespace", namespace)(e)),
        }
    }

    async fn delete_bid(&self, name: &str) -> StoreResult<()> {
        match self.bids.delete(name, &DeleteParams::default()).await {
            Ok(_) => Ok(()),
            Err(e) if is_status(&e, 404) => Ok(()),
            Err(e) => Err(err("delete", "Bid", name)(e)),
        }
    }

    async fn list_leases(&self) -> StoreResult<Vec<Lease>> {
        Ok(self
            .leases
            .list(&ListParams::default())
            .await
            .map_err(err("list", "Lease", "*"))?
            .items)
    }

    async fn watched_leases(&self) -> StoreResult<Vec<Lease>> {
        let store = self.watched();
        // Until the watch has its first list, a list.
        if store.wait_until_ready().now_or_never().is_none() {
            return self.list_leases().await;
        }
        Ok(store.state().iter().map(|l| (**l).clone()).collect())
    }

    async fn lease(&self, name: &str) -> StoreResult<Option<Lease>> {
        self.leases
            .get_opt(name)
            .await
            .map_err(err("get", "Lease", name))
    }

    async fn create_lease(&self, lease: &Lease) -> StoreResult<bool> {
        create_with_status(&self.leases, "Lease", lease, lease.status.as_ref()).await
    }

    async fn set_lease_status(&self, name: &str, status: &LeaseStatus) -> StoreResult<()> {
        apply_status(&self.leases, "Lease", name, status).await
    }
}

/// Creates `object` (a `kind`), false when it exists already; then writes its `status`, which a
/// create leaves out.
async fn create_with_status<K, S>(
    api: &Api<K>,
    kind: &'static str,
    object: &K,
    status: Option<&S>,
) -> StoreResult<bool>
where
    K: kube::Resource<DynamicType = ()>
        + Clone
        + std::fmt::Debug
        + serde::Serialize
        + serde::de::DeserializeOwned,
    S: serde::Serialize,
{
    let name = object.name_any();
    match api.create(&PostParams::default(), object).await {
        Ok(_) => {}
        Err(e) if is_status(&e, 409) => return Ok(false),
        Err(e) => return Err(err("create", kind, &name)(e)),
    }
    if let Some(status) = status {
        apply_status(api, kind, &name, status).await?;
    }
    Ok(true)
}

/// Writes the status of the `kind` `name` by server-side apply: fields this writer set before
/// and omits now are removed.
async fn apply_status<K, S>(
    api: &Api<K>,
    kind: &'static str,
    name: &str,
    status: &S,
) -> StoreResult<()>
where
    K: kube::Resource<DynamicType = ()> + Clone + std::fmt::Debug + serde::de::DeserializeOwned,
    S: serde::Serialize,
{
    crate::controller::status::apply_status(api, name, FIELD_MANAGER, None, status)
        .await
        .map_err(err("update status of", kind, name))?;
    Ok(())
}

/// An in-memory store for unit tests (and a record of what was written).
#[cfg(test)]
#[derive(Default)]
pub(crate) struct MemoryStore {
    pub bids: Mutex<BTreeMap<String, Bid>>,
    pub leases: Mutex<BTreeMap<String, Lease>>,
    /// The lease namespaces deleted, in order.
    pub deleted_namespaces: Mutex<Vec<String>>,
}

/// A create in memory: `object` is kept under its name unless one is there already (false).
#[cfg(test)]
fn insert_new<K: kube::Resource + Clone>(held: &mut BTreeMap<String, K>, object: &K) -> bool {
    let name = object.name_any();
    if held.contains_key(&name) {
        return false;
    }
    held.insert(name, object.clone());
    true
}

#[cfg(test)]
#[async_trait]
impl ProviderStore for MemoryStore {
    async fn list_bids(&self) -> StoreResult<Vec<Bid>> {
        Ok(self.bids.lock().unwrap().values().cloned().collect())
    }
    async fn create_bid(&self, bid: &Bid) -> StoreResult<bool> {
        Ok(insert_new(&mut self.bids.lock().unwrap(), bid))
    }
    async fn set_bid_status(&self, name: &str, status: &BidStatus) -> StoreResult<()> {
        if let Some(bid) = self.bids.lock().unwrap().get_mut(name) {
            bid.status = Some(status.clone());
        }
        Ok(())
    }
    async fn delete_bid(&self, name: &str) -> StoreResult<()> {
        self.bids.lock().unwrap().remove(name);
        Ok(())
    }
    async fn delete_lease_namespace(&self, namespace: &str) -> StoreResult<()> {
        self.deleted_namespaces
            .lock()
            .unwrap()
            .push(namespace.to_owned());
        Ok(())
    }
    async fn list_leases(&self) -> StoreResult<Vec<Lease>> {
        Ok(self.leases.lock().unwrap().values().cloned().collect())
    }
    async fn create_lease(&self, lease: &Lease) -> StoreResult<bool> {
        Ok(insert_new(&mut self.leases.lock().unwrap(), lease))
    }
    async fn set_lease_status(&self, name: &str, status: &LeaseStatus) -> StoreResult<()> {
        if let Some(lease) = self.leases.lock().unwrap().get_mut(name) {
            lease.status = Some(status.clone());
        }
        Ok(())
    }
}
