//! Wire compatibility of our Akash messages with the official TypeScript SDK
//! (`@akashnetwork/chain-sdk`, installed under `sdk-ref/`), in both directions:
//!
//! 1. `sdk-ref/wire-goldens.mjs golden` encodes fixtures with the SDK's own generated encoders; we
//!    decode each with our types, compare with the same fixture built here in Rust, and re-encode
//!    to the same bytes.
//! 2. We encode our Rust fixtures and `sdk-ref/wire-goldens.mjs check` decodes them with the SDK
//!    and compares with the SDK's own fixture objects.
//!
//! The fixtures are written twice on purpose, once in JavaScript and once here, so that a wrong
//! field number, type, package name or decimal encoding on either side shows up as a difference.
//! The tests need `node` (Node 20+) on PATH and `sdk-ref/node_modules` installed.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Debug;
use std::path::{Path, PathBuf};
use std::process::Command;

use chain_client::akash::base::attributes::v1::{Attribute, PlacementRequirements, SignedBy};
use chain_client::akash::base::deposit::v1::{Deposit, Source};
use chain_client::akash::base::resources::v1beta4::{
    Cpu, Endpoint, Gpu, Memory, ResourceValue, Resources, Storage, endpoint,
};
use chain_client::akash::deployment::v1 as dv1;
use chain_client::akash::deployment::v1beta4 as dv4;
use chain_client::akash::escrow::{id::v1 as eid, types::v1 as etypes, v1 as escrow};
use chain_client::akash::inventory::v1 as inv;
use chain_client::akash::manifest::v2beta3 as manifest;
use chain_client::akash::market::v1 as mv1;
use chain_client::akash::market::v1beta5 as mv5;
use chain_client::akash::provider::lease::v1 as lease_rpc;
use chain_client::akash::provider::v1 as gateway;
use chain_client::akash::provider::v1beta4 as pv4;
use chain_client::akash::{audit::v1 as audit, cert::v1 as cert};
use chain_client::cosmos_sdk_proto::cosmos::base::query::v1beta1::{PageRequest, PageResponse};
use chain_client::cosmos_sdk_proto::cosmos::base::v1beta1::{Coin, DecCoin};
use chain_client::dec;
use chain_client::k8s::io::apimachinery::pkg::api::resource::Quantity;
use prost::Message;

// ---------------------------------------------------------------------------------------------
// Fixture building blocks: the same values as in sdk-ref/wire-goldens.mjs.

const OWNER: &str = "akash1tenant0wner9x8c7v6b5n4m3l2k1j0h9g8f7d6s5";
const PROVIDER: &str = "akash1pr0vider2q3w4e5r6t7y8u9i0o1p2a3s4d5f6g7";
const AUDITOR: &str = "akash1aud1tor5z4x3c2v1b0n9m8l7k6j5h4g3f2d1s0";
const DSEQ: u64 = 18_446_744_073_709_551_000;
const GSEQ: u32 = 4_294_967_000;
const OSEQ: u32 = 7;
const BSEQ: u32 = 3;
const HEIGHT: i64 = 9_007_199_254_740_993;
const LATER: i64 = 9_223_372_036_854_775_000;

fn s(v: &str) -> String {
    v.to_owned()
}

fn bytes(n: usize, seed: usize) -> Vec<u8> {
    (0..n).map(|i| ((i * 37 + seed) & 0xff) as u8).collect()
}

fn did() -> Option<dv1::DeploymentId> {
    Some(dv1::DeploymentId {
        owner: s(OWNER),
        dseq: DSEQ,
    })
}

fn gid() -> Option<dv1::GroupId> {
    Some(dv1::GroupId {
        owner: s(OWNER),
        dseq: DSEQ,
        gseq: GSEQ,
    })
}

fn oid() -> Option<mv1::OrderId> {
    Some(mv1::OrderId {
        owner: s(OWNER),
        dseq: DSEQ,
        gseq: GSEQ,
        oseq: OSEQ,
    })
}

fn bid_id() -> Option<mv1::BidId> {
    Some(mv1::BidId {
        owner: s(OWNER),
        dseq: DSEQ,
        gseq: GSEQ,
        oseq: OSEQ,
        provider: s(PROVIDER),
        bseq: BSEQ,
    })
}

fn lease_id() -> Option<mv1::LeaseId> {
    Some(mv1::LeaseId {
        owner: s(OWNER),
        dseq: DSEQ,
        gseq: GSEQ,
        oseq: OSEQ,
        provider: s(PROVIDER),
        bseq: BSEQ,
    })
}

fn coin(denom: &str, amount: &str) -> Option<Coin> {
    Some(Coin {
        denom: s(denom),
        amount: s(amount),
    })
}

/// A DecCoin from a human decimal; the amount goes on the wire as value * 10^18.
fn dc(denom: &str, human: &str) -> DecCoin {
    dec::dec_coin(denom, human).expect("valid decimal")
}

fn dec(denom: &str, human: &str) -> Option<DecCoin> {
    Some(dc(denom, human))
}

fn attrs(a: &str, b: &str) -> Vec<Attribute> {
    [a, b]
        .iter()
        .map(|k| Attribute {
            key: format!("{k}-key"),
            value: format!("{k}-value"),
        })
        .collect()
}

fn rv(n: &str) -> Option<ResourceValue> {
    Some(ResourceValue {
        val: n.as_bytes().to_vec(),
    })
}

fn resources(id: u32) -> Resources {
    Resources {
        id,
        cpu: Some(Cpu {
            units: rv("1500"),
            attributes: attrs("arch", "cpu-model"),
        }),
        memory: Some(Memory {
            quantity: rv("34359738368"),
            attributes: attrs("mem-a", "mem-b"),
        }),
        storage: vec![
            Storage {
                name: s("default"),
                quantity: rv("1099511627776"),
                attributes: attrs("persistent", "class"),
            },
            Storage {
                name: s("data"),
                quantity: rv("18446744073709551616000"),
                attributes: attrs("st-a", "st-b"),
            },
        ],
        gpu: Some(Gpu {
            units: rv("2"),
            attributes: vec![
                Attribute {
                    key: s("vendor/nvidia/model/a100"),
                    value: s("true"),
                },
                Attribute {
                    key: s("vendor/nvidia/model/h100/ram/80Gi/interface/sxm"),
                    value: s("true"),
                },
            ],
        }),
        endpoints: vec![
            Endpoint {
                kind: endpoint::Kind::RandomPort as i32,
                sequence_number: 3,
            },
            Endpoint {
                kind: endpoint::Kind::LeasedIp as i32,
                sequence_number: 4_294_967_295,
            },
        ],
    }
}

fn resource_unit(id: u32) -> dv4::ResourceUnit {
    dv4::ResourceUnit {
        resource: Some(resources(id)),
        count: 10 + id,
        price: dec("uact", &format!("{id}.123456789012345678")),
    }
}

