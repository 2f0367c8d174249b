//! The cluster as the inventory sees it: watch caches of Nodes, Pods and Services, and of the
//! MetalLB pool leased IPs come from (`--ip-pool`), kept current by kube reflectors, read as one
//! snapshot per batch of orders.

use std::sync::Arc;

use futures::StreamExt;
use k8s_openapi::api::core::v1::{
    Container, Node, NodeSpec, NodeStatus, Pod, PodSpec, PodStatus, Service, ServiceSpec,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
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
        let nodes = watch(Api::<Node>::all(client.clone()), slim_node);
        let pods = watch(Api::<Pod>::all(client.clone()), slim_pod);
        let ip_pool = ip_pool.map(|pool| watch_pool(client.clone(), pool));
        let services = watch(Api::<Service>::all(client), slim_service);
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

/// A store of every `K` of `api`, each object cut down by `slim` to what the inventory reads:
/// one Pod as the API server sends it is several KiB, and the store holds every pod and
/// Service of the cluster (one or more per lease).
pub(crate) fn watch<K>(api: Api<K>, slim: fn(&mut K)) -> Store<K>
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
        .modify(slim)
        .reflect(writer)
        .applied_objects();
    drive(stream, |e| {
        tracing::warn!(error = %e, "watch error; the watcher retries");
    });
    reader
}

/// The metadata the stores keep: the object's identity, and of its labels only the lease label
/// (`is_lease_object`, `is_lease_pod`); a node keeps all its labels (the node selector, storage
/// classes and GPUs are labels).
fn slim_meta(meta: &mut ObjectMeta, all_labels: bool) -> ObjectMeta {
    let labels = meta.labels.take().map(|mut labels| {
        if !all_labels {
            labels.retain(|k, _| k == MANAGED_LABEL);
        }
        labels
    });
    ObjectMeta {
        name: meta.name.take(),
        namespace: meta.namespace.take(),
        uid: meta.uid.take(),
        resource_version: meta.resource_version.take(),
        labels,
        ..ObjectMeta::default()
    }
}

/// A container's name, requests and limits, and restart policy (a sidecar's is `Always`).
fn slim_container(c: Container) -> Container {
    Container {
        name: c.name,
        resources: c.resources,
        restart_policy: c.restart_policy,
        ..Container::default()
    }
}

/// What the inventory reads of a pod: its namespace and lease label, the node it is bound to, its
/// containers' resources, its overhead and its phase. Images, environment, volumes, status
/// conditions and managed fields are most of a pod, and nothing here reads them.
pub(crate) fn slim_pod(pod: &mut Pod) {
    pod.metadata = slim_meta(&mut pod.metadata, false);
    if let Some(spec) = pod.spec.as_mut() {
        let containers = std::mem::take(&mut spec.containers);
        let init_containers = spec.init_containers.take();
        *spec = PodSpec {
            node_name: spec.node_name.take(),
            overhead: spec.overhead.take(),
            containers: containers.into_iter().map(slim_container).collect(),
            init_containers: init_containers.map(|c| c.into_iter().map(slim_container).collect()),
            ..PodSpec::default()
        };
    }
    pod.status = pod.status.take().map(|s| PodStatus {
        phase: s.phase,
        ..PodStatus::default()
    });
}

/// What the inventory reads of a Service: its lease label, type and ports (node ports), and the
/// load balancer's addresses in its status.
pub(crate) fn slim_service(service: &mut Service) {
    service.metadata = slim_meta(&mut service.metadata, false);
    service.spec = service.spec.take().map(|s| ServiceSpec {
        type_: s.type_,
        ports: s.ports,
        ..ServiceSpec::default()
    });
}

/// What the inventory reads of a node: its labels, whether it is unschedulable, its taints, its
/// Ready condition and allocatable resources. A real node's status lists every image it holds.
pub(crate) fn slim_node(node: &mut Node) {
    node.metadata = slim_meta(&mut node.metadata, true);
    node.spec = node.spec.take().map(|s| NodeSpec {
        unschedulable: s.unschedulable,
        taints: s.taints,
        ..NodeSpec::default()
    });
    node.status = node.status.take().map(|s| NodeStatus {
        allocatable: s.allocatable,
        conditions: s.conditions.map(|c| {
            c.into_iter()
                .filter(|c| c.type_ == "Ready")
                .collect::<Vec<_>>()
        }),
        ..NodeStatus::default()
    });
}

