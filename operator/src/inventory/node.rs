//! One node as the inventory sees it: whether it is offered, what it can hold, what other pods
//! already use, and its GPUs by model.

use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::api::core::v1::{Node, Pod, ResourceRequirements};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;

use super::InventoryConfig;
use super::quantity::{millis, units};
use crate::workload::build::MANAGED_LABEL;

/// The label that says a node can mount storage of a class: `…storage.class.<class>`.
pub(crate) const STORAGE_CLASS_LABEL: &str = "akash.network/capabilities.storage.class.";
/// The prefix of the GPU labels: `…gpu.vendor.<vendor>.model.<model>[.ram.<r>|.interface.<i>]`.
pub(crate) const GPU_LABEL: &str = "akash.network/capabilities.gpu.vendor.";

/// CPU, memory and ephemeral storage, and GPUs by vendor.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Amounts {
    pub cpu_millis: u64,
    pub memory_bytes: u64,
    pub ephemeral_bytes: u64,
    /// By vendor (`nvidia`).
    pub gpus: BTreeMap<String, u64>,
}

impl Amounts {
    fn add(&mut self, other: &Amounts) {
        self.cpu_millis = self.cpu_millis.saturating_add(other.cpu_millis);
        self.memory_bytes = self.memory_bytes.saturating_add(other.memory_bytes);
        self.ephemeral_bytes = self.ephemeral_bytes.saturating_add(other.ephemeral_bytes);
        for (vendor, n) in &other.gpus {
            let entry = self.gpus.entry(vendor.clone()).or_default();
            *entry = entry.saturating_add(*n);
        }
    }

    fn max(&mut self, other: &Amounts) {
        self.cpu_millis = self.cpu_millis.max(other.cpu_millis);
        self.memory_bytes = self.memory_bytes.max(other.memory_bytes);
        self.ephemeral_bytes = self.ephemeral_bytes.max(other.ephemeral_bytes);
        for (vendor, n) in &other.gpus {
            let entry = self.gpus.entry(vendor.clone()).or_default();
            *entry = (*entry).max(*n);
        }
    }

    fn from_map(map: Option<&BTreeMap<String, Quantity>>, config: &InventoryConfig) -> Amounts {
        let get = |name: &str| map.and_then(|m| m.get(name)).map(|q| q.0.as_str());
        Amounts {
            cpu_millis: get("cpu").map_or(0, millis),
            memory_bytes: get("memory").map_or(0, units),
            ephemeral_bytes: get("ephemeral-storage").map_or(0, units),
            gpus: config
                .gpu_resources
                .iter()
                .filter_map(|(vendor, resource)| Some((vendor.clone(), units(get(resource)?))))
                .collect(),
        }
    }

    fn of_requirements(r: Option<&ResourceRequirements>, config: &InventoryConfig) -> Amounts {
        let requests = Amounts::from_map(r.and_then(|r| r.requests.as_ref()), config);
        // Extended resources (GPUs) and a request left out default to the limit.
        let limits = Amounts::from_map(r.and_then(|r| r.limits.as_ref()), config);
        let has = |name: &str| {
            r.and_then(|r| r.requests.as_ref())
                .is_some_and(|m| m.contains_key(name))
        };
        let mut out = requests;
        if !has("cpu") {
            out.cpu_millis = limits.cpu_millis;
        }
        if !has("memory") {
            out.memory_bytes = limits.memory_bytes;
        }
        if !has("ephemeral-storage") {
            out.ephemeral_bytes = limits.ephemeral_bytes;
        }
        for (vendor, n) in limits.gpus {
            out.gpus.entry(vendor).or_insert(n);
        }
        out
    }
}

/// What a pod requests of its node: the sum of its containers, or its largest init container if
/// that is more, plus the pod overhead.
pub(crate) fn pod_requests(pod: &Pod, config: &InventoryConfig) -> Amounts {
    let Some(spec) = &pod.spec else {
        return Amounts::default();
    };
    let mut sum = Amounts::default();
    for c in &spec.containers {
        sum.add(&Amounts::of_requirements(c.resources.as_ref(), config));
    }
    for c in spec.init_containers.iter().flatten() {
        let init = Amounts::of_requirements(c.resources.as_ref(), config);
        if c.restart_policy.as_deref() == Some("Always") {
            // A sidecar runs beside the containers for the pod's whole life.
            sum.add(&init);
        } else {
            sum.max(&init);
        }
    }
    sum.add(&Amounts::from_map(spec.overhead.as_ref(), config));
    sum
}

