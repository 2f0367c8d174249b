//! Manifests as the gateway receives them: JSON over REST (`PUT /deployment/{dseq}/manifest`,
//! and from peers) and protobuf over gRPC (`LeaseRPC/SendManifest`), through the same path the
//! gateway runs without its network: decode, convert, [`accept`] (owner, version hash, leased
//! groups and resources), the size check, then the workloads the reconciler builds from each
//! accepted group.
//!
//! The deployment on chain is made to fit each input, as a tenant who posts a deployment for the
//! manifest it then sends would have it: its hash is the input's version and its groups carry the
//! input's resources, so that the checks behind the hash comparison are reached.

use std::sync::Arc;

use chain_client::akash::base::resources::v1beta4 as res;
use chain_client::akash::deployment::{v1 as dv1, v1beta4 as dv4};
use chain_client::akash::manifest::v2beta3 as mv;
use chain_client::akash::market::v1 as mv1;
use chain_client::akash::provider::lease::v1 as lease_rpc;
use chain_client::chain::QueryDeploymentResponse;
use crds::resources::{Lease, LeaseRef, LeaseSpec, Price};
use crds::sdl::ManifestGroup;
use operator::gateway::accept::{self, accept};
use operator::workload::build::{WorkloadConfig, build};
use prost::Message;
use sha2::{Digest, Sha256};

use crate::engine::{Target, fnv, label};
use crate::mutate::{self, Rng};
use crate::world::World;

const DSEQ: u64 = 7;

/// The chain's resource units for manifest groups: per group, one unit per resource id, with the
/// first service's resources of that id and the services' replicas added up.
pub fn chain_groups(owner: &str, groups: &[ManifestGroup]) -> Vec<dv4::Group> {
    let value = |v: &str| {
        Some(res::ResourceValue {
            val: v.as_bytes().to_vec(),
        })
    };
    let attrs = |a: &Option<Vec<crds::sdl::groups::Attribute>>| {
        a.iter()
            .flatten()
            .map(|a| chain_client::akash::base::attributes::v1::Attribute {
                key: a.key.clone(),
                value: a.value.clone(),
            })
            .collect::<Vec<_>>()
    };
    groups
        .iter()
        .enumerate()
        .map(|(i, g)| {
            let mut units: Vec<dv4::ResourceUnit> = Vec::new();
            for s in &g.services {
                let r = &s.resources;
                if let Some(unit) = units
                    .iter_mut()
                    .find(|u| u.resource.as_ref().is_some_and(|x| x.id == r.id))
                {
                    unit.count = unit.count.saturating_add(s.count);
                    continue;
                }
                units.push(dv4::ResourceUnit {
                    resource: Some(res::Resources {
                        id: r.id,
                        cpu: Some(res::Cpu {
                            units: value(&r.cpu.units.val),
                            attributes: attrs(&r.cpu.attributes),
                        }),
                        memory: Some(res::Memory {
                            quantity: value(&r.memory.size.val),
                            attributes: attrs(&r.memory.attributes),
                        }),
                        storage: r
                            .storage
                            .iter()
                            .map(|st| res::Storage {
                                name: st.name.clone(),
                                quantity: value(&st.size.val),
                                attributes: attrs(&st.attributes),
                            })
                            .collect(),
                        gpu: Some(res::Gpu {
                            units: value(&r.gpu.units.val),
                            attributes: attrs(&r.gpu.attributes),
                        }),
                        endpoints: r
                            .endpoints
                            .iter()
                            .map(|e| res::Endpoint {
                                kind: e.kind.unwrap_or(0),
                                sequence_number: e.sequence_number,
                            })
                            .collect(),
                    }),
                    count: s.count,
                    price: chain_client::dec::dec_coin("uact", "1").ok(),
                });
            }
            dv4::Group {
                id: Some(dv1::GroupId {
                    owner: owner.into(),
                    dseq: DSEQ,
                    gseq: i as u32 + 1,
                }),
                state: dv4::group::State::Open as i32,
                group_spec: Some(dv4::GroupSpec {
                    name: g.name.clone(),
                    requirements: None,
                    resources: units,
                }),
                created_at: 1,
            }
        })
        .collect()
}

pub fn deployment(owner: &str, hash: Vec<u8>, groups: Vec<dv4::Group>) -> QueryDeploymentResponse {
    QueryDeploymentResponse {
        deployment: Some(dv1::Deployment {
            id: Some(dv1::DeploymentId {
                owner: owner.into(),
                dseq: DSEQ,
            }),
            state: dv1::deployment::State::Active as i32,
            hash,
            created_at: 1,
            reclamation: None,
        }),
        groups,
        escrow_account: None,
    }
}

pub fn lease_ref(owner: &str, provider: &str, gseq: u32) -> LeaseRef {
    LeaseRef {
        owner: owner.into(),
        dseq: DSEQ,
        gseq,
        oseq: 1,
        provider: provider.into(),
    }
}

