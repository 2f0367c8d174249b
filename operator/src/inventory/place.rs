//! Placing resource units on nodes: first-fit per replica, largest units first; storage classes,
//! node ports and leased IPs cluster-wide.

use std::collections::BTreeMap;

use crds::resources::{GpuModel, ReservedUnit};

use super::demand::GpuSpec;
use super::misfit::{Misfit, accepted, describe};
use super::node::{GpuPool, NodeState};
use super::{Inventory, Overflow};

/// Whether one of `specs` (none: any) accepts the GPUs of `pool`.
fn accepts(pool: &GpuPool, specs: &[GpuSpec]) -> bool {
    specs.is_empty()
        || specs.iter().any(|s| {
            s.vendor == pool.vendor
                && (s.model == "*" || s.model == pool.model)
                && s.ram.as_ref().is_none_or(|r| pool.ram.as_ref() == Some(r))
                && s.interface
                    .as_ref()
                    .is_none_or(|i| pool.interface.as_ref() == Some(i))
        })
}

/// The first pool of `node` that one of `specs` accepts and that has `need` GPUs free.
fn matching_pool(node: &NodeState, specs: &[GpuSpec], need: u64) -> Option<usize> {
    (0..node.gpus.len()).find(|&i| accepts(&node.gpus[i], specs) && node.free_pool(i) >= need)
}

/// Whether one replica of `unit` fits on `node`; `Some(pool)` (or `Some(None)` without GPUs).
fn fits(node: &NodeState, unit: &ReservedUnit, specs: &[GpuSpec]) -> Option<Option<usize>> {
    let ok = node.free_cpu() >= unit.cpu_millis
        && node.free_memory() >= unit.memory_bytes
        && node.free_ephemeral() >= unit.ephemeral_storage_bytes
        && unit
            .persistent_storage
            .iter()
            .all(|s| node.storage_classes.contains(&s.class));
    if !ok {
        return None;
    }
    if unit.gpus == 0 {
        return Some(None);
    }
    matching_pool(node, specs, u64::from(unit.gpus)).map(Some)
}

fn take(node: &mut NodeState, unit: &ReservedUnit, pool: Option<usize>) {
    let r = &mut node.reserved;
    r.cpu_millis = r.cpu_millis.saturating_add(unit.cpu_millis);
    r.memory_bytes = r.memory_bytes.saturating_add(unit.memory_bytes);
    r.ephemeral_bytes = r
        .ephemeral_bytes
        .saturating_add(unit.ephemeral_storage_bytes);
    if let Some(i) = pool {
        let gpus = u64::from(unit.gpus);
        let pool = &mut node.gpus[i];
        pool.reserved = pool.reserved.saturating_add(gpus);
        let vendor = node.reserved.gpus.entry(pool.vendor.clone()).or_default();
        *vendor = vendor.saturating_add(gpus);
    }
}

/// Why no node takes another replica of `unit`: the first resource no single node has enough of.
fn diagnose(nodes: &[NodeState], unit: &ReservedUnit, specs: &[GpuSpec], left: u32) -> Misfit {
    let largest = |f: &dyn Fn(&NodeState) -> u64| nodes.iter().map(f).max().unwrap_or(0);
    let cpu = largest(&|n| n.free_cpu());
    if cpu < unit.cpu_millis {
        return Misfit::Cpu {
            replicas: left,
            need: unit.cpu_millis,
            largest: cpu,
        };
    }
    if unit.gpus > 0
        && !nodes
            .iter()
            .any(|n| matching_pool(n, specs, u64::from(unit.gpus)).is_some())
    {
        let most = largest(&|n| {
            (0..n.gpus.len())
                .filter(|&i| accepts(&n.gpus[i], specs))
                .map(|i| n.free_pool(i))
                .max()
                .unwrap_or(0)
        });
        return Misfit::Gpu {
            replicas: left,
            need: unit.gpus,
            models: describe(specs),
            largest: most,
        };
    }
    let memory = largest(&|n| n.free_memory());
    if memory < unit.memory_bytes {
        return Misfit::Memory {
            replicas: left,
            need: unit.memory_bytes,
            largest: memory,
        };
    }
    let eph = largest(&|n| n.free_ephemeral());
    if eph < unit.ephemeral_storage_bytes {
        let need = unit.ephemeral_storage_bytes;
        return Misfit::EphemeralStorage {
            replicas: left,
            need,
            largest: eph,
        };
    }
    for s in &unit.persistent_storage {
        if !nodes.iter().any(|n| n.storage_classes.contains(&s.class)) {
            return Misfit::StorageClassOnNoNode(s.class.clone());
        }
    }
    Misfit::NoSingleNode {
        replicas: left,
        cpu: unit.cpu_millis,
        memory: unit.memory_bytes,
    }
}