fn group_spec(name: &str) -> dv4::GroupSpec {
    dv4::GroupSpec {
        name: s(name),
        requirements: Some(PlacementRequirements {
            signed_by: Some(SignedBy {
                all_of: vec![s(AUDITOR), s(OWNER)],
                any_of: vec![s(PROVIDER), s(AUDITOR)],
            }),
            attributes: attrs("region", "tier"),
        }),
        resources: vec![resource_unit(1), resource_unit(2)],
    }
}

fn deposit() -> Deposit {
    Deposit {
        amount: coin("uact", "5000000"),
        sources: vec![Source::Balance as i32, Source::Grant as i32],
    }
}

fn deployment() -> dv1::Deployment {
    dv1::Deployment {
        id: did(),
        state: dv1::deployment::State::Closed as i32,
        hash: bytes(32, 11),
        created_at: HEIGHT,
        reclamation: None,
    }
}

fn group(name: &str) -> dv4::Group {
    dv4::Group {
        id: gid(),
        state: dv4::group::State::InsufficientFunds as i32,
        group_spec: Some(group_spec(name)),
        created_at: LATER,
    }
}

fn order() -> mv5::Order {
    mv5::Order {
        id: oid(),
        state: mv5::order::State::Active as i32,
        spec: Some(group_spec("westcoast")),
        created_at: HEIGHT,
        reclamation: None,
    }
}

fn offer_prices() -> mv5::OfferPrices {
    mv5::OfferPrices {
        cpu: dec("uact", "0.001"),
        memory: dec("uact", "0.000000000000000001"),
        storage: vec![
            mv5::StorageOfferPrice {
                name: s("default"),
                price: dec("uact", "0.25"),
            },
            mv5::StorageOfferPrice {
                name: s("data"),
                price: dec("uakt", "1000000000000"),
            },
        ],
        gpu: dec("uact", "42"),
        endpoints: vec![
            mv5::EndpointOfferPrice {
                kind: endpoint::Kind::RandomPort as i32,
                price: dec("uact", "0.5"),
            },
            mv5::EndpointOfferPrice {
                kind: endpoint::Kind::LeasedIp as i32,
                price: dec("uakt", "7.75"),
            },
        ],
    }
}

fn resource_offer(id: u32) -> mv5::ResourceOffer {
    mv5::ResourceOffer {
        resources: Some(resources(id)),
        count: 2 + id,
        prices: Some(offer_prices()),
    }
}

fn bid() -> mv5::Bid {
    mv5::Bid {
        id: bid_id(),
        state: mv5::bid::State::Lost as i32,
        price: dec("uact", "123.456789"),
        created_at: HEIGHT,
        resources_offer: vec![resource_offer(1), resource_offer(2)],
        reclamation_window: None,
    }
}

fn lease() -> mv1::Lease {
    mv1::Lease {
        id: lease_id(),
        state: mv1::lease::State::InsufficientFunds as i32,
        price: dec("uact", "9.99"),
        created_at: HEIGHT,
        closed_on: LATER,
        reason: mv1::LeaseClosedReason::ManifestTimeout as i32,
        reclamation: None,
    }
}

fn escrow_account() -> etypes::Account {
    etypes::Account {
        id: Some(eid::Account {
            scope: eid::Scope::Deployment as i32,
            xid: format!("{OWNER}/{DSEQ}"),
        }),
        state: Some(etypes::AccountState {
            owner: s(OWNER),
            state: etypes::State::Overdrawn as i32,
            transferred: vec![dc("uact", "100.5"), dc("uakt", "0.000001")],
            settled_at: HEIGHT,
            funds: vec![
                etypes::Balance {
                    denom: s("uact"),
                    amount: dec::to_wire("12.5").expect("decimal"),
                },
                etypes::Balance {
                    denom: s("uakt"),
                    amount: dec::to_wire("-0.75").expect("decimal"),
                },
            ],
            deposits: vec![
                etypes::Depositor {
                    owner: s(OWNER),
                    height: HEIGHT,
                    source: Source::Balance as i32,
                    balance: dec("uact", "5000000"),
                    direct: true,
                },
                etypes::Depositor {
                    owner: s(AUDITOR),
                    height: LATER,
                    source: Source::Grant as i32,
                    balance: dec("uakt", "2.5"),
                    direct: true,
                },
            ],
        }),
    }
}

fn escrow_payment() -> etypes::Payment {
    etypes::Payment {
        id: Some(eid::Payment {
            aid: Some(eid::Account {
                scope: eid::Scope::Bid as i32,
                xid: format!("{OWNER}/{DSEQ}"),
            }),
            xid: format!("{GSEQ}/{OSEQ}/{PROVIDER}"),
        }),
        state: Some(etypes::PaymentState {
            owner: s(PROVIDER),
            state: etypes::State::Closed as i32,
            rate: dec("uact", "0.0123"),
            balance: dec("uact", "456.789"),
            unsettled: dec("uact", "3.000000000000000001"),
            withdrawn: coin("uact", "18446744073709551617"),
        }),
    }
}

fn provider_info() -> Option<pv4::Info> {
    Some(pv4::Info {
        email: s("ops@example.com"),
        website: s("https://example.com"),
    })
}

fn provider(owner: &str) -> pv4::Provider {
    pv4::Provider {
        owner: s(owner),
        host_uri: s("https://provider.example.com:8443"),
        attributes: attrs("host", "organization"),
        info: provider_info(),
    }
}

const PEM_CERT: &str =
    "-----BEGIN CERTIFICATE-----\nMIIBkTCCATegAwIBAgIIGHc=\n-----END CERTIFICATE-----\n";
const PEM_KEY: &str =
    "-----BEGIN EC PUBLIC KEY-----\nMFkwEwYHKoZIzj0CAQYIKoZIzj0=\n-----END EC PUBLIC KEY-----\n";

fn certificate(state: cert::State) -> cert::Certificate {
    cert::Certificate {
        state: state as i32,
        cert: PEM_CERT.as_bytes().to_vec(),
        pubkey: PEM_KEY.as_bytes().to_vec(),
    }
}

fn page_req() -> Option<PageRequest> {
    Some(PageRequest {
        key: bytes(9, 3),
        offset: u64::MAX,
        limit: 1000,
        count_total: true,
        reverse: true,
    })
}

fn page_res() -> Option<PageResponse> {
    Some(PageResponse {
        next_key: bytes(12, 5),
        total: 9_007_199_254_740_993,
    })
}

// ---- provider gateway ----

fn q(v: &str) -> Option<Quantity> {
    Some(Quantity { string: Some(s(v)) })
}

fn resource_pair(a: u32) -> Option<inv::ResourcePair> {
    Some(inv::ResourcePair {
        allocatable: q(&a.to_string()),
        allocated: q(&(a / 2).to_string()),
        attributes: attrs("rp-a", "rp-b"),
        capacity: q(&(a * 2).to_string()),
    })
}

