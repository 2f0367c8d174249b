//! Sending bids: as many `MsgCreateBid` in one transaction as `--bid-batch-size` allows. The
//! batches are pipelined: each one's transaction is broadcast as soon as it is reserved, while the
//! next is reserved, and the inclusions are awaited after the last went out. The chain client's
//! signer hands out the account's sequences in order, so several transactions of the account can
//! sit in the mempool together and the first batches reach the next block even when the last do
//! not. When a batch fails as a whole (one order closed meanwhile fails the whole transaction),
//! its bids are sent one by one so that one bad order does not cost the others their bid.

use std::sync::Arc;

use chain_client::akash::base::deposit::v1::{Deposit, Source};
use chain_client::akash::market::v1 as mv1;
use chain_client::akash::market::v1beta5::{MsgCreateBid, ResourceOffer};
use chain_client::chain::TxResult;
use chain_client::{Chain, ChainError};
use crds::resources::{BidPhase, BidStatus};

use futures::StreamExt;

use super::Engine;
use super::decide::{Decision, STORE_CONCURRENCY};
use crate::metrics::Metrics;

/// What came of sending one bid.
enum Outcome {
    Included(u64),
    /// The chain refused it: the reservation is released.
    Refused(ChainError),
    /// Unknown (a timeout, the node away): the bid may be in a block. The reservation stays and
    /// the reconcile pass asks the chain.
    Unknown(ChainError),
}

/// One batch's transaction on its way: broadcast by its own task, so that the engine reserves
/// the next batch meanwhile.
pub(crate) struct InFlight {
    batch: Vec<Decision>,
    msgs: Vec<prost_types::Any>,
    sent: tokio::task::JoinHandle<chain_client::Result<TxResult>>,
}

impl Engine {
    /// Sends reserved bids, `--bid-batch-size` per transaction, all batches in flight together.
    pub(crate) async fn send(&mut self, decisions: Vec<Decision>) {
        let batch_size = self.config.batch_size.max(1);
        let mut in_flight = Vec::new();
        for batch in decisions.chunks(batch_size) {
            if let Some(sent) = self.start_batch(batch.to_vec()).await {
                in_flight.push(sent);
            }
        }
        for sent in in_flight {
            self.finish_batch(sent).await;
        }
    }

    /// Broadcasts one reserved batch in a task of its own; `None` when its messages could not be
    /// built (its reservations are then released).
    pub(crate) async fn start_batch(&mut self, batch: Vec<Decision>) -> Option<InFlight> {
        let msgs = match batch
            .iter()
            .map(|d| self.create_bid_msg(d).map(|m| chain_client::to_any(&m)))
            .collect::<Result<Vec<_>, _>>()
        {
            Ok(msgs) => msgs,
            Err(e) => {
                tracing::error!(error = %e, "building bids failed");
                for d in &batch {
                    self.finish(d, Outcome::Refused(ChainError::Invalid(e.to_string())))
                        .await;
                }
                return None;
            }
        };
        let chain: Arc<dyn Chain> = self.chain.clone();
        let tx = msgs.clone();
        let sent = tokio::spawn(async move { chain.broadcast(tx).await });
        Some(InFlight { batch, msgs, sent })
    }

    /// Waits for one batch's transaction and records what came of each of its bids.
    pub(crate) async fn finish_batch(&mut self, in_flight: InFlight) {
        let InFlight { batch, msgs, sent } = in_flight;
        let result = sent.await.unwrap_or_else(|e| Err(task_failed(e)));
        match result {
            Ok(result) => self.finish_included(&batch, result.height).await,
            Err(e) if batch.len() > 1 && is_refusal(&e) => {
                tracing::warn!(bids = batch.len(), error = %e, "a batch of bids failed; sending them one by one");
                // All in flight together too: one block for the lot, not one block each.
                let singles: Vec<_> = msgs
                    .into_iter()
                    .map(|msg| {
                        let chain = self.chain.clone();
                        tokio::spawn(async move { chain.broadcast(vec![msg]).await })
                    })
                    .collect();
                for (d, single) in batch.iter().zip(singles) {
                    let outcome = match single.await {
                        Ok(Ok(result)) => Outcome::Included(result.height),
                        Ok(Err(e)) if is_refusal(&e) => Outcome::Refused(e),
                        Ok(Err(e)) => Outcome::Unknown(e),
                        Err(e) => Outcome::Unknown(task_failed(e)),
                    };
                    self.finish(d, outcome).await;
                }
            }
            Err(e) => {
                let refused = is_refusal(&e);
                for d in &batch {
                    let outcome = if refused {
                        Outcome::Refused(e.clone())
                    } else {
                        Outcome::Unknown(e.clone())
                    };
                    self.finish(d, outcome).await;
                }
            }
        }
    }

    fn create_bid_msg(&self, d: &Decision) -> Result<MsgCreateBid, chain_client::dec::DecError> {
        let spec = d.order.spec.clone().unwrap_or_default();
        Ok(MsgCreateBid {
            id: Some(mv1::BidId {
                owner: d.order_ref.owner.clone(),
                dseq: d.order_ref.dseq,
                gseq: d.order_ref.gseq,
                oseq: d.order_ref.oseq,
                provider: self.config.provider.clone(),
                bseq: 0,
            }),
            price: Some(chain_client::dec::dec_coin(
                &d.price.denom,
                &d.price.amount,
            )?),
            deposit: Some(Deposit {
                amount: Some(self.config.deposit.clone()),
                sources: vec![Source::Balance as i32],
            }),
            resources_offer: spec
                .resources
                .iter()
                .map(|unit| ResourceOffer {
                    resources: unit.resource.clone(),
                    count: unit.count,
                    prices: None,
                })
                .collect(),
            reclamation_window: None,
        })
    }

