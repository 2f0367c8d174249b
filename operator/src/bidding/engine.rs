//! The bid engine: follows the chain's orders, decides which to bid on, bids in batches, and
//! tracks each bid until it becomes a lease, loses, or times out.
//!
//! Order of writes, for restart safety: a `Bid` resource (the reservation) is created *before*
//! `MsgCreateBid` is sent, and deleted only after the chain says the bid is over. A restart
//! therefore finds every reservation it made, checks each against the chain
//! ([`Engine::reconcile`]), and never sends a second bid for an order it already holds a `Bid`
//! resource for.

mod decide;
mod leases;
mod reconcile;
mod send;
#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

use chain_client::Chain;
use chain_client::akash::market::v1 as mv1;
use chain_client::chain::OrderFilters;
use chain_client::events::{AkashEvent, BlockEvents};
use cosmos_sdk_proto::cosmos::base::v1beta1::Coin;
use crds::resources::{Bid, BidPhase, OrderRef};
use futures::StreamExt;
use k8s_openapi::api::core::v1::{Node, Pod};
use tokio::sync::watch;

use crate::bidding::eligibility::BidPolicy;
use crate::bidding::pricing::Pricing;
use crate::inventory::InventoryConfig;
use crate::metrics::Metrics;
use crate::provider::store::ProviderStore;

/// Ticks (seconds) between passes over the leases, and over every reservation.
const RECONCILE_LEASES_TICKS: u64 = 30;
const RECONCILE_ALL_TICKS: u64 = 300;

/// What the cluster looks like now, for the inventory.
#[derive(Debug, Clone, Default)]
pub(crate) struct ClusterSnapshot {
    pub nodes: Vec<Node>,
    pub pods: Vec<Pod>,
    pub node_ports_in_use: u32,
    /// The leased-IP pool as last seen (`None`: no pool watched; the configured figures stand).
    pub ip_pool: Option<crate::inventory::ip_pool::IpPoolUse>,
}

/// A source of cluster snapshots (watch caches in production, fixed values in tests).
pub(crate) trait ClusterView: Send + Sync {
    fn snapshot(&self) -> ClusterSnapshot;
}

/// What the `Provider` resource says about bidding; `None` in the channel until it exists.
pub(crate) struct BidSettings {
    pub policy: BidPolicy,
    pub pricing: Pricing,
}

/// Fixed engine settings, from flags.
#[derive(Debug, Clone)]
pub(crate) struct EngineConfig {
    /// This provider's address.
    pub provider: String,
    pub deposit: Coin,
    pub bid_timeout: Duration,
    pub batch_size: usize,
    pub inventory: InventoryConfig,
    /// Page size of start-up queries (the Go provider uses 1000).
    pub page_size: u64,
}

/// The engine's memory of its bids: a mirror of the `Bid` resources it wrote (the leader is the
/// only writer, so the mirror stays exact), plus when each order was first seen.
pub(crate) struct Engine {
    chain: Arc<dyn Chain>,
    store: Arc<dyn ProviderStore>,
    cluster: Arc<dyn ClusterView>,
    settings: watch::Receiver<Option<Arc<BidSettings>>>,
    config: EngineConfig,
    metrics: Arc<Metrics>,
    bids: BTreeMap<String, Bid>,
    /// When an order was seen (for the order-to-bid latency); dropped once bid or skipped.
    seen_at: HashMap<String, Instant>,
    /// Where the status report goes (the gateway's `/status`), refreshed with the metrics.
    status: Option<watch::Sender<Option<Arc<crate::provider_status::StatusReport>>>>,
}

impl Engine {
    pub(crate) fn new(
        chain: Arc<dyn Chain>,
        store: Arc<dyn ProviderStore>,
        cluster: Arc<dyn ClusterView>,
        settings: watch::Receiver<Option<Arc<BidSettings>>>,
        config: EngineConfig,
        metrics: Arc<Metrics>,
    ) -> Self {
        Self {
            chain,
            store,
            cluster,
            settings,
            config,
            metrics,
            bids: BTreeMap::new(),
            seen_at: HashMap::new(),
            status: None,
        }
    }