fn node(name: &str) -> inv::Node {
    inv::Node {
        name: s(name),
        resources: Some(inv::NodeResources {
            cpu: Some(inv::Cpu {
                quantity: resource_pair(64),
                info: vec![
                    inv::CpuInfo {
                        id: s("0"),
                        vendor: s("GenuineIntel"),
                        model: s("Xeon"),
                        vcores: 32,
                    },
                    inv::CpuInfo {
                        id: s("1"),
                        vendor: s("AuthenticAMD"),
                        model: s("EPYC"),
                        vcores: 64,
                    },
                ],
            }),
            memory: Some(inv::Memory {
                quantity: resource_pair(128),
                info: vec![
                    inv::MemoryInfo {
                        vendor: s("Samsung"),
                        r#type: s("DDR5"),
                        total_size: s("64Gi"),
                        speed: s("4800"),
                    },
                    inv::MemoryInfo {
                        vendor: s("Micron"),
                        r#type: s("DDR4"),
                        total_size: s("32Gi"),
                        speed: s("3200"),
                    },
                ],
            }),
            gpu: Some(inv::Gpu {
                quantity: resource_pair(8),
                info: vec![
                    inv::GpuInfo {
                        vendor: s("nvidia"),
                        vendor_id: s("10de"),
                        name: s("a100"),
                        modelid: s("20b5"),
                        interface: s("pcie"),
                        memory_size: s("80Gi"),
                    },
                    inv::GpuInfo {
                        vendor: s("nvidia"),
                        vendor_id: s("10de"),
                        name: s("h100"),
                        modelid: s("2330"),
                        interface: s("sxm"),
                        memory_size: s("80Gi"),
                    },
                ],
            }),
            ephemeral_storage: resource_pair(1000),
            volumes_attached: resource_pair(4),
            volumes_mounted: resource_pair(2),
        }),
        capabilities: Some(inv::NodeCapabilities {
            storage_classes: vec![s("beta2"), s("beta3")],
        }),
    }
}

fn resources_metric() -> Option<gateway::ResourcesMetric> {
    Some(gateway::ResourcesMetric {
        cpu: q("4"),
        memory: q("8Gi"),
        gpu: q("1"),
        ephemeral_storage: q("100Gi"),
        storage: BTreeMap::from([
            (
                s("beta2"),
                Quantity {
                    string: Some(s("1Ti")),
                },
            ),
            (
                s("beta3"),
                Quantity {
                    string: Some(s("2Ti")),
                },
            ),
        ]),
    })
}

fn status() -> gateway::Status {
    gateway::Status {
        errors: vec![s("inventory stale"), s("rpc timeout")],
        cluster: Some(gateway::ClusterStatus {
            leases: Some(gateway::Leases { active: 5 }),
            inventory: Some(gateway::Inventory {
                cluster: Some(inv::Cluster {
                    nodes: vec![node("node-a"), node("node-b")],
                    storage: vec![
                        inv::Storage {
                            quantity: resource_pair(500),
                            info: Some(inv::StorageInfo {
                                class: s("beta2"),
                                iops: s("1000"),
                            }),
                        },
                        inv::Storage {
                            quantity: resource_pair(900),
                            info: Some(inv::StorageInfo {
                                class: s("beta3"),
                                iops: s("50000"),
                            }),
                        },
                    ],
                }),
                reservations: Some(gateway::Reservations {
                    pending: Some(gateway::ReservationsMetric {
                        count: 2,
                        resources: resources_metric(),
                    }),
                    active: Some(gateway::ReservationsMetric {
                        count: 7,
                        resources: resources_metric(),
                    }),
                }),
            }),
        }),
        bid_engine: Some(gateway::BidEngineStatus { orders: 3 }),
        manifest: Some(gateway::ManifestStatus { deployments: 4 }),
        public_hostnames: vec![s("provider.example.com"), s("ingress.example.com")],
        // 2026-11-25T19:30:15.123Z
        timestamp: Some(prost_types::Timestamp {
            seconds: 1_795_635_015,
            nanos: 123_000_000,
        }),
    }
}

fn creds(u: &str) -> Option<manifest::ImageCredentials> {
    Some(manifest::ImageCredentials {
        host: s("registry.example.com"),
        email: format!("{u}@example.com"),
        username: s(u),
        password: format!("{u}-secret"),
    })
}

fn expose(port: u32, ip: &str) -> manifest::ServiceExpose {
    manifest::ServiceExpose {
        port,
        external_port: 80,
        proto: s("TCP"),
        service: s("web"),
        global: true,
        hosts: vec![s("a.example.com"), s("b.example.com")],
        http_options: Some(manifest::ServiceExposeHttpOptions {
            max_body_size: 1_048_576,
            read_timeout: 60_000,
            send_timeout: 60_001,
            next_tries: 3,
            next_timeout: 10,
            next_cases: vec![s("error"), s("timeout")],
        }),
        ip: s(ip),
        endpoint_sequence_number: port,
    }
}

fn service(name: &str) -> manifest::Service {
    manifest::Service {
        name: s(name),
        image: format!("ghcr.io/example/{name}:1.0"),
        command: vec![s("/bin/sh"), s("-c")],
        args: vec![s("exec server"), s("--verbose")],
        env: vec![s("A=1"), s("B=two")],
        resources: Some(resources(1)),
        count: 3,
        expose: vec![expose(8080, "ip-a"), expose(9090, "ip-b")],
        params: Some(manifest::ServiceParams {
            storage: vec![
                manifest::StorageParams {
                    name: s("data"),
                    mount: s("/var/data"),
                    read_only: true,
                },
                manifest::StorageParams {
                    name: s("cache"),
                    mount: s("/cache"),
                    read_only: true,
                },
            ],
            credentials: creds("params"),
            permissions: Some(manifest::ServicePermissions {
                read: vec![s("deployment"), s("logs")],
            }),
        }),
        credentials: creds(name),
    }
}

fn service_status(name: &str) -> lease_rpc::ServiceStatus {
    lease_rpc::ServiceStatus {
        name: s(name),
        status: Some(lease_rpc::LeaseServiceStatus {
            available: 2,
            total: 3,
            uris: vec![
                format!("{name}.example.com"),
                format!("{name}.alt.example.com"),
            ],
            observed_generation: HEIGHT,
            replicas: 3,
            updated_replicas: 3,
            ready_replicas: 2,
            available_replicas: 2,
        }),
        ports: vec![
            lease_rpc::ForwarderPortStatus {
                host: s("node-a"),
                port: 8080,
                external_port: 31000,
                proto: s("TCP"),
                name: s(name),
            },
            lease_rpc::ForwarderPortStatus {
                host: s("node-b"),
                port: 53,
                external_port: 31001,
                proto: s("UDP"),
                name: format!("{name}-dns"),
            },
        ],
        ips: vec![
            lease_rpc::LeaseIpStatus {
                port: 443,
                external_port: 443,
                protocol: s("TCP"),
                ip: s("203.0.113.7"),
            },
            lease_rpc::LeaseIpStatus {
                port: 51820,
                external_port: 51820,
                protocol: s("UDP"),
                ip: s("203.0.113.8"),
            },
        ],
    }
}

fn market_params() -> mv5::Params {
    mv5::Params {
        bid_min_deposit: coin("uakt", "500000"),
        order_max_bids: 20,
        bid_min_deposits: vec![
            Coin {
                denom: s("uakt"),
                amount: s("500000"),
            },
            Coin {
                denom: s("uact"),
                amount: s("500000"),
            },
        ],
        min_reclamation_window: None,
        max_reclamation_window: None,
    }
}

