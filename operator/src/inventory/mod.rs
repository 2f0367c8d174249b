//! The cluster's capacity as the bid engine sees it: what the nodes offer, minus what other pods
//! use, minus what open bids and leases hold (their reservations). Pure: plain values in, plain
//! values out; the caller lists nodes, pods and `Bid` resources and builds a fresh [`Inventory`].
//!
//! - [`demand_of`] turns a deployment group into [`ReservedUnit`]s;
//! - [`Inventory::from_cluster_with_leases`] builds the inventory and places the existing
//!   reservations;
//! - [`Inventory::place`] decides whether a new demand fits, and which GPU model it gets;
//! - [`Inventory::totals`] sums it all for metrics and status.
//!
//! All arithmetic saturates: a reservation that no longer fits (its node went away) is recorded as
//! an [`Overflow`], never as a negative or wrapped-around count.

mod demand;
pub(crate) mod ip_pool;
/// The nodes the running lease pods of `namespace` are bound to, the largest pod first.
fn lease_pod_nodes(pods: &[Pod], namespace: &str, config: &InventoryConfig) -> Vec<String> {
    let mut running: Vec<(node::Amounts, String)> = pods
        .iter()
        .filter(|p| p.metadata.namespace.as_deref() == Some(namespace))
        .filter_map(|p| {
            let bound = p.spec.as_ref()?.node_name.clone()?;
            node::counts_on_as_lease(p, &bound).then(|| (node::pod_requests(p, config), bound))
        })
        .collect();
    running.sort_by(|a, b| {
        let key = |x: &node::Amounts| (x.cpu_millis, x.memory_bytes, x.ephemeral_bytes);
        key(&b.0).cmp(&key(&a.0))
    });
    running.into_iter().map(|(_, node)| node).collect()
}

#[cfg(test)]
pub(crate) mod fixtures;
mod misfit;
mod node;
mod place;
mod quantity;
#[cfg(test)]
mod tests;
mod totals;

use std::collections::BTreeMap;

use crds::resources::ReservedUnit;
use k8s_openapi::api::core::v1::{Node, Pod};

pub use demand::demand_of;
pub(crate) use demand::{ATTR_CLASS, GpuSpec};
pub(crate) use misfit::Misfit;
pub(crate) use node::{GPU_LABEL, NodeState, STORAGE_CLASS_LABEL, not_offered};
#[cfg(test)]
pub(crate) use totals::Totals;

/// Percentages by which capacity is raised above allocatable (`--overcommit-pct-*`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Overcommit {
    pub(crate) cpu: u32,
    pub(crate) memory: u32,
    /// Ephemeral storage and the persistent storage classes.
    pub(crate) storage: u32,
}

/// How the provider's cluster is set up, beyond what the nodes say.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct InventoryConfig {
    /// Persistent capacity in bytes per storage class (`beta2`, ...). A class missing here is
    /// not offered, whatever the node labels say.
    pub(crate) storage_classes: BTreeMap<String, u64>,
    /// The size of the node-port range offered to leases.
    pub(crate) node_ports: u32,
    /// Leased IPs the provider can hand out (0: no IP pool, no IP leases): the size of the
    /// MetalLB pool, as last seen.
    pub(crate) leased_ips: u32,
    /// Addresses of that pool held by Services that are not leases' (their leases' reservations
    /// count the others).
    pub(crate) leased_ips_in_use: u32,
    pub(crate) overcommit_pct: Overcommit,
    /// GPU vendor (`nvidia`) to the node's extended resource (`nvidia.com/gpu`).
    pub(crate) gpu_resources: BTreeMap<String, String>,
    /// Only nodes with every one of these labels are offered (`--node-selector`; the Go provider
    /// requires `akash.network=true`). Empty: every node.
    pub(crate) node_selector: BTreeMap<String, String>,
}

impl Default for InventoryConfig {
    fn default() -> Self {
        InventoryConfig {
            storage_classes: BTreeMap::new(),
            node_ports: 0,
            leased_ips: 0,
            leased_ips_in_use: 0,
            overcommit_pct: Overcommit::default(),
            gpu_resources: [("nvidia", "nvidia.com/gpu"), ("amd", "amd.com/gpu")]
                .into_iter()
                .map(|(v, r)| (v.to_owned(), r.to_owned()))
                .collect(),
            node_selector: BTreeMap::new(),
        }
    }
}

/// A cluster-wide quantity (a storage class, node ports, leased IPs).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Pool {
    pub(crate) capacity: u64,
    /// Used outside reservations (node ports of other services).
    pub(crate) used: u64,
    /// Held by reservations.
    pub(crate) reserved: u64,
}

impl Pool {
    pub(crate) fn free(&self) -> u64 {
        self.capacity
            .saturating_sub(self.used)
            .saturating_sub(self.reserved)
    }
}

/// A node that is not offered, and why (`unschedulable`, `not ready`, `tainted k:NoSchedule`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ExcludedNode {
    pub(crate) name: String,
    pub(crate) reason: String,
}