    /// Publishes a status report to `status` each time the inventory metrics are refreshed.
    pub(crate) fn with_status(
        mut self,
        status: watch::Sender<Option<Arc<crate::provider_status::StatusReport>>>,
    ) -> Self {
        self.status = Some(status);
        self
    }

    /// Runs until `stop` turns false (leadership lost) or the event stream ends. Start-up
    /// reconciles the `Bid` and `Lease` resources with the chain, then bids on every open order,
    /// then follows blocks.
    pub(crate) async fn run(mut self, mut stop: watch::Receiver<bool>) -> anyhow::Result<()> {
        let start_height =
            retry_chain(|| self.chain.latest_height(), "reading the chain height").await;
        self.reconcile().await?;
        // Orders are judged by the `Provider` resource's settings, which exist once registration
        // passed; a catch-up before then would skip every open order for good.
        if !self.wait_for_settings(&mut stop).await? {
            return Ok(());
        }
        self.catch_up().await?;
        let mut events = self.chain.events(start_height + 1);
        let mut ticker = tokio::time::interval(Duration::from_secs(1));
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut ticks: u64 = 0;
        loop {
            tokio::select! {
                changed = stop.changed() => {
                    if changed.is_err() || !*stop.borrow() {
                        tracing::warn!("stopping the bid engine: no longer leading");
                        return Ok(());
                    }
                }
                block = events.next() => match block {
                    Some(Ok(block)) => self.handle_block(block).await,
                    Some(Err(e)) => {
                        Metrics::count(&self.metrics.chain_errors, e.metric_label());
                        tracing::warn!(error = %e, "following blocks failed; the follower retries");
                    }
                    None => anyhow::bail!("the chain's event stream ended"),
                },
                _ = ticker.tick() => {
                    self.close_timed_out_bids().await;
                    ticks += 1;
                    if ticks % 5 == 1 {
                        self.update_inventory_metrics();
                    }
                    // Writes that failed (the API server or the chain away for a while) are
                    // retried here: leases every 30 s, every reservation every 5 minutes.
                    if ticks.is_multiple_of(RECONCILE_ALL_TICKS) {
                        if let Err(e) = self.reconcile().await {
                            tracing::warn!(error = %e, "periodic reconcile failed; retried later");
                        }
                    } else if ticks.is_multiple_of(RECONCILE_LEASES_TICKS)
                        && let Err(e) = self.reconcile_leases().await
                    {
                        tracing::warn!(error = %e, "periodic lease reconcile failed; retried later");
                    }
                }
            }
        }
    }

    /// Waits until the bid settings exist; false when leadership ended first, an error when the
    /// registration task is gone (nothing would ever bid: the caller fails loudly instead).
    async fn wait_for_settings(
        &mut self,
        stop: &mut watch::Receiver<bool>,
    ) -> anyhow::Result<bool> {
        if self.settings.borrow().is_some() {
            return Ok(true);
        }
        tracing::info!("waiting for the provider's registration before the start-up catch-up");
        let mut settings = self.settings.clone();
        loop {
            tokio::select! {
                ready = settings.wait_for(Option::is_some) => {
                    ready.map_err(|_| anyhow::anyhow!("the registration task ended before the provider was registered"))?;
                    return Ok(true);
                }
                changed = stop.changed() => {
                    if changed.is_err() || !*stop.borrow() {
                        tracing::warn!("stopping the bid engine: no longer leading");
                        return Ok(false);
                    }
                }
            }
        }
    }

