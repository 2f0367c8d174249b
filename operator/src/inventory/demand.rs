//! What a deployment group asks of the cluster: its resource units as [`ReservedUnit`]s.

use std::collections::BTreeSet;

use chain_client::akash::base::attributes::v1::Attribute;
use chain_client::akash::base::resources::v1beta4::{ResourceValue, endpoint};
use chain_client::akash::deployment::v1beta4::GroupSpec;
use crds::resources::{GpuModel, ReservedUnit, StorageReservation};

/// A group the inventory cannot read. `unit` is the index of the resource unit in the group.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DemandError {
    #[error("resource unit {unit}: {field} is missing")]
    Missing { unit: usize, field: &'static str },
    #[error("resource unit {unit}: {field} is not an unsigned integer: {value:?}")]
    NotANumber {
        unit: usize,
        field: String,
        value: String,
    },
    #[error("resource unit {unit}: storage {volume:?} is persistent but names no class")]
    PersistentWithoutClass { unit: usize, volume: String },
    #[error("resource unit {unit}: storage {volume:?}: class ram cannot be persistent")]
    PersistentRam { unit: usize, volume: String },
    #[error("resource unit {unit}: gpu attribute {key:?}: {reason}")]
    GpuAttribute {
        unit: usize,
        key: String,
        reason: &'static str,
    },
    #[error("resource unit {unit}: endpoint {index} has unknown kind {kind}")]
    EndpointKind {
        unit: usize,
        index: usize,
        kind: i32,
    },
}

/// The storage attribute that makes a volume persistent (value `"true"`).
pub(crate) const ATTR_PERSISTENT: &str = "persistent";
/// The storage attribute naming a volume's class.
pub(crate) const ATTR_CLASS: &str = "class";
/// The storage class backed by memory (a tmpfs `emptyDir`).
pub(crate) const CLASS_RAM: &str = "ram";

/// The resource units of a group as the inventory reserves them, in the group's order.
///
/// - CPU in millicores, memory in bytes (`ResourceValue.val` is the decimal text of a `math.Int`).
/// - Storage: a volume with `persistent: "true"` is persistent storage of its `class` (required);
///   a non-persistent volume of class `ram` adds to memory; any other volume is ephemeral storage.
/// - GPUs: the units, and the accepted models from attributes `vendor/<v>/model/<m>` with optional
///   `/ram/<size>` and `/interface/<pcie|sxm>` (value `"true"`); `<m>` may be `*`. A model with
///   constraints keeps them in [`GpuModel::model`] in the attribute's own form (`a100/ram/80Gi`),
///   since the reservation record has no fields of its own for them; RAM is normalised to `Gi`
///   when exact (`81920Mi` becomes `80Gi`). No attribute at all means any model of any vendor.
/// - Endpoints: each `RANDOM_PORT` needs a node port; each distinct `LEASED_IP` sequence number
///   in the group needs one IP, counted on the first unit that names it; `SHARED_HTTP` needs
///   nothing (the ingress serves it).
pub fn demand_of(group: &GroupSpec) -> Result<Vec<ReservedUnit>, DemandError> {
    let mut seen_ips = BTreeSet::new();
    let mut units = Vec::with_capacity(group.resources.len());
    for (index, unit) in group.resources.iter().enumerate() {
        let resources = unit.resource.as_ref().ok_or(DemandError::Missing {
            unit: index,
            field: "resource",
        })?;
        let cpu = resources.cpu.as_ref().ok_or(DemandError::Missing {
            unit: index,
            field: "cpu",
        })?;
        let memory = resources.memory.as_ref().ok_or(DemandError::Missing {
            unit: index,
            field: "memory",
        })?;
        let mut reserved = ReservedUnit {
            count: unit.count,
            cpu_millis: value(index, "cpu.units", cpu.units.as_ref())?,
            memory_bytes: value(index, "memory.quantity", memory.quantity.as_ref())?,
            ..ReservedUnit::default()
        };
        for volume in &resources.storage {
            let field = format!("storage[{}].quantity", volume.name);
            let bytes = value(index, &field, volume.quantity.as_ref())?;
            let class = find(&volume.attributes, ATTR_CLASS);
            if find(&volume.attributes, ATTR_PERSISTENT) == Some("true") {
                let class = class.filter(|c| !c.is_empty()).ok_or_else(|| {
                    DemandError::PersistentWithoutClass {
                        unit: index,
                        volume: volume.name.clone(),
                    }
                })?;
                if class == CLASS_RAM {
                    return Err(DemandError::PersistentRam {
                        unit: index,
                        volume: volume.name.clone(),
                    });
                }
                reserved.persistent_storage.push(StorageReservation {
                    class: class.to_owned(),
                    bytes,
                });
            } else if class == Some(CLASS_RAM) {
                reserved.memory_bytes = reserved.memory_bytes.saturating_add(bytes);
            } else {
                reserved.ephemeral_storage_bytes =
                    reserved.ephemeral_storage_bytes.saturating_add(bytes);
            }
        }
        if let Some(gpu) = &resources.gpu {
            let gpus = value(index, "gpu.units", gpu.units.as_ref())?;
            reserved.gpus = u32::try_from(gpus).unwrap_or(u32::MAX);
            if reserved.gpus > 0 {
                for attr in &gpu.attributes {
                    let model =
                        gpu_model(&attr.key).map_err(|reason| DemandError::GpuAttribute {
                            unit: index,
                            key: attr.key.clone(),
                            reason,
                        })?;
                    if !reserved.gpu_models.contains(&model) {
                        reserved.gpu_models.push(model);
                    }
                }
            }
        }
        for (e, ep) in resources.endpoints.iter().enumerate() {
            match endpoint::Kind::try_from(ep.kind) {
                Ok(endpoint::Kind::SharedHttp) => {}
                Ok(endpoint::Kind::RandomPort) => reserved.node_ports += 1,
                Ok(endpoint::Kind::LeasedIp) => {
                    if seen_ips.insert(ep.sequence_number) {
                        reserved.ips += 1;
                    }
                }
                Err(_) => {
                    return Err(DemandError::EndpointKind {
                        unit: index,
                        index: e,
                        kind: ep.kind,
                    });
                }
            }
        }
        units.push(reserved);
    }
    Ok(units)
}

