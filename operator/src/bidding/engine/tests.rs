//! The engine against the fake chain and the in-memory store: what it bids on, how it batches,
//! and what a restart at each point finds and does.

use std::sync::Arc;
use std::time::Duration;

use chain_client::ChainError;
use chain_client::akash::market::v1 as mv1;
use chain_client::akash::market::v1beta5::{
    Bid as ChainBid, MsgCloseBid, MsgCreateBid, Order, QueryBidResponse, bid, order,
};
use chain_client::events::{AkashEvent, BlockEvents};
use chain_client::fake::FakeChain;
use cosmos_sdk_proto::cosmos::base::v1beta1::Coin;
use crds::resources::{BidPhase, LeasePhase, ScalePricing};
use tokio::sync::watch;

use super::*;
use crate::bidding::eligibility::BidPolicy;
use crate::bidding::pricing::Pricing;
use crate::inventory::fixtures;
use crate::provider::store::MemoryStore;

const PROVIDER: &str = "akash1provider0000000000000000000000000000";
const TENANT: &str = "akash1tenant00000000000000000000000000000";
const OTHER: &str = "akash1other000000000000000000000000000000";

struct FixedCluster(ClusterSnapshot);

impl ClusterView for FixedCluster {
    fn snapshot(&self) -> ClusterSnapshot {
        self.0.clone()
    }
}

fn scale() -> ScalePricing {
    ScalePricing {
        cpu: 0.001,
        memory: 0.0001,
        storage: [("ephemeral".to_owned(), 0.0001)].into(),
        endpoint: 0.5,
        ..Default::default()
    }
}

fn settings(policy: BidPolicy) -> watch::Receiver<Option<Arc<BidSettings>>> {
    let (_tx, rx) = watch::channel(Some(Arc::new(BidSettings {
        policy,
        pricing: Pricing::Scale(scale()),
    })));
    // The sender may go: the receiver keeps the last value.
    rx
}

fn policy() -> BidPolicy {
    BidPolicy {
        attributes: vec![],
        allow_owners: vec![],
        deny_owners: vec![],
    }
}

fn engine_with(
    chain: &FakeChain,
    store: &Arc<MemoryStore>,
    policy: BidPolicy,
    batch: usize,
) -> Engine {
    Engine::new(
        Arc::new(chain.clone()),
        store.clone(),
        Arc::new(FixedCluster(ClusterSnapshot {
            nodes: fixtures::nodes("nodes.yaml"),
            pods: vec![],
            node_ports_in_use: 0,
            ip_pool: None,
        })),
        settings(policy),
        EngineConfig {
            provider: PROVIDER.into(),
            deposit: Coin {
                denom: "uact".into(),
                amount: "500000".into(),
            },
            bid_timeout: Duration::from_secs(300),
            batch_size: batch,
            inventory: Default::default(),
            page_size: 1000,
        },
        Arc::new(Metrics::new()),
    )
}

fn engine(chain: &FakeChain, store: &Arc<MemoryStore>) -> Engine {
    engine_with(chain, store, policy(), 25)
}

fn order_id(owner: &str, dseq: u64) -> mv1::OrderId {
    mv1::OrderId {
        owner: owner.into(),
        dseq,
        gseq: 1,
        oseq: 1,
    }
}

fn open_order(owner: &str, dseq: u64, group: &str) -> Order {
    Order {
        id: Some(order_id(owner, dseq)),
        state: order::State::Open as i32,
        spec: Some(fixtures::group(&format!("{group}.yaml"))),
        created_at: 1,
        reclamation: None,
    }
}

fn bid_id(provider: &str, owner: &str, dseq: u64) -> mv1::BidId {
    mv1::BidId {
        owner: owner.into(),
        dseq,
        gseq: 1,
        oseq: 1,
        provider: provider.into(),
        bseq: 0,
    }
}

fn lease_id(provider: &str, owner: &str, dseq: u64) -> mv1::LeaseId {
    mv1::LeaseId {
        owner: owner.into(),
        dseq,
        gseq: 1,
        oseq: 1,
        provider: provider.into(),
        bseq: 0,
    }
}