// ---------------------------------------------------------------------------------------------
// The cases.

/// One fixture of any message type, with what the tests need to do with it.
trait WireCase {
    fn full_name(&self) -> String;
    fn encode(&self) -> Vec<u8>;
    /// Decodes `bytes` as this type, requires it to equal this fixture, and returns the
    /// re-encoding of what was decoded.
    fn decode_matches(&self, bytes: &[u8]) -> Result<Vec<u8>, String>;
    /// The type URL of the message in a Cosmos `Any`, from its `prost::Name` impl.
    fn type_url(&self) -> String;
}

impl<M> WireCase for M
where
    M: Message + prost::Name + Default + PartialEq + Debug + 'static,
{
    fn full_name(&self) -> String {
        M::full_name()
    }

    fn encode(&self) -> Vec<u8> {
        self.encode_to_vec()
    }

    fn decode_matches(&self, bytes: &[u8]) -> Result<Vec<u8>, String> {
        let decoded = M::decode(bytes).map_err(|e| format!("does not decode: {e}"))?;
        if &decoded != self {
            return Err(format!(
                "decodes to a different value.\n  SDK bytes decode to: {decoded:?}\n  our fixture:         {self:?}"
            ));
        }
        Ok(decoded.encode_to_vec())
    }

    fn type_url(&self) -> String {
        M::type_url()
    }
}

struct Case {
    name: &'static str,
    msg: Box<dyn WireCase>,
}

fn case(name: &'static str, msg: impl WireCase + 'static) -> Case {
    Case {
        name,
        msg: Box::new(msg),
    }
}

/// Messages that embed `akash.base.deposit.v1.Deposit` with `sources` set. We encode
/// `sources` packed (proto3 default, as the Go chain does); SDK 1.0.0-alpha.25 writes it unpacked.
/// Both decode to the same value on every side, so for these only the bytes differ.
const PACKED_SOURCES: &[&str] = &[
    "MsgCreateDeployment",
    "MsgCreateBid",
    "MsgAccountDeposit",
    "Deposit",
];

