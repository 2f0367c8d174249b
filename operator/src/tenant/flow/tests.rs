//! `step` driven on the fake chain and a fake provider gateway, one phase transition per test.
//!
//! The fake chain records the transactions but applies only bids; [`World::settle`] plays the
//! chain's part for the messages the tenant sends (a deployment opens its groups' orders, a lease
//! fills its order, a closed lease opens the next order, ...), as the Akash modules do, so a test
//! can run the state machine through several steps as the controller would.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Mutex;
use std::time::Duration;

use async_trait::async_trait;
use chain_client::ChainError;
use chain_client::akash::deployment::{v1 as dv1, v1beta4 as dv4};
use chain_client::akash::market::{v1 as mv1, v1beta5 as mv5};
use chain_client::akash::provider::v1beta4::Provider;
use chain_client::fake::FakeChain;
use crds::resources::{
    BidFilter, Distribution, ManifestPhase, ManifestSpec, ManifestStatus, Price, SecretKeyRef,
    ServiceEndpoints,
};
use crds::sdl::Sdl;
use prost::{Message, Name};

use super::{Ctx, DseqAllocator, FlowError, Next, Progress, close, step};
use crate::tenant::delivery::{DeliveryError, Gateway, LeaseReport};
use crate::tenant::plan::{Plan, plan};

const TENANT: &str = "akash1tenant";
/// The chain's height when a test starts: the dseq a new deployment takes.
const START: u64 = 100;
const WAIT_BLOCKS: u32 = 2;
const THRESHOLD: Duration = Duration::from_secs(60);
const STATUS_INTERVAL: Duration = Duration::from_secs(30);
const BLOCK: Duration = Duration::from_secs(1);

/// One placement group, or two (`web` on `dc1`, `db` on `dc2`); `image` is web's.
fn sdl_text(groups: usize, image: &str, cpu: u32) -> String {
    let mut text = format!(
        "version: \"2.0\"\nservices:\n  web: {{image: {image}, expose: []}}\n  db: {{image: postgres, expose: []}}\n\
         profiles:\n  compute:\n    p: {{resources: {{cpu: {{units: {cpu}}}, memory: {{size: 1Gi}}, storage: {{size: 1Gi}}}}}}\n\
         \x20 placement:\n    dc1: {{pricing: {{p: {{denom: uact, amount: 10}}}}}}\n"
    );
    if groups == 2 {
        text.push_str("    dc2: {pricing: {p: {denom: uact, amount: 10}}}\n");
        text.push_str(
            "deployment:\n  web: {dc1: {profile: p, count: 1}}\n  db: {dc2: {profile: p, count: 1}}\n",
        );
    } else {
        text.push_str(
            "deployment:\n  web: {dc1: {profile: p, count: 1}}\n  db: {dc1: {profile: p, count: 1}}\n",
        );
    }
    text
}

fn spec(text: &str) -> ManifestSpec {
    ManifestSpec {
        sdl: Sdl::parse(text).expect("test SDL").document().clone(),
        deposit: Price {
            denom: "uact".into(),
            amount: "5000000".into(),
        },
        wait_duration_blocks: WAIT_BLOCKS,
        key_secret: SecretKeyRef {
            name: "k".into(),
            key: "mnemonic".into(),
        },
        bid_filter: None,
        distribution: Distribution::SendToAll,
        dseq: None,
    }
}

fn plan_of(spec: &ManifestSpec) -> Plan {
    plan(spec).expect("plan")
}

fn host_uri(provider: &str) -> String {
    format!("https://{provider}.example.com:8443")
}

/// (dseq, gseq, oseq).
type LeaseKey = (u64, u32, u32);

/// A manifest upload as the fake gateway received it.
#[derive(Debug, Clone, PartialEq)]
struct Upload {
    provider: String,
    host_uri: String,
    dseq: u64,
    manifest: String,
}

/// Providers' gateways: they accept manifests and report ready services unless told otherwise.
#[derive(Default)]
struct FakeGateway {
    uploads: Mutex<Vec<Upload>>,
    /// Providers that answer a manifest with 500.
    refusing: Mutex<BTreeSet<String>>,
    /// Providers whose services report no ready replica.
    not_ready: Mutex<BTreeSet<String>>,
    /// The manifest version a provider reports (none: it does not say).
    versions: Mutex<BTreeMap<String, String>>,
    /// (provider, lease) of every status read.
    asked: Mutex<Vec<(String, LeaseKey)>>,
}

impl FakeGateway {
    fn uploads(&self) -> Vec<Upload> {
        self.uploads.lock().unwrap().clone()
    }

    fn uploaded_to(&self) -> Vec<String> {
        self.uploads().into_iter().map(|u| u.provider).collect()
    }
}

#[async_trait]
impl Gateway for FakeGateway {
    async fn send_manifest(
        &self,
        provider: &str,
        host_uri: &str,
        dseq: u64,
        manifest_json: &str,
    ) -> Result<(), DeliveryError> {
        if self.refusing.lock().unwrap().contains(provider) {
            return Err(DeliveryError::Refused {
                uri: host_uri.to_owned(),
                status: 500,
                body: "no capacity".into(),
            });
        }
        self.uploads.lock().unwrap().push(Upload {
            provider: provider.to_owned(),
            host_uri: host_uri.to_owned(),
            dseq,
            manifest: manifest_json.to_owned(),
        });
        Ok(())
    }

    async fn lease_status(
        &self,
        provider: &str,
        _host_uri: &str,
        lease: (u64, u32, u32),
    ) -> Result<LeaseReport, DeliveryError> {
        self.asked
            .lock()
            .unwrap()
            .push((provider.to_owned(), lease));
        let ready = i32::from(!self.not_ready.lock().unwrap().contains(provider));
        Ok(LeaseReport {
            services: vec![ServiceEndpoints {
                name: format!("svc{}", lease.1),
                ready_replicas: ready,
                replicas: 1,
                uris: vec![format!("g{}.{provider}.example.com", lease.1)],
                ..Default::default()
            }],
            version: self.versions.lock().unwrap().get(provider).cloned(),
        })
    }
}

/// The tenant's state machine, the chain and the providers, at one moment.
struct World {
    chain: FakeChain,
    gateway: FakeGateway,
    plan: Plan,
    status: ManifestStatus,
    now: jiff::Timestamp,
    /// Transactions of `chain` already applied by `settle`.
    settled: usize,
    dseqs: DseqAllocator,
}