/// Drops an object's managed fields, which nothing here reads and which are most of a small
/// object; for stores that keep the rest as it is.
pub(crate) fn strip_managed_fields<K: kube::Resource>(object: &mut K) {
    object.meta_mut().managed_fields = None;
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

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::inventory::fixtures::{nodes, pods};
    use crate::inventory::{Inventory, InventoryConfig};

    /// The inventory of the fixtures is the same from the slimmed objects as from the whole ones.
    #[test]
    fn slimmed_objects_give_the_same_inventory() {
        let config = InventoryConfig::default();
        let (nodes, pods) = (nodes("nodes.yaml"), pods("pods.yaml"));
        let mut slim_nodes = nodes.clone();
        slim_nodes.iter_mut().for_each(slim_node);
        let mut slim_pods = pods.clone();
        slim_pods.iter_mut().for_each(slim_pod);
        let namespaces = [Some("lease-ns".to_owned())];
        let whole =
            Inventory::from_cluster_with_leases(&nodes, &pods, &[], &namespaces, 0, &config);
        let slim = Inventory::from_cluster_with_leases(
            &slim_nodes,
            &slim_pods,
            &[],
            &namespaces,
            0,
            &config,
        );
        assert_eq!(slim, whole);
        // The comparison means something only if the pods count on some node.
        assert!(whole.nodes().iter().any(|n| n.used.cpu_millis > 0));
    }

    fn pod_json() -> Pod {
        serde_json::from_value(serde_json::json!({
            "metadata": {
                "name": "web-0",
                "namespace": "lease-ns",
                "labels": {MANAGED_LABEL: "true", "pod-template-hash": "abc"},
                "annotations": {"kubectl.kubernetes.io/last-applied-configuration": "{}"},
                "managedFields": [{"manager": "kwok", "operation": "Update"}],
                "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "web", "uid": "1"}]
            },
            "spec": {
                "nodeName": "node-a",
                "overhead": {"cpu": "10m"},
                "initContainers": [{"name": "init", "image": "busybox", "restartPolicy": "Always",
                    "resources": {"requests": {"cpu": "1"}}}],
                "containers": [{"name": "web", "image": "nginx:1.27",
                    "env": [{"name": "A", "value": "b"}],
                    "command": ["nginx"],
                    "resources": {"requests": {"cpu": "100m", "memory": "32Mi"}}}],
                "volumes": [{"name": "v", "emptyDir": {}}]
            },
            "status": {
                "phase": "Running",
                "podIP": "10.0.0.1",
                "conditions": [{"type": "Ready", "status": "True"}]
            }
        }))
        .unwrap()
    }

    #[test]
    fn a_slim_pod_keeps_what_the_inventory_reads_only() {
        let mut pod = pod_json();
        slim_pod(&mut pod);
        let meta = &pod.metadata;
        assert_eq!(meta.name.as_deref(), Some("web-0"));
        assert_eq!(meta.namespace.as_deref(), Some("lease-ns"));
        assert_eq!(
            meta.labels,
            Some(BTreeMap::from([(
                MANAGED_LABEL.to_owned(),
                "true".to_owned()
            )]))
        );
        assert_eq!(meta.annotations, None);
        assert_eq!(meta.managed_fields, None);
        assert_eq!(meta.owner_references, None);
        let spec = pod.spec.as_ref().unwrap();
        assert_eq!(spec.node_name.as_deref(), Some("node-a"));
        assert!(spec.overhead.is_some());
        assert_eq!(spec.volumes, None);
        let web = &spec.containers[0];
        assert_eq!(web.name, "web");
        assert!(web.resources.as_ref().unwrap().requests.is_some());
        assert_eq!((web.image.as_ref(), web.env.as_ref()), (None, None));
        assert_eq!(web.command, None);
        let init = &spec.init_containers.as_ref().unwrap()[0];
        assert_eq!(init.restart_policy.as_deref(), Some("Always"));
        assert!(init.resources.is_some());
        let status = pod.status.as_ref().unwrap();
        assert_eq!(status.phase.as_deref(), Some("Running"));
        assert_eq!(
            (status.pod_ip.as_ref(), status.conditions.as_ref()),
            (None, None)
        );
    }

    #[test]
    fn a_slim_service_keeps_type_ports_and_addresses() {
        let mut service: Service = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "web", "namespace": "ns",
                "labels": {MANAGED_LABEL: "true", "app": "web"},
                "managedFields": [{"manager": "akash-provider", "operation": "Apply"}]},
            "spec": {"type": "NodePort", "selector": {"app": "web"}, "clusterIP": "10.96.0.9",
                "ports": [{"port": 80, "nodePort": 30080}]},
            "status": {"loadBalancer": {"ingress": [{"ip": "192.0.2.1"}]}}
        }))
        .unwrap();
        slim_service(&mut service);
        assert!(is_lease_object(&service));
        assert_eq!(service.metadata.managed_fields, None);
        let spec = service.spec.as_ref().unwrap();
        assert_eq!(spec.type_.as_deref(), Some("NodePort"));
        assert_eq!(spec.ports.as_ref().unwrap()[0].node_port, Some(30080));
        assert_eq!(
            (spec.selector.as_ref(), spec.cluster_ip.as_ref()),
            (None, None)
        );
        let ingress = service
            .status
            .as_ref()
            .and_then(|s| s.load_balancer.as_ref());
        assert_eq!(
            ingress.unwrap().ingress.as_ref().unwrap()[0].ip.as_deref(),
            Some("192.0.2.1")
        );
    }

    #[test]
    fn a_slim_node_drops_its_images_and_other_conditions() {
        let mut node: Node = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "n", "labels": {"a": "b"}, "annotations": {"x": "y"}},
            "spec": {"unschedulable": true, "podCIDR": "10.244.0.0/24",
                "taints": [{"key": "k", "effect": "NoSchedule"}]},
            "status": {"allocatable": {"cpu": "4"},
                "images": [{"names": ["nginx:1.27"], "sizeBytes": 1}],
                "conditions": [{"type": "Ready", "status": "True"},
                    {"type": "MemoryPressure", "status": "False"}]}
        }))
        .unwrap();
        slim_node(&mut node);
        assert_eq!(node.metadata.labels.as_ref().unwrap()["a"], "b");
        assert_eq!(node.metadata.annotations, None);
        let spec = node.spec.as_ref().unwrap();
        assert_eq!(spec.unschedulable, Some(true));
        assert_eq!(spec.taints.as_ref().unwrap().len(), 1);
        assert_eq!(spec.pod_cidr, None);
        let status = node.status.as_ref().unwrap();
        assert!(status.allocatable.as_ref().unwrap().contains_key("cpu"));
        assert_eq!(status.images, None);
        let conditions = status.conditions.as_ref().unwrap();
        assert_eq!(conditions.len(), 1);
        assert_eq!(conditions[0].type_, "Ready");
    }
}
