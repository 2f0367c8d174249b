//! Deciding which orders to bid on: eligibility, inventory fit and price, for a batch of orders
//! at once (the orders of one block, or every open order at start-up). Each accepted order's
//! reservation counts against the inventory for the next one in the batch.

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;
use std::time::Instant;

use chain_client::akash::market::v1beta5::{Order, order};
use chain_client::chain::{OrderFilters, PageRequest};
use crds::resources::{Bid, BidSpec, DSEQ_LABEL, OWNER_LABEL, OrderRef, Price, ReservedUnit};
use futures::StreamExt;
use kube::api::ObjectMeta;

use super::{Engine, one_order, order_ref};

/// From this many new orders of one owner in a block on, that owner's open orders are listed a
/// page at a time instead of read one by one: a thousand reads by id took a second on the devnet,
/// the whole block time, before anything was reserved.
const LIST_OWNER_FROM: usize = 16;

/// `Bid` resources written at once while reserving a batch, or while recording its outcome.
pub(super) const STORE_CONCURRENCY: usize = 48;
use crate::bidding::eligibility;
use crate::bidding::pricing::order_max_price;
use crate::inventory::demand_of;
use crate::metrics::Metrics;

/// An order the engine decided to bid on, reserved and ready to send.
#[derive(Debug, Clone)]
pub(crate) struct Decision {
    pub order: Order,
    pub order_ref: OrderRef,
    pub price: Price,
}

impl Engine {
    /// Fetches the orders by id (those of one block) and bids on those that qualify.
    pub(crate) async fn bid_on_ids(&mut self, ids: Vec<OrderRef>) {
        let started = Instant::now();
        let mut by_owner: BTreeMap<String, Vec<OrderRef>> = BTreeMap::new();
        for id in ids {
            by_owner.entry(id.owner.clone()).or_default().push(id);
        }
        let (listed, mut one_by_one): (Vec<_>, Vec<_>) = by_owner
            .into_iter()
            .partition(|(_, ids)| ids.len() >= LIST_OWNER_FROM);
        let mut orders = Vec::new();
        let chain = self.chain.clone();
        let page_size = self.config.page_size;
        let lists = futures::future::join_all(listed.iter().map(|(owner, _)| {
            let chain = chain.clone();
            async move {
                chain_client::chain::collect_all(page_size, |page| {
                    let chain = chain.clone();
                    async move {
                        let open = OrderFilters {
                            owner: owner.clone(),
                            state: "open".into(),
                            ..Default::default()
                        };
                        chain.orders(open, page).await
                    }
                })
                .await
            }
        }))
        .await;
        for ((owner, ids), list) in listed.into_iter().zip(lists) {
            match list {
                Ok(open) => {
                    // An order of the block missing here is no longer open: no bid, as when read
                    // by id.
                    let wanted: HashSet<String> = ids.iter().map(OrderRef::object_name).collect();
                    orders.extend(open.into_iter().filter(|o| {
                        o.id.as_ref()
                            .is_some_and(|id| wanted.contains(&order_ref(id).object_name()))
                    }));
                }
                Err(e) => {
                    Metrics::count(&self.metrics.chain_errors, e.metric_label());
                    tracing::warn!(%owner, error = %e, "listing the owner's open orders failed; reading them one by one");
                    one_by_one.push((owner, ids));
                }
            }
        }
        let fetched: Vec<_> =
            futures::stream::iter(one_by_one.into_iter().flat_map(|(_, ids)| ids).map(|id| {
                let chain = chain.clone();
                async move {
                    let page = chain.orders(one_order(&id), PageRequest::first(1)).await;
                    (id, page)
                }
            }))
            .buffer_unordered(16)
            .collect()
            .await;
        for (id, result) in fetched {
            match result {
                Ok(page) => orders.extend(page.items.into_iter().take(1)),
                Err(e) => {
                    Metrics::count(&self.metrics.chain_errors, e.metric_label());
                    tracing::warn!(order = %id, error = %e, "reading the order failed; it is picked up again at the next start-up catch-up");
                }
            }
        }
        self.bid_on_orders(orders, started).await;
    }