fn cases() -> Vec<Case> {
    let deployment_response = |a: &str, b: &str| dv4::QueryDeploymentResponse {
        deployment: Some(deployment()),
        groups: vec![group(a), group(b)],
        escrow_account: Some(escrow_account()),
    };
    let bid_response = || mv5::QueryBidResponse {
        bid: Some(bid()),
        escrow_account: Some(escrow_account()),
    };
    let lease_response = || mv5::QueryLeaseResponse {
        lease: Some(lease()),
        escrow_payment: Some(escrow_payment()),
    };
    vec![
        // deployment
        case(
            "MsgCreateDeployment",
            dv4::MsgCreateDeployment {
                id: did(),
                groups: vec![group_spec("westcoast"), group_spec("eu")],
                hash: bytes(32, 1),
                deposit: Some(deposit()),
                reclamation: None,
            },
        ),
        case(
            "MsgUpdateDeployment",
            dv4::MsgUpdateDeployment {
                id: did(),
                hash: bytes(32, 2),
            },
        ),
        case("MsgCloseDeployment", dv4::MsgCloseDeployment { id: did() }),
        case("MsgCloseGroup", dv4::MsgCloseGroup { id: gid() }),
        case("MsgPauseGroup", dv4::MsgPauseGroup { id: gid() }),
        case("MsgStartGroup", dv4::MsgStartGroup { id: gid() }),
        case("Deployment", deployment()),
        case("Group", group("westcoast")),
        case(
            "EventDeploymentCreated",
            dv1::EventDeploymentCreated {
                id: did(),
                hash: bytes(32, 3),
            },
        ),
        case(
            "EventDeploymentUpdated",
            dv1::EventDeploymentUpdated {
                id: did(),
                hash: bytes(32, 4),
            },
        ),
        case(
            "EventDeploymentClosed",
            dv1::EventDeploymentClosed { id: did() },
        ),
        case("EventGroupStarted", dv1::EventGroupStarted { id: gid() }),
        case("EventGroupPaused", dv1::EventGroupPaused { id: gid() }),
        case("EventGroupClosed", dv1::EventGroupClosed { id: gid() }),
        case(
            "QueryDeploymentsRequest",
            dv4::QueryDeploymentsRequest {
                filters: Some(dv4::DeploymentFilters {
                    owner: s(OWNER),
                    dseq: DSEQ,
                    state: s("active"),
                }),
                pagination: page_req(),
            },
        ),
        case(
            "QueryDeploymentsResponse",
            dv4::QueryDeploymentsResponse {
                deployments: vec![
                    deployment_response("westcoast", "eu"),
                    deployment_response("asia", "us"),
                ],
                pagination: page_res(),
            },
        ),
        case(
            "QueryDeploymentRequest",
            dv4::QueryDeploymentRequest { id: did() },
        ),
        case(
            "QueryDeploymentResponse",
            deployment_response("westcoast", "eu"),
        ),
        case("QueryGroupRequest", dv4::QueryGroupRequest { id: gid() }),
        case(
            "QueryGroupResponse",
            dv4::QueryGroupResponse {
                group: Some(group("westcoast")),
            },
        ),
        // market
        case(
            "MsgCreateBid",
            mv5::MsgCreateBid {
                id: bid_id(),
                price: dec("uact", "1.5"),
                deposit: Some(deposit()),
                resources_offer: vec![resource_offer(1), resource_offer(2)],
                reclamation_window: None,
            },
        ),
        case(
            "MsgCloseBid",
            mv5::MsgCloseBid {
                id: bid_id(),
                reason: mv1::LeaseClosedReason::Unstable as i32,
            },
        ),
        case("MsgCreateLease", mv5::MsgCreateLease { bid_id: bid_id() }),
        case("MsgWithdrawLease", mv5::MsgWithdrawLease { id: lease_id() }),
        case(
            "MsgCloseLease",
            mv5::MsgCloseLease {
                id: lease_id(),
                reason: mv1::LeaseClosedReason::LeaseClosedOwner as i32,
            },
        ),
        case("Order", order()),
        case("Bid", bid()),
        case("Lease", lease()),
        case("Params", market_params()),
        case("EventOrderCreated", mv1::EventOrderCreated { id: oid() }),
        case("EventOrderClosed", mv1::EventOrderClosed { id: oid() }),
        case(
            "EventBidCreated",
            mv1::EventBidCreated {
                id: bid_id(),
                price: dec("uact", "2.25"),
            },
        ),
        case("EventBidClosed", mv1::EventBidClosed { id: bid_id() }),
        case(
            "EventLeaseCreated",
            mv1::EventLeaseCreated {
                id: lease_id(),
                price: dec("uact", "3.125"),
            },
        ),
        case(
            "EventLeaseClosed",
            mv1::EventLeaseClosed {
                id: lease_id(),
                reason: mv1::LeaseClosedReason::InsufficientFunds as i32,
            },
        ),
        case(
            "QueryOrdersRequest",
            mv5::QueryOrdersRequest {
                filters: Some(mv5::OrderFilters {
                    owner: s(OWNER),
                    dseq: DSEQ,
                    gseq: GSEQ,
                    oseq: OSEQ,
                    state: s("open"),
                }),
                pagination: page_req(),
            },
        ),
        case(
            "QueryOrdersResponse",
            mv5::QueryOrdersResponse {
                orders: vec![order(), order()],
                pagination: page_res(),
            },
        ),
        case("QueryOrderRequest", mv5::QueryOrderRequest { id: oid() }),
        case(
            "QueryOrderResponse",
            mv5::QueryOrderResponse {
                order: Some(order()),
            },
        ),
        case(
            "QueryBidsRequest",
            mv5::QueryBidsRequest {
                filters: Some(mv5::BidFilters {
                    owner: s(OWNER),
                    dseq: DSEQ,
                    gseq: GSEQ,
                    oseq: OSEQ,
                    provider: s(PROVIDER),
                    state: s("open"),
                    bseq: BSEQ,
                }),
                pagination: page_req(),
            },
        ),
        case(
            "QueryBidsResponse",
            mv5::QueryBidsResponse {
                bids: vec![bid_response(), bid_response()],
                pagination: page_res(),
            },
        ),
        case("QueryBidRequest", mv5::QueryBidRequest { id: bid_id() }),
        case("QueryBidResponse", bid_response()),
        case(
            "QueryLeasesRequest",
            mv5::QueryLeasesRequest {
                filters: Some(mv1::LeaseFilters {
                    owner: s(OWNER),
                    dseq: DSEQ,
                    gseq: GSEQ,
                    oseq: OSEQ,
                    provider: s(PROVIDER),
                    state: s("active"),
                    bseq: BSEQ,
                }),
                pagination: page_req(),
            },
        ),
        case(
            "QueryLeasesResponse",
            mv5::QueryLeasesResponse {
                leases: vec![lease_response(), lease_response()],
                pagination: page_res(),
            },
        ),
        case(
            "QueryLeaseRequest",
            mv5::QueryLeaseRequest { id: lease_id() },
        ),
        case("QueryLeaseResponse", lease_response()),
        case("QueryMarketParamsRequest", mv5::QueryParamsRequest {}),
        case(
            "QueryMarketParamsResponse",
            mv5::QueryParamsResponse {
                params: Some(market_params()),
            },
        ),
        // escrow
        case(
            "MsgAccountDeposit",
            escrow::MsgAccountDeposit {
                signer: s(OWNER),
                id: Some(eid::Account {
                    scope: eid::Scope::Deployment as i32,
                    xid: format!("{OWNER}/{DSEQ}"),
                }),
                deposit: Some(deposit()),
            },
        ),
        case("Deposit", deposit()),
        case("EscrowAccount", escrow_account()),
        case("EscrowPayment", escrow_payment()),
        case(
            "QueryAccountsRequest",
            escrow::QueryAccountsRequest {
                state: s("open"),
                xid: format!("{OWNER}/{DSEQ}"),
                pagination: page_req(),
            },
        ),
        case(
            "QueryAccountsResponse",
            escrow::QueryAccountsResponse {
                accounts: vec![escrow_account(), escrow_account()],
                pagination: page_res(),
            },
        ),
        case(
            "QueryPaymentsRequest",
            escrow::QueryPaymentsRequest {
                state: s("overdrawn"),
                xid: format!("{OWNER}/{DSEQ}/{GSEQ}"),
                pagination: page_req(),
            },
        ),
        case(
            "QueryPaymentsResponse",
            escrow::QueryPaymentsResponse {
                payments: vec![escrow_payment(), escrow_payment()],
                pagination: page_res(),
            },
        ),
        // provider
        case(
            "MsgCreateProvider",
            pv4::MsgCreateProvider {
                owner: s(PROVIDER),
                host_uri: s("https://provider.example.com:8443"),
                attributes: attrs("host", "organization"),
                info: provider_info(),
            },
        ),
        case(
            "MsgUpdateProvider",
            pv4::MsgUpdateProvider {
                owner: s(PROVIDER),
                host_uri: s("https://new.example.com:8443"),
                attributes: attrs("host", "organization"),
                info: provider_info(),
            },
        ),
        case(
            "MsgDeleteProvider",
            pv4::MsgDeleteProvider { owner: s(PROVIDER) },
        ),
        case("Provider", provider(PROVIDER)),
        case(
            "EventProviderCreated",
            pv4::EventProviderCreated { owner: s(PROVIDER) },
        ),
        case(
            "EventProviderUpdated",
            pv4::EventProviderUpdated { owner: s(PROVIDER) },
        ),
        case(
            "EventProviderDeleted",
            pv4::EventProviderDeleted { owner: s(PROVIDER) },
        ),
        case(
            "QueryProvidersRequest",
            pv4::QueryProvidersRequest {
                pagination: page_req(),
            },
        ),
        case(
            "QueryProvidersResponse",
            pv4::QueryProvidersResponse {
                providers: vec![provider(PROVIDER), provider(AUDITOR)],
                pagination: page_res(),
            },
        ),
        case(
            "QueryProviderRequest",
            pv4::QueryProviderRequest { owner: s(PROVIDER) },
        ),
        case(
            "QueryProviderResponse",
            pv4::QueryProviderResponse {
                provider: Some(provider(PROVIDER)),
            },
        ),
        // cert
        case(
            "MsgCreateCertificate",
            cert::MsgCreateCertificate {
                owner: s(PROVIDER),
                cert: PEM_CERT.as_bytes().to_vec(),
                pubkey: PEM_KEY.as_bytes().to_vec(),
            },
        ),
        case(
            "MsgRevokeCertificate",
            cert::MsgRevokeCertificate {
                id: Some(cert::Id {
                    owner: s(PROVIDER),
                    serial: s("1764099015123456789"),
                }),
            },
        ),
        case("Certificate", certificate(cert::State::Revoked)),
        case(
            "QueryCertificatesRequest",
            cert::QueryCertificatesRequest {
                filter: Some(cert::CertificateFilter {
                    owner: s(PROVIDER),
                    serial: s("1764099015123456789"),
                    state: s("valid"),
                }),
                pagination: page_req(),
            },
        ),
        case(
            "QueryCertificatesResponse",
            cert::QueryCertificatesResponse {
                certificates: vec![
                    cert::CertificateResponse {
                        certificate: Some(certificate(cert::State::Revoked)),
                        serial: s("1764099015123456789"),
                    },
                    cert::CertificateResponse {
                        certificate: Some(certificate(cert::State::Valid)),
                        serial: s("42"),
                    },
                ],
                pagination: page_res(),
            },
        ),
        // audit
        case(
            "MsgSignProviderAttributes",
            audit::MsgSignProviderAttributes {
                owner: s(PROVIDER),
                auditor: s(AUDITOR),
                attributes: attrs("audited-a", "audited-b"),
            },
        ),
        case(
            "MsgDeleteProviderAttributes",
            audit::MsgDeleteProviderAttributes {
                owner: s(PROVIDER),
                auditor: s(AUDITOR),
                keys: vec![s("audited-a-key"), s("audited-b-key")],
            },
        ),
        case(
            "EventTrustedAuditorCreated",
            audit::EventTrustedAuditorCreated {
                owner: s(PROVIDER),
                auditor: s(AUDITOR),
            },
        ),
        case(
            "EventTrustedAuditorDeleted",
            audit::EventTrustedAuditorDeleted {
                owner: s(PROVIDER),
                auditor: s(AUDITOR),
            },
        ),
        // provider gateway
        case("Status", status()),
        case(
            "BidScreeningRequest",
            gateway::BidScreeningRequest {
                group_spec: Some(group_spec("westcoast")),
                hostnames: vec![s("a.example.com"), s("b.example.com")],
            },
        ),
        case(
            "BidScreeningResponse",
            gateway::BidScreeningResponse {
                passed: true,
                reasons: vec![s("gpu model"), s("storage class")],
                resource_offer: Some(resource_offer(1)),
                price: dec("uact", "17.5"),
            },
        ),
        case(
            "SendManifestRequest",
            lease_rpc::SendManifestRequest {
                lease_id: lease_id(),
                manifest: vec![
                    manifest::Group {
                        name: s("westcoast"),
                        services: vec![service("web"), service("db")],
                    },
                    manifest::Group {
                        name: s("eu"),
                        services: vec![service("api"), service("worker")],
                    },
                ],
            },
        ),
        case(
            "ServiceStatusRequest",
            lease_rpc::ServiceStatusRequest {
                lease_id: lease_id(),
                services: vec![s("web"), s("db")],
            },
        ),
        case(
            "ServiceStatusResponse",
            lease_rpc::ServiceStatusResponse {
                services: vec![service_status("web"), service_status("db")],
            },
        ),
        case(
            "ServiceLogsRequest",
            lease_rpc::ServiceLogsRequest {
                lease_id: lease_id(),
                services: vec![s("web"), s("db")],
            },
        ),
        case(
            "ServiceLogsResponse",
            lease_rpc::ServiceLogsResponse {
                services: vec![
                    lease_rpc::ServiceLogs {
                        name: s("web"),
                        logs: b"line 1\nline 2\n".to_vec(),
                    },
                    lease_rpc::ServiceLogs {
                        name: s("db"),
                        logs: bytes(40, 9),
                    },
                ],
            },
        ),
        case(
            "ShellRequest",
            lease_rpc::ShellRequest {
                lease_id: lease_id(),
            },
        ),
    ]
}