impl World {
    fn new(spec: &ManifestSpec) -> Self {
        let chain = FakeChain::new(TENANT);
        chain.state().height = START;
        Self {
            chain,
            gateway: FakeGateway::default(),
            plan: plan_of(spec),
            status: ManifestStatus::default(),
            now: "2026-12-07T08:00:00Z".parse().unwrap(),
            settled: 0,
            dseqs: DseqAllocator::default(),
        }
    }

    /// One step; then the chain includes what it sent in the next block.
    async fn step(&mut self) -> Result<(Next, Vec<Progress>), FlowError> {
        let mut progress = Vec::new();
        let ctx = Ctx {
            chain: &self.chain,
            gateway: &self.gateway,
            dseqs: &self.dseqs,
            failure_threshold: THRESHOLD,
            status_interval: STATUS_INTERVAL,
            block_interval: BLOCK,
            now: self.now,
        };
        let next = step(&ctx, &self.plan, &mut self.status, &mut progress).await;
        self.settle();
        next.map(|n| (n, progress))
    }

    /// Steps while the step asks to be called again (at most `max` times); the progress of all.
    async fn run(&mut self, max: usize) -> (Next, Vec<Progress>) {
        let mut all = Vec::new();
        for _ in 0..max {
            let (next, progress) = self.step().await.expect("step");
            all.extend(progress);
            if next != Next::Again {
                return (next, all);
            }
        }
        panic!("still Again after {max} steps: {all:?}");
    }

    fn advance_blocks(&self, blocks: u64) {
        self.chain.state().height += blocks;
    }

    fn later(&mut self, by: Duration) {
        self.now = self.now.checked_add(by).unwrap();
    }

    fn height(&self) -> u64 {
        self.chain.state().height
    }

    /// An open bid of `provider` on the open order of group `gseq`, placed at `height`; the
    /// provider is registered on chain if it is not yet.
    fn bid(&self, gseq: u32, provider: &str, price: &str, height: u64) {
        let mut st = self.chain.state();
        let order = st
            .orders
            .iter()
            .filter(|o| o.state == mv5::order::State::Open as i32)
            .filter_map(|o| o.id.clone())
            .filter(|id| id.gseq == gseq)
            .max_by_key(|id| id.oseq)
            .expect("an open order for the group");
        st.bids.push(mv5::QueryBidResponse {
            bid: Some(mv5::Bid {
                id: Some(mv1::BidId {
                    owner: order.owner,
                    dseq: order.dseq,
                    gseq,
                    oseq: order.oseq,
                    provider: provider.to_owned(),
                    bseq: 0,
                }),
                state: mv5::bid::State::Open as i32,
                price: Some(chain_client::dec::dec_coin("uact", price).unwrap()),
                created_at: height as i64,
                ..Default::default()
            }),
            escrow_account: None,
        });
        if !st.providers.iter().any(|p| p.owner == provider) {
            st.providers.push(Provider {
                owner: provider.to_owned(),
                host_uri: host_uri(provider),
                ..Default::default()
            });
        }
    }

    /// Bids are collected until the wait duration of the open orders is over.
    fn end_bidding(&self) {
        self.advance_blocks(u64::from(WAIT_BLOCKS));
    }

    /// Plays the chain's part for the transactions sent since the last call: they land in one
    /// new block and change the deployment, orders, bids and leases as the Akash modules do.
    fn settle(&mut self) {
        let mut st = self.chain.state();
        let txs: Vec<Vec<prost_types::Any>> = st.broadcasts[self.settled..].to_vec();
        self.settled = st.broadcasts.len();
        if txs.is_empty() {
            return;
        }
        st.height += 1;
        let height = st.height;
        for any in txs.iter().flatten() {
            if let Some(m) = decode::<dv4::MsgCreateDeployment>(any) {
                let id = m.id.unwrap();
                let groups: Vec<dv4::Group> = m
                    .groups
                    .into_iter()
                    .enumerate()
                    .map(|(i, spec)| dv4::Group {
                        id: Some(dv1::GroupId {
                            owner: id.owner.clone(),
                            dseq: id.dseq,
                            gseq: i as u32 + 1,
                        }),
                        state: dv4::group::State::Open as i32,
                        group_spec: Some(spec),
                        created_at: height as i64,
                    })
                    .collect();
                for g in &groups {
                    let gid = g.id.clone().unwrap();
                    open_order(&mut st.orders, &gid, 1, g.group_spec.clone(), height);
                }
                st.deployments.push(dv4::QueryDeploymentResponse {
                    deployment: Some(dv1::Deployment {
                        id: Some(id),
                        state: dv1::deployment::State::Active as i32,
                        hash: m.hash,
                        created_at: height as i64,
                        ..Default::default()
                    }),
                    groups,
                    escrow_account: None,
                });
            } else if let Some(m) = decode::<dv4::MsgUpdateDeployment>(any) {
                let dseq = m.id.unwrap().dseq;
                let d = deployment_mut(&mut st.deployments, dseq);
                d.deployment.as_mut().unwrap().hash = m.hash;
            } else if let Some(m) = decode::<mv5::MsgCreateLease>(any) {
                let bid_id = m.bid_id.unwrap();
                let mut price = None;
                for b in st.bids.iter_mut().filter_map(|b| b.bid.as_mut()) {
                    let id = b.id.clone().unwrap();
                    if (id.dseq, id.gseq, id.oseq) != (bid_id.dseq, bid_id.gseq, bid_id.oseq) {
                        continue;
                    }
                    if id == bid_id {
                        b.state = mv5::bid::State::Active as i32;
                        price = b.price.clone();
                    } else if b.state == mv5::bid::State::Open as i32 {
                        b.state = mv5::bid::State::Lost as i32;
                    }
                }
                set_order_state(&mut st.orders, &bid_id, mv5::order::State::Active);
                st.leases.push(mv5::QueryLeaseResponse {
                    lease: Some(mv1::Lease {
                        id: Some(mv1::LeaseId {
                            owner: bid_id.owner,
                            dseq: bid_id.dseq,
                            gseq: bid_id.gseq,
                            oseq: bid_id.oseq,
                            provider: bid_id.provider,
                            bseq: bid_id.bseq,
                        }),
                        state: mv1::lease::State::Active as i32,
                        price,
                        created_at: height as i64,
                        ..Default::default()
                    }),
                    escrow_payment: None,
                });
            } else if let Some(m) = decode::<mv5::MsgCloseLease>(any) {
                // The tenant closes a lease: the order closes and, the group being open, a
                // new order opens for it.
                let id = m.id.unwrap();
                close_lease(&mut st, &id);
                let gid = dv1::GroupId {
                    owner: id.owner.clone(),
                    dseq: id.dseq,
                    gseq: id.gseq,
                };
                let spec = group_spec(&st.deployments, &gid);
                open_order(&mut st.orders, &gid, id.oseq + 1, spec, height);
            } else if let Some(m) = decode::<dv4::MsgStartGroup>(any) {
                let gid = m.id.unwrap();
                let d = deployment_mut(&mut st.deployments, gid.dseq);
                let g = d
                    .groups
                    .iter_mut()
                    .find(|g| g.id.as_ref() == Some(&gid))
                    .unwrap();
                g.state = dv4::group::State::Open as i32;
                let spec = g.group_spec.clone();
                let oseq = st
                    .orders
                    .iter()
                    .filter_map(|o| o.id.as_ref())
                    .filter(|o| o.dseq == gid.dseq && o.gseq == gid.gseq)
                    .map(|o| o.oseq)
                    .max()
                    .unwrap_or(0)
                    + 1;
                open_order(&mut st.orders, &gid, oseq, spec, height);
            } else if let Some(m) = decode::<dv4::MsgCloseDeployment>(any) {
                let dseq = m.id.unwrap().dseq;
                let d = deployment_mut(&mut st.deployments, dseq);
                d.deployment.as_mut().unwrap().state = dv1::deployment::State::Closed as i32;
                for g in &mut d.groups {
                    g.state = dv4::group::State::Closed as i32;
                }
                let held: Vec<mv1::LeaseId> = st
                    .leases
                    .iter()
                    .filter_map(|l| l.lease.as_ref())
                    .filter(|l| l.state == mv1::lease::State::Active as i32)
                    .filter_map(|l| l.id.clone())
                    .filter(|id| id.dseq == dseq)
                    .collect();
                for id in held {
                    close_lease(&mut st, &id);
                }
                for o in st.orders.iter_mut() {
                    o.state = mv5::order::State::Closed as i32;
                }
            } else {
                panic!("the test chain does not apply {}", any.type_url);
            }
        }
    }
}