fn name(owner: &str, dseq: u64) -> String {
    format!("{owner}-{dseq}-1-1")
}

/// Whether every `Bid` the store holds is Open (its bid included on chain).
fn all_bids_open(store: &MemoryStore) -> bool {
    store
        .bids
        .lock()
        .unwrap()
        .values()
        .all(|b| phase(b) == BidPhase::Open)
}

#[tokio::test]
async fn catch_up_bids_on_open_orders_that_fit_at_the_scale_price() {
    let chain = FakeChain::new(PROVIDER);
    chain.state().orders.push(open_order(TENANT, 7, "web"));
    let store = Arc::new(MemoryStore::default());
    let mut engine = engine(&chain, &store);
    engine.reconcile().await.unwrap();
    engine.catch_up().await.unwrap();

    let bids = chain.broadcast_msgs::<MsgCreateBid>();
    assert_eq!(bids.len(), 1);
    let msg = &bids[0];
    assert_eq!(msg.id, Some(bid_id(PROVIDER, TENANT, 7)));
    // web: 2 × (1000m × 0.001 + 1024 MiB × 0.0001 + 1024 MiB × 0.0001) = 2 × 1.2048
    let price = msg.price.as_ref().unwrap();
    assert_eq!(price.denom, "uact");
    assert_eq!(
        chain_client::dec::from_wire(&price.amount).unwrap(),
        "2.4096"
    );
    assert_eq!(
        msg.deposit
            .as_ref()
            .unwrap()
            .amount
            .as_ref()
            .unwrap()
            .amount,
        "500000"
    );
    let stored = store
        .bids
        .lock()
        .unwrap()
        .get(&name(TENANT, 7))
        .cloned()
        .unwrap();
    assert_eq!(phase(&stored), BidPhase::Open);
    assert_eq!(stored.spec.resources[0].count, 2);
}

#[tokio::test]
async fn orders_of_one_block_go_out_in_batches_of_the_configured_size() {
    let chain = FakeChain::new(PROVIDER);
    for dseq in 1..=5 {
        chain.state().orders.push(open_order(TENANT, dseq, "web"));
    }
    let store = Arc::new(MemoryStore::default());
    let mut engine = engine_with(&chain, &store, policy(), 2);
    let events = (1..=5)
        .map(|dseq| {
            AkashEvent::OrderCreated(mv1::EventOrderCreated {
                id: Some(order_id(TENANT, dseq)),
            })
        })
        .collect();
    engine.handle_block(BlockEvents { height: 2, events }).await;
    let txs: Vec<usize> = chain.state().broadcasts.iter().map(Vec::len).collect();
    assert_eq!(txs, vec![2, 2, 1]);
    assert_eq!(store.bids.lock().unwrap().len(), 5);
}

#[tokio::test]
async fn no_bid_for_orders_that_do_not_fit_or_are_denied_or_underpriced() {
    let chain = FakeChain::new(PROVIDER);
    chain.state().orders.push(open_order(TENANT, 1, "too-big"));
    chain.state().orders.push(open_order(OTHER, 2, "web"));
    let mut cheap = open_order(TENANT, 3, "web");
    for unit in &mut cheap.spec.as_mut().unwrap().resources {
        unit.price = Some(chain_client::dec::dec_coin("uact", "0.1").unwrap());
    }
    chain.state().orders.push(cheap);
    let store = Arc::new(MemoryStore::default());
    let mut deny = policy();
    deny.deny_owners = vec![OTHER.into()];
    let mut engine = engine_with(&chain, &store, deny, 25);
    engine.catch_up().await.unwrap();
    assert!(chain.broadcast_msgs::<MsgCreateBid>().is_empty());
    assert!(
        store.bids.lock().unwrap().is_empty(),
        "no reservation is left behind"
    );
    let metrics = engine.metrics.encode();
    for reason in ["deny_list", "price_above_order", "cpu"] {
        assert!(metrics.contains(reason), "{reason} missing from\n{metrics}");
    }
}