fn find<'a>(attributes: &'a [Attribute], key: &str) -> Option<&'a str> {
    attributes
        .iter()
        .find(|a| a.key == key)
        .map(|a| a.value.as_str())
}

/// A `math.Int` quantity; absent or empty means zero.
fn value(unit: usize, field: &str, value: Option<&ResourceValue>) -> Result<u64, DemandError> {
    let Some(value) = value else { return Ok(0) };
    let text = String::from_utf8_lossy(&value.val);
    if text.is_empty() {
        return Ok(0);
    }
    text.parse::<u64>().map_err(|_| DemandError::NotANumber {
        unit,
        field: field.to_owned(),
        value: text.into_owned(),
    })
}

/// A GPU request's accepted model from its attribute key.
fn gpu_model(key: &str) -> Result<GpuModel, &'static str> {
    let tokens: Vec<&str> = key.split('/').collect();
    let ["vendor", vendor, "model", model, rest @ ..] = tokens.as_slice() else {
        return Err("expected vendor/<vendor>/model/<model>");
    };
    if vendor.is_empty() || model.is_empty() {
        return Err("empty vendor or model");
    }
    let mut spec = GpuSpec {
        vendor: vendor.to_ascii_lowercase(),
        model: model.to_ascii_lowercase(),
        ram: None,
        interface: None,
    };
    for pair in rest.chunks(2) {
        match pair {
            ["ram", ram] => spec.ram = Some(normalize_ram(ram).ok_or("ram is not a size")?),
            ["interface", iface] => match iface.to_ascii_lowercase().as_str() {
                i @ ("pcie" | "sxm") => spec.interface = Some(i.to_owned()),
                _ => return Err("interface must be pcie or sxm"),
            },
            _ => return Err("expected /ram/<size> or /interface/<pcie|sxm> after the model"),
        }
    }
    Ok(spec.to_model())
}

/// A GPU model with the constraints a group may put on it; the form [`GpuModel::model`] carries
/// them in: `a100`, `a100/ram/80Gi`, `a100/interface/sxm`, `a100/ram/80Gi/interface/sxm`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct GpuSpec {
    pub vendor: String,
    /// A model name, or `*` for any.
    pub model: String,
    pub ram: Option<String>,
    pub interface: Option<String>,
}