fn decode<M: Message + Name + Default>(any: &prost_types::Any) -> Option<M> {
    (any.type_url == M::type_url()).then(|| M::decode(any.value.as_slice()).unwrap())
}

fn open_order(
    orders: &mut Vec<mv5::Order>,
    gid: &dv1::GroupId,
    oseq: u32,
    spec: Option<dv4::GroupSpec>,
    height: u64,
) {
    orders.push(mv5::Order {
        id: Some(mv1::OrderId {
            owner: gid.owner.clone(),
            dseq: gid.dseq,
            gseq: gid.gseq,
            oseq,
        }),
        state: mv5::order::State::Open as i32,
        spec,
        created_at: height as i64,
        reclamation: None,
    });
}

fn set_order_state(orders: &mut [mv5::Order], bid: &mv1::BidId, state: mv5::order::State) {
    for o in orders.iter_mut() {
        let id = o.id.as_ref().unwrap();
        if (id.dseq, id.gseq, id.oseq) == (bid.dseq, bid.gseq, bid.oseq) {
            o.state = state as i32;
        }
    }
}

fn close_lease(st: &mut chain_client::fake::FakeState, id: &mv1::LeaseId) {
    for l in st.leases.iter_mut().filter_map(|l| l.lease.as_mut()) {
        if l.id.as_ref() == Some(id) {
            l.state = mv1::lease::State::Closed as i32;
        }
    }
    let bid_id = mv1::BidId {
        owner: id.owner.clone(),
        dseq: id.dseq,
        gseq: id.gseq,
        oseq: id.oseq,
        provider: id.provider.clone(),
        bseq: id.bseq,
    };
    for b in st.bids.iter_mut().filter_map(|b| b.bid.as_mut()) {
        if b.id.as_ref() == Some(&bid_id) {
            b.state = mv5::bid::State::Closed as i32;
        }
    }
    set_order_state(&mut st.orders, &bid_id, mv5::order::State::Closed);
}

fn deployment_mut(
    deployments: &mut [dv4::QueryDeploymentResponse],
    dseq: u64,
) -> &mut dv4::QueryDeploymentResponse {
    deployments
        .iter_mut()
        .find(|d| d.deployment.as_ref().unwrap().id.as_ref().unwrap().dseq == dseq)
        .expect("the deployment on chain")
}

fn group_spec(
    deployments: &[dv4::QueryDeploymentResponse],
    gid: &dv1::GroupId,
) -> Option<dv4::GroupSpec> {
    deployments
        .iter()
        .flat_map(|d| &d.groups)
        .find(|g| g.id.as_ref() == Some(gid))
        .and_then(|g| g.group_spec.clone())
}

/// A world whose deployment is posted and whose groups' orders are open (phase `Bidding`).
async fn posted(spec: &ManifestSpec) -> World {
    let mut w = World::new(spec);
    let (next, _) = w.step().await.unwrap();
    assert_eq!(next, Next::Again);
    let (next, _) = w.step().await.unwrap();
    assert_eq!(next, Next::Again);
    assert_eq!(w.status.phase, Some(ManifestPhase::Bidding));
    w
}

/// A world whose single group is leased to `provider`, delivered and running.
async fn running(provider: &str) -> World {
    let mut w = posted(&spec(&sdl_text(1, "nginx", 1))).await;
    let h = w.height();
    w.bid(1, provider, "1", h);
    w.end_bidding();
    let (next, _) = w.run(5).await;
    assert_eq!(next, Next::Wait(STATUS_INTERVAL));
    assert_eq!(
        w.status.phase,
        Some(ManifestPhase::Running),
        "{:?}",
        w.status
    );
    w
}

fn leases_created(chain: &FakeChain) -> Vec<mv1::BidId> {
    chain
        .broadcast_msgs::<mv5::MsgCreateLease>()
        .into_iter()
        .map(|m| m.bid_id.unwrap())
        .collect()
}

fn providers_of(w: &World) -> Vec<Option<String>> {
    w.status.groups.iter().map(|g| g.provider.clone()).collect()
}