#[tokio::test]
async fn a_failed_batch_is_retried_one_by_one_and_only_the_refused_bid_is_released() {
    let chain = FakeChain::new(PROVIDER);
    chain.state().orders.push(open_order(TENANT, 1, "web"));
    chain.state().orders.push(open_order(TENANT, 2, "web"));
    // The batch fails as a whole; sent alone, the first bid is refused and the second goes through.
    chain.fail_next_broadcast(ChainError::Other {
        codespace: "market".into(),
        code: 6,
        log: "order not open".into(),
    });
    let store = Arc::new(MemoryStore::default());
    let mut engine = engine(&chain, &store);
    chain.fail_next_broadcast(ChainError::Other {
        codespace: "market".into(),
        code: 6,
        log: "order not open".into(),
    });
    engine.catch_up().await.unwrap();
    let bids = store.bids.lock().unwrap().clone();
    assert_eq!(bids.len(), 1, "{:?}", bids.keys());
    assert!(bids.contains_key(&name(TENANT, 2)));
    assert_eq!(chain.broadcast_msgs::<MsgCreateBid>().len(), 1);
}

#[tokio::test]
async fn restart_after_reserving_sends_the_bid_once_and_after_bidding_sends_nothing() {
    let chain = FakeChain::new(PROVIDER);
    chain.state().orders.push(open_order(TENANT, 1, "web"));
    chain.state().orders.push(open_order(TENANT, 2, "web"));
    let store = Arc::new(MemoryStore::default());

    // First life: both reserved and bid; then the chain "loses" the bid on order 1 (as if the
    // process died between writing the reservation and broadcasting).
    let mut first = engine(&chain, &store);
    first.catch_up().await.unwrap();
    assert_eq!(chain.broadcast_msgs::<MsgCreateBid>().len(), 2);
    {
        let mut st = chain.state();
        st.bids
            .retain(|b| b.bid.as_ref().unwrap().id.as_ref().unwrap().dseq != 1);
        st.broadcasts.clear();
    }
    let reserved = crds::resources::BidStatus {
        phase: Some(BidPhase::Reserved),
        ..Default::default()
    };
    store
        .bids
        .lock()
        .unwrap()
        .get_mut(&name(TENANT, 1))
        .unwrap()
        .status = Some(reserved);
    drop(first);

    let mut second = engine(&chain, &store);
    second.reconcile().await.unwrap();
    second.catch_up().await.unwrap();
    let sent = chain.broadcast_msgs::<MsgCreateBid>();
    assert_eq!(sent.len(), 1, "only the never-sent bid goes out");
    assert_eq!(sent[0].id.as_ref().unwrap().dseq, 1);
    assert_eq!(store.bids.lock().unwrap().len(), 2);
    assert!(all_bids_open(&store));
}

#[tokio::test]
async fn a_won_lease_becomes_a_lease_resource_and_its_close_releases_the_reservation_and_the_workloads()
 {
    let chain = FakeChain::new(PROVIDER);
    chain.state().orders.push(open_order(TENANT, 4, "web"));
    let store = Arc::new(MemoryStore::default());
    let mut engine = engine(&chain, &store);
    engine.catch_up().await.unwrap();

    let price = chain_client::dec::dec_coin("uact", "2.4096").unwrap();
    engine
        .handle_block(BlockEvents {
            height: 5,
            events: vec![AkashEvent::LeaseCreated(mv1::EventLeaseCreated {
                id: Some(lease_id(PROVIDER, TENANT, 4)),
                price: Some(price),
            })],
        })
        .await;
    let lease = store
        .leases
        .lock()
        .unwrap()
        .get(&name(TENANT, 4))
        .cloned()
        .unwrap();
    assert_eq!(lease.spec.price.amount, "2.4096");
    assert_eq!(lease.spec.lease_id.provider, PROVIDER);
    assert_eq!(
        lease.metadata.finalizers,
        Some(vec![crate::workload::reconcile::FINALIZER.to_owned()]),
        "a Lease is created with the workloads finalizer"
    );
    assert_eq!(lease.status.unwrap().phase, Some(LeasePhase::Pending));
    assert_eq!(
        phase(&store.bids.lock().unwrap()[&name(TENANT, 4)]),
        BidPhase::Won
    );

    engine
        .handle_block(BlockEvents {
            height: 9,
            events: vec![AkashEvent::LeaseClosed(mv1::EventLeaseClosed {
                id: Some(lease_id(PROVIDER, TENANT, 4)),
                reason: mv1::LeaseClosedReason::LeaseClosedOwner as i32,
            })],
        })
        .await;
    let status = store.leases.lock().unwrap()[&name(TENANT, 4)]
        .status
        .clone()
        .unwrap();
    assert_eq!(status.phase, Some(LeasePhase::Closed));
    assert_eq!(status.closed_reason.as_deref(), Some("owner"));
    assert!(store.bids.lock().unwrap().is_empty());
    // Its workloads are deleted at once, not only once the workload controller sees it closed.
    assert_eq!(
        *store.deleted_namespaces.lock().unwrap(),
        vec![lease.spec.lease_id.namespace()]
    );
}

