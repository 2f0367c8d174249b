//! Start-up (and periodic) reconciliation of the `Bid` resources with the chain: each
//! reservation is kept, promoted, re-sent or released according to what the chain holds, so that
//! a crash at any point neither leaks a reservation nor sends a bid twice.

use chain_client::akash::market::v1beta5::{Order, bid, order};
use chain_client::chain::{BidFilters, PageRequest};
use crds::resources::{BidPhase, BidStatus, OrderRef};
use kube::ResourceExt;

use super::decide::Decision;
use super::{Engine, one_order, phase};
use crate::metrics::Metrics;

/// This provider's bid on an order, as the chain holds it.
pub(crate) struct ChainBid {
    pub state: bid::State,
    pub created_at: i64,
}

impl Engine {
    /// Loads the `Bid` resources and brings each in line with the chain; then the `Lease`
    /// resources. Store failures are returned (the caller retries); chain failures are retried.
    pub(crate) async fn reconcile(&mut self) -> anyhow::Result<()> {
        let stored = self.store.list_bids().await?;
        self.bids = stored.into_iter().map(|b| (b.name_any(), b)).collect();
        let names: Vec<String> = self.bids.keys().cloned().collect();
        let mut resend = Vec::new();
        for name in names {
            let Some(bid) = self.bids.get(&name).cloned() else {
                continue;
            };
            let order_ref = bid.spec.order_id.clone();
            let Some(on_chain) = self.query_bid(&order_ref).await else {
                continue;
            };
            match (on_chain, phase(&bid)) {
                (None, BidPhase::Reserved) => match self.query_order(&order_ref).await {
                    // Reserved, never sent (or refused): the order is still open, so bid now.
                    Some(Some(order)) if order.state == order::State::Open as i32 => {
                        tracing::info!(order = %order_ref, "a reservation without a bid on chain: sending the bid");
                        resend.push(Decision {
                            order,
                            order_ref,
                            price: bid.spec.price.clone(),
                        });
                    }
                    Some(_) => self.release(&name, &order_ref, "order_gone").await,
                    None => {}
                },
                (None, BidPhase::Won) => {} // the lease pass decides
                (None, _) => self.release(&name, &order_ref, "not_on_chain").await,
                (Some(b), _) => match b.state {
                    bid::State::Open => {
                        if phase(&bid) != BidPhase::Open {
                            let status = BidStatus {
                                phase: Some(BidPhase::Open),
                                bid_height: Some(b.created_at),
                                ..Default::default()
                            };
                            self.set_status(&name, status).await;
                        }
                    }
                    bid::State::Active => {
                        if phase(&bid) != BidPhase::Won {
                            let status = BidStatus {
                                phase: Some(BidPhase::Won),
                                bid_height: Some(b.created_at),
                                ..Default::default()
                            };
                            self.set_status(&name, status).await;
                        }
                    }
                    bid::State::Lost => {
                        self.metrics.bids_lost.inc();
                        self.release(&name, &order_ref, "lost").await;
                    }
                    // A closed bid whose lease is still ours is released by the lease pass.
                    bid::State::Closed | bid::State::Invalid => {
                        if phase(&bid) != BidPhase::Won {
                            self.release(&name, &order_ref, "closed").await;
                        }
                    }
                },
            }
        }
        if !resend.is_empty() {
            self.send(resend).await;
        }
        self.reconcile_leases().await?;
        self.update_gauges();
        Ok(())
    }

    async fn release(&mut self, name: &str, order: &OrderRef, reason: &str) {
        match self.store.delete_bid(name).await {
            Ok(()) => {
                self.bids.remove(name);
                Metrics::count(&self.metrics.bids_closed, reason);
                tracing::info!(%order, reason, "reservation released");
            }
            Err(e) => tracing::warn!(%order, error = %e, "releasing the reservation failed"),
        }
    }