#[tokio::test]
async fn a_new_manifest_first_saves_its_dseq_at_the_chain_height_and_posts_nothing() {
    let mut w = World::new(&spec(&sdl_text(1, "nginx", 1)));
    let (next, progress) = w.step().await.unwrap();
    assert_eq!(next, Next::Again);
    assert_eq!(w.status.dseq, Some(START));
    assert_eq!(w.status.phase, Some(ManifestPhase::Creating));
    assert!(progress.is_empty(), "{progress:?}");
    assert!(w.chain.state().broadcasts.is_empty());
}

#[tokio::test]
async fn manifests_created_in_the_same_block_by_one_controller_get_different_dseqs() {
    let mut first = World::new(&spec(&sdl_text(1, "nginx", 1)));
    first.step().await.unwrap();
    // A second manifest (another image: another deployment), same controller, same block.
    let mut second = World::new(&spec(&sdl_text(1, "nginx:1.27", 1)));
    second.dseqs = std::mem::take(&mut first.dseqs);
    second.step().await.unwrap();
    assert_eq!(first.status.dseq, Some(START));
    assert_eq!(second.status.dseq, Some(START + 1));
    // Once the chain moves past them, the height again.
    second.advance_blocks(5);
    let mut third = World::new(&spec(&sdl_text(1, "nginx", 2)));
    third.chain.state().height = second.height();
    third.dseqs = std::mem::take(&mut second.dseqs);
    third.step().await.unwrap();
    assert_eq!(third.status.dseq, Some(START + 5));
}

#[test]
fn the_dseq_allocator_never_hands_out_one_twice_nor_zero() {
    let dseqs = DseqAllocator::default();
    assert_eq!(dseqs.next(0), 1);
    assert_eq!(dseqs.next(0), 2);
    assert_eq!(dseqs.next(10), 10);
    assert_eq!(dseqs.next(10), 11);
    assert_eq!(dseqs.next(9), 12);
    assert_eq!(dseqs.next(100), 100);
}

#[tokio::test]
async fn a_dseq_pinned_in_the_spec_is_the_one_posted() {
    let mut spec = spec(&sdl_text(1, "nginx", 1));
    spec.dseq = Some(42);
    let mut w = World::new(&spec);
    w.step().await.unwrap();
    assert_eq!(w.status.dseq, Some(42));
    w.step().await.unwrap();
    let created = w.chain.broadcast_msgs::<dv4::MsgCreateDeployment>();
    assert_eq!(created.len(), 1);
    assert_eq!(created[0].id.as_ref().unwrap().dseq, 42);
}

#[tokio::test]
async fn the_deployment_is_posted_once_with_the_plans_groups_hash_and_deposit() {
    let spec = spec(&sdl_text(2, "nginx", 1));
    let mut w = World::new(&spec);
    w.step().await.unwrap();
    let (next, progress) = w.step().await.unwrap();
    assert_eq!(next, Next::Again);
    let version = w.plan.version_hex();
    assert_eq!(
        progress,
        vec![Progress::DeploymentCreated {
            dseq: START,
            version: version.clone()
        }]
    );
    assert_eq!(w.status.phase, Some(ManifestPhase::Bidding));
    assert_eq!(w.status.version.as_deref(), Some(version.as_str()));

    let created = w.chain.broadcast_msgs::<dv4::MsgCreateDeployment>();
    assert_eq!(created.len(), 1);
    let m = &created[0];
    assert_eq!(
        m.id,
        Some(dv1::DeploymentId {
            owner: TENANT.into(),
            dseq: START
        })
    );
    assert_eq!(m.groups, w.plan.groups);
    assert_eq!(m.groups.len(), 2);
    assert_eq!(m.hash, w.plan.version.to_vec());
    let deposit = m.deposit.as_ref().unwrap().amount.as_ref().unwrap();
    assert_eq!(
        (deposit.denom.as_str(), deposit.amount.as_str()),
        ("uact", "5000000")
    );

    // The next steps find it on chain and post nothing more.
    let (next, _) = w.step().await.unwrap();
    assert!(matches!(next, Next::Wait(_)), "{next:?}");
    w.step().await.unwrap();
    assert_eq!(w.chain.state().broadcasts.len(), 1);
    let gseqs: Vec<(u32, String)> = w
        .status
        .groups
        .iter()
        .map(|g| (g.gseq, g.name.clone()))
        .collect();
    let names: Vec<(u32, String)> = w
        .plan
        .groups
        .iter()
        .enumerate()
        .map(|(i, g)| (i as u32 + 1, g.name.clone()))
        .collect();
    assert_eq!(gseqs, names);
}

#[tokio::test]
async fn a_deployment_posted_by_a_run_whose_answer_was_lost_is_taken_as_posted() {
    let mut w = World::new(&spec(&sdl_text(1, "nginx", 1)));
    w.step().await.unwrap();
    w.chain.fail_next_broadcast(ChainError::Other {
        codespace: "deployment".into(),
        code: 2,
        log: "Deployment exists".into(),
    });
    let (next, progress) = w.step().await.unwrap();
    assert_eq!(next, Next::Again);
    assert_eq!(w.status.phase, Some(ManifestPhase::Bidding));
    assert!(
        matches!(
            progress[..],
            [Progress::DeploymentCreated { dseq: START, .. }]
        ),
        "{progress:?}"
    );
}

#[tokio::test]
async fn a_failed_post_is_an_error_and_the_status_keeps_what_was_done_before() {
    let mut w = World::new(&spec(&sdl_text(1, "nginx", 1)));
    w.step().await.unwrap();
    let before = w.status.clone();
    w.chain
        .fail_next_broadcast(ChainError::from_abci("sdk", 5, "insufficient funds"));
    let err = w.step().await.unwrap_err();
    assert_eq!(err.reason(), "InsufficientFunds");
    assert_eq!(w.status, before);
    assert_eq!(w.status.phase, Some(ManifestPhase::Creating));
    // The next step posts it (once).
    w.step().await.unwrap();
    assert_eq!(
        w.chain.broadcast_msgs::<dv4::MsgCreateDeployment>().len(),
        1
    );
    assert_eq!(w.status.dseq, before.dseq);
}