// ---------------------------------------------------------------------------------------------
// Running the SDK script.

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("chain-client lives in the workspace")
        .to_path_buf()
}

fn run_script(args: &[&str]) -> std::process::Output {
    Command::new("node")
        .arg("sdk-ref/wire-goldens.mjs")
        .args(args)
        .current_dir(repo_root())
        .output()
        .expect("run node (Node 20+ must be on PATH, with sdk-ref/node_modules installed)")
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(s: &str) -> Vec<u8> {
    assert!(s.len().is_multiple_of(2), "odd hex length");
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("hex"))
        .collect()
}

struct Golden {
    name: String,
    type_name: String,
    bytes: Vec<u8>,
}

fn sdk_goldens() -> (String, Vec<Golden>) {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("goldens.json");
    let out = run_script(&["golden", path.to_str().expect("utf-8 temp path")]);
    assert!(
        out.status.success(),
        "wire-goldens.mjs golden failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).expect("read goldens"))
            .expect("goldens JSON");
    let version = json["sdk"].as_str().expect("sdk version").to_owned();
    let goldens = json["cases"]
        .as_array()
        .expect("cases")
        .iter()
        .map(|c| Golden {
            name: c["name"].as_str().expect("name").to_owned(),
            type_name: c["type"].as_str().expect("type").to_owned(),
            bytes: unhex(c["hex"].as_str().expect("hex")),
        })
        .collect();
    (version, goldens)
}

/// The first differing byte of two encodings, with some context, for failure reports.
fn byte_difference(sdk: &[u8], ours: &[u8]) -> String {
    let at = sdk
        .iter()
        .zip(ours)
        .position(|(a, b)| a != b)
        .unwrap_or(sdk.len().min(ours.len()));
    let from = at.saturating_sub(8);
    format!(
        "lengths sdk {} / ours {}; first difference at byte {at}: sdk …{}… ours …{}…",
        sdk.len(),
        ours.len(),
        hex(&sdk[from..sdk.len().min(at + 16)]),
        hex(&ours[from..ours.len().min(at + 16)]),
    )
}

// ---------------------------------------------------------------------------------------------
// Tests.

/// Direction 1: every SDK golden decodes with our types to our own fixture, under the same full
/// protobuf name, and re-encodes to the SDK's bytes (except the documented packing difference).
#[test]
fn sdk_goldens_decode_to_our_fixtures_and_reencode_byte_for_byte() {
    let (version, goldens) = sdk_goldens();
    assert_eq!(
        version, "1.0.0-alpha.25",
        "the goldens come from another SDK version"
    );
    let cases = cases();

    let golden_names: BTreeSet<&str> = goldens.iter().map(|g| g.name.as_str()).collect();
    let case_names: BTreeSet<&str> = cases.iter().map(|c| c.name).collect();
    assert_eq!(
        golden_names, case_names,
        "the SDK fixtures and the Rust fixtures must list the same cases"
    );

    let mut failures = Vec::new();
    let mut byte_identical = 0;
    for golden in &goldens {
        let case = cases
            .iter()
            .find(|c| c.name == golden.name)
            .expect("same names");
        if case.msg.full_name() != golden.type_name {
            failures.push(format!(
                "{}: our type is {} but the SDK's is {}",
                golden.name,
                case.msg.full_name(),
                golden.type_name
            ));
            continue;
        }
        match case.msg.decode_matches(&golden.bytes) {
            Err(e) => failures.push(format!("{} ({}): {e}", golden.name, golden.type_name)),
            Ok(reencoded) => {
                let packed = PACKED_SOURCES.contains(&golden.name.as_str());
                if reencoded == golden.bytes {
                    byte_identical += 1;
                    if packed {
                        failures.push(format!(
                            "{}: expected the packed/unpacked `sources` difference, but the bytes are identical; update PACKED_SOURCES",
                            golden.name
                        ));
                    }
                } else if !packed {
                    failures.push(format!(
                        "{} ({}): re-encoding differs from the SDK: {}",
                        golden.name,
                        golden.type_name,
                        byte_difference(&golden.bytes, &reencoded)
                    ));
                }
                if reencoded != case.msg.encode() {
                    failures.push(format!(
                        "{}: re-encoding of the decoded SDK bytes differs from encoding our fixture",
                        golden.name
                    ));
                }
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} SDK goldens failed:\n{}",
        failures.len(),
        goldens.len(),
        failures.join("\n")
    );
    assert_eq!(byte_identical, goldens.len() - PACKED_SOURCES.len());
}

/// Direction 2: our encodings decode in the SDK to the SDK's own fixture objects, and the SDK
/// re-encodes them to its own bytes.
#[test]
fn our_encodings_decode_in_the_sdk_to_its_fixtures() {
    let dir = tempfile::tempdir().expect("temp dir");
    let ours_path = dir.path().join("ours.json");
    let report_path = dir.path().join("report.json");
    let cases = cases();
    let ours: Vec<serde_json::Value> = cases
        .iter()
        .map(|c| {
            serde_json::json!({
                "name": c.name,
                "type": c.msg.full_name(),
                "hex": hex(&c.msg.encode()),
            })
        })
        .collect();
    std::fs::write(&ours_path, serde_json::to_vec(&ours).expect("json")).expect("write ours");

    let out = run_script(&[
        "check",
        ours_path.to_str().expect("utf-8"),
        report_path.to_str().expect("utf-8"),
    ]);
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&report_path).unwrap_or_else(|e| {
            panic!(
                "no report from wire-goldens.mjs check ({e}):\n{}",
                String::from_utf8_lossy(&out.stderr)
            )
        }))
        .expect("report JSON");

    let entries = report["report"].as_array().expect("report entries");
    assert_eq!(entries.len(), cases.len());
    let failures: Vec<String> = entries
        .iter()
        .filter(|e| e["ok"] != serde_json::Value::Bool(true))
        .map(|e| {
            let detail = if let Some(err) = e["error"].as_str() {
                err.lines().next().unwrap_or_default().to_owned()
            } else {
                format!(
                    "same value: {}, SDK re-encodes to its own bytes: {}, value difference: {}",
                    e["sameValue"], e["sdkReencodeSameBytes"], e["valueDifference"]
                )
            };
            format!("{} ({}): {detail}", e["name"], e["type"])
        })
        .collect();
    let missing = report["missing"].as_array().expect("missing list");
    assert!(
        failures.is_empty() && missing.is_empty(),
        "the SDK disagrees with {} of our encodings (missing: {missing:?}):\n{}",
        failures.len(),
        failures.join("\n")
    );
    assert!(out.status.success(), "check exited with {}", out.status);

    // Where we are byte-identical to the SDK, and where (only the packing of Deposit.sources) not.
    for e in entries {
        let name = e["name"].as_str().expect("name");
        let same = e["oursSameBytes"] == serde_json::Value::Bool(true);
        assert_eq!(
            same,
            !PACKED_SOURCES.contains(&name),
            "{name}: our bytes identical to the SDK's: {same}"
        );
    }
}

