//! SDL → on-chain deployment groups (`GroupSpec` of `akash.deployment.v1beta4`), as the reference SDK
//! builds them.
//!
//! One group per placement used by a deployment, sorted by name. Services are visited in name order
//! (`localeCompare`); each (service, placement) becomes a resource unit with ids 1, 2, … in that order,
//! the placement's price for the compute profile and the deployment count. Endpoints come from the
//! service's global exposes, in document order.

use std::collections::HashMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::error::{FieldPath, SdlIssue};
use super::js;
use super::model::{
    ComputeResources, GpuAttributes, NumberOrString, SdlDocument, StorageAttributes,
};
use super::units;

/// A key/value attribute (`akash.base.attributes.v1.Attribute`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Attribute {
    pub key: String,
    pub value: String,
}

/// Auditors whose signatures a provider needs.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct SignedBy {
    pub all_of: Vec<String>,
    pub any_of: Vec<String>,
}

/// What a provider must offer to bid on the group.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct PlacementRequirements {
    pub signed_by: SignedBy,
    pub attributes: Vec<Attribute>,
}

/// A resource amount; `val` is a decimal integer as text (`math.Int` on chain).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct ResourceValue {
    pub val: String,
}

/// CPU in millicores.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct CpuUnits {
    pub units: ResourceValue,
    pub attributes: Vec<Attribute>,
}

/// Memory in bytes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct MemoryQuantity {
    pub quantity: ResourceValue,
    pub attributes: Vec<Attribute>,
}

/// One storage volume in bytes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct StorageQuantity {
    pub name: String,
    pub quantity: ResourceValue,
    pub attributes: Vec<Attribute>,
}

/// GPU count.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct GpuUnits {
    pub units: ResourceValue,
    pub attributes: Vec<Attribute>,
}

/// An endpoint a resource unit needs. `kind`: 0 shared HTTP (ingress), 1 random port, 2 leased IP.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Endpoint {
    pub kind: i32,
    pub sequence_number: u32,
}

impl Endpoint {
    pub const SHARED_HTTP: i32 = 0;
    pub const RANDOM_PORT: i32 = 1;
    pub const LEASED_IP: i32 = 2;
}

/// The resources of one unit (`akash.base.resources.v1beta4.Resources`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Resources {
    pub id: u32,
    pub cpu: CpuUnits,
    pub memory: MemoryQuantity,
    pub storage: Vec<StorageQuantity>,
    pub gpu: GpuUnits,
    pub endpoints: Vec<Endpoint>,
}

/// A price per block (`cosmos.base.v1beta1.DecCoin`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct DecCoin {
    pub denom: String,
    pub amount: String,
}

/// Resources, how many of them, and the most the tenant pays per block for one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct ResourceUnit {
    pub resource: Resources,
    pub count: u32,
    pub price: DecCoin,
}

/// One deployment group (`akash.deployment.v1beta4.GroupSpec`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct GroupSpec {
    pub name: String,
    pub requirements: PlacementRequirements,
    pub resources: Vec<ResourceUnit>,
}

/// `String(value)` of an attribute value; `null` cannot be turned into text.
fn attr_text(value: &serde_json::Value, path: &FieldPath) -> Result<String, SdlIssue> {
    js::to_js_string(value).ok_or_else(|| SdlIssue::new(path.to_string(), "must not be empty"))
}

/// CPU attributes sorted by key (`localeCompare`).
pub(super) fn cpu_attributes(
    attrs: &indexmap::IndexMap<String, serde_json::Value>,
    path: &FieldPath,
    sort: fn(&str, &str) -> std::cmp::Ordering,
) -> Result<Vec<Attribute>, SdlIssue> {
    let mut out = js::js_entries(attrs)
        .into_iter()
        .map(|(k, v)| {
            Ok(Attribute {
                key: k.clone(),
                value: attr_text(v, &path.key(k))?,
            })
        })
        .collect::<Result<Vec<_>, SdlIssue>>()?;
    out.sort_by(|a, b| sort(&a.key, &b.key));
    Ok(out)
}

/// Storage attributes: `class`, `persistent` (a `ram` volume without one gets `persistent: false`).
pub(super) fn storage_attributes(attrs: &StorageAttributes) -> Vec<Attribute> {
    let mut out = Vec::new();
    if let Some(class) = &attrs.class {
        out.push(Attribute {
            key: "class".into(),
            value: class.clone(),
        });
    }
    match &attrs.persistent {
        Some(p) => out.push(Attribute {
            key: "persistent".into(),
            value: match p {
                super::model::BoolOrString::Bool(b) => b.to_string(),
                super::model::BoolOrString::Text(s) => s.clone(),
            },
        }),
        None if attrs.class.as_deref() == Some("ram") => out.push(Attribute {
            key: "persistent".into(),
            value: "false".into(),
        }),
        None => {}
    }
    out
}