#[tokio::test]
async fn no_bid_is_taken_before_the_wait_duration_is_over() {
    let mut w = posted(&spec(&sdl_text(1, "nginx", 1))).await;
    let h = w.height();
    w.bid(1, "akash1early", "1", h);
    let (next, progress) = w.step().await.unwrap();
    assert_eq!(
        progress,
        vec![Progress::WaitingForBids {
            gseq: 1,
            blocks_left: u64::from(WAIT_BLOCKS)
        }]
    );
    assert_eq!(next, Next::Wait(BLOCK * WAIT_BLOCKS));
    assert_eq!(w.status.groups[0].bids_seen, 1);
    assert_eq!(w.status.groups[0].oseq, Some(1));
    assert_eq!(w.status.phase, Some(ManifestPhase::Bidding));
    assert!(leases_created(&w.chain).is_empty());

    w.advance_blocks(1);
    let (_, progress) = w.step().await.unwrap();
    assert_eq!(
        progress,
        vec![Progress::WaitingForBids {
            gseq: 1,
            blocks_left: 1
        }]
    );
    assert!(leases_created(&w.chain).is_empty());
}

#[tokio::test]
async fn the_cheapest_bid_wins_and_the_earliest_on_a_tie() {
    let mut w = posted(&spec(&sdl_text(1, "nginx", 1))).await;
    let h = w.height();
    // The tie is broken by the block, not the address: `akash1a…` bid later.
    w.bid(1, "akash1dear", "0.9", h);
    w.bid(1, "akash1zearly", "0.5", h + 1);
    w.bid(1, "akash1alate", "0.5", h + 2);
    w.end_bidding();
    let (next, progress) = w.step().await.unwrap();
    assert_eq!(next, Next::Again);
    let leased = leases_created(&w.chain);
    assert_eq!(leased.len(), 1);
    assert_eq!(
        leased[0],
        mv1::BidId {
            owner: TENANT.into(),
            dseq: START,
            gseq: 1,
            oseq: 1,
            provider: "akash1zearly".into(),
            bseq: 0,
        }
    );
    assert!(
        progress.contains(&Progress::LeaseCreated {
            gseq: 1,
            provider: "akash1zearly".into(),
            price: "0.5uact".into(),
        }),
        "{progress:?}"
    );
    assert!(
        progress
            .iter()
            .any(|p| matches!(p, Progress::BidsReceived { gseq: 1, bids } if bids.len() == 3))
    );

    // The next step sees the lease: the group is the winner's, at its price.
    w.step().await.unwrap();
    let g = &w.status.groups[0];
    assert_eq!(g.provider.as_deref(), Some("akash1zearly"));
    assert_eq!(g.oseq, Some(1));
    assert_eq!(
        g.price,
        Some(Price {
            denom: "uact".into(),
            amount: "0.5".into()
        })
    );
    assert_eq!(leases_created(&w.chain).len(), 1);
}

#[tokio::test]
async fn every_group_is_leased_in_one_transaction() {
    let mut w = posted(&spec(&sdl_text(2, "nginx", 1))).await;
    let h = w.height();
    w.bid(1, "akash1one", "1", h);
    w.bid(2, "akash1two", "1", h);
    w.end_bidding();
    let before = w.chain.state().broadcasts.len();
    w.step().await.unwrap();
    let st = w.chain.state();
    assert_eq!(st.broadcasts.len(), before + 1);
    let tx = &st.broadcasts[before];
    assert_eq!(tx.len(), 2);
    assert!(
        tx.iter()
            .all(|m| m.type_url == mv5::MsgCreateLease::type_url())
    );
    drop(st);
    let winners: Vec<(u32, String)> = leases_created(&w.chain)
        .into_iter()
        .map(|id| (id.gseq, id.provider))
        .collect();
    assert_eq!(
        winners,
        vec![(1, "akash1one".into()), (2, "akash1two".into())]
    );
}

#[tokio::test]
async fn without_an_eligible_bid_nothing_is_leased_and_the_status_says_why() {
    let mut spec = spec(&sdl_text(1, "nginx", 1));
    spec.bid_filter = Some(BidFilter {
        max_price: Some(Price {
            denom: "uact".into(),
            amount: "0.1".into(),
        }),
        ..Default::default()
    });
    let mut w = posted(&spec).await;
    let h = w.height();
    w.bid(1, "akash1dear", "0.2", h);
    w.end_bidding();
    let (next, progress) = w.step().await.unwrap();
    assert!(matches!(next, Next::Wait(_)), "{next:?}");
    assert!(
        progress.contains(&Progress::NoEligibleBid { gseq: 1, bids: 1 }),
        "{progress:?}"
    );
    assert!(leases_created(&w.chain).is_empty());
    assert!(
        w.status.groups[0]
            .message
            .as_deref()
            .is_some_and(|m| m.contains("none eligible")),
        "{:?}",
        w.status.groups[0]
    );
    assert_eq!(w.status.phase, Some(ManifestPhase::Bidding));
}

#[tokio::test]
async fn the_manifest_goes_to_the_leased_provider_and_ready_services_make_it_running() {
    let mut w = posted(&spec(&sdl_text(1, "nginx", 1))).await;
    let h = w.height();
    w.bid(1, "akash1p", "1", h);
    w.end_bidding();
    w.step().await.unwrap(); // the lease
    assert!(w.gateway.uploads().is_empty());
    let (next, progress) = w.step().await.unwrap();
    let version = w.plan.version_hex();
    assert_eq!(
        w.gateway.uploads(),
        vec![Upload {
            provider: "akash1p".into(),
            host_uri: host_uri("akash1p"),
            dseq: START,
            manifest: w.plan.sdl.manifest_json(),
        }]
    );
    assert_eq!(
        progress,
        vec![
            Progress::ManifestSent {
                provider: "akash1p".into(),
                version: version.clone()
            },
            Progress::ServicesReady {
                ready: "1/1".into()
            },
        ]
    );
    assert_eq!(
        *w.gateway.asked.lock().unwrap(),
        vec![("akash1p".to_owned(), (START, 1, 1))]
    );
    assert_eq!(next, Next::Wait(STATUS_INTERVAL));
    assert_eq!(w.status.phase, Some(ManifestPhase::Running));
    assert_eq!(w.status.ready.as_deref(), Some("1/1"));
    assert_eq!(
        w.status.groups[0].running_version.as_deref(),
        Some(version.as_str())
    );
    assert_eq!(w.status.services.len(), 1);
    assert_eq!(
        w.status.services[0].uris,
        vec!["g1.akash1p.example.com".to_owned()]
    );
}