/// A few decoded values spelled out, so that the encodings above are not only self-consistent.
#[test]
fn decoded_sdk_goldens_carry_the_expected_values() {
    let (_, goldens) = sdk_goldens();
    let golden = |name: &str| {
        &goldens
            .iter()
            .find(|g| g.name == name)
            .unwrap_or_else(|| panic!("golden {name}"))
            .bytes[..]
    };

    let bid = mv5::MsgCreateBid::decode(golden("MsgCreateBid")).expect("MsgCreateBid");
    let id = bid.id.as_ref().expect("bid id");
    assert_eq!(id.dseq, 18_446_744_073_709_551_000);
    assert_eq!(id.gseq, 4_294_967_000);
    assert_eq!(id.provider, PROVIDER);
    let price = bid.price.as_ref().expect("price");
    assert_eq!(
        price.amount, "1500000000000000000",
        "1.5 as LegacyDec atomics"
    );
    assert_eq!(dec::dec_coin_amount(price).expect("decimal"), "1.5");
    let deposit = bid.deposit.as_ref().expect("deposit");
    assert_eq!(
        deposit.sources().collect::<Vec<_>>(),
        vec![Source::Balance, Source::Grant],
        "unpacked SDK sources decode"
    );
    let offer = &bid.resources_offer[1];
    let res = offer.resources.as_ref().expect("resources");
    assert_eq!(res.id, 2);
    let cpu = res
        .cpu
        .as_ref()
        .and_then(|c| c.units.as_ref())
        .expect("cpu");
    assert_eq!(cpu.val, b"1500", "math.Int as its decimal text");
    assert_eq!(res.endpoints[1].kind(), endpoint::Kind::LeasedIp);
    let memory_price = offer
        .prices
        .as_ref()
        .and_then(|p| p.memory.as_ref())
        .expect("memory price");
    assert_eq!(memory_price.amount, "1", "the smallest LegacyDec");

    let lease = mv1::Lease::decode(golden("Lease")).expect("Lease");
    assert_eq!(lease.reason(), mv1::LeaseClosedReason::ManifestTimeout);
    assert_eq!(lease.state(), mv1::lease::State::InsufficientFunds);
    assert_eq!(lease.created_at, 9_007_199_254_740_993);
    assert_eq!(lease.closed_on, 9_223_372_036_854_775_000);

    let account = etypes::Account::decode(golden("EscrowAccount")).expect("Account");
    let state = account.state.expect("account state");
    assert_eq!(state.funds[1].amount, "-750000000000000000");
    assert_eq!(state.state(), etypes::State::Overdrawn);

    let status = gateway::Status::decode(golden("Status")).expect("Status");
    let ts = status.timestamp.expect("timestamp");
    assert_eq!((ts.seconds, ts.nanos), (1_795_635_015, 123_000_000));
    let storage = &status
        .cluster
        .and_then(|c| c.inventory)
        .and_then(|i| i.reservations)
        .and_then(|r| r.active)
        .and_then(|a| a.resources)
        .expect("active reservations")
        .storage;
    assert_eq!(storage["beta3"].string.as_deref(), Some("2Ti"));

    let cert = cert::Certificate::decode(golden("Certificate")).expect("Certificate");
    assert!(cert.cert.starts_with(b"-----BEGIN CERTIFICATE-----"));
    assert_eq!(cert.state(), cert::State::Revoked);
}

/// The one place where our bytes differ from the SDK's, pinned down exactly: the same Deposit,
/// with `sources` [balance, grant] as one packed field (ours, and the Go chain's) versus one
/// varint field per element (SDK 1.0.0-alpha.25).
#[test]
fn deposit_sources_differ_only_in_packing() {
    let (_, goldens) = sdk_goldens();
    let sdk = &goldens
        .iter()
        .find(|g| g.name == "Deposit")
        .expect("Deposit golden")
        .bytes;
    let ours = deposit().encode_to_vec();
    let coin_len = sdk.len() - 4;
    assert_eq!(ours[..coin_len], sdk[..coin_len], "amount encodes the same");
    assert_eq!(
        sdk[coin_len..],
        [0x28, 0x01, 0x28, 0x02],
        "SDK: field 5 varint, twice"
    );
    assert_eq!(
        ours[coin_len..],
        [0x2a, 0x02, 0x01, 0x02],
        "ours: field 5 packed"
    );
    // Each side reads the other's form.
    assert_eq!(
        Deposit::decode(&sdk[..]).expect("decode SDK form"),
        deposit()
    );
}