pub fn lease(owner: &str, provider: &str, gseq: u32) -> Lease {
    let id = lease_ref(owner, provider, gseq);
    Lease::new(
        &id.order().object_name(),
        LeaseSpec {
            lease_id: id,
            price: Price {
                denom: "uact".into(),
                amount: "1".into(),
            },
            created_at: Some(3),
            manifest: None,
            deployment_manifest: None,
        },
    )
}

/// The gateway's decision on `body` and, when accepted, the reconciler's build of each group.
struct Gateway {
    world: Arc<World>,
    config: WorkloadConfig,
    /// Bodies also go through the peer fetcher's hash check (JSON from peers; not gRPC).
    from_peer: bool,
}

impl Gateway {
    fn receive(&self, body: &[u8], max: usize) -> String {
        let tenant = self.world.tenant();
        let provider = self.world.provider();
        // The deployment is made to fit only bodies the gateway would parse: larger ones are
        // refused by their size, and making it would cost the harness more than the gateway.
        let value: Option<serde_json::Value> = (body.len() <= accept::LEASE_MANIFEST_BUDGET)
            .then(|| serde_json::from_slice(body).ok())
            .flatten();
        let hash = value
            .as_ref()
            .and_then(|v| crds::sdl::version::canonical_json(v).ok())
            .map(|c| Sha256::digest(c.as_bytes()).to_vec())
            .unwrap_or_default();
        let groups: Vec<ManifestGroup> = value
            .and_then(|v| serde_json::from_value(v).ok())
            .unwrap_or_default();
        let chain = chain_groups(tenant, &groups);
        let mut leases: Vec<Lease> = (1..=chain.len() as u32)
            .map(|g| lease(tenant, provider, g))
            .collect();
        // Now and then the deployment or the leases are someone else's, or the hash differs.
        let (owner, hash) = match fnv(body) % 16 {
            0 => (tenant, vec![0; 32]),
            1 => (provider, hash),
            2 => {
                leases.clear();
                (tenant, hash)
            }
            _ => (tenant, hash),
        };
        let on_chain = deployment(owner, hash.clone(), chain);
        let mut out = String::new();
        if self.from_peer {
            // A manifest fetched from a peer is checked against the hash first.
            let hex = crds::sdl::version::hex(&hash);
            let peer = operator::gateway::peer::verify_version(body, &hex);
            out.push_str(&crate::targets::outcome("peer", &peer));
        }
        let accepted = match accept(tenant, DSEQ, body, max, Some(&on_chain), &leases) {
            Ok(a) => a,
            Err(e) => return out + &label(" refused", &e.to_string()),
        };
        // As the gateway: nothing is stored, so nothing is built, when the Lease resources could
        // not hold the manifest.
        if let Err(e) = accept::check_storable(&accepted, body.len()) {
            return out + &label(" store", &e.to_string());
        }
        for (_, manifest) in &accepted {
            let built = build(&lease_ref(tenant, provider, 1), manifest, &self.config);
            out.push_str(&crate::targets::outcome(" build", &built));
        }
        out
    }
}

/// JSON at `PUT /deployment/{dseq}/manifest` and from peers.
pub struct ManifestJson(Gateway);

impl ManifestJson {
    pub fn new(world: Arc<World>) -> Self {
        Self(Gateway {
            world,
            config: WorkloadConfig::default(),
            from_peer: true,
        })
    }
}

impl Target for ManifestJson {
    fn name(&self) -> &'static str {
        "manifest_json"
    }

    fn weight(&self) -> u64 {
        12
    }

    fn seeds(&self) -> Vec<Vec<u8>> {
        let mut seeds: Vec<Vec<u8>> = self
            .0
            .world
            .sdls
            .iter()
            .map(|s| s.manifest_json().into_bytes())
            .collect();
        seeds.dedup();
        seeds
    }

    fn mutate(&self, rng: &mut Rng, base: &[u8], donor: &[u8]) -> Vec<u8> {
        if rng.one_in(3) {
            let mut out = base.to_vec();
            mutate::bytes(rng, &mut out, donor);
            return out;
        }
        let mut tree: serde_json::Value =
            serde_json::from_slice(base).unwrap_or(serde_json::Value::Null);
        let donor: serde_json::Value =
            serde_json::from_slice(donor).unwrap_or(serde_json::Value::Null);
        for _ in 0..1 + rng.below(3) {
            mutate::json(rng, &mut tree, &donor);
        }
        serde_json::to_vec(&tree).unwrap_or_default()
    }

    fn run(&mut self, input: &[u8]) -> String {
        self.0
            .receive(input, operator::gateway::DEFAULT_MAX_MANIFEST_BYTES)
    }
}

