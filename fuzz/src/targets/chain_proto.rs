//! Protobuf the provider and the tenant controller decode: the chain's gRPC query answers (and
//! what each is used for: an order's eligibility, price and demand; a deployment against a
//! manifest; a certificate against a peer; an account's `Any`), and the gateway's gRPC requests
//! other than `SendManifest` (which `manifest_grpc` covers). An input is one byte choosing the
//! message type, then its bytes. Seeds are the world's devnet answers and the chain client's wire
//! fixtures.

use std::sync::Arc;
use std::time::SystemTime;

use chain_client::akash::audit::v1 as aq;
use chain_client::akash::cert::v1 as cq;
use chain_client::akash::deployment::v1beta4 as dq;
use chain_client::akash::market::v1beta5 as mq;
use chain_client::akash::provider::lease::v1 as lease_rpc;
use chain_client::akash::provider::v1 as prov;
use chain_client::akash::provider::v1beta4 as pq;
use chain_client::cert::{OnChainCertificate, verify_peer};
use chain_client::chain::Page;
use cosmos_sdk_proto::cosmos::auth::v1beta1 as auth;
use cosmos_sdk_proto::cosmos::bank::v1beta1 as bank;
use cosmos_sdk_proto::cosmos::tx::v1beta1 as tx;
use operator::bidding::eligibility::{BidPolicy, check};
use operator::bidding::pricing::{Price, Pricing, order_max_price};
use prost::Message;

use crate::engine::{Target, label};
use crate::mutate::{self, Rng};
use crate::targets::outcome;
use crate::world::World;

#[path = "../../../chain-client/tests/fixtures/mod.rs"]
mod fixtures;

/// The message types, in input order, with the devnet query path whose answer seeds each.
const KINDS: &[(&str, Option<usize>)] = &[
    ("QueryAccountResponse", Some(0)),
    ("QueryBalanceResponse", Some(2)),
    ("SimulateResponse", Some(5)),
    ("QueryOrdersResponse", Some(10)),
    ("QueryBidsResponse", Some(12)),
    ("QueryLeasesResponse", Some(14)),
    ("QueryParamsResponse", Some(16)),
    ("QueryDeploymentsResponse", Some(7)),
    ("QueryProvidersResponse", Some(17)),
    ("QueryProviderResponse", Some(18)),
    ("QueryCertificatesResponse", Some(19)),
    ("audit QueryProvidersResponse", Some(21)),
    ("BidScreeningRequest", None),
    ("ServiceStatusRequest", None),
    ("ServiceLogsRequest", None),
    ("Status", None),
    ("ServiceStatusResponse", None),
];

pub struct ChainProto {
    world: Arc<World>,
    rt: tokio::runtime::Runtime,
    seeds: Vec<Vec<u8>>,
    pricing: Pricing,
    manifest_body: Vec<u8>,
}

impl ChainProto {
    pub fn new(world: Arc<World>) -> Self {
        let rt = crate::runtime();
        let requests = crate::targets::devnet_query::requests(&world);
        let mut seeds = Vec::new();
        for (kind, (_, path)) in KINDS.iter().enumerate() {
            let mut add = |bytes: Vec<u8>| {
                let mut input = vec![kind as u8];
                input.extend(bytes);
                seeds.push(input);
            };
            if let Some(path) = path {
                let (_, request) = &requests[*path];
                let answer = rt.block_on(devnet::abci_query::query(
                    &world.node,
                    crate::targets::devnet_query::PATHS[*path],
                    request,
                ));
                add(answer.expect("the world's query is answered"));
            }
            match kind {
                3 => add(mq::QueryOrdersResponse {
                    orders: vec![fixtures::order()],
                    pagination: fixtures::page_res(),
                }
                .encode_to_vec()),
                4 => add(mq::QueryBidsResponse {
                    bids: vec![mq::QueryBidResponse {
                        bid: Some(fixtures::bid()),
                        escrow_account: Some(fixtures::escrow_account()),
                    }],
                    pagination: fixtures::page_res(),
                }
                .encode_to_vec()),
                6 => add(mq::QueryParamsResponse {
                    params: Some(fixtures::market_params()),
                }
                .encode_to_vec()),
                8 => add(pq::QueryProvidersResponse {
                    providers: vec![fixtures::provider(fixtures::PROVIDER)],
                    pagination: fixtures::page_res(),
                }
                .encode_to_vec()),
                12 => add(fixtures::bid_screening_request().encode_to_vec()),
                13 => add(fixtures::service_status_request().encode_to_vec()),
                14 => add(fixtures::service_logs_request().encode_to_vec()),
                15 => add(fixtures::status().encode_to_vec()),
                16 => add(fixtures::service_status_response().encode_to_vec()),
                _ => {}
            }
        }
        let rates = serde_json::from_value(serde_json::json!({
            "cpu": 0.01, "memory": 0.002, "storage": {"ephemeral": 0.0001, "beta2": 0.0003},
            "gpu": {"a100": 10, "*": 8}, "endpoint": 0.5, "ip": 2
        }))
        .expect("scale rates");
        let pricing = Pricing::scale(rates).expect("valid rates");
        let manifest_body = world.deployed_sdl().manifest_json().into_bytes();
        Self {
            world,
            rt,
            seeds,
            pricing,
            manifest_body,
        }
    }

