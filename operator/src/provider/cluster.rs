//! The cluster as the inventory sees it: watch caches of Nodes, Pods and Services, and of the
//! MetalLB pool leased IPs come from (`--ip-pool`), kept current by kube reflectors, read as one
//! snapshot per batch of orders.

use std::sync::Arc;

use futures::StreamExt;
use k8s_openapi::api::core::v1::{Node, Pod, Service};
use kube::api::{ApiResource, DynamicObject, GroupVersionKind};
use kube::runtime::reflector::{self, Store};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, Client};

use crate::bidding::engine::{ClusterSnapshot, ClusterView};
use crate::inventory::ip_pool::{IpPool, IpPoolUse};
use crate::workload::build::MANAGED_LABEL;

/// Watch caches of the objects the inventory counts.
#[derive(Clone)]
pub(crate) struct WatchedCluster {
    nodes: Store<Node>,
    pods: Store<Pod>,
    services: Store<Service>,
    /// The MetalLB `IPAddressPool` of leased IPs, when one is configured.
    ip_pool: Option<Store<DynamicObject>>,
}

/// A MetalLB `IPAddressPool`, by namespace and name.
#[derive(Debug, Clone)]
pub(crate) struct IpPoolRef {
    pub namespace: String,
    pub name: String,
}

impl WatchedCluster {
    /// Starts the watches; returns once each cache holds a first complete list. The pool's
    /// watch is not waited for: MetalLB may come later (until then no IP is offered).
    pub(crate) async fn start(client: Client, ip_pool: Option<IpPoolRef>) -> anyhow::Result<Self> {
        let nodes = watch(Api::<Node>::all(client.clone()), ManagedFields::Keep);
        let pods = watch(Api::<Pod>::all(client.clone()), ManagedFields::Keep);
        let ip_pool = ip_pool.map(|pool| watch_pool(client.clone(), pool));
        let services = watch(Api::<Service>::all(client), ManagedFields::Keep);
        let deadline = std::time::Duration::from_secs(60);
        tokio::time::timeout(deadline, async {
            nodes.wait_until_ready().await?;
            pods.wait_until_ready().await?;
            services.wait_until_ready().await
        })
        .await
        .map_err(|_| anyhow::anyhow!("listing nodes, pods and services took more than 60 s"))?
        .map_err(|e| anyhow::anyhow!("watching the cluster: {e}"))?;
        Ok(Self {
            nodes,
            pods,
            services,
            ip_pool,
        })
    }

    /// The pool's size and the addresses of it that Services other than leases' hold.
    fn ip_pool_use(&self, pool: &Store<DynamicObject>) -> IpPoolUse {
        let Some(object) = pool.state().into_iter().next() else {
            return IpPoolUse::default();
        };
        let addresses: Vec<&str> = object
            .data
            .pointer("/spec/addresses")
            .and_then(|a| a.as_array())
            .into_iter()
            .flatten()
            .filter_map(|a| a.as_str())
            .collect();
        let pool = match IpPool::parse(addresses) {
            Ok(pool) => pool,
            Err(e) => {
                tracing::warn!(pool = %object.metadata.name.as_deref().unwrap_or_default(), error = %e, "the IP pool's addresses do not parse; no IP is offered");
                return IpPoolUse::default();
            }
        };
        let held: std::collections::BTreeSet<std::net::IpAddr> = self
            .services
            .state()
            .iter()
            .filter(|s| !is_lease_object(s))
            .filter_map(|s| s.status.as_ref()?.load_balancer.as_ref()?.ingress.clone())
            .flatten()
            .filter_map(|i| i.ip?.parse().ok())
            .filter(|ip| pool.contains(*ip))
            .collect();
        IpPoolUse {
            capacity: pool.size(),
            in_use: u32::try_from(held.len()).unwrap_or(u32::MAX),
        }
    }
}

/// Lease objects carry `akash.network=true`; their node ports and addresses are counted by the
/// lease's reservation.
fn is_lease_object(s: &Service) -> bool {
    s.metadata
        .labels
        .as_ref()
        .and_then(|l| l.get(MANAGED_LABEL))
        .is_some_and(|v| v == "true")
}

/// Watches one `IPAddressPool` (metallb.io/v1beta1). Errors (MetalLB not installed yet, the
/// pool missing) are logged and retried with the watcher's back-off.
fn watch_pool(client: Client, pool: IpPoolRef) -> Store<DynamicObject> {
    let resource = ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("metallb.io", "v1beta1", "IPAddressPool"),
        "ipaddresspools",
    );
    let api = Api::<DynamicObject>::namespaced_with(client, &pool.namespace, &resource);
    let writer = reflector::store::Writer::new(resource);
    let reader = writer.as_reader();
    let config = watcher::Config::default().fields(&format!("metadata.name={}", pool.name));
    let stream = watcher(api, config)
        .default_backoff()
        .reflect(writer)
        .applied_objects();
    drive(stream, move |e| {
        tracing::warn!(namespace = %pool.namespace, pool = %pool.name, error = %e, "watching the leased-IP pool; until it is seen no IP is offered");
    });
    reader
}

/// Whether a watch keeps the objects' managed fields.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum ManagedFields {
    Keep,
    /// Dropped on the way in: nothing here reads them, and they are most of a small object.
    Strip,
}

/// A store of every `K` of `api`, kept by a watch in the background.
pub(crate) fn watch<K>(api: Api<K>, managed_fields: ManagedFields) -> Store<K>
where
    K: kube::Resource<DynamicType = ()>
        + Clone
        + std::fmt::Debug
        + serde::de::DeserializeOwned
        + Send
        + Sync
        + 'static,
{
    let (reader, writer) = reflector::store();
    let stream = watcher(api, watcher::Config::default())
        .default_backoff()
        .modify(move |o| {
            if managed_fields == ManagedFields::Strip {
                kube::ResourceExt::managed_fields_mut(o).clear();
            }
        })
        .reflect(writer)
        .applied_objects();
    drive(stream, |e| {
        tracing::warn!(error = %e, "watch error; the watcher retries");
    });
    reader
}

/// Runs a reflector's watch in the background (its store fills only while the stream is
/// polled), passing each error to `warn`: the watcher retries by itself.
fn drive<S, T>(stream: S, warn: impl Fn(watcher::Error) + Send + 'static)
where
    S: futures::Stream<Item = Result<T, watcher::Error>> + Send + 'static,
{
    tokio::spawn(async move {
        futures::pin_mut!(stream);
        while let Some(item) = stream.next().await {
            if let Err(e) = item {
                warn(e);
            }
        }
    });
}

impl ClusterView for WatchedCluster {
    fn snapshot(&self) -> ClusterSnapshot {
        let node_ports_in_use = self
            .services
            .state()
            .iter()
            // Lease Services' ports are counted by the lease's reservation.
            .filter(|s| !is_lease_object(s))
            .filter_map(|s| s.spec.as_ref())
            .filter(|s| matches!(s.type_.as_deref(), Some("NodePort") | Some("LoadBalancer")))
            .flat_map(|s| s.ports.iter().flatten())
            .filter(|p| p.node_port.is_some())
            .count() as u32;
        ClusterSnapshot {
            nodes: owned(self.nodes.state()),
            pods: owned(self.pods.state()),
            node_ports_in_use,
            ip_pool: self.ip_pool.as_ref().map(|pool| self.ip_pool_use(pool)),
        }
    }
}

fn owned<K: Clone>(items: Vec<Arc<K>>) -> Vec<K> {
    items.into_iter().map(|k| (*k).clone()).collect()
}