/// Protobuf `SendManifestRequest` at `LeaseRPC/SendManifest`.
pub struct ManifestGrpc(Gateway);

impl ManifestGrpc {
    pub fn new(world: Arc<World>) -> Self {
        Self(Gateway {
            world,
            config: WorkloadConfig::default(),
            from_peer: false,
        })
    }
}

/// A manifest group as the protobuf the SDK sends.
pub fn to_proto(group: &ManifestGroup) -> mv::Group {
    let value = |v: &crds::sdl::groups::ResourceValue| {
        Some(res::ResourceValue {
            val: v.val.clone().into_bytes(),
        })
    };
    mv::Group {
        name: group.name.clone(),
        services: group
            .services
            .iter()
            .map(|s| mv::Service {
                name: s.name.clone(),
                image: s.image.clone(),
                command: s.command.clone().unwrap_or_default(),
                args: s.args.clone().unwrap_or_default(),
                env: s.env.clone().unwrap_or_default(),
                resources: Some(res::Resources {
                    id: s.resources.id,
                    cpu: Some(res::Cpu {
                        units: value(&s.resources.cpu.units),
                        attributes: vec![],
                    }),
                    memory: Some(res::Memory {
                        quantity: value(&s.resources.memory.size),
                        attributes: vec![],
                    }),
                    storage: s
                        .resources
                        .storage
                        .iter()
                        .map(|st| res::Storage {
                            name: st.name.clone(),
                            quantity: value(&st.size),
                            attributes: vec![],
                        })
                        .collect(),
                    gpu: Some(res::Gpu {
                        units: value(&s.resources.gpu.units),
                        attributes: vec![],
                    }),
                    endpoints: s
                        .resources
                        .endpoints
                        .iter()
                        .map(|e| res::Endpoint {
                            kind: e.kind.unwrap_or(0),
                            sequence_number: e.sequence_number,
                        })
                        .collect(),
                }),
                count: s.count,
                expose: s
                    .expose
                    .iter()
                    .map(|e| mv::ServiceExpose {
                        port: e.port.into(),
                        external_port: e.external_port.into(),
                        proto: e.proto.clone(),
                        service: e.service.clone(),
                        global: e.global,
                        hosts: e.hosts.clone().unwrap_or_default(),
                        http_options: Some(mv::ServiceExposeHttpOptions {
                            max_body_size: e.http_options.max_body_size as u32,
                            read_timeout: e.http_options.read_timeout as u32,
                            send_timeout: e.http_options.send_timeout as u32,
                            next_tries: e.http_options.next_tries as u32,
                            next_timeout: e.http_options.next_timeout as u32,
                            next_cases: e.http_options.next_cases.clone(),
                        }),
                        ip: e.ip.clone(),
                        endpoint_sequence_number: e.endpoint_sequence_number,
                    })
                    .collect(),
                params: None,
                credentials: None,
            })
            .collect(),
    }
}

impl Target for ManifestGrpc {
    fn name(&self) -> &'static str {
        "manifest_grpc"
    }

    fn weight(&self) -> u64 {
        // Its inputs expand (protobuf to JSON) and are the slowest to run.
        4
    }

    fn seeds(&self) -> Vec<Vec<u8>> {
        let w = &self.0.world;
        let lease_id = mv1::LeaseId {
            owner: w.tenant().into(),
            dseq: DSEQ,
            gseq: 1,
            oseq: 1,
            provider: w.provider().into(),
            bseq: 0,
        };
        w.sdls
            .iter()
            .map(|s| {
                lease_rpc::SendManifestRequest {
                    lease_id: Some(lease_id.clone()),
                    manifest: s.manifest().iter().map(to_proto).collect(),
                }
                .encode_to_vec()
            })
            .collect()
    }

    fn mutate(&self, rng: &mut Rng, base: &[u8], donor: &[u8]) -> Vec<u8> {
        let mut out = base.to_vec();
        for _ in 0..1 + rng.below(3) {
            mutate::proto(rng, &mut out, donor);
        }
        out
    }

    fn run(&mut self, input: &[u8]) -> String {
        // As the gateway: list entries counted on the bytes, then decoded, then converted to
        // JSON no larger than a Lease resource stores.
        if let Err(e) = operator::gateway::wire_limits::check_send_manifest(input) {
            return label("wire limits", &e);
        }
        let request = match lease_rpc::SendManifestRequest::decode(input) {
            Ok(r) => r,
            Err(e) => return label("decode", &e.to_string()),
        };
        let body = match operator::gateway::manifest_json_from_proto(
            &request.manifest,
            operator::gateway::accept::LEASE_MANIFEST_BUDGET,
        ) {
            Ok(b) => b,
            Err(e) => return label("json", &e.to_string()),
        };
        self.0.receive(&body, usize::MAX)
    }
}