    fn orders(&self, r: mq::QueryOrdersResponse) -> String {
        let page = Page::from_proto(r.orders, r.pagination);
        let policy = BidPolicy {
            attributes: vec![crds::resources::Attribute {
                key: "region".into(),
                value: "us-west".into(),
            }],
            allow_owners: Vec::new(),
            deny_owners: vec![fixtures::AUDITOR.into()],
        };
        let mut out = format!("orders:{}", page.items.len().min(3));
        for order in &page.items {
            out.push_str(&outcome(" eligible", &check(order, &policy, &[])));
            let Some(spec) = &order.spec else { continue };
            let max = order_max_price(spec);
            out.push_str(&outcome(" max", &max));
            let demand = operator::inventory::demand_of(spec);
            out.push_str(&outcome(" demand", &demand));
            if let (Ok((denom, max)), Ok(placed)) = (max, demand) {
                let owner = order
                    .id
                    .as_ref()
                    .map(|id| id.owner.clone())
                    .unwrap_or_default();
                let price = self
                    .rt
                    .block_on(self.pricing.price(&owner, spec, &placed, &denom, &max));
                out.push_str(&outcome(" price", &price));
            }
        }
        out
    }

    fn deployments(&self, r: dq::QueryDeploymentsResponse) -> String {
        let tenant = self.world.tenant();
        let leases: Vec<_> = (1..=3)
            .map(|g| crate::targets::manifest::lease(tenant, self.world.provider(), g))
            .collect();
        let mut out = String::from("deployments");
        for d in r.deployments.iter().take(4) {
            let dseq = d
                .deployment
                .as_ref()
                .and_then(|d| d.id.as_ref())
                .map_or(0, |id| id.dseq);
            let decided = operator::gateway::accept(
                tenant,
                dseq,
                &self.manifest_body,
                1 << 22,
                Some(d),
                &leases,
            );
            out.push_str(&outcome(" accept", &decided));
        }
        out
    }

    fn certificates(&self, r: cq::QueryCertificatesResponse) -> String {
        let der = pem_der(&self.world.provider_cert.cert_pem);
        let held: Vec<OnChainCertificate> = r
            .certificates
            .iter()
            .map(|c| OnChainCertificate::from_response(self.world.provider(), c))
            .collect();
        outcome("verify", &verify_peer(&[der], &held, SystemTime::now()))
    }

    fn audited(&self, r: aq::QueryProvidersResponse) -> String {
        // An order that wants the region signed by the world's auditor.
        let mut order = fixtures::order();
        if let Some(spec) = order.spec.as_mut() {
            spec.requirements = Some(
                chain_client::akash::base::attributes::v1::PlacementRequirements {
                    signed_by: Some(chain_client::akash::base::attributes::v1::SignedBy {
                        all_of: vec![self.world.auditor().into()],
                        any_of: vec![fixtures::AUDITOR.into()],
                    }),
                    attributes: vec![chain_client::akash::base::attributes::v1::Attribute {
                        key: "region".into(),
                        value: "us-west".into(),
                    }],
                },
            );
        }
        let policy = BidPolicy {
            attributes: vec![crds::resources::Attribute {
                key: "region".into(),
                value: "us-west".into(),
            }],
            ..Default::default()
        };
        outcome("audited", &check(&order, &policy, &r.providers))
    }
}

