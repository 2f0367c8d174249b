//! The cluster as the inventory sees it: watch caches of Nodes, Pods and Services, kept current by
//! kube reflectors, read as one snapshot per batch of orders.

use std::sync::Arc;

use futures::StreamExt;
use k8s_openapi::api::core::v1::{Node, Pod, Service};
use kube::runtime::reflector::{self, Store};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, Client};

use crate::bidding::engine::{ClusterSnapshot, ClusterView};

/// Watch caches of the objects the inventory counts.
#[derive(Clone)]
pub struct WatchedCluster {
    nodes: Store<Node>,
    pods: Store<Pod>,
    services: Store<Service>,
}

impl WatchedCluster {
    /// Starts the watches; returns once each cache holds a first complete list.
    pub async fn start(client: Client) -> anyhow::Result<Self> {
        let nodes = watch(Api::<Node>::all(client.clone()));
        let pods = watch(Api::<Pod>::all(client.clone()));
        let services = watch(Api::<Service>::all(client));
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
        })
    }
}

fn watch<K>(api: Api<K>) -> Store<K>
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
        .reflect(writer)
        .applied_objects();
    tokio::spawn(async move {
        futures::pin_mut!(stream);
        while let Some(item) = stream.next().await {
            if let Err(e) = item {
                tracing::warn!(error = %e, "watch error; the watcher retries");
            }
        }
    });
    reader
}

impl ClusterView for WatchedCluster {
    fn snapshot(&self) -> ClusterSnapshot {
        let node_ports_in_use = self
            .services
            .state()
            .iter()
            // Lease Services' ports are counted by the lease's reservation.
            .filter(|s| {
                s.metadata
                    .labels
                    .as_ref()
                    .and_then(|l| l.get("akash.network"))
                    .is_none_or(|v| v != "true")
            })
            .filter_map(|s| s.spec.as_ref())
            .filter(|s| matches!(s.type_.as_deref(), Some("NodePort") | Some("LoadBalancer")))
            .flat_map(|s| s.ports.iter().flatten())
            .filter(|p| p.node_port.is_some())
            .count() as u32;
        ClusterSnapshot {
            nodes: owned(self.nodes.state()),
            pods: owned(self.pods.state()),
            node_ports_in_use,
        }
    }
}

fn owned<K: Clone>(items: Vec<Arc<K>>) -> Vec<K> {
    items.into_iter().map(|k| (*k).clone()).collect()
}