#[tokio::test]
async fn a_running_deployment_is_followed_without_sending_or_posting_again() {
    let mut w = running("akash1p").await;
    let txs = w.chain.state().broadcasts.len();
    let (next, progress) = w.step().await.unwrap();
    assert_eq!(next, Next::Wait(STATUS_INTERVAL));
    assert!(progress.is_empty(), "{progress:?}");
    assert_eq!(w.gateway.uploaded_to(), vec!["akash1p".to_owned()]);
    assert_eq!(w.chain.state().broadcasts.len(), txs);
    assert_eq!(w.status.phase, Some(ManifestPhase::Running));
    // Its status is read at every step.
    assert_eq!(w.gateway.asked.lock().unwrap().len(), 2);
}

#[tokio::test]
async fn a_provider_refusing_the_manifest_is_retried_then_replaced_by_the_next_bid() {
    let mut w = posted(&spec(&sdl_text(1, "nginx", 1))).await;
    w.gateway
        .refusing
        .lock()
        .unwrap()
        .insert("akash1cheap".into());
    let h = w.height();
    w.bid(1, "akash1cheap", "0.5", h);
    w.bid(1, "akash1next", "0.8", h);
    w.end_bidding();
    w.step().await.unwrap(); // leased to akash1cheap
    let (_, progress) = w.step().await.unwrap();
    assert!(
        matches!(&progress[..], [Progress::DeliveryFailed { provider, error }]
            if provider == "akash1cheap" && error.contains("500")),
        "{progress:?}"
    );
    let started = w.now.to_string();
    let g = &w.status.groups[0];
    assert_eq!(g.unhealthy_since.as_deref(), Some(started.as_str()));
    assert!(g.running_version.is_none());
    assert!(
        g.message
            .as_deref()
            .unwrap()
            .contains("sending the manifest"),
        "{g:?}"
    );
    assert_eq!(w.status.phase, Some(ManifestPhase::Deploying));

    // Within the threshold: tried again, the lease kept, the failure's start kept.
    w.later(THRESHOLD - Duration::from_secs(1));
    let (_, progress) = w.step().await.unwrap();
    assert!(
        matches!(&progress[..], [Progress::DeliveryFailed { .. }]),
        "{progress:?}"
    );
    assert!(w.chain.broadcast_msgs::<mv5::MsgCloseLease>().is_empty());
    assert_eq!(
        w.status.groups[0].unhealthy_since.as_deref(),
        Some(started.as_str())
    );

    // At the threshold: the lease is closed by the owner and the provider never chosen again.
    w.later(Duration::from_secs(1));
    let (next, progress) = w.step().await.unwrap();
    assert_eq!(next, Next::Again);
    let closed = w.chain.broadcast_msgs::<mv5::MsgCloseLease>();
    assert_eq!(closed.len(), 1);
    let lease = closed[0].id.clone().unwrap();
    assert_eq!(
        (lease.gseq, lease.oseq, lease.provider.as_str()),
        (1, 1, "akash1cheap")
    );
    assert_eq!(
        closed[0].reason,
        mv1::LeaseClosedReason::LeaseClosedOwner as i32
    );
    assert!(
        progress.iter().any(
            |p| matches!(p, Progress::ProviderDropped { gseq: 1, provider, .. }
            if provider == "akash1cheap")
        ),
        "{progress:?}"
    );
    let g = &w.status.groups[0];
    assert_eq!(g.provider, None);
    assert_eq!(g.dropped_providers, vec!["akash1cheap".to_owned()]);

    // The order opens again: the dropped provider's cheaper bid is passed over.
    let h = w.height();
    w.bid(1, "akash1cheap", "0.1", h);
    w.bid(1, "akash1next", "0.8", h);
    w.end_bidding();
    let (next, _) = w.run(5).await;
    assert_eq!(next, Next::Wait(STATUS_INTERVAL));
    let leased = leases_created(&w.chain);
    assert_eq!(leased.len(), 2);
    assert_eq!(
        (leased[1].oseq, leased[1].provider.as_str()),
        (2, "akash1next")
    );
    assert_eq!(w.gateway.uploaded_to(), vec!["akash1next".to_owned()]);
    assert_eq!(providers_of(&w), vec![Some("akash1next".to_owned())]);
    assert_eq!(w.status.phase, Some(ManifestPhase::Running));
}

#[tokio::test]
async fn services_not_ready_degrade_the_deployment_then_replace_the_provider() {
    let mut w = running("akash1p").await;
    w.gateway.not_ready.lock().unwrap().insert("akash1p".into());
    let (next, _) = w.step().await.unwrap();
    assert_eq!(w.status.phase, Some(ManifestPhase::Degraded));
    assert_eq!(w.status.ready.as_deref(), Some("0/1"));
    assert_eq!(next, Next::Wait(BLOCK * 2));
    assert_eq!(
        w.status.groups[0].message.as_deref(),
        Some("services not ready")
    );
    assert!(w.chain.broadcast_msgs::<mv5::MsgCloseLease>().is_empty());

    w.later(THRESHOLD);
    let (next, _) = w.step().await.unwrap();
    assert_eq!(next, Next::Again);
    let closed = w.chain.broadcast_msgs::<mv5::MsgCloseLease>();
    assert_eq!(closed.len(), 1);
    assert_eq!(closed[0].id.as_ref().unwrap().provider, "akash1p");
    assert_eq!(
        w.status.groups[0].dropped_providers,
        vec!["akash1p".to_owned()]
    );
}

#[tokio::test]
async fn services_that_recover_within_the_threshold_keep_their_provider() {
    let mut w = running("akash1p").await;
    w.gateway.not_ready.lock().unwrap().insert("akash1p".into());
    w.step().await.unwrap();
    assert_eq!(w.status.phase, Some(ManifestPhase::Degraded));
    w.gateway.not_ready.lock().unwrap().clear();
    w.later(THRESHOLD - Duration::from_secs(1));
    w.step().await.unwrap();
    assert_eq!(w.status.phase, Some(ManifestPhase::Running));
    assert!(w.status.groups[0].unhealthy_since.is_none());
    // Much later, nothing is dropped: the failure's clock was reset.
    w.later(THRESHOLD * 2);
    let (next, _) = w.step().await.unwrap();
    assert_eq!(next, Next::Wait(STATUS_INTERVAL));
    assert!(w.chain.broadcast_msgs::<mv5::MsgCloseLease>().is_empty());
}