/// The DER inside a PEM "CERTIFICATE".
pub fn pem_der(pem: &str) -> Vec<u8> {
    let body: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
    data_encoding::BASE64
        .decode(body.as_bytes())
        .expect("PEM made by rcgen")
}

fn decoded<M: Message + Default>(bytes: &[u8], then: impl FnOnce(M) -> String) -> String {
    match M::decode(bytes) {
        Ok(m) => then(m),
        Err(e) => label("decode", &e.to_string()),
    }
}

impl Target for ChainProto {
    fn name(&self) -> &'static str {
        "chain_proto"
    }

    fn weight(&self) -> u64 {
        14
    }

    fn seeds(&self) -> Vec<Vec<u8>> {
        self.seeds.clone()
    }

    fn mutate(&self, rng: &mut Rng, base: &[u8], donor: &[u8]) -> Vec<u8> {
        let (head, body) = base.split_first().unwrap_or((&0, &[]));
        let mut body = body.to_vec();
        for _ in 0..1 + rng.below(3) {
            mutate::proto(rng, &mut body, donor.get(1..).unwrap_or_default());
        }
        let head = if rng.one_in(20) {
            rng.below(KINDS.len()) as u8
        } else {
            *head
        };
        let mut out = vec![head];
        out.extend(body);
        out
    }

    fn run(&mut self, input: &[u8]) -> String {
        let Some((head, b)) = input.split_first() else {
            return "empty".into();
        };
        let kind = usize::from(*head) % KINDS.len();
        let out = match kind {
            0 => decoded(b, |r: auth::QueryAccountResponse| match r.account {
                None => "account:none".into(),
                Some(any) => outcome(
                    "account",
                    &chain_client::grpc::account_from_any(self.world.tenant(), &any),
                ),
            }),
            1 => decoded(b, |r: bank::QueryBalanceResponse| {
                outcome(
                    "balance",
                    &r.balance.map(|c| c.amount.parse::<u128>()).transpose(),
                )
            }),
            2 => decoded(b, |r: tx::SimulateResponse| {
                format!("gas:{}", r.gas_info.is_some())
            }),
            3 => decoded(b, |r: mq::QueryOrdersResponse| self.orders(r)),
            4 => decoded(b, |r: mq::QueryBidsResponse| {
                let page = Page::from_proto(r.bids, r.pagination);
                let prices: Vec<_> = page
                    .items
                    .iter()
                    .filter_map(|b| b.bid.as_ref()?.price.as_ref())
                    .map(|p| Price::from_wire(&p.amount))
                    .collect();
                prices.iter().map(|p| outcome("bid", p)).collect()
            }),
            5 => decoded(b, |r: mq::QueryLeasesResponse| {
                let page = Page::from_proto(r.leases, r.pagination);
                let prices: Vec<_> = page
                    .items
                    .iter()
                    .filter_map(|l| l.lease.as_ref()?.price.as_ref())
                    .map(|p| Price::from_wire(&p.amount))
                    .collect();
                prices.iter().map(|p| outcome("lease", p)).collect()
            }),
            6 => decoded(b, |r: mq::QueryParamsResponse| {
                format!("params:{}", r.params.is_some())
            }),
            7 => decoded(b, |r: dq::QueryDeploymentsResponse| self.deployments(r)),
            8 => decoded(b, |r: pq::QueryProvidersResponse| {
                format!("providers:{}", r.providers.len().min(3))
            }),
            9 => decoded(b, |r: pq::QueryProviderResponse| {
                format!("provider:{}", r.provider.is_some())
            }),
            10 => decoded(b, |r: cq::QueryCertificatesResponse| self.certificates(r)),
            11 => decoded(b, |r: aq::QueryProvidersResponse| self.audited(r)),
            12 => decoded(b, |r: prov::BidScreeningRequest| {
                format!("screening:{}", r.group_spec.is_some())
            }),
            13 => decoded(b, |r: lease_rpc::ServiceStatusRequest| {
                format!("status request:{}", r.lease_id.is_some())
            }),
            14 => decoded(b, |r: lease_rpc::ServiceLogsRequest| {
                format!("logs request:{}", r.services.len().min(3))
            }),
            15 => decoded(b, |r: prov::Status| {
                format!("status:{}", r.cluster.is_some())
            }),
            _ => decoded(b, |r: lease_rpc::ServiceStatusResponse| {
                format!("service status:{}", r.services.len().min(3))
            }),
        };
        format!("{}:{out}", KINDS[kind].0)
    }
}