#[tokio::test]
async fn a_bid_lost_to_another_provider_is_released_without_a_transaction() {
    let chain = FakeChain::new(PROVIDER);
    chain.state().orders.push(open_order(TENANT, 8, "web"));
    let store = Arc::new(MemoryStore::default());
    let mut engine = engine(&chain, &store);
    engine.catch_up().await.unwrap();
    let sent_before = chain.state().broadcasts.len();
    engine
        .handle_block(BlockEvents {
            height: 5,
            events: vec![AkashEvent::LeaseCreated(mv1::EventLeaseCreated {
                id: Some(lease_id(OTHER, TENANT, 8)),
                price: None,
            })],
        })
        .await;
    assert!(store.bids.lock().unwrap().is_empty());
    assert_eq!(chain.state().broadcasts.len(), sent_before);
}

#[tokio::test]
async fn reconcile_releases_lost_bids_and_keeps_active_leases() {
    let chain = FakeChain::new(PROVIDER);
    chain.state().orders.push(open_order(TENANT, 1, "web"));
    chain.state().orders.push(open_order(TENANT, 2, "web"));
    let store = Arc::new(MemoryStore::default());
    let mut first = engine(&chain, &store);
    first.catch_up().await.unwrap();
    drop(first);
    {
        // While the provider was down: order 1 leased to us, order 2 to someone else.
        let mut st = chain.state();
        for b in st.bids.iter_mut().filter_map(|b| b.bid.as_mut()) {
            let dseq = b.id.as_ref().unwrap().dseq;
            b.state = if dseq == 1 {
                bid::State::Active
            } else {
                bid::State::Lost
            } as i32;
        }
        st.leases.push(chain_client::chain::QueryLeaseResponse {
            lease: Some(mv1::Lease {
                id: Some(lease_id(PROVIDER, TENANT, 1)),
                state: mv1::lease::State::Active as i32,
                price: Some(chain_client::dec::dec_coin("uact", "2.4096").unwrap()),
                created_at: 6,
                ..Default::default()
            }),
            escrow_payment: None,
        });
    }
    let mut second = engine(&chain, &store);
    second.reconcile().await.unwrap();
    let bids = store.bids.lock().unwrap().clone();
    assert_eq!(
        bids.keys().cloned().collect::<Vec<_>>(),
        vec![name(TENANT, 1)]
    );
    assert_eq!(phase(&bids[&name(TENANT, 1)]), BidPhase::Won);
    assert!(store.leases.lock().unwrap().contains_key(&name(TENANT, 1)));
}

