//! SDL groups (`crds::sdl::GroupSpec`, the JSON shape the SDK computes) as the chain's protobuf
//! `GroupSpec`, for `MsgCreateDeployment`. Prices are decimals in the SDL and LegacyDec on the wire.
//! And back: a group's resource units on chain as [`LeasedUnit`]s, which a `Lease` keeps.

use chain_client::akash::base::attributes::v1 as attr;
use chain_client::akash::base::resources::v1beta4 as res;
use chain_client::akash::deployment::v1beta4 as dv4;
use chain_client::dec::DecError;
use crds::resources::LeasedUnit;
use crds::sdl::groups as sdl;

/// Converts every group; fails only on a price that is not a decimal.
pub fn to_chain(groups: &[sdl::GroupSpec]) -> Result<Vec<dv4::GroupSpec>, DecError> {
    groups.iter().map(group).collect()
}

fn group(g: &sdl::GroupSpec) -> Result<dv4::GroupSpec, DecError> {
    Ok(dv4::GroupSpec {
        name: g.name.clone(),
        requirements: Some(attr::PlacementRequirements {
            signed_by: Some(attr::SignedBy {
                all_of: g.requirements.signed_by.all_of.clone(),
                any_of: g.requirements.signed_by.any_of.clone(),
            }),
            attributes: attributes(&g.requirements.attributes),
        }),
        resources: g
            .resources
            .iter()
            .map(|u| {
                Ok(dv4::ResourceUnit {
                    resource: Some(resources(&u.resource)),
                    count: u.count,
                    price: Some(chain_client::dec::dec_coin(
                        &u.price.denom,
                        &u.price.amount,
                    )?),
                })
            })
            .collect::<Result<_, DecError>>()?,
    })
}

fn attributes(a: &[sdl::Attribute]) -> Vec<attr::Attribute> {
    a.iter()
        .map(|a| attr::Attribute {
            key: a.key.clone(),
            value: a.value.clone(),
        })
        .collect()
}

fn value(v: &sdl::ResourceValue) -> res::ResourceValue {
    res::ResourceValue {
        val: v.val.clone().into_bytes(),
    }
}

fn resources(r: &sdl::Resources) -> res::Resources {
    res::Resources {
        id: r.id,
        cpu: Some(res::Cpu {
            units: Some(value(&r.cpu.units)),
            attributes: attributes(&r.cpu.attributes),
        }),
        memory: Some(res::Memory {
            quantity: Some(value(&r.memory.quantity)),
            attributes: attributes(&r.memory.attributes),
        }),
        storage: r
            .storage
            .iter()
            .map(|s| res::Storage {
                name: s.name.clone(),
                quantity: Some(value(&s.quantity)),
                attributes: attributes(&s.attributes),
            })
            .collect(),
        gpu: Some(res::Gpu {
            units: Some(value(&r.gpu.units)),
            attributes: attributes(&r.gpu.attributes),
        }),
        endpoints: r
            .endpoints
            .iter()
            .map(|e| res::Endpoint {
                kind: e.kind,
                sequence_number: e.sequence_number,
            })
            .collect(),
    }
}

/// The resource units of a group on chain, each with its count (prices left out). A value that
/// is not UTF-8 text is kept as the replacement text, which no manifest amount equals.
pub(crate) fn leased_units(units: &[dv4::ResourceUnit]) -> Vec<LeasedUnit> {
    units
        .iter()
        .map(|u| LeasedUnit {
            count: u.count,
            resources: from_chain(&u.resource.clone().unwrap_or_default()),
        })
        .collect()
}

fn from_attributes(a: &[attr::Attribute]) -> Vec<sdl::Attribute> {
    a.iter()
        .map(|a| sdl::Attribute {
            key: a.key.clone(),
            value: a.value.clone(),
        })
        .collect()
}

fn from_value(v: Option<&res::ResourceValue>) -> sdl::ResourceValue {
    sdl::ResourceValue {
        val: v
            .map(|v| String::from_utf8_lossy(&v.val).into_owned())
            .unwrap_or_default(),
    }
}

fn from_chain(r: &res::Resources) -> sdl::Resources {
    let cpu = r.cpu.clone().unwrap_or_default();
    let memory = r.memory.clone().unwrap_or_default();
    let gpu = r.gpu.clone().unwrap_or_default();
    sdl::Resources {
        id: r.id,
        cpu: sdl::CpuUnits {
            units: from_value(cpu.units.as_ref()),
            attributes: from_attributes(&cpu.attributes),
        },
        memory: sdl::MemoryQuantity {
            quantity: from_value(memory.quantity.as_ref()),
            attributes: from_attributes(&memory.attributes),
        },
        storage: r
            .storage
            .iter()
            .map(|s| sdl::StorageQuantity {
                name: s.name.clone(),
                quantity: from_value(s.quantity.as_ref()),
                attributes: from_attributes(&s.attributes),
            })
            .collect(),
        gpu: sdl::GpuUnits {
            units: from_value(gpu.units.as_ref()),
            attributes: from_attributes(&gpu.attributes),
        },
        endpoints: r
            .endpoints
            .iter()
            .map(|e| sdl::Endpoint {
                kind: e.kind,
                sequence_number: e.sequence_number,
            })
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_sdl_group_becomes_the_chain_group_with_wire_prices() {
        let sdl = crds::sdl::Sdl::parse(
            r#"
version: "2.0"
services:
  web:
    image: nginx
    expose:
      - port: 80
        as: 80
        to: [{global: true}]
profiles:
  compute:
    web:
      resources:
        cpu: {units: 0.5}
        memory: {size: 512Mi}
        storage: {size: 1Gi}
  placement:
    dc:
      attributes: {region: us-west}
      pricing:
        web: {denom: uact, amount: 1.5}
deployment:
  web:
    dc: {profile: web, count: 2}
"#,
        )
        .unwrap();
        let groups = to_chain(sdl.groups()).unwrap();
        assert_eq!(groups.len(), 1);
        let g = &groups[0];
        assert_eq!(g.name, "dc");
        let req = g.requirements.as_ref().unwrap();
        assert_eq!(req.attributes[0].key, "region");
        let unit = &g.resources[0];
        assert_eq!(unit.count, 2);
        let price = unit.price.as_ref().unwrap();
        assert_eq!(price.denom, "uact");
        assert_eq!(price.amount, "1500000000000000000");
        let r = unit.resource.as_ref().unwrap();
        assert_eq!(r.cpu.as_ref().unwrap().units.as_ref().unwrap().val, b"500");
        assert_eq!(r.endpoints.len(), 1);

        // And back, without the price: what a Lease keeps of its group.
        let leased = leased_units(&g.resources);
        assert_eq!(leased.len(), 1);
        assert_eq!(leased[0].count, 2);
        assert_eq!(leased[0].resources, sdl.groups()[0].resources[0].resource);
    }
}