/// True when a pod holds resources on `node`: bound there and not finished. (The pods of the
/// provider's own leases are left out before: their reservations hold them.)
pub(crate) fn counts_on(pod: &Pod, node: &str) -> bool {
    bound_and_running(pod, node)
}

/// Whether `pod` is a lease workload bound to `node` and not finished: held by its lease's
/// reservation on that node.
pub(super) fn counts_on_as_lease(pod: &Pod, node: &str) -> bool {
    bound_and_running(pod, node) && is_lease_pod(pod)
}

fn bound_and_running(pod: &Pod, node: &str) -> bool {
    let bound = pod.spec.as_ref().and_then(|s| s.node_name.as_deref()) == Some(node);
    let finished = matches!(
        pod.status.as_ref().and_then(|s| s.phase.as_deref()),
        Some("Succeeded" | "Failed")
    );
    bound && !finished
}

pub(super) fn is_lease_pod(pod: &Pod) -> bool {
    pod.metadata
        .labels
        .as_ref()
        .and_then(|l| l.get(MANAGED_LABEL))
        .is_some_and(|v| v == "true")
}

/// Why a node is not offered, or `None` when it is.
pub(crate) fn not_offered(node: &Node, config: &InventoryConfig) -> Option<String> {
    for (label, value) in &config.node_selector {
        let labelled = node
            .metadata
            .labels
            .as_ref()
            .and_then(|l| l.get(label))
            .is_some_and(|v| v == value);
        if !labelled {
            return Some(format!("not labelled {label}={value}"));
        }
    }
    if node.spec.as_ref().and_then(|s| s.unschedulable) == Some(true) {
        return Some("unschedulable".into());
    }
    let ready = node
        .status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .and_then(|c| c.iter().find(|c| c.type_ == "Ready"))
        .is_some_and(|c| c.status == "True");
    if !ready {
        return Some("not ready".into());
    }
    let taints = node.spec.as_ref().and_then(|s| s.taints.as_ref());
    if let Some(t) = taints
        .into_iter()
        .flatten()
        .find(|t| t.effect == "NoSchedule" || t.effect == "NoExecute")
    {
        return Some(format!("tainted {}:{}", t.key, t.effect));
    }
    None
}

/// GPUs of one model on a node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct GpuPool {
    pub vendor: String,
    pub model: String,
    pub ram: Option<String>,
    pub interface: Option<String>,
    /// How many the labels say the node has (the vendor's allocatable caps it).
    pub count: u64,
    /// Held by reservations.
    pub reserved: u64,
}

/// An offered node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct NodeState {
    pub name: String,
    /// Allocatable, raised by the overcommit percentages.
    pub allocatable: Amounts,
    /// Requested by pods other than lease workloads.
    pub used: Amounts,
    /// Held by reservations placed here.
    pub reserved: Amounts,
    /// Storage classes the node can mount.
    pub storage_classes: BTreeSet<String>,
    pub gpus: Vec<GpuPool>,
}

impl NodeState {
    pub(crate) fn new(node: &Node, pods: &[&Pod], config: &InventoryConfig) -> NodeState {
        let name = node.metadata.name.clone().unwrap_or_default();
        let mut allocatable = Amounts::from_map(
            node.status.as_ref().and_then(|s| s.allocatable.as_ref()),
            config,
        );
        let raise = |v: u64, pct: u32| -> u64 {
            let raised = u128::from(v) * (100 + u128::from(pct)) / 100;
            u64::try_from(raised).unwrap_or(u64::MAX)
        };
        allocatable.cpu_millis = raise(allocatable.cpu_millis, config.overcommit_pct.cpu);
        allocatable.memory_bytes = raise(allocatable.memory_bytes, config.overcommit_pct.memory);
        allocatable.ephemeral_bytes =
            raise(allocatable.ephemeral_bytes, config.overcommit_pct.storage);
        let mut used = Amounts::default();
        for pod in pods.iter().filter(|p| counts_on(p, &name)) {
            used.add(&pod_requests(pod, config));
        }
        let labels = node.metadata.labels.clone().unwrap_or_default();
        let storage_classes = labels
            .iter()
            .filter(|(_, v)| v.as_str() != "0" && v.as_str() != "false")
            .filter_map(|(k, _)| k.strip_prefix(STORAGE_CLASS_LABEL))
            .map(str::to_owned)
            .collect();
        let gpus = gpu_pools(&labels, &allocatable);
        NodeState {
            name,
            allocatable,
            used,
            reserved: Amounts::default(),
            storage_classes,
            gpus,
        }
    }

