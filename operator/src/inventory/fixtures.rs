//! Test fixtures: Kubernetes YAML for nodes and pods, and deployment groups in a compact YAML form
//! (`operator/tests/fixtures/orders/*.yaml`) turned into the chain's `GroupSpec`.

use std::path::PathBuf;

use chain_client::akash::base::attributes::v1::{Attribute, PlacementRequirements, SignedBy};
use chain_client::akash::base::resources::v1beta4::{
    Cpu, Endpoint, Gpu, Memory, Resources, Storage, endpoint,
};
use chain_client::akash::deployment::v1beta4::{GroupSpec, ResourceUnit};
use chain_client::dec::{dec_coin, resource_value};
use k8s_openapi::api::core::v1::{Node, Pod};
use serde::Deserialize;

fn path(rel: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(rel)
}

fn docs<T: serde::de::DeserializeOwned>(rel: &str) -> Vec<T> {
    let text = std::fs::read_to_string(path(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"));
    serde_yaml::Deserializer::from_str(&text)
        .map(|doc| T::deserialize(doc).unwrap_or_else(|e| panic!("{rel}: {e}")))
        .collect()
}

/// The nodes of `inventory/<name>`.
pub(crate) fn nodes(name: &str) -> Vec<Node> {
    docs(&format!("inventory/{name}"))
}

/// The pods of `inventory/<name>`.
pub(crate) fn pods(name: &str) -> Vec<Pod> {
    docs(&format!("inventory/{name}"))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct GroupFixture {
    name: String,
    #[serde(default)]
    attributes: Vec<KeyValue>,
    #[serde(default)]
    signed_by: SignedByFixture,
    resources: Vec<UnitFixture>,
}

#[derive(Deserialize)]
struct KeyValue {
    key: String,
    value: String,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct SignedByFixture {
    #[serde(default)]
    all_of: Vec<String>,
    #[serde(default)]
    any_of: Vec<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct UnitFixture {
    count: u32,
    /// Millicores.
    cpu: u64,
    /// A Kubernetes quantity.
    memory: String,
    #[serde(default)]
    storage: Vec<VolumeFixture>,
    #[serde(default)]
    gpu: Option<GpuFixture>,
    #[serde(default)]
    endpoints: Vec<EndpointFixture>,
    price: PriceFixture,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct VolumeFixture {
    name: String,
    size: String,
    #[serde(default)]
    persistent: Option<bool>,
    #[serde(default)]
    class: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct GpuFixture {
    units: u64,
    #[serde(default)]
    attributes: Vec<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct EndpointFixture {
    kind: String,
    #[serde(default)]
    seq: u32,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PriceFixture {
    denom: String,
    /// A human decimal ("1.5"); converted to the wire form.
    amount: String,
}

fn attr(key: &str, value: &str) -> Attribute {
    Attribute {
        key: key.to_owned(),
        value: value.to_owned(),
    }
}

/// The group of `orders/<name>`.
pub(crate) fn group(name: &str) -> GroupSpec {
    let rel = format!("orders/{name}");
    let text = std::fs::read_to_string(path(&rel)).unwrap_or_else(|e| panic!("{rel}: {e}"));
    let fixture: GroupFixture =
        serde_yaml::from_str(&text).unwrap_or_else(|e| panic!("{rel}: {e}"));
    let resources = fixture
        .resources
        .into_iter()
        .enumerate()
        .map(|(i, u)| {
            let bytes = |q: &str| u128::from(super::quantity::units(q));
            let storage = u
                .storage
                .iter()
                .map(|v| {
                    let mut attributes = Vec::new();
                    if let Some(class) = &v.class {
                        attributes.push(attr("class", class));
                    }
                    if let Some(p) = v.persistent {
                        attributes.push(attr("persistent", &p.to_string()));
                    }
                    Storage {
                        name: v.name.clone(),
                        quantity: Some(resource_value(bytes(&v.size))),
                        attributes,
                    }
                })
                .collect();
            let endpoints = u
                .endpoints
                .iter()
                .map(|e| Endpoint {
                    kind: endpoint::Kind::from_str_name(&e.kind)
                        .unwrap_or_else(|| panic!("endpoint kind {}", e.kind))
                        as i32,
                    sequence_number: e.seq,
                })
                .collect();
            ResourceUnit {
                resource: Some(Resources {
                    id: u32::try_from(i + 1).unwrap_or(u32::MAX),
                    cpu: Some(Cpu {
                        units: Some(resource_value(u128::from(u.cpu))),
                        attributes: vec![],
                    }),
                    memory: Some(Memory {
                        quantity: Some(resource_value(bytes(&u.memory))),
                        attributes: vec![],
                    }),
                    storage,
                    gpu: Some(Gpu {
                        units: Some(resource_value(u128::from(
                            u.gpu.as_ref().map_or(0, |g| g.units),
                        ))),
                        attributes: u
                            .gpu
                            .iter()
                            .flat_map(|g| g.attributes.iter().map(|k| attr(k, "true")))
                            .collect(),
                    }),
                    endpoints,
                }),
                count: u.count,
                price: Some(dec_coin(&u.price.denom, &u.price.amount).expect("fixture price")),
            }
        })
        .collect();
    GroupSpec {
        name: fixture.name,
        requirements: Some(PlacementRequirements {
            signed_by: Some(SignedBy {
                all_of: fixture.signed_by.all_of,
                any_of: fixture.signed_by.any_of,
            }),
            attributes: fixture
                .attributes
                .into_iter()
                .map(|kv| attr(&kv.key, &kv.value))
                .collect(),
        }),
        resources,
    }
}
