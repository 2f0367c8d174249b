//! Sums of the inventory for metrics and status.

use std::collections::BTreeMap;

use crds::resources::GpuModel;

use super::{Inventory, Pool};

/// One resource summed over the offered nodes (or a cluster-wide pool).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Totals {
    /// What the nodes offer (overcommit included), or the pool's capacity.
    pub allocatable: u64,
    /// Held by reservations (open bids and leases).
    pub reserved: u64,
    /// Requested by other pods (or used outside reservations).
    pub used: u64,
    /// Free for new bids. Summed over nodes, so a single replica may still not fit.
    pub available: u64,
}

impl Totals {
    fn add(&mut self, allocatable: u64, used: u64, reserved: u64, available: u64) {
        self.allocatable = self.allocatable.saturating_add(allocatable);
        self.used = self.used.saturating_add(used);
        self.reserved = self.reserved.saturating_add(reserved);
        self.available = self.available.saturating_add(available);
    }

    fn of_pool(pool: &Pool) -> Totals {
        Totals {
            allocatable: pool.capacity,
            reserved: pool.reserved,
            used: pool.used,
            available: pool.free(),
        }
    }
}

/// The inventory summed per resource.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct ResourceTotals {
    pub cpu_millis: Totals,
    pub memory_bytes: Totals,
    pub ephemeral_bytes: Totals,
    /// Persistent storage in bytes, by class.
    pub storage: BTreeMap<String, Totals>,
    /// GPUs by vendor and model. GPUs that other pods use are counted against the models of their
    /// vendor in label order, since a pod's request names no model.
    pub gpus: BTreeMap<GpuModel, Totals>,
    pub node_ports: Totals,
    pub ips: Totals,
    pub nodes_offered: usize,
    pub nodes_excluded: usize,
    /// Replicas of existing reservations that fit nowhere.
    pub overflow_replicas: u64,
}

impl Inventory {
    /// Allocatable, reserved, used by other pods and available, per resource.
    pub(crate) fn totals(&self) -> ResourceTotals {
        let mut t = ResourceTotals {
            nodes_offered: self.nodes.len(),
            nodes_excluded: self.excluded.len(),
            overflow_replicas: self.overflow.iter().map(|o| u64::from(o.replicas)).sum(),
            node_ports: Totals::of_pool(&self.node_ports),
            ips: Totals::of_pool(&self.ips),
            storage: self
                .storage
                .iter()
                .map(|(class, pool)| (class.clone(), Totals::of_pool(pool)))
                .collect(),
            ..ResourceTotals::default()
        };
        for n in &self.nodes {
            let (a, u, r) = (&n.allocatable, &n.used, &n.reserved);
            t.cpu_millis
                .add(a.cpu_millis, u.cpu_millis, r.cpu_millis, n.free_cpu());
            t.memory_bytes.add(
                a.memory_bytes,
                u.memory_bytes,
                r.memory_bytes,
                n.free_memory(),
            );
            t.ephemeral_bytes.add(
                a.ephemeral_bytes,
                u.ephemeral_bytes,
                r.ephemeral_bytes,
                n.free_ephemeral(),
            );
            let mut vendor_left: BTreeMap<&str, u64> = BTreeMap::new();
            for (i, pool) in n.gpus.iter().enumerate() {
                let of_vendor = a.gpus.get(&pool.vendor).copied().unwrap_or(0);
                let left = vendor_left.entry(&pool.vendor).or_insert(of_vendor);
                let allocatable = pool.count.min(*left);
                *left = left.saturating_sub(allocatable);
                let available = n.free_pool(i).min(allocatable);
                let reserved = pool.reserved.min(allocatable);
                let used = allocatable
                    .saturating_sub(reserved)
                    .saturating_sub(available);
                let key = GpuModel {
                    vendor: pool.vendor.clone(),
                    model: pool.model.clone(),
                };
                t.gpus
                    .entry(key)
                    .or_default()
                    .add(allocatable, used, reserved, available);
            }
        }
        t
    }
}