    /// Decides, reserves and bids, for a batch of orders read since `started`; logs how long each
    /// part took, from then.
    pub(crate) async fn bid_on_orders(&mut self, orders: Vec<Order>, started: Instant) {
        let Some(settings) = self.settings.borrow().clone() else {
            if !orders.is_empty() {
                tracing::info!(
                    orders = orders.len(),
                    "not bidding: the Provider resource is missing or not registered yet"
                );
            }
            return;
        };
        let (count, read) = (orders.len(), started.elapsed());
        let mut decisions = self.decide(&settings, orders).await;
        let decided = started.elapsed();
        // Pipelined: each batch is broadcast as soon as its reservations are written, and the
        // next batch is reserved while the transaction travels.
        let batch_size = self.config.batch_size.max(1);
        let (mut bids, mut in_flight, mut first_sent) = (0, Vec::new(), None);
        while !decisions.is_empty() {
            let rest = decisions.split_off(batch_size.min(decisions.len()));
            let reserved = self.reserve(std::mem::replace(&mut decisions, rest)).await;
            bids += reserved.len();
            if reserved.is_empty() {
                continue;
            }
            if let Some(sent) = self.start_batch(reserved).await {
                first_sent.get_or_insert_with(|| started.elapsed());
                in_flight.push(sent);
            }
        }
        let all_sent = started.elapsed();
        for sent in in_flight {
            self.finish_batch(sent).await;
        }
        if bids > 0 {
            tracing::info!(
                orders = count,
                bids,
                read = ?read,
                decided = ?decided,
                first_sent = ?first_sent.unwrap_or_default(),
                all_sent = ?all_sent,
                done = ?started.elapsed(),
                "bid on a batch of orders"
            );
        }
    }

    async fn decide(
        &mut self,
        settings: &Arc<super::BidSettings>,
        orders: Vec<Order>,
    ) -> Vec<(Decision, Vec<ReservedUnit>)> {
        // One inventory per batch; each accepted order holds its resources in it for the next.
        let mut inventory = self.inventory_now();
        let needs_audit = orders.iter().any(|o| {
            o.spec
                .as_ref()
                .and_then(|s| s.requirements.as_ref())
                .and_then(|r| r.signed_by.as_ref())
                .is_some_and(|s| !s.all_of.is_empty() || !s.any_of.is_empty())
        });
        let audited = if needs_audit {
            match self
                .chain
                .provider_audited_attributes(&self.config.provider)
                .await
            {
                Ok(audited) => audited,
                Err(e) => {
                    Metrics::count(&self.metrics.chain_errors, e.metric_label());
                    tracing::warn!(error = %e, "reading this provider's audited attributes failed; orders that require auditors are skipped");
                    Vec::new()
                }
            }
        } else {
            Vec::new()
        };

        let mut decisions = Vec::new();
        for order in orders {
            let Some(id) = order.id.as_ref() else {
                continue;
            };
            let order_ref = order_ref(id);
            let name = order_ref.object_name();
            self.metrics.orders_seen.inc();
            if self.bids.contains_key(&name) {
                continue;
            }
            if order.state != order::State::Open as i32 {
                continue;
            }
            let Some(spec) = order.spec.as_ref() else {
                continue;
            };
            if let Err(why) = eligibility::check(&order, &settings.policy, &audited) {
                self.skip(&name, why.label());
                tracing::info!(order = %order_ref, reason = %why, "not bidding: not eligible");
                continue;
            }
            let demand = match demand_of(spec) {
                Ok(demand) => demand,
                Err(e) => {
                    self.skip(&name, "demand");
                    tracing::info!(order = %order_ref, error = %e, "not bidding: cannot read the order's resources");
                    continue;
                }
            };
            let placed = match inventory.place(&demand) {
                Ok(placed) => placed,
                Err(misfit) => {
                    self.skip(&name, misfit.label());
                    tracing::info!(order = %order_ref, reason = %misfit, "not bidding: does not fit the inventory");
                    continue;
                }
            };
            let (denom, max) = match order_max_price(spec) {
                Ok(max) => max,
                Err(e) => {
                    self.skip(&name, "price");
                    tracing::info!(order = %order_ref, error = %e, "not bidding: the order's price cannot be read");
                    continue;
                }
            };
            let price = match settings
                .pricing
                .price(&order_ref.owner, spec, &placed, &denom, &max)
                .await
            {
                Ok(price) => price,
                Err(e) => {
                    self.skip(&name, "pricing");
                    tracing::warn!(order = %order_ref, error = %e, "not bidding: pricing failed");
                    continue;
                }
            };
            if price > max {
                self.skip(&name, "price_above_order");
                tracing::info!(order = %order_ref, %price, %max, %denom, "not bidding: our price is above the order's");
                continue;
            }
            let placed = match inventory.reserve(&demand) {
                Ok(placed) => placed,
                Err(misfit) => {
                    self.skip(&name, misfit.label());
                    continue;
                }
            };
            decisions.push((
                Decision {
                    order: order.clone(),
                    order_ref,
                    price: Price {
                        denom,
                        amount: price.to_string(),
                    },
                },
                placed,
            ));
        }
        decisions
    }