    /// Reacts to one block's events: leases won and lost, bids and leases closed, then bids on
    /// the block's new orders in one batch.
    pub(crate) async fn handle_block(&mut self, block: BlockEvents) {
        let mut new_orders = Vec::new();
        // A block's events happened together; leases first, so that a bid closed because
        // another provider's bid was leased counts as lost, not merely closed.
        let mut events = block.events;
        events.sort_by_key(|e| !matches!(e, AkashEvent::LeaseCreated(_)));
        for event in events {
            match event {
                AkashEvent::OrderCreated(e) => {
                    if let Some(id) = e.id {
                        let order = order_ref(&id);
                        self.seen_at
                            .entry(order.object_name())
                            .or_insert_with(Instant::now);
                        new_orders.push(order);
                    }
                }
                AkashEvent::LeaseCreated(e) => {
                    let Some(id) = e.id else { continue };
                    if id.provider == self.config.provider {
                        self.lease_won(&id, e.price.as_ref(), block.height as i64)
                            .await;
                    } else {
                        self.bid_lost(&lease_order(&id)).await;
                    }
                }
                AkashEvent::LeaseClosed(e) => {
                    if let Some(id) = e.id.filter(|id| id.provider == self.config.provider) {
                        self.lease_closed(&id, e.reason).await;
                    }
                }
                AkashEvent::BidClosed(e) => {
                    if let Some(id) = e.id.filter(|id| id.provider == self.config.provider) {
                        self.bid_over(&bid_order(&id), "closed").await;
                    }
                }
                AkashEvent::OrderClosed(e) => {
                    if let Some(id) = e.id {
                        self.bid_over(&order_ref(&id), "order_closed").await;
                    }
                }
                _ => {}
            }
        }
        if !new_orders.is_empty() {
            self.bid_on_ids(new_orders).await;
        }
        self.update_gauges();
    }

    /// Forgets a bid that will not become a lease: deletes its `Bid` resource (releasing the
    /// reservation). A won bid is left to its lease.
    async fn bid_over(&mut self, order: &OrderRef, reason: &str) {
        let name = order.object_name();
        let Some(bid) = self.bids.get(&name) else {
            return;
        };
        if phase(bid) == BidPhase::Won {
            return;
        }
        match self.store.delete_bid(&name).await {
            Ok(()) => {
                self.bids.remove(&name);
                Metrics::count(&self.metrics.bids_closed, reason);
                tracing::info!(order = %order, reason, "bid over; reservation released");
            }
            Err(e) => {
                tracing::warn!(order = %order, error = %e, "releasing the reservation failed; the periodic reconcile retries")
            }
        }
    }

    async fn bid_lost(&mut self, order: &OrderRef) {
        if self
            .bids
            .get(&order.object_name())
            .is_some_and(|b| phase(b) != BidPhase::Won)
        {
            self.metrics.bids_lost.inc();
            self.bid_over(order, "lost").await;
        }
    }

    fn update_gauges(&self) {
        let open = self
            .bids
            .values()
            .filter(|b| matches!(phase(b), BidPhase::Open | BidPhase::Reserved))
            .count();
        self.metrics.open_bids.set(open as i64);
    }

    /// The inventory now: the cluster's nodes and pods, less what every bid that is not closed
    /// holds (a won bid's replicas on the nodes its lease's pods run on).
    pub(super) fn inventory_now(&self) -> crate::inventory::Inventory {
        let snapshot = self.cluster.snapshot();
        let held: Vec<&Bid> = self
            .bids
            .values()
            .filter(|b| phase(b) != BidPhase::Closed)
            .collect();
        let reservations: Vec<Vec<crds::resources::ReservedUnit>> =
            held.iter().map(|b| b.spec.resources.clone()).collect();
        let namespaces: Vec<Option<String>> = held
            .iter()
            .map(|b| {
                let o = &b.spec.order_id;
                Some(crds::sdl::names::lease_namespace(
                    &crds::sdl::names::LeaseId {
                        owner: o.owner.clone(),
                        dseq: o.dseq,
                        gseq: o.gseq,
                        oseq: o.oseq,
                        provider: self.config.provider.clone(),
                    },
                ))
            })
            .collect();
        let mut config = std::borrow::Cow::Borrowed(&self.config.inventory);
        if let Some(pool) = snapshot.ip_pool {
            let config = config.to_mut();
            config.leased_ips = pool.capacity;
            config.leased_ips_in_use = pool.in_use;
        }
        crate::inventory::Inventory::from_cluster_with_leases(
            &snapshot.nodes,
            &snapshot.pods,
            &reservations,
            &namespaces,
            snapshot.node_ports_in_use,
            &config,
        )
    }