/// Places every replica of `unit` on `nodes` (mutating them). On failure the replicas placed so
/// far stay placed and the error says how many are left.
fn place_unit(
    nodes: &mut [NodeState],
    unit: &ReservedUnit,
) -> (Option<GpuModel>, Result<(), (u32, Misfit)>) {
    let mut specs = accepted(unit);
    let mut chosen: Option<GpuModel> = unit.allocated_gpu.clone();
    for placed in 0..unit.count {
        let found = nodes
            .iter()
            .enumerate()
            .find_map(|(i, n)| fits(n, unit, &specs).map(|p| (i, p)));
        let Some((i, pool)) = found else {
            let left = unit.count - placed;
            return (chosen, Err((left, diagnose(nodes, unit, &specs, left))));
        };
        if let Some(p) = pool {
            let gpu = &nodes[i].gpus[p];
            let model = GpuModel {
                vendor: gpu.vendor.clone(),
                model: gpu.model.clone(),
            };
            // Every replica gets the same model: the first one's (AC9 of the Go provider).
            specs = vec![GpuSpec {
                vendor: model.vendor.clone(),
                model: model.model.clone(),
                ram: gpu.ram.clone(),
                interface: gpu.interface.clone(),
            }];
            chosen = Some(model);
        }
        take(&mut nodes[i], unit, pool);
    }
    (chosen, Ok(()))
}

/// Unit indices, largest first (GPUs, then CPU, memory, ephemeral storage), stable.
fn largest_first(units: &[ReservedUnit]) -> Vec<usize> {
    let mut order: Vec<usize> = (0..units.len()).collect();
    order.sort_by(|&a, &b| {
        let key = |u: &ReservedUnit| {
            (
                u.gpus,
                u.cpu_millis,
                u.memory_bytes,
                u.ephemeral_storage_bytes,
            )
        };
        key(&units[b]).cmp(&key(&units[a]))
    });
    order
}

fn storage_need(units: &[ReservedUnit]) -> BTreeMap<String, u64> {
    let mut need = BTreeMap::new();
    for u in units {
        for s in &u.persistent_storage {
            let total: &mut u64 = need.entry(s.class.clone()).or_default();
            *total = total.saturating_add(s.bytes.saturating_mul(u64::from(u.count)));
        }
    }
    need
}

impl Inventory {
    /// Decides whether every replica of every unit fits, and returns the units with
    /// `allocated_gpu` set to the concrete model chosen (a wildcard becomes a model). The
    /// inventory itself is unchanged: see [`Inventory::reserve`].
    pub(crate) fn place(&self, demand: &[ReservedUnit]) -> Result<Vec<ReservedUnit>, Misfit> {
        self.fit(demand).map(|(units, _)| units)
    }

    /// Like [`Inventory::place`], and holds the resources in this inventory, so that orders
    /// decided before the next rebuild see each other.
    pub(crate) fn reserve(&mut self, demand: &[ReservedUnit]) -> Result<Vec<ReservedUnit>, Misfit> {
        let (units, nodes) = self.fit(demand)?;
        self.nodes = nodes;
        self.hold_cluster_wide(&units);
        Ok(units)
    }