    /// This provider's bid on the order: `Some(None)` when the chain has none, `None` when the
    /// chain could not be asked (nothing is decided then).
    pub(crate) async fn query_bid(&self, order: &OrderRef) -> Option<Option<ChainBid>> {
        let filters = BidFilters {
            owner: order.owner.clone(),
            dseq: order.dseq,
            gseq: order.gseq,
            oseq: order.oseq,
            provider: self.config.provider.clone(),
            ..Default::default()
        };
        match self.chain.bids(filters, PageRequest::first(1)).await {
            Ok(page) => Some(
                page.items
                    .into_iter()
                    .find_map(|r| r.bid)
                    .map(|b| ChainBid {
                        state: bid::State::try_from(b.state).unwrap_or(bid::State::Invalid),
                        created_at: b.created_at,
                    }),
            ),
            Err(e) => {
                Metrics::count(&self.metrics.chain_errors, e.metric_label());
                tracing::warn!(%order, error = %e, "reading the bid from the chain failed");
                None
            }
        }
    }

    /// The height of this provider's open or active bid on the order, if the chain holds one.
    pub(crate) async fn bid_on_chain(&self, order: &OrderRef) -> Option<u64> {
        match self.query_bid(order).await {
            Some(Some(b)) if matches!(b.state, bid::State::Open | bid::State::Active) => {
                Some(b.created_at.max(0) as u64)
            }
            _ => None,
        }
    }

    /// The order: `Some(None)` when the chain has none, `None` when it could not be asked.
    async fn query_order(&self, id: &OrderRef) -> Option<Option<Order>> {
        match self
            .chain
            .orders(one_order(id), PageRequest::first(1))
            .await
        {
            Ok(page) => Some(page.items.into_iter().next()),
            Err(e) => {
                Metrics::count(&self.metrics.chain_errors, e.metric_label());
                tracing::warn!(order = %id, error = %e, "reading the order failed");
                None
            }
        }
    }

    /// Closes open bids older than `--bid-timeout` (`MsgCloseBid`), releasing their reservations;
    /// re-checks reservations whose bid's fate was unknown.
    pub(crate) async fn close_timed_out_bids(&mut self) {
        let now = jiff::Timestamp::now();
        let timeout = self.config.bid_timeout;
        let expired: Vec<(String, OrderRef, BidPhase)> = self
            .bids
            .iter()
            .filter(|(_, b)| matches!(phase(b), BidPhase::Open | BidPhase::Reserved))
            .filter(|(_, b)| {
                b.metadata.creation_timestamp.as_ref().is_some_and(|t| {
                    let age = now.duration_since(t.0);
                    age.is_positive() && age.unsigned_abs() > timeout
                })
            })
            .map(|(n, b)| (n.clone(), b.spec.order_id.clone(), phase(b)))
            .collect();
        for (name, order, phase) in expired {
            if phase == BidPhase::Open || self.bid_on_chain(&order).await.is_some() {
                let msg = chain_client::akash::market::v1beta5::MsgCloseBid {
                    id: Some(chain_client::akash::market::v1::BidId {
                        owner: order.owner.clone(),
                        dseq: order.dseq,
                        gseq: order.gseq,
                        oseq: order.oseq,
                        provider: self.config.provider.clone(),
                        bseq: 0,
                    }),
                    reason: chain_client::akash::market::v1::LeaseClosedReason::Unspecified as i32,
                };
                match self.chain.broadcast(vec![chain_client::to_any(&msg)]).await {
                    Ok(_) => tracing::info!(%order, "bid timed out and closed"),
                    Err(e) => {
                        // Closed, won or lost meanwhile: the chain says which.
                        match self.query_bid(&order).await {
                            Some(Some(b)) if b.state == bid::State::Open => {
                                tracing::warn!(%order, error = %e, "closing the timed-out bid failed; retrying");
                                continue;
                            }
                            Some(Some(b)) if b.state == bid::State::Active => continue,
                            None => continue,
                            _ => {}
                        }
                    }
                }
            }
            self.release(&name, &order, "timeout").await;
        }
    }
}