    fn skip(&mut self, name: &str, reason: &str) {
        self.seen_at.remove(name);
        Metrics::count(&self.metrics.orders_skipped, reason);
    }

    /// Writes each decision's `Bid` resource before anything is sent. An order that already has
    /// one (another pass, or a replica before a restart) is not bid on again.
    async fn reserve(&mut self, decisions: Vec<(Decision, Vec<ReservedUnit>)>) -> Vec<Decision> {
        let bids: Vec<(Decision, Bid)> = decisions
            .into_iter()
            .map(|(decision, placed)| {
                let bid = bid_resource(&decision, placed);
                (decision, bid)
            })
            .collect();
        // Written concurrently: one API round trip each, and a block's worth of orders should not
        // wait for them one after another.
        let store = self.store.clone();
        let written: Vec<_> = futures::stream::iter(bids.into_iter().map(|(decision, bid)| {
            let store = store.clone();
            async move {
                let result = store.create_bid(&bid).await;
                (decision, bid, result)
            }
        }))
        .buffered(STORE_CONCURRENCY)
        .collect()
        .await;
        let mut reserved = Vec::new();
        for (decision, bid, result) in written {
            match result {
                Ok(true) => {
                    self.bids.insert(decision.order_ref.object_name(), bid);
                    reserved.push(decision);
                }
                Ok(false) => {
                    tracing::info!(order = %decision.order_ref, "a Bid resource exists already; not bidding twice");
                }
                Err(e) => {
                    Metrics::count(&self.metrics.bid_failures, "store");
                    tracing::warn!(order = %decision.order_ref, error = %e, "not bidding: the reservation could not be written");
                }
            }
        }
        reserved
    }

    /// The time since an order was first seen, for the latency metric.
    pub(crate) fn seen_elapsed(&mut self, name: &str) -> Option<std::time::Duration> {
        self.seen_at.remove(name).map(|t| t.elapsed())
    }

    /// Bids on every open order on chain (start-up catch-up), a page at a time.
    pub(crate) async fn catch_up(&mut self) -> anyhow::Result<()> {
        let chain = self.chain.clone();
        let page_size = self.config.page_size;
        let started = Instant::now();
        let orders = super::retry_chain(
            || {
                let chain = chain.clone();
                async move {
                    chain_client::chain::collect_all(page_size, |page| {
                        let chain = chain.clone();
                        async move {
                            chain
                                .orders(
                                    OrderFilters {
                                        state: "open".into(),
                                        ..Default::default()
                                    },
                                    page,
                                )
                                .await
                        }
                    })
                    .await
                }
            },
            "listing open orders",
        )
        .await;
        let count = orders.len();
        for order in &orders {
            if let Some(id) = &order.id {
                self.seen_at
                    .entry(order_ref(id).object_name())
                    .or_insert(started);
            }
        }
        for chunk in orders.chunks(self.config.page_size.max(1) as usize) {
            self.bid_on_orders(chunk.to_vec(), Instant::now()).await;
        }
        tracing::info!(open_orders = count, took = ?started.elapsed(), "start-up catch-up done");
        Ok(())
    }
}

/// The `Bid` resource of a decision: the reservation, in phase `Reserved`.
fn bid_resource(decision: &Decision, placed: Vec<ReservedUnit>) -> Bid {
    Bid {
        metadata: ObjectMeta {
            name: Some(decision.order_ref.object_name()),
            labels: Some(
                [
                    (OWNER_LABEL.to_owned(), decision.order_ref.owner.clone()),
                    (DSEQ_LABEL.to_owned(), decision.order_ref.dseq.to_string()),
                ]
                .into(),
            ),
            ..Default::default()
        },
        spec: BidSpec {
            order_id: decision.order_ref.clone(),
            price: decision.price.clone(),
            resources: placed,
        },
        // No status: a Bid without one is Reserved (`engine::phase`), and leaving it out saves
        // the status write after the create (a block's worth of orders is a thousand writes).
        status: None,
    }
}