/// Replicas of an existing reservation that fit nowhere any more.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Overflow {
    /// Index into the `reservations` given to [`Inventory::from_cluster_with_leases`].
    pub(crate) reservation: usize,
    /// Index of the unit within that reservation.
    pub(crate) unit: usize,
    pub(crate) replicas: u32,
    pub(crate) reason: Misfit,
}

/// The cluster's capacity with the existing reservations placed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Inventory {
    nodes: Vec<NodeState>,
    excluded: Vec<ExcludedNode>,
    storage: BTreeMap<String, Pool>,
    node_ports: Pool,
    ips: Pool,
    overflow: Vec<Overflow>,
}

impl Inventory {
    /// Builds the inventory: offered nodes (schedulable, Ready, without NoSchedule/NoExecute
    /// taints) with allocatable raised by overcommit, minus the requests of the pods bound to them
    /// (except finished pods); then places `reservations` (one entry per `Bid`) first-fit,
    /// largest units first, keeping their `allocated_gpu`.
    ///
    /// `node_ports_in_use` counts node ports held outside reservations: pass those of services
    /// that are not lease services, or lease ports count twice.
    #[cfg(test)]
    pub(crate) fn from_cluster(
        nodes: &[Node],
        pods: &[Pod],
        reservations: &[Vec<ReservedUnit>],
        node_ports_in_use: u32,
        config: &InventoryConfig,
    ) -> Inventory {
        Self::from_cluster_with_leases(nodes, pods, reservations, &[], node_ports_in_use, config)
    }

    /// `Inventory::from_cluster` (which tests use), where `namespaces[r]` is the namespace of
    /// reservation `r`'s lease: its pods (lease workloads labelled `akash.network=true`) are held
    /// by the reservation, not counted again, and the replicas whose pods run are held on the
    /// nodes those pods run on, not where first-fit would put them, so that each node's figures
    /// are the cluster's.
    pub(crate) fn from_cluster_with_leases(
        nodes: &[Node],
        pods: &[Pod],
        reservations: &[Vec<ReservedUnit>],
        namespaces: &[Option<String>],
        node_ports_in_use: u32,
        config: &InventoryConfig,
    ) -> Inventory {
        // The pods of this provider's own leases are held by their reservations; every other
        // pod, another provider's lease pods included, by its requests. Without the leases'
        // namespaces, every lease pod is taken for one of this provider's.
        let own: std::collections::BTreeSet<&str> =
            namespaces.iter().flatten().map(String::as_str).collect();
        let held_by_reservation = |p: &Pod| {
            node::is_lease_pod(p)
                && (namespaces.is_empty()
                    || p.metadata
                        .namespace
                        .as_deref()
                        .is_some_and(|ns| own.contains(ns)))
        };
        let counted: Vec<&Pod> = pods.iter().filter(|p| !held_by_reservation(p)).collect();
        let mut offered = Vec::new();
        let mut excluded = Vec::new();
        for node in nodes {
            match not_offered(node, config) {
                Some(reason) => excluded.push(ExcludedNode {
                    name: node.metadata.name.clone().unwrap_or_default(),
                    reason,
                }),
                None => offered.push(NodeState::new(node, &counted, config)),
            }
        }
        offered.sort_by(|a, b| a.name.cmp(&b.name));
        let raise = |v: u64| -> u64 {
            let pct = u128::from(config.overcommit_pct.storage);
            u64::try_from(u128::from(v) * (100 + pct) / 100).unwrap_or(u64::MAX)
        };
        let storage = config
            .storage_classes
            .iter()
            .map(|(class, bytes)| {
                let pool = Pool {
                    capacity: raise(*bytes),
                    ..Pool::default()
                };
                (class.clone(), pool)
            })
            .collect();
        let mut inventory = Inventory {
            nodes: offered,
            excluded,
            storage,
            node_ports: Pool {
                capacity: u64::from(config.node_ports),
                used: u64::from(node_ports_in_use),
                reserved: 0,
            },
            ips: Pool {
                capacity: u64::from(config.leased_ips),
                used: u64::from(config.leased_ips_in_use),
                reserved: 0,
            },
            overflow: Vec::new(),
        };
        let running: Vec<Vec<String>> = namespaces
            .iter()
            .map(|ns| {
                ns.as_deref()
                    .map_or_else(Vec::new, |ns| lease_pod_nodes(pods, ns, config))
            })
            .collect();
        inventory.place_existing(reservations, &running);
        inventory
    }

    /// The offered nodes, by name.
    pub(crate) fn nodes(&self) -> &[NodeState] {
        &self.nodes
    }

    /// The nodes not offered, and why.
    #[cfg(test)]
    pub(crate) fn excluded(&self) -> &[ExcludedNode] {
        &self.excluded
    }

    /// Existing reservations that did not fit.
    #[cfg(test)]
    pub(crate) fn overflow(&self) -> &[Overflow] {
        &self.overflow
    }

    /// The storage classes offered, with their capacity and reservations.
    pub(crate) fn storage(&self) -> &BTreeMap<String, Pool> {
        &self.storage
    }
}