/// GPU attributes: `vendor/<v>/model/<m>[/ram/<r>][/interface/<i>]` = `true`, in document order; a
/// vendor given as `null` means any model (`model/*`).
pub(super) fn gpu_attributes(attrs: &GpuAttributes) -> Vec<Attribute> {
    let mut out = Vec::new();
    let Some(vendors) = &attrs.vendor else {
        return out;
    };
    for (vendor, models) in js::js_entries(vendors) {
        let Some(models) = models else {
            out.push(Attribute {
                key: format!("vendor/{vendor}/model/*"),
                value: "true".into(),
            });
            continue;
        };
        for model in models {
            let mut key = format!(
                "vendor/{vendor}/model/{}",
                model.model.as_deref().unwrap_or("undefined")
            );
            if let Some(ram) = model.ram.as_deref().filter(|r| !r.is_empty()) {
                key.push_str(&format!("/ram/{ram}"));
            }
            if let Some(iface) = model.interface.as_deref().filter(|i| !i.is_empty()) {
                key.push_str(&format!("/interface/{iface}"));
            }
            out.push(Attribute {
                key,
                value: "true".into(),
            });
        }
    }
    out
}

fn size(text: &str, path: &FieldPath) -> Result<ResourceValue, SdlIssue> {
    units::size_text(text)
        .map(|val| ResourceValue { val })
        .ok_or_else(|| SdlIssue::new(path.to_string(), format!("\"{text}\" is not a size")))
}

/// The resources of a compute profile as they go on chain (endpoints and id filled in by the caller).
fn unit_resources(
    res: &ComputeResources,
    path: &FieldPath,
) -> Result<(CpuUnits, MemoryQuantity, Vec<StorageQuantity>, GpuUnits), SdlIssue> {
    let cpu_val = units::cpu_text(&res.cpu.units).ok_or_else(|| {
        SdlIssue::new(
            path.key("cpu").key("units").to_string(),
            "is not a CPU amount",
        )
    })?;
    let cpu = CpuUnits {
        units: ResourceValue { val: cpu_val },
        attributes: match &res.cpu.attributes {
            Some(a) => cpu_attributes(a, &path.key("cpu").key("attributes"), js::locale_compare)?,
            None => Vec::new(),
        },
    };
    let memory = MemoryQuantity {
        quantity: size(&res.memory.size, &path.key("memory").key("size"))?,
        attributes: Vec::new(),
    };
    let mut storage = Vec::new();
    for volume in res.storage.volumes() {
        let mut attributes = volume
            .attributes
            .as_ref()
            .map(storage_attributes)
            .unwrap_or_default();
        attributes.sort_by(|a, b| js::locale_compare(&a.key, &b.key));
        storage.push(StorageQuantity {
            name: volume_name(volume.name.as_deref()),
            quantity: size(&volume.size, &path.key("storage"))?,
            attributes,
        });
    }
    let gpu = match &res.gpu {
        None => GpuUnits {
            units: ResourceValue { val: "0".into() },
            attributes: Vec::new(),
        },
        Some(gpu) => GpuUnits {
            units: ResourceValue {
                val: match &gpu.units {
                    NumberOrString::Text(s) if !s.is_empty() => {
                        js::number_to_string(js::parse_int(s))
                    }
                    NumberOrString::Number(n) if *n != 0.0 && !n.is_nan() => {
                        js::number_to_string(*n)
                    }
                    _ => "0".into(),
                },
            },
            attributes: gpu
                .attributes
                .as_ref()
                .map(gpu_attributes)
                .unwrap_or_default(),
        },
    };
    Ok((cpu, memory, storage, gpu))
}

/// A volume's on-chain name: its own, or `default`.
pub(super) fn volume_name(name: Option<&str>) -> String {
    match name {
        Some(n) if !n.is_empty() => n.to_string(),
        _ => "default".into(),
    }
}

/// The text of a number that may be written as a string.
pub(super) fn number_text(n: &NumberOrString) -> String {
    match n {
        NumberOrString::Number(x) => js::number_to_string(*x),
        NumberOrString::Text(s) => s.clone(),
    }
}