/// Every Msg type the provider or tenant sends goes into a Cosmos `Any` under the type URL the
/// chain registers: "/" + the full protobuf name, the same name the SDK gives the message.
#[test]
fn msgs_pack_into_any_with_their_type_urls() {
    let (_, goldens) = sdk_goldens();
    let cases = cases();
    let mut msgs = 0;
    for case in cases.iter().filter(|c| c.name.starts_with("Msg")) {
        let golden = goldens
            .iter()
            .find(|g| g.name == case.name)
            .expect("golden");
        assert_eq!(case.msg.type_url(), format!("/{}", golden.type_name));
        msgs += 1;
    }
    assert!(msgs >= 17, "only {msgs} Msg cases");

    let bid = mv5::MsgCreateBid {
        id: bid_id(),
        price: dec("uact", "1.5"),
        deposit: Some(deposit()),
        resources_offer: vec![resource_offer(1)],
        reclamation_window: None,
    };
    let any = chain_client::to_any(&bid);
    assert_eq!(any.type_url, "/akash.market.v1beta5.MsgCreateBid");
    assert_eq!(any.to_msg::<mv5::MsgCreateBid>().expect("unpack"), bid);
}

/// Fields and messages of AEP-82 (reclamation) that SDK 1.0.0-alpha.25 predates: our encodings
/// with them set must still read, in the SDK, as exactly the SDK's fixture without them (so the
/// new field numbers collide with nothing the SDK knows), and must only append to the encoding of
/// the message without them. `MsgLeaseStartReclaim` has the shape of `MsgCloseLease` and must
/// encode identically; `EventLeaseReclaimStarted` is `EventLeaseClosed` plus a deadline.
#[test]
fn aep82_reclamation_fields_extend_the_sdk_messages_without_colliding() {
    use prost_types::Duration;
    let window = |seconds| {
        Some(Duration {
            seconds,
            nanos: 250_000_000,
        })
    };
    let deployment_reclamation = || {
        Some(mv1::DeploymentReclamation {
            min_window: window(86_400),
        })
    };
    let base_cases = cases();
    let base = |name: &str| {
        base_cases
            .iter()
            .find(|c| c.name == name)
            .unwrap_or_else(|| panic!("case {name}"))
            .msg
            .encode()
    };

    // (our case name, the SDK fixture to read it as, the message, whether it appends fields)
    let extended: Vec<(&str, &str, Box<dyn WireCase>, bool)> = vec![
        (
            "MsgCreateDeployment+reclamation",
            "MsgCreateDeployment",
            Box::new(dv4::MsgCreateDeployment {
                id: did(),
                groups: vec![group_spec("westcoast"), group_spec("eu")],
                hash: bytes(32, 1),
                deposit: Some(deposit()),
                reclamation: deployment_reclamation(),
            }),
            true,
        ),
        (
            "Deployment+reclamation",
            "Deployment",
            Box::new(dv1::Deployment {
                reclamation: deployment_reclamation(),
                ..deployment()
            }),
            true,
        ),
        (
            "Order+reclamation",
            "Order",
            Box::new(mv5::Order {
                reclamation: deployment_reclamation(),
                ..order()
            }),
            true,
        ),
        (
            "MsgCreateBid+reclamation_window",
            "MsgCreateBid",
            Box::new(mv5::MsgCreateBid {
                id: bid_id(),
                price: dec("uact", "1.5"),
                deposit: Some(deposit()),
                resources_offer: vec![resource_offer(1), resource_offer(2)],
                reclamation_window: window(172_800),
            }),
            true,
        ),
        (
            "Bid+reclamation_window",
            "Bid",
            Box::new(mv5::Bid {
                reclamation_window: window(172_800),
                ..bid()
            }),
            true,
        ),
        (
            "Lease+reclamation",
            "Lease",
            Box::new(mv1::Lease {
                reclamation: Some(mv1::Reclamation {
                    window: window(172_800),
                    started_at: HEIGHT,
                    deadline: LATER,
                    reason: mv1::LeaseClosedReason::Decommission as i32,
                }),
                ..lease()
            }),
            true,
        ),
        (
            "Params+reclamation_windows",
            "Params",
            Box::new(mv5::Params {
                min_reclamation_window: window(3_600),
                max_reclamation_window: window(2_592_000),
                ..market_params()
            }),
            true,
        ),
        (
            "MsgLeaseStartReclaim",
            "MsgCloseLease",
            Box::new(mv5::MsgLeaseStartReclaim {
                id: lease_id(),
                reason: mv1::LeaseClosedReason::LeaseClosedOwner as i32,
            }),
            false,
        ),
        (
            "EventLeaseReclaimStarted",
            "EventLeaseClosed",
            Box::new(mv1::EventLeaseReclaimStarted {
                id: lease_id(),
                reason: mv1::LeaseClosedReason::InsufficientFunds as i32,
                deadline: LATER,
            }),
            true,
        ),
    ];

    for (name, read_as, msg, appends) in &extended {
        let ours = msg.encode();
        let without = base(read_as);
        if *appends {
            assert!(
                ours.len() > without.len() && ours.starts_with(&without),
                "{name}: the new fields must only append to the encoding of {read_as}"
            );
        } else {
            assert_eq!(ours, without, "{name}: must encode like {read_as}");
        }
        // And it reads back as itself.
        assert_eq!(msg.decode_matches(&ours).expect(name), ours);
    }

    let dir = tempfile::tempdir().expect("temp dir");
    let ours_path = dir.path().join("ours.json");
    let report_path = dir.path().join("report.json");
    let ours: Vec<serde_json::Value> = extended
        .iter()
        .map(|(name, read_as, msg, _)| {
            serde_json::json!({
                "name": name,
                "type": msg.full_name(),
                "hex": hex(&msg.encode()),
                "readAs": read_as,
            })
        })
        .collect();
    std::fs::write(&ours_path, serde_json::to_vec(&ours).expect("json")).expect("write ours");
    let out = run_script(&[
        "check",
        ours_path.to_str().expect("utf-8"),
        report_path.to_str().expect("utf-8"),
    ]);
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&report_path).unwrap_or_else(|e| {
            panic!(
                "no report from wire-goldens.mjs check ({e}):\n{}",
                String::from_utf8_lossy(&out.stderr)
            )
        }))
        .expect("report JSON");
    let entries = report["report"].as_array().expect("entries");
    assert_eq!(entries.len(), extended.len());
    let failures: Vec<String> = entries
        .iter()
        .filter(|e| e["ok"] != serde_json::Value::Bool(true))
        .map(|e| format!("{} read as {}: {}", e["name"], e["readAs"], e))
        .collect();
    assert!(
        failures.is_empty(),
        "the SDK does not read our AEP-82 encodings as its own messages:\n{}",
        failures.join("\n")
    );
    let lease_start = entries
        .iter()
        .find(|e| e["name"] == "MsgLeaseStartReclaim")
        .expect("MsgLeaseStartReclaim entry");
    assert_eq!(
        lease_start["oursSameBytes"],
        serde_json::Value::Bool(true),
        "MsgLeaseStartReclaim is byte-identical to the SDK's MsgCloseLease"
    );
}