    pub(crate) fn free_cpu(&self) -> u64 {
        free(
            self.allocatable.cpu_millis,
            self.used.cpu_millis,
            self.reserved.cpu_millis,
        )
    }

    pub(crate) fn free_memory(&self) -> u64 {
        let a = &self.allocatable;
        free(
            a.memory_bytes,
            self.used.memory_bytes,
            self.reserved.memory_bytes,
        )
    }

    pub(crate) fn free_ephemeral(&self) -> u64 {
        let a = &self.allocatable;
        free(
            a.ephemeral_bytes,
            self.used.ephemeral_bytes,
            self.reserved.ephemeral_bytes,
        )
    }

    /// Free GPUs of a vendor, whatever their model.
    pub(crate) fn free_vendor_gpus(&self, vendor: &str) -> u64 {
        let get = |a: &Amounts| a.gpus.get(vendor).copied().unwrap_or(0);
        free(get(&self.allocatable), get(&self.used), get(&self.reserved))
    }

    /// Free GPUs of the pool at `index`: its own free count, capped by the vendor's.
    pub(crate) fn free_pool(&self, index: usize) -> u64 {
        let pool = &self.gpus[index];
        pool.count
            .saturating_sub(pool.reserved)
            .min(self.free_vendor_gpus(&pool.vendor))
    }
}

fn free(allocatable: u64, used: u64, reserved: u64) -> u64 {
    allocatable.saturating_sub(used).saturating_sub(reserved)
}

/// GPU pools from the node's capability labels. A model label's value is its count; an
/// unreadable count (or a vendor with one model) takes the vendor's allocatable.
fn gpu_pools(labels: &BTreeMap<String, String>, allocatable: &Amounts) -> Vec<GpuPool> {
    let mut pools: Vec<GpuPool> = Vec::new();
    let mut extras = Vec::new();
    for (key, value) in labels {
        let Some(rest) = key.strip_prefix(GPU_LABEL) else {
            continue;
        };
        let tokens: Vec<&str> = rest.split('.').collect();
        match tokens.as_slice() {
            [vendor, "model", model] => pools.push(GpuPool {
                vendor: vendor.to_ascii_lowercase(),
                model: model.to_ascii_lowercase(),
                ram: None,
                interface: None,
                count: value.parse().unwrap_or(u64::MAX),
                reserved: 0,
            }),
            [vendor, "model", model, kind @ ("ram" | "interface"), v] => {
                extras.push((
                    vendor.to_ascii_lowercase(),
                    model.to_ascii_lowercase(),
                    *kind,
                    *v,
                ));
            }
            _ => {}
        }
    }
    for (vendor, model, kind, v) in extras {
        if let Some(pool) = pools
            .iter_mut()
            .find(|p| p.vendor == vendor && p.model == model)
        {
            match kind {
                "ram" => pool.ram = super::demand::normalize_ram(v),
                _ => pool.interface = Some(normalize_interface(v)),
            }
        }
    }
    let per_vendor =
        |vendor: &str, pools: &[GpuPool]| pools.iter().filter(|p| p.vendor == vendor).count();
    let counts: Vec<usize> = pools
        .iter()
        .map(|p| per_vendor(&p.vendor, &pools))
        .collect();
    for (pool, models) in pools.iter_mut().zip(counts) {
        let of_vendor = allocatable.gpus.get(&pool.vendor).copied().unwrap_or(0);
        if pool.count == u64::MAX || models <= 1 {
            pool.count = of_vendor;
        }
    }
    pools
}

/// `sxm2`…`sxm5` are all `sxm`, as the Go provider's `FilterGPUInterface` has it.
fn normalize_interface(text: &str) -> String {
    let lower = text.to_ascii_lowercase();
    if lower.starts_with("sxm") {
        "sxm".to_owned()
    } else {
        lower
    }
}
