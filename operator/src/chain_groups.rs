//! SDL groups (`crds::sdl::GroupSpec`, the JSON shape the SDK computes) as the chain's protobuf
//! `GroupSpec`, for `MsgCreateDeployment`. Prices are decimals in the SDL and LegacyDec on the wire.

use chain_client::akash::base::attributes::v1 as attr;
use chain_client::akash::base::resources::v1beta4 as res;
use chain_client::akash::deployment::v1beta4 as dv4;
use chain_client::dec::DecError;
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
    }
}