    fn fit(&self, demand: &[ReservedUnit]) -> Result<(Vec<ReservedUnit>, Vec<NodeState>), Misfit> {
        for (class, need) in storage_need(demand) {
            let pool = self
                .storage
                .get(&class)
                .ok_or_else(|| Misfit::UnknownStorageClass(class.clone()))?;
            if need > pool.free() {
                return Err(Misfit::Storage {
                    class,
                    need,
                    free: pool.free(),
                });
            }
        }
        let ports: u64 = demand.iter().map(|u| u64::from(u.node_ports)).sum();
        if ports > self.node_ports.free() {
            return Err(Misfit::NodePorts {
                need: ports,
                free: self.node_ports.free(),
            });
        }
        let ips: u64 = demand.iter().map(|u| u64::from(u.ips)).sum();
        if ips > self.ips.free() {
            return Err(Misfit::Ips {
                need: ips,
                free: self.ips.free(),
            });
        }
        for unit in demand.iter().filter(|u| u.gpus > 0 && u.count > 0) {
            let specs = accepted(unit);
            if !self
                .nodes
                .iter()
                .any(|n| matching_pool(n, &specs, 0).is_some())
            {
                return Err(Misfit::GpuNotOffered {
                    models: describe(&specs),
                });
            }
        }
        let mut nodes = self.nodes.clone();
        let mut placed = demand.to_vec();
        for i in largest_first(demand) {
            let (model, result) = place_unit(&mut nodes, &demand[i]);
            result.map_err(|(_, misfit)| misfit)?;
            if demand[i].gpus > 0 {
                placed[i].allocated_gpu = model;
            }
        }
        Ok((placed, nodes))
    }

    fn hold_cluster_wide(&mut self, units: &[ReservedUnit]) {
        for (class, need) in storage_need(units) {
            let pool = self.storage.entry(class).or_default();
            pool.reserved = pool.reserved.saturating_add(need);
        }
        let ports: u64 = units.iter().map(|u| u64::from(u.node_ports)).sum();
        self.node_ports.reserved = self.node_ports.reserved.saturating_add(ports);
        let ips: u64 = units.iter().map(|u| u64::from(u.ips)).sum();
        self.ips.reserved = self.ips.reserved.saturating_add(ips);
    }

    /// Places existing reservations replica by replica: first the replicas whose pods run
    /// (`running[r]`: the nodes of reservation `r`'s lease pods, largest pod first), on those
    /// pods' nodes, as the scheduler put them; then the rest first-fit. What fits nowhere is an
    /// overflow. Cluster-wide quantities are held in full either way (saturating).
    pub(super) fn place_existing(
        &mut self,
        reservations: &[Vec<ReservedUnit>],
        running: &[Vec<String>],
    ) {
        let mut left: Vec<Vec<ReservedUnit>> = reservations.to_vec();
        for (r, units) in left.iter_mut().enumerate() {
            let Some(nodes) = running.get(r).filter(|n| !n.is_empty()) else {
                continue;
            };
            // The largest replicas with the largest pods: a unit's pods ask what it holds.
            let replicas: Vec<usize> = largest_first(units)
                .into_iter()
                .flat_map(|u| std::iter::repeat_n(u, units[u].count as usize))
                .collect();
            for (u, node_name) in replicas.into_iter().zip(nodes) {
                let Some(node) = self.nodes.iter_mut().find(|n| n.name == *node_name) else {
                    continue;
                };
                let unit = &units[u];
                let pool = if unit.gpus > 0 {
                    matching_pool(node, &accepted(unit), u64::from(unit.gpus))
                } else {
                    None
                };
                take(node, unit, pool);
                units[u].count -= 1;
            }
        }
        let all: Vec<(usize, usize, ReservedUnit)> = left
            .iter()
            .enumerate()
            .flat_map(|(r, units)| {
                units
                    .iter()
                    .enumerate()
                    .filter(|(_, unit)| unit.count > 0)
                    .map(move |(u, unit)| (r, u, unit.clone()))
            })
            .collect();
        let units: Vec<ReservedUnit> = all.iter().map(|(_, _, u)| u.clone()).collect();
        for i in largest_first(&units) {
            let (r, u, unit) = &all[i];
            if let (_, Err((replicas, reason))) = place_unit(&mut self.nodes, unit) {
                self.overflow.push(Overflow {
                    reservation: *r,
                    unit: *u,
                    replicas,
                    reason,
                });
            }
        }
        for units in reservations {
            self.hold_cluster_wide(units);
        }
    }
}