    /// Sets the allocatable / reserved / available gauges from a fresh inventory.
    pub(crate) fn update_inventory_metrics(&self) {
        let inventory = self.inventory_now();
        if let Some(status) = &self.status {
            let report = crate::provider_status::report(&inventory, self.bids.values());
            status.send_replace(Some(Arc::new(report)));
        }
        let totals = inventory.totals();
        let mut rows = vec![
            ("cpu_millis".to_owned(), totals.cpu_millis),
            ("memory_bytes".to_owned(), totals.memory_bytes),
            ("ephemeral_storage_bytes".to_owned(), totals.ephemeral_bytes),
            ("node_ports".to_owned(), totals.node_ports),
            ("ips".to_owned(), totals.ips),
        ];
        rows.extend(
            totals
                .storage
                .iter()
                .map(|(class, t)| (format!("storage_bytes/{class}"), *t)),
        );
        rows.extend(
            totals
                .gpus
                .iter()
                .map(|(m, t)| (format!("gpu/{}/{}", m.vendor, m.model), *t)),
        );
        let gauge = |v: u64| i64::try_from(v).unwrap_or(i64::MAX);
        for (resource, t) in rows {
            let label = crate::metrics::ResourceLabel { resource };
            self.metrics
                .allocatable
                .get_or_create(&label)
                .set(gauge(t.allocatable));
            self.metrics
                .reserved
                .get_or_create(&label)
                .set(gauge(t.reserved));
            self.metrics
                .available
                .get_or_create(&label)
                .set(gauge(t.available));
        }
    }
}

/// A bid's phase; a resource without status is treated as just reserved.
pub(crate) fn phase(bid: &Bid) -> BidPhase {
    bid.status
        .as_ref()
        .and_then(|s| s.phase)
        .unwrap_or(BidPhase::Reserved)
}

pub(crate) fn order_ref(id: &mv1::OrderId) -> OrderRef {
    OrderRef {
        owner: id.owner.clone(),
        dseq: id.dseq,
        gseq: id.gseq,
        oseq: id.oseq,
    }
}

pub(crate) fn bid_order(id: &mv1::BidId) -> OrderRef {
    OrderRef {
        owner: id.owner.clone(),
        dseq: id.dseq,
        gseq: id.gseq,
        oseq: id.oseq,
    }
}

pub(crate) fn lease_order(id: &mv1::LeaseId) -> OrderRef {
    OrderRef {
        owner: id.owner.clone(),
        dseq: id.dseq,
        gseq: id.gseq,
        oseq: id.oseq,
    }
}

/// The chain query filters that select exactly the order `id`, in any state.
pub(crate) fn one_order(id: &OrderRef) -> OrderFilters {
    OrderFilters {
        owner: id.owner.clone(),
        dseq: id.dseq,
        gseq: id.gseq,
        oseq: id.oseq,
        state: String::new(),
    }
}

/// Retries a chain read until it succeeds, with a capped backoff: start-up must not give up
/// because the node is briefly away.
pub(crate) async fn retry_chain<T, F, Fut>(mut call: F, what: &str) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = chain_client::Result<T>>,
{
    let mut delay = Duration::from_millis(200);
    loop {
        match call().await {
            Ok(value) => return value,
            Err(e) => {
                tracing::warn!(error = %e, "{what} failed; retrying in {delay:?}");
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(Duration::from_secs(10));
            }
        }
    }
}
