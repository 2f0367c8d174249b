//! [`Misfit`]: why a demand does not fit, in words and as a metrics label.

use crds::resources::ReservedUnit;

use super::demand::GpuSpec;
use super::quantity::fmt_bytes;

/// Why a demand does not fit. `Display` names the resource and the numbers.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum Misfit {
    #[error("cpu: {} of {need}m {}; the largest free node has {largest}m", n_replicas(*.replicas), do_not(*.replicas))]
    Cpu {
        replicas: u32,
        need: u64,
        largest: u64,
    },
    #[error("memory: {} of {} {}; the largest free node has {}", n_replicas(*.replicas), fmt_bytes(*.need), do_not(*.replicas), fmt_bytes(*.largest))]
    Memory {
        replicas: u32,
        need: u64,
        largest: u64,
    },
    #[error("ephemeral storage: {} of {} {}; the largest free node has {}", n_replicas(*.replicas), fmt_bytes(*.need), do_not(*.replicas), fmt_bytes(*.largest))]
    EphemeralStorage {
        replicas: u32,
        need: u64,
        largest: u64,
    },
    #[error("gpu: {} of {need} × {models} {}; the most free on one node is {largest}", n_replicas(*.replicas), do_not(*.replicas))]
    Gpu {
        replicas: u32,
        need: u32,
        models: String,
        largest: u64,
    },
    #[error("gpu {models}: none offered")]
    GpuNotOffered { models: String },
    #[error("unknown storage class {0:?}")]
    UnknownStorageClass(String),
    #[error("storage class {0:?}: no offered node can mount it")]
    StorageClassOnNoNode(String),
    #[error("storage {class}: {} needed, {} free", fmt_bytes(*.need), fmt_bytes(*.free))]
    Storage { class: String, need: u64, free: u64 },
    #[error("node ports: {need} needed, {free} free")]
    NodePorts { need: u64, free: u64 },
    #[error("leased ips: {need} needed, {free} free")]
    Ips { need: u64, free: u64 },
    #[error("{} of {cpu}m cpu and {} memory {} on any single node", n_replicas(*.replicas), fmt_bytes(*.memory), do_not(*.replicas))]
    NoSingleNode {
        replicas: u32,
        cpu: u64,
        memory: u64,
    },
}

fn n_replicas(n: u32) -> String {
    if n == 1 {
        "1 replica".to_owned()
    } else {
        format!("{n} replicas")
    }
}

fn do_not(n: u32) -> &'static str {
    if n == 1 { "does not fit" } else { "do not fit" }
}

impl Misfit {
    /// A short name for metrics: cpu, memory, storage, gpu, node_ports, ips, storage_class, or
    /// node (no single node has the combination although each resource alone fits somewhere).
    pub(crate) fn label(&self) -> &'static str {
        match self {
            Misfit::Cpu { .. } => "cpu",
            Misfit::Memory { .. } => "memory",
            Misfit::EphemeralStorage { .. } | Misfit::Storage { .. } => "storage",
            Misfit::Gpu { .. } | Misfit::GpuNotOffered { .. } => "gpu",
            Misfit::UnknownStorageClass(_) | Misfit::StorageClassOnNoNode(_) => "storage_class",
            Misfit::NodePorts { .. } => "node_ports",
            Misfit::Ips { .. } => "ips",
            Misfit::NoSingleNode { .. } => "node",
        }
    }
}

/// The GPU models a unit accepts, as specs; empty means any.
pub(super) fn accepted(unit: &ReservedUnit) -> Vec<GpuSpec> {
    match &unit.allocated_gpu {
        Some(model) => vec![GpuSpec::of(model)],
        None => unit.gpu_models.iter().map(GpuSpec::of).collect(),
    }
}

pub(super) fn describe(specs: &[GpuSpec]) -> String {
    if specs.is_empty() {
        return "any model".to_owned();
    }
    let names: Vec<String> = specs
        .iter()
        .map(|s| {
            let mut name = format!("{}/{}", s.vendor, s.model);
            if let Some(ram) = &s.ram {
                name.push_str(&format!("/ram/{ram}"));
            }
            if let Some(i) = &s.interface {
                name.push_str(&format!("/interface/{i}"));
            }
            name
        })
        .collect();
    names.join(" or ")
}