#[tokio::test]
async fn a_bid_past_its_timeout_is_closed_on_chain_and_released() {
    let chain = FakeChain::new(PROVIDER);
    chain.state().orders.push(open_order(TENANT, 3, "web"));
    let store = Arc::new(MemoryStore::default());
    let mut engine = engine(&chain, &store);
    engine.catch_up().await.unwrap();
    // Age the bid past the timeout.
    let old = k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(
        jiff::Timestamp::now() - jiff::SignedDuration::from_secs(600),
    );
    for bid in engine.bids.values_mut() {
        bid.metadata.creation_timestamp = Some(old.clone());
    }
    engine.close_timed_out_bids().await;
    let closed = chain.broadcast_msgs::<MsgCloseBid>();
    assert_eq!(closed.len(), 1);
    assert_eq!(closed[0].id, Some(bid_id(PROVIDER, TENANT, 3)));
    assert!(store.bids.lock().unwrap().is_empty());
    let on_chain: Vec<i32> = chain
        .state()
        .bids
        .iter()
        .map(|b: &QueryBidResponse| b.bid.as_ref().map_or(0, |b: &ChainBid| b.state))
        .collect();
    assert_eq!(on_chain, vec![bid::State::Closed as i32]);
}

#[tokio::test]
async fn inventory_gauges_show_what_bids_hold() {
    let chain = FakeChain::new(PROVIDER);
    chain.state().orders.push(open_order(TENANT, 5, "web"));
    let store = Arc::new(MemoryStore::default());
    let mut engine = engine(&chain, &store);
    engine.update_inventory_metrics();
    let before = engine.metrics.encode();
    assert!(
        before.contains(r#"akash_provider_reserved{resource="cpu_millis"} 0"#),
        "{before}"
    );
    engine.catch_up().await.unwrap();
    engine.update_inventory_metrics();
    let after = engine.metrics.encode();
    // web: 2 replicas of 1000m.
    assert!(
        after.contains(r#"akash_provider_reserved{resource="cpu_millis"} 2000"#),
        "{after}"
    );
    let line = |text: &str| {
        text.lines()
            .find(|l| l.starts_with(r#"akash_provider_available{resource="cpu_millis"}"#))
            .and_then(|l| l.rsplit(' ').next())
            .and_then(|v| v.parse::<i64>().ok())
            .unwrap()
    };
    assert_eq!(line(&before) - line(&after), 2000);
}

#[tokio::test]
async fn start_up_catch_up_waits_for_registration_instead_of_skipping_open_orders() {
    let chain = FakeChain::new(PROVIDER);
    chain.state().orders.push(open_order(TENANT, 8, "web"));
    let store = Arc::new(MemoryStore::default());
    let (settings_tx, settings_rx) = watch::channel(None);
    let mut engine = engine(&chain, &store);
    engine.settings = settings_rx;
    let (stop_tx, stop_rx) = watch::channel(true);
    let running = tokio::spawn(engine.run(stop_rx));

    // Registration still running: nothing is decided, so nothing is sent.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(chain.broadcast_msgs::<MsgCreateBid>().is_empty());

    settings_tx
        .send(Some(Arc::new(BidSettings {
            policy: policy(),
            pricing: Pricing::Scale(scale()),
        })))
        .unwrap();
    let mut sent = Vec::new();
    for _ in 0..100 {
        sent = chain.broadcast_msgs::<MsgCreateBid>();
        if !sent.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(sent.len(), 1, "the open order is bid on once registered");
    assert_eq!(sent[0].id, Some(bid_id(PROVIDER, TENANT, 8)));

    stop_tx.send(false).unwrap();
    running.await.unwrap().unwrap();
}

#[tokio::test]
async fn every_batch_is_in_flight_before_any_inclusion_and_a_refused_one_spares_the_others() {
    let chain = FakeChain::new(PROVIDER);
    for dseq in 1..=5 {
        chain.state().orders.push(open_order(TENANT, dseq, "web"));
    }
    let store = Arc::new(MemoryStore::default());
    let mut engine = engine_with(&chain, &store, policy(), 2);
    chain.hold_broadcasts();
    let events = (1..=5)
        .map(|dseq| {
            AkashEvent::OrderCreated(mv1::EventOrderCreated {
                id: Some(order_id(TENANT, dseq)),
            })
        })
        .collect();
    let block = tokio::spawn(async move {
        engine.handle_block(BlockEvents { height: 2, events }).await;
        engine
    });
    // All three transactions wait for a block at once: none waited for another's inclusion.
    chain.broadcasts_waiting(3).await;
    assert_eq!(
        store.bids.lock().unwrap().len(),
        5,
        "every bid is reserved before its transaction goes out"
    );
    // Order 3 closes before the block: its batch (orders 3 and 4) fails as a whole.
    chain.state().orders[2].state = order::State::Closed as i32;
    chain.release_broadcasts();
    let engine = block.await.unwrap();

    let bid_on: Vec<u64> = chain
        .broadcast_msgs::<MsgCreateBid>()
        .iter()
        .map(|m| m.id.as_ref().unwrap().dseq)
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect();
    assert_eq!(bid_on, vec![1, 2, 4, 5]);
    let stored = store.bids.lock().unwrap().clone();
    assert!(
        !stored.contains_key(&name(TENANT, 3)),
        "the refused reservation is released"
    );
    assert_eq!(stored.len(), 4);
    assert!(stored.values().all(|b| phase(b) == BidPhase::Open));
    assert_eq!(engine.bids.len(), 4);
}

#[tokio::test]
async fn an_unknown_outcome_of_one_in_flight_batch_keeps_its_reservations_for_the_reconcile() {
    let chain = FakeChain::new(PROVIDER);
    for dseq in 1..=4 {
        chain.state().orders.push(open_order(TENANT, dseq, "web"));
    }
    let store = Arc::new(MemoryStore::default());
    let mut engine = engine_with(&chain, &store, policy(), 2);
    // The first transaction's fate is unknown (the node went away after taking it).
    chain.fail_next_broadcast(ChainError::Timeout("inclusion".into()));
    engine.catch_up().await.unwrap();
    let stored = store.bids.lock().unwrap().clone();
    assert_eq!(
        stored.len(),
        4,
        "no reservation is released on an unknown outcome"
    );
    let reserved: Vec<&String> = stored
        .iter()
        .filter(|(_, b)| phase(b) == BidPhase::Reserved)
        .map(|(n, _)| n)
        .collect();
    assert_eq!(reserved.len(), 2, "{stored:?}");

    // The reconcile finds no bid on chain for them and the orders still open: it bids once.
    let mut again = engine_with(&chain, &store, policy(), 2);
    again.reconcile().await.unwrap();
    assert_eq!(chain.broadcast_msgs::<MsgCreateBid>().len(), 4);
    assert!(all_bids_open(&store));
}

#[tokio::test]
async fn many_orders_of_one_owner_in_a_block_are_read_by_listing_the_owners_open_orders() {
    let chain = FakeChain::new(PROVIDER);
    for dseq in 1..=20 {
        chain.state().orders.push(open_order(TENANT, dseq, "web"));
    }
    // Closed by the time the provider reads it: no bid, whichever way it is read.
    chain.state().orders[4].state = order::State::Closed as i32;
    chain.state().orders.push(open_order(OTHER, 21, "web"));
    // Open, but not in the block: listing the owner must not bid on it.
    chain.state().orders.push(open_order(TENANT, 22, "web"));
    let store = Arc::new(MemoryStore::default());
    let mut engine = engine_with(&chain, &store, policy(), 100);
    let events = (1..=20)
        .map(|dseq| order_id(TENANT, dseq))
        .chain([order_id(OTHER, 21)])
        .map(|id| AkashEvent::OrderCreated(mv1::EventOrderCreated { id: Some(id) }))
        .collect();
    engine.handle_block(BlockEvents { height: 2, events }).await;
    assert_eq!(
        chain.state().order_queries,
        2,
        "one listing of the tenant's open orders, one read by id of the other owner's order"
    );
    let mut bid_on: Vec<u64> = chain
        .broadcast_msgs::<MsgCreateBid>()
        .iter()
        .map(|m| m.id.as_ref().unwrap().dseq)
        .collect();
    bid_on.sort_unstable();
    let expected: Vec<u64> = (1..=21).filter(|d| *d != 5).collect();
    assert_eq!(bid_on, expected);
}