/// Services in the order the reference SDK visits them: by name (`localeCompare`).
pub(super) fn sorted_services(doc: &SdlDocument) -> Vec<&String> {
    let mut names: Vec<&String> = js::js_entries(&doc.services)
        .into_iter()
        .map(|(k, _)| k)
        .collect();
    names.sort_by(|a, b| js::locale_compare(a, b));
    names
}

/// For each compute profile used in a group: the index of its resource unit and the service using it.
type BoundProfiles<'a> = HashMap<&'a str, (usize, &'a str)>;

/// Builds the groups. Fails where the reference SDK fails (two services sharing one compute
/// profile in one placement, unless the first of them holds the group's first resource unit).
pub fn build(doc: &SdlDocument) -> Result<Vec<GroupSpec>, SdlIssue> {
    let endpoints = super::endpoints::EndpointIndex::new(doc);
    let mut groups: HashMap<&str, (GroupSpec, BoundProfiles)> = HashMap::new();
    for service_name in sorted_services(doc) {
        let service = &doc.services[service_name];
        let Some(placements) = doc.deployment.get(service_name) else {
            continue;
        };
        for (placement_name, entry) in js::js_entries(placements) {
            let profile_path = FieldPath::root()
                .key("profiles")
                .key("compute")
                .key(&entry.profile);
            let compute = doc.profiles.compute.get(&entry.profile).ok_or_else(|| {
                SdlIssue::new(profile_path.to_string(), "compute profile is not defined")
            })?;
            let infra = doc.profiles.placement.get(placement_name).ok_or_else(|| {
                SdlIssue::new(
                    format!("profiles.placement.{placement_name}"),
                    "placement is not defined",
                )
            })?;
            let price = infra.pricing.get(&entry.profile).ok_or_else(|| {
                SdlIssue::new(
                    format!(
                        "profiles.placement.{placement_name}.pricing.{}",
                        entry.profile
                    ),
                    "price is missing",
                )
            })?;
            let (group, bound) = groups.entry(placement_name.as_str()).or_insert_with(|| {
                let mut attributes: Vec<Attribute> = infra
                    .attributes
                    .as_ref()
                    .map(|a| {
                        js::js_entries(a)
                            .into_iter()
                            .map(|(k, v)| Attribute {
                                key: k.clone(),
                                value: js::to_js_string(v).unwrap_or_else(|| "null".into()),
                            })
                            .collect()
                    })
                    .unwrap_or_default();
                attributes.sort_by(|a, b| js::locale_compare(&a.key, &b.key));
                let signed = infra.signed_by.clone();
                (
                    GroupSpec {
                        name: placement_name.clone(),
                        requirements: PlacementRequirements {
                            signed_by: SignedBy {
                                all_of: signed
                                    .as_ref()
                                    .and_then(|s| s.all_of.clone())
                                    .unwrap_or_default(),
                                any_of: signed.and_then(|s| s.any_of).unwrap_or_default(),
                            },
                            attributes,
                        },
                        resources: Vec::new(),
                    },
                    HashMap::new(),
                )
            });
            if let Some((location, other)) = bound.get(entry.profile.as_str())
                && *location != 0
            {
                return Err(SdlIssue::new(
                    FieldPath::root()
                        .key("deployment")
                        .key(service_name)
                        .key(placement_name)
                        .key("profile")
                        .to_string(),
                    format!(
                        "services \"{other}\" and \"{service_name}\" both use compute profile \"{}\" in placement \"{placement_name}\"; the reference SDK cannot build this group, give each service its own compute profile",
                        entry.profile
                    ),
                ));
            }
            let (cpu, memory, storage, gpu) =
                unit_resources(&compute.resources, &profile_path.key("resources"))?;
            let id = group.resources.len() as u32 + 1;
            group.resources.push(ResourceUnit {
                resource: Resources {
                    id,
                    cpu,
                    memory,
                    storage,
                    gpu,
                    endpoints: endpoints.resource_endpoints(service),
                },
                count: entry.count,
                price: DecCoin {
                    denom: price.denom.clone(),
                    amount: number_text(&price.amount),
                },
            });
            bound.insert(
                entry.profile.as_str(),
                (group.resources.len() - 1, service_name.as_str()),
            );
        }
    }
    let mut out: Vec<GroupSpec> = groups.into_values().map(|(g, _)| g).collect();
    out.sort_by(|a, b| js::utf16_cmp(&a.name, &b.name));
    Ok(out)
}