#[tokio::test]
async fn a_lease_the_provider_closed_drops_it_and_starts_its_paused_group() {
    let mut w = running("akash1p").await;
    // The provider closes its bid: the lease closes and the chain pauses the group.
    {
        let mut st = w.chain.state();
        let id = st.leases[0].lease.as_ref().unwrap().id.clone().unwrap();
        close_lease(&mut st, &id);
        st.deployments[0].groups[0].state = dv4::group::State::Paused as i32;
    }
    let (next, progress) = w.step().await.unwrap();
    assert_eq!(next, Next::Again);
    assert_eq!(
        progress,
        vec![
            Progress::ProviderDropped {
                gseq: 1,
                provider: "akash1p".into(),
                reason: "its lease was closed".into()
            },
            Progress::GroupStarted { gseq: 1 },
        ]
    );
    let started = w.chain.broadcast_msgs::<dv4::MsgStartGroup>();
    assert_eq!(
        started,
        vec![dv4::MsgStartGroup {
            id: Some(dv1::GroupId {
                owner: TENANT.into(),
                dseq: START,
                gseq: 1
            })
        }]
    );
    let g = &w.status.groups[0];
    assert_eq!(g.provider, None);
    assert_eq!(g.running_version, None);
    assert_eq!(g.dropped_providers, vec!["akash1p".to_owned()]);

    // The new order is bid on; the provider that left is passed over.
    let h = w.height();
    w.bid(1, "akash1p", "0.1", h);
    w.bid(1, "akash1q", "2", h);
    w.end_bidding();
    w.run(5).await;
    assert_eq!(providers_of(&w), vec![Some("akash1q".to_owned())]);
    assert_eq!(w.chain.broadcast_msgs::<dv4::MsgStartGroup>().len(), 1);
    assert_eq!(w.status.phase, Some(ManifestPhase::Running));
}

#[tokio::test]
async fn a_restarted_controller_resumes_from_the_chain_and_posts_nothing_twice() {
    let mut w = running("akash1p").await;
    let txs = w.chain.state().broadcasts.clone();
    // The status as saved right after the dseq was chosen: the deployment and its lease were
    // posted, but nothing of that was saved.
    w.status = ManifestStatus {
        dseq: Some(START),
        phase: Some(ManifestPhase::Creating),
        ..Default::default()
    };
    let (next, progress) = w.run(5).await;
    assert_eq!(next, Next::Wait(STATUS_INTERVAL));
    assert_eq!(w.chain.state().broadcasts, txs, "nothing is posted again");
    assert!(
        !progress.iter().any(|p| matches!(
            p,
            Progress::DeploymentCreated { .. } | Progress::LeaseCreated { .. }
        )),
        "{progress:?}"
    );
    let g = &w.status.groups[0];
    assert_eq!(g.provider.as_deref(), Some("akash1p"));
    assert_eq!(g.oseq, Some(1));
    assert_eq!(w.status.version, Some(w.plan.version_hex()));
    assert_eq!(w.status.phase, Some(ManifestPhase::Running));
}

#[tokio::test]
async fn a_new_version_updates_the_deployment_and_goes_to_the_same_provider() {
    let mut w = running("akash1p").await;
    let old = w.plan.version_hex();
    w.plan = plan_of(&spec(&sdl_text(1, "nginx:1.27", 1)));
    let new = w.plan.version_hex();
    assert_ne!(old, new);
    let (next, progress) = w.step().await.unwrap();
    assert_eq!(next, Next::Again);
    assert_eq!(
        progress,
        vec![Progress::DeploymentUpdated {
            version: new.clone()
        }]
    );
    let updates = w.chain.broadcast_msgs::<dv4::MsgUpdateDeployment>();
    assert_eq!(updates.len(), 1);
    assert_eq!(updates[0].hash, w.plan.version.to_vec());
    assert_eq!(updates[0].id.as_ref().unwrap().dseq, START);
    assert_eq!(w.status.version.as_deref(), Some(new.as_str()));

    let (next, _) = w.step().await.unwrap();
    assert_eq!(next, Next::Wait(STATUS_INTERVAL));
    let uploads = w.gateway.uploads();
    assert_eq!(uploads.len(), 2);
    assert_eq!(uploads[1].provider, "akash1p");
    assert_eq!(uploads[1].manifest, w.plan.sdl.manifest_json());
    assert_ne!(uploads[1].manifest, uploads[0].manifest);
    assert_eq!(
        w.status.groups[0].running_version.as_deref(),
        Some(new.as_str())
    );
    assert_eq!(
        w.chain.broadcast_msgs::<dv4::MsgUpdateDeployment>().len(),
        1
    );
    assert_eq!(leases_created(&w.chain).len(), 1, "the lease is kept");
}

#[tokio::test]
async fn a_provider_refusing_an_update_is_replaced_although_the_old_version_still_serves() {
    let mut w = running("akash1p").await;
    w.gateway.refusing.lock().unwrap().insert("akash1p".into());
    w.plan = plan_of(&spec(&sdl_text(1, "nginx:1.27", 1)));
    w.step().await.unwrap(); // MsgUpdateDeployment
    let (_, progress) = w.step().await.unwrap();
    assert!(
        matches!(&progress[..], [Progress::DeliveryFailed { provider, .. }] if provider == "akash1p"),
        "{progress:?}"
    );
    // The old version's services answer ready in the same step: the failure stays recorded.
    let started = w.now.to_string();
    let g = &w.status.groups[0];
    assert_eq!(g.unhealthy_since.as_deref(), Some(started.as_str()));
    assert!(
        g.message
            .as_deref()
            .unwrap_or_default()
            .contains("sending the manifest"),
        "{g:?}"
    );
    assert!(w.chain.broadcast_msgs::<mv5::MsgCloseLease>().is_empty());

    w.later(THRESHOLD);
    w.step().await.unwrap();
    let closed = w.chain.broadcast_msgs::<mv5::MsgCloseLease>();
    assert_eq!(
        closed.len(),
        1,
        "the provider that cannot take the update is replaced"
    );
    assert_eq!(closed[0].id.as_ref().unwrap().provider, "akash1p");
    assert_eq!(
        w.status.groups[0].dropped_providers,
        vec!["akash1p".to_owned()]
    );
}