    /// Records a batch of bids included at `height`: metrics and log at once, the status writes
    /// concurrently (one after another, a thousand bids held the engine for seconds).
    async fn finish_included(&mut self, batch: &[Decision], height: u64) {
        let writes: Vec<(String, BidStatus)> = batch
            .iter()
            .map(|d| (d.order_ref.object_name(), self.included(d, height)))
            .collect();
        // Owned futures: borrowing `writes` inside them makes the engine's task not `Send`.
        let futures: Vec<_> = writes
            .iter()
            .cloned()
            .map(|(name, status)| {
                let store = self.store.clone();
                async move { store.set_bid_status(&name, &status).await }
            })
            .collect();
        let results: Vec<_> = futures::stream::iter(futures)
            .buffered(STORE_CONCURRENCY)
            .collect()
            .await;
        for ((name, status), result) in writes.into_iter().zip(results) {
            if let Err(e) = result {
                tracing::warn!(bid = name, error = %e, "writing the bid's status failed");
            }
            if let Some(bid) = self.bids.get_mut(&name) {
                bid.status = Some(status);
            }
        }
    }

    /// The metrics and log of one bid included at `height`; its status to write.
    fn included(&mut self, d: &Decision, height: u64) -> BidStatus {
        self.metrics.bids_sent.inc();
        let created = d.order.created_at.max(0) as u64;
        self.metrics
            .order_to_bid_blocks
            .observe(height.saturating_sub(created) as f64);
        if let Some(elapsed) = self.seen_elapsed(&d.order_ref.object_name()) {
            self.metrics
                .order_to_bid_seconds
                .observe(elapsed.as_secs_f64());
        }
        tracing::info!(order = %d.order_ref, price = %d.price.amount, denom = %d.price.denom, height, "bid placed");
        BidStatus {
            phase: Some(BidPhase::Open),
            bid_height: Some(height as i64),
            ..Default::default()
        }
    }

    async fn finish(&mut self, d: &Decision, outcome: Outcome) {
        let name = d.order_ref.object_name();
        match outcome {
            Outcome::Included(height) => {
                let status = self.included(d, height);
                self.set_status(&name, status).await;
            }
            Outcome::Refused(e) => {
                // A bid sent before a restart may have landed meanwhile, and the chain then
                // refuses this one as a duplicate: the reservation belongs to that bid.
                if let Some(height) = self.bid_on_chain(&d.order_ref).await {
                    tracing::info!(order = %d.order_ref, height, "the chain already holds this provider's bid");
                    let status = BidStatus {
                        phase: Some(BidPhase::Open),
                        bid_height: Some(height as i64),
                        ..Default::default()
                    };
                    self.set_status(&name, status).await;
                    return;
                }
                Metrics::count(&self.metrics.bid_failures, e.metric_label());
                tracing::warn!(order = %d.order_ref, error = %e, "the chain refused the bid; reservation released");
                self.seen_at.remove(&name);
                match self.store.delete_bid(&name).await {
                    Ok(()) => {
                        self.bids.remove(&name);
                    }
                    Err(e) => {
                        tracing::warn!(order = %d.order_ref, error = %e, "releasing the reservation failed; the periodic reconcile retries")
                    }
                }
            }
            Outcome::Unknown(e) => {
                Metrics::count(&self.metrics.bid_failures, e.metric_label());
                tracing::warn!(order = %d.order_ref, error = %e, "the bid's fate is unknown; the reservation stays until the chain says");
                let status = BidStatus {
                    phase: Some(BidPhase::Reserved),
                    message: Some(format!("sending the bid: {e}")),
                    ..Default::default()
                };
                self.set_status(&name, status).await;
            }
        }
    }

    pub(crate) async fn set_status(&mut self, name: &str, status: BidStatus) {
        if let Err(e) = self.store.set_bid_status(name, &status).await {
            tracing::warn!(bid = name, error = %e, "writing the bid's status failed");
        }
        if let Some(bid) = self.bids.get_mut(name) {
            bid.status = Some(status);
        }
    }
}

/// A broadcast task that panicked or was cancelled: whether its transaction went out is unknown,
/// which a transport error says (not a refusal, so the reservation stays for the reconcile).
fn task_failed(e: tokio::task::JoinError) -> ChainError {
    ChainError::Transport(format!("the broadcast task failed: {e}"))
}

/// Whether the chain (not the transport) refused the transaction: nothing of it is in a block.
/// An error of the node's RPC layer (codespace `rpc`, e.g. while looking the transaction up after
/// it was accepted) says nothing about the transaction, so its outcome is unknown.
pub(crate) fn is_refusal(e: &ChainError) -> bool {
    match e {
        ChainError::Timeout(_)
        | ChainError::Transport(_)
        | ChainError::Decode(_)
        | ChainError::TxInMempoolCache { .. } => false,
        ChainError::Other { codespace, .. } => codespace != "rpc",
        _ => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_chains_own_refusals_release_reservations() {
        let market = ChainError::Other {
            codespace: "market".into(),
            code: 6,
            log: "order not open".into(),
        };
        let rpc = ChainError::Other {
            codespace: "rpc".into(),
            code: 32602,
            log: "Invalid params".into(),
        };
        assert!(is_refusal(&market));
        assert!(is_refusal(&ChainError::InsufficientFunds {
            log: String::new()
        }));
        assert!(!is_refusal(&rpc));
        assert!(!is_refusal(&ChainError::Timeout("inclusion".into())));
    }
}