impl GpuSpec {
    /// Reads the constraints back out of an accepted model.
    pub(crate) fn of(model: &GpuModel) -> GpuSpec {
        let mut tokens = model.model.split('/');
        let mut spec = GpuSpec {
            vendor: model.vendor.clone(),
            model: tokens.next().unwrap_or_default().to_owned(),
            ram: None,
            interface: None,
        };
        while let (Some(key), Some(value)) = (tokens.next(), tokens.next()) {
            match key {
                "ram" => spec.ram = Some(value.to_owned()),
                "interface" => spec.interface = Some(value.to_owned()),
                _ => {}
            }
        }
        spec
    }

    fn to_model(&self) -> GpuModel {
        let mut model = self.model.clone();
        if let Some(ram) = &self.ram {
            model.push_str("/ram/");
            model.push_str(ram);
        }
        if let Some(iface) = &self.interface {
            model.push_str("/interface/");
            model.push_str(iface);
        }
        GpuModel {
            vendor: self.vendor.clone(),
            model,
        }
    }
}

/// A GPU memory size in the form node labels use: `80Gi` (exact Gi), else the text as given.
pub(crate) fn normalize_ram(text: &str) -> Option<String> {
    let bytes = super::quantity::parse(text, 1)?;
    if bytes == 0 {
        return None;
    }
    if bytes.is_multiple_of(1 << 30) {
        Some(format!("{}Gi", bytes >> 30))
    } else {
        Some(text.to_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::inventory::fixtures::group;

    #[test]
    fn reads_cpu_memory_storage_gpu_and_endpoints() {
        let g = group("gpu-a100.yaml");
        let units = demand_of(&g).unwrap();
        assert_eq!(units.len(), 2);
        let gpu = &units[0];
        assert_eq!(gpu.count, 1);
        assert_eq!(gpu.cpu_millis, 4000);
        assert_eq!(
            gpu.memory_bytes,
            (16 << 30) + (1 << 30),
            "ram volume adds to memory"
        );
        assert_eq!(gpu.ephemeral_storage_bytes, 100 << 30);
        assert_eq!(
            gpu.persistent_storage,
            vec![StorageReservation {
                class: "beta2".into(),
                bytes: 50 << 30
            }]
        );
        assert_eq!(gpu.gpus, 2);
        assert_eq!(
            gpu.gpu_models,
            vec![
                GpuModel {
                    vendor: "nvidia".into(),
                    model: "a100/ram/80Gi".into()
                },
                GpuModel {
                    vendor: "nvidia".into(),
                    model: "h100/interface/sxm".into()
                }
            ]
        );
        assert_eq!((gpu.node_ports, gpu.ips), (1, 1));
        let web = &units[1];
        assert_eq!((web.count, web.cpu_millis, web.gpus), (3, 500, 0));
        assert_eq!(
            (web.node_ports, web.ips),
            (0, 1),
            "ip 1 counted once, ip 2 here"
        );
    }

    #[test]
    fn wildcard_model_and_spec_round_trip() {
        let model = gpu_model("vendor/nvidia/model/*").unwrap();
        assert_eq!(model.model, "*");
        let model = gpu_model("vendor/nvidia/model/a100/ram/81920Mi/interface/SXM").unwrap();
        assert_eq!(model.model, "a100/ram/80Gi/interface/sxm");
        let spec = GpuSpec::of(&model);
        assert_eq!(spec.model, "a100");
        assert_eq!(spec.ram.as_deref(), Some("80Gi"));
        assert_eq!(spec.interface.as_deref(), Some("sxm"));
        assert!(gpu_model("vendor/nvidia/model/a100/interface/sxm5").is_err());
        assert!(gpu_model("capabilities/gpu").is_err());
    }

    #[test]
    fn errors_name_the_unit_and_field() {
        let mut g = group("web.yaml");
        g.resources[0].resource.as_mut().unwrap().storage.push(
            chain_client::akash::base::resources::v1beta4::Storage {
                name: "data".into(),
                quantity: Some(chain_client::dec::resource_value(1 << 30)),
                attributes: vec![Attribute {
                    key: "persistent".into(),
                    value: "true".into(),
                }],
            },
        );
        let err = demand_of(&g).unwrap_err();
        assert_eq!(
            err.to_string(),
            "resource unit 0: storage \"data\" is persistent but names no class"
        );
        let mut g = group("web.yaml");
        g.resources[0]
            .resource
            .as_mut()
            .unwrap()
            .cpu
            .as_mut()
            .unwrap()
            .units = Some(ResourceValue {
            val: b"12x".to_vec(),
        });
        assert_eq!(
            demand_of(&g).unwrap_err().to_string(),
            "resource unit 0: cpu.units is not an unsigned integer: \"12x\""
        );
    }
}