#[tokio::test]
async fn a_change_of_groups_is_refused_and_posts_nothing() {
    let mut w = running("akash1p").await;
    let txs = w.chain.state().broadcasts.len();
    let before = w.status.clone();
    // More CPU: the chain keeps a group's resources for the deployment's life.
    w.plan = plan_of(&spec(&sdl_text(1, "nginx", 2)));
    let err = w.step().await.unwrap_err();
    assert!(matches!(err, FlowError::GroupsChanged(_)), "{err:?}");
    assert_eq!(err.reason(), "GroupsChanged");
    assert_eq!(w.chain.state().broadcasts.len(), txs);
    assert_eq!(w.status, before);

    // One group more: refused too.
    w.plan = plan_of(&spec(&sdl_text(2, "nginx", 1)));
    let err = w.step().await.unwrap_err();
    assert!(err.to_string().contains("placement groups"), "{err}");
    assert_eq!(w.chain.state().broadcasts.len(), txs);
}

#[tokio::test]
async fn a_deployment_closed_on_chain_is_reported_once_and_left_alone() {
    let mut w = running("akash1p").await;
    let txs = w.chain.state().broadcasts.len();
    w.chain.state().deployments[0]
        .deployment
        .as_mut()
        .unwrap()
        .state = dv1::deployment::State::Closed as i32;
    let (next, progress) = w.step().await.unwrap();
    assert_eq!(next, Next::Wait(Duration::from_secs(300)));
    assert_eq!(progress, vec![Progress::DeploymentClosedOnChain]);
    assert_eq!(w.status.phase, Some(ManifestPhase::Closed));
    assert_eq!(w.status.ready, None);
    assert!(w.status.services.is_empty());

    let (next, progress) = w.step().await.unwrap();
    assert_eq!(next, Next::Wait(Duration::from_secs(300)));
    assert!(progress.is_empty(), "{progress:?}");
    assert_eq!(w.chain.state().broadcasts.len(), txs);
    assert_eq!(w.gateway.uploads().len(), 1);
}

#[tokio::test]
async fn close_posts_msg_close_deployment_once_and_only_for_an_active_deployment() {
    // Never posted: nothing to close.
    let w = World::new(&spec(&sdl_text(1, "nginx", 1)));
    assert!(!close(&w.chain, &ManifestStatus::default()).await.unwrap());
    assert!(w.chain.state().broadcasts.is_empty());

    let mut w = running("akash1p").await;
    assert!(close(&w.chain, &w.status).await.unwrap());
    assert_eq!(
        w.chain.broadcast_msgs::<dv4::MsgCloseDeployment>(),
        vec![dv4::MsgCloseDeployment {
            id: Some(dv1::DeploymentId {
                owner: TENANT.into(),
                dseq: START
            })
        }]
    );
    w.settle();
    // Closed already: nothing more is posted.
    assert!(!close(&w.chain, &w.status).await.unwrap());
    assert_eq!(w.chain.broadcast_msgs::<dv4::MsgCloseDeployment>().len(), 1);
    // And the flow sees it closed.
    let (_, progress) = w.step().await.unwrap();
    assert_eq!(progress, vec![Progress::DeploymentClosedOnChain]);
    assert_eq!(w.status.phase, Some(ManifestPhase::Closed));
}

#[tokio::test]
async fn close_of_a_deployment_closed_meanwhile_is_not_an_error() {
    let w = running("akash1p").await;
    w.chain.fail_next_broadcast(ChainError::Other {
        codespace: "deployment".into(),
        code: 3,
        log: "Deployment closed".into(),
    });
    assert!(!close(&w.chain, &w.status).await.unwrap());
    w.chain
        .fail_next_broadcast(ChainError::from_abci("sdk", 5, "insufficient funds"));
    assert!(close(&w.chain, &w.status).await.is_err());
}

#[tokio::test]
async fn seed_one_sends_the_manifest_to_the_lowest_address_only_and_follows_every_group() {
    let mut spec = spec(&sdl_text(2, "nginx", 1));
    spec.distribution = Distribution::SeedOne;
    let mut w = posted(&spec).await;
    let h = w.height();
    w.bid(1, "akash1zz", "1", h);
    w.bid(2, "akash1aa", "1", h);
    w.end_bidding();
    w.step().await.unwrap(); // both leases
    let (_, progress) = w.step().await.unwrap();
    assert_eq!(w.gateway.uploaded_to(), vec!["akash1aa".to_owned()]);
    assert!(
        matches!(&progress[..], [Progress::ManifestSent { provider, .. }] if provider == "akash1aa"),
        "{progress:?}"
    );
    let asked: BTreeSet<String> = w
        .gateway
        .asked
        .lock()
        .unwrap()
        .iter()
        .map(|(p, _)| p.clone())
        .collect();
    assert_eq!(
        asked,
        BTreeSet::from(["akash1aa".to_owned(), "akash1zz".to_owned()])
    );
    // The other provider does not say it runs the version yet: not running.
    assert_eq!(w.status.phase, Some(ManifestPhase::Deploying));

    // It fetched it from its peer: running, and nothing is sent again.
    let version = w.plan.version_hex();
    w.gateway
        .versions
        .lock()
        .unwrap()
        .insert("akash1zz".into(), version.clone());
    let (next, _) = w.step().await.unwrap();
    assert_eq!(next, Next::Wait(STATUS_INTERVAL));
    assert_eq!(w.status.phase, Some(ManifestPhase::Running));
    assert_eq!(w.status.ready.as_deref(), Some("2/2"));
    assert_eq!(w.gateway.uploads().len(), 1);
}

#[tokio::test]
async fn a_provider_missing_from_the_chain_is_a_delivery_failure_without_a_gateway_call() {
    let mut w = posted(&spec(&sdl_text(1, "nginx", 1))).await;
    let h = w.height();
    w.bid(1, "akash1gone", "1", h);
    w.end_bidding();
    w.step().await.unwrap();
    w.chain.state().providers.clear();
    let (_, progress) = w.step().await.unwrap();
    assert!(w.gateway.uploads().is_empty());
    assert!(w.gateway.asked.lock().unwrap().is_empty());
    assert!(
        matches!(&progress[..], [Progress::DeliveryFailed { provider, error }]
            if provider == "akash1gone" && error.contains("not registered")),
        "{progress:?}"
    );
    assert!(w.status.groups[0].unhealthy_since.is_some());
}
