//! Leases: a won lease becomes a `Lease` resource; a lease closed on chain, by anyone, is marked
//! `Closing` and torn down (for now: its reservation released), then `Closed`. Only the chain's
//! word closes a lease: a restart, or the chain or API server away for a while, tears nothing down.

use chain_client::akash::market::v1 as mv1;
use chain_client::chain::{LeaseFilters, PageRequest};
use cosmos_sdk_proto::cosmos::base::v1beta1::DecCoin;
use crds::resources::{
    BidPhase, BidStatus, DSEQ_LABEL, Lease, LeasePhase, LeaseRef, LeaseSpec, LeaseStatus,
    OWNER_LABEL, Price,
};
use kube::ResourceExt;
use kube::api::ObjectMeta;

use super::{Engine, lease_order};
use crate::metrics::Metrics;

impl Engine {
    /// The chain created a lease on one of our bids.
    pub(crate) async fn lease_won(
        &mut self,
        id: &mv1::LeaseId,
        price: Option<&DecCoin>,
        height: i64,
    ) {
        let order = lease_order(id);
        let name = order.object_name();
        let price = price
            .and_then(|p| {
                chain_client::dec::dec_coin_amount(p)
                    .ok()
                    .map(|amount| Price {
                        denom: p.denom.clone(),
                        amount,
                    })
            })
            .or_else(|| self.bids.get(&name).map(|b| b.spec.price.clone()));
        let Some(price) = price else {
            tracing::error!(%order, "a lease without a readable price and without our bid; not recorded");
            return;
        };
        self.ensure_lease(id, price, Some(height)).await;
        self.mark_won(&name).await;
    }

    /// Our bid `name`, if we hold it, is in phase Won.
    async fn mark_won(&mut self, name: &str) {
        if self
            .bids
            .get(name)
            .is_some_and(|b| super::phase(b) != BidPhase::Won)
        {
            self.metrics.bids_won.inc();
            let mut status = self.bids[name].status.clone().unwrap_or_default();
            status.phase = Some(BidPhase::Won);
            status.message = None;
            self.set_status(name, status).await;
        }
    }

    async fn ensure_lease(&mut self, id: &mv1::LeaseId, price: Price, created_at: Option<i64>) {
        let order = lease_order(id);
        let lease = Lease {
            metadata: ObjectMeta {
                name: Some(order.object_name()),
                labels: Some(
                    [
                        (OWNER_LABEL.to_owned(), order.owner.clone()),
                        (DSEQ_LABEL.to_owned(), order.dseq.to_string()),
                    ]
                    .into(),
                ),
                // Born with the workload reconciler's finalizer: a Lease is never without it (so
                // its deletion always removes the lease's namespace), and the reconciler need not
                // add it with a patch that races the other writers of a new Lease.
                finalizers: Some(vec![crate::workload::reconcile::FINALIZER.to_owned()]),
                ..Default::default()
            },
            spec: LeaseSpec {
                lease_id: LeaseRef {
                    owner: id.owner.clone(),
                    dseq: id.dseq,
                    gseq: id.gseq,
                    oseq: id.oseq,
                    provider: id.provider.clone(),
                },
                price,
                created_at,
                manifest: None,
                deployment_manifest: None,
            },
            status: Some(LeaseStatus {
                phase: Some(LeasePhase::Pending),
                ..Default::default()
            }),
        };
        match self.store.create_lease(&lease).await {
            Ok(true) => {
                self.metrics.active_leases.inc();
                tracing::info!(lease = %lease.spec.lease_id, "lease won; Lease resource created");
            }
            Ok(false) => {}
            Err(e) => {
                Metrics::count(&self.metrics.bid_failures, "store");
                tracing::error!(lease = %lease.spec.lease_id, error = %e, "writing the Lease resource failed; the periodic reconcile retries");
            }
        }
    }

    /// The chain closed one of our leases.
    pub(crate) async fn lease_closed(&mut self, id: &mv1::LeaseId, reason: i32) {
        let name = lease_order(id).object_name();
        let reason = mv1::LeaseClosedReason::try_from(reason)
            .map(|r| closed_reason_text(r).to_owned())
            .unwrap_or_else(|_| reason.to_string());
        let leases = match self.store.list_leases().await {
            Ok(leases) => leases,
            Err(e) => {
                tracing::warn!(lease = name, error = %e, "reading Lease resources failed; the periodic reconcile retries");
                return;
            }
        };
        if let Some(lease) = leases.into_iter().find(|l| l.name_any() == name) {
            self.teardown(lease, Some(reason)).await;
        }
    }

    /// Marks the lease `Closing`, releases what it held, marks it `Closed`. Re-entrant: a
    /// teardown interrupted by a crash resumes from `Closing` at the next start.
    async fn teardown(&mut self, lease: Lease, reason: Option<String>) {
        let name = lease.name_any();
        let mut status = lease.status.clone().unwrap_or_default();
        if status.phase == Some(LeasePhase::Closed) {
            return;
        }
        if status.phase != Some(LeasePhase::Closing) {
            status.phase = Some(LeasePhase::Closing);
            if reason.is_some() {
                status.closed_reason = reason;
            }
            if let Err(e) = self.store.set_lease_status(&name, &status).await {
                tracing::warn!(lease = %lease.spec.lease_id, error = %e, "marking the lease closing failed; retried");
                return;
            }
            tracing::info!(lease = %lease.spec.lease_id, reason = ?status.closed_reason, "lease closed on chain; tearing down");
        }
        // The workloads go at once: the workload controller deletes the namespace too when its
        // watch shows the lease closed, but that watch has lagged by two minutes after an etcd
        // restart (chaos soak).
        let namespace = lease.spec.lease_id.namespace();
        if let Err(e) = self.store.delete_lease_namespace(&namespace).await {
            tracing::warn!(lease = %lease.spec.lease_id, error = %e, "deleting the lease's namespace failed; the workload controller retries");
        }
        // The reservation goes with the lease.
        if let Err(e) = self.store.delete_bid(&name).await {
            tracing::warn!(lease = %lease.spec.lease_id, error = %e, "releasing the lease's reservation failed; retried");
            return;
        }
        self.bids.remove(&name);
        status.phase = Some(LeasePhase::Closed);
        if let Err(e) = self.store.set_lease_status(&name, &status).await {
            tracing::warn!(lease = %lease.spec.lease_id, error = %e, "marking the lease closed failed; retried");
            return;
        }
        self.metrics.active_leases.dec();
        Metrics::count(&self.metrics.bids_closed, "lease_closed");
    }

    /// [`Self::teardown`] of the Lease resource `name` as it is now (the watch's copy may lag,
    /// and teardown writes its status back).
    async fn teardown_fresh(&mut self, name: &str, reason: Option<String>) {
        match self.store.lease(name).await {
            Ok(Some(lease)) => self.teardown(lease, reason).await,
            Ok(None) => {}
            Err(e) => {
                tracing::warn!(lease = name, error = %e, "reading the lease to tear it down failed; the periodic reconcile retries");
            }
        }
    }

    /// Brings the `Lease` resources in line with the chain: every active lease of ours has one;
    /// one whose lease the chain reports closed is torn down. A lease the chain cannot be asked
    /// about is left alone.
    pub(crate) async fn reconcile_leases(&mut self) -> anyhow::Result<()> {
        let chain = self.chain.clone();
        let provider = self.config.provider.clone();
        let page_size = self.config.page_size;
        let active = super::retry_chain(
            || {
                let chain = chain.clone();
                let provider = provider.clone();
                async move {
                    chain_client::chain::collect_all(page_size, |page| {
                        let chain = chain.clone();
                        let filters = LeaseFilters {
                            provider: provider.clone(),
                            state: "active".into(),
                            ..Default::default()
                        };
                        async move { chain.leases(filters, page).await }
                    })
                    .await
                }
            },
            "listing this provider's active leases",
        )
        .await;
        // From the store's watch: this pass runs every 30 s and, while nothing changes, makes
        // no request of the API server.
        let stored = self.store.watched_leases().await?;
        let known: std::collections::BTreeSet<String> =
            stored.iter().map(|l| l.name_any()).collect();
        let mut active_names = std::collections::BTreeSet::new();
        for response in active {
            let Some(lease) = response.lease else {
                continue;
            };
            let Some(id) = lease.id else { continue };
            let name = lease_order(&id).object_name();
            if known.contains(&name) {
                self.mark_won(&name).await;
            } else {
                self.lease_won(&id, lease.price.as_ref(), lease.created_at)
                    .await;
            }
            active_names.insert(name);
        }
        let mut open = 0;
        for lease in stored {
            let name = lease.name_any();
            let phase = lease.status.as_ref().and_then(|s| s.phase);
            if phase == Some(LeasePhase::Closed) {
                continue;
            }
            if active_names.contains(&name) && phase != Some(LeasePhase::Closing) {
                open += 1;
                continue;
            }
            // Not active on chain (or mid-teardown): ask the chain for this lease.
            let id = &lease.spec.lease_id;
            let filters = LeaseFilters {
                owner: id.owner.clone(),
                dseq: id.dseq,
                gseq: id.gseq,
                oseq: id.oseq,
                provider: id.provider.clone(),
                ..Default::default()
            };
            match self.chain.leases(filters, PageRequest::first(1)).await {
                Ok(page) => {
                    let chain_lease = page.items.into_iter().find_map(|r| r.lease);
                    match chain_lease {
                        Some(l) if l.state == mv1::lease::State::Active as i32 => open += 1,
                        Some(l) => {
                            let reason = mv1::LeaseClosedReason::try_from(l.reason)
                                .ok()
                                .map(|r| closed_reason_text(r).to_owned());
                            self.teardown_fresh(&name, reason).await;
                        }
                        None if phase == Some(LeasePhase::Closing) => {
                            self.teardown_fresh(&name, None).await;
                        }
                        // The chain does not know it: keep it, say so.
                        None => {
                            open += 1;
                            tracing::warn!(lease = %id, "the chain has no such lease; keeping the Lease resource");
                        }
                    }
                }
                Err(e) => {
                    open += 1;
                    Metrics::count(&self.metrics.chain_errors, e.metric_label());
                    tracing::warn!(lease = %id, error = %e, "reading the lease failed; leaving it as it is");
                }
            }
        }
        self.metrics.active_leases.set(open);
        // Won bids whose lease resource exists are in phase Won; make sure of it.
        let won: Vec<String> = active_names
            .iter()
            .filter(|n| {
                self.bids
                    .get(*n)
                    .is_some_and(|b| super::phase(b) != BidPhase::Won)
            })
            .cloned()
            .collect();
        for name in won {
            let status = BidStatus {
                phase: Some(BidPhase::Won),
                ..self.bids[&name].status.clone().unwrap_or_default()
            };
            self.set_status(&name, status).await;
        }
        Ok(())
    }
}

/// The short name of a close reason, as the Go provider prints it.
pub(crate) fn closed_reason_text(reason: mv1::LeaseClosedReason) -> &'static str {
    use mv1::LeaseClosedReason as R;
    match reason {
        R::LeaseClosedInvalid => "invalid",
        R::LeaseClosedOwner => "owner",
        R::Unstable => "unstable",
        R::Decommission => "decommission",
        R::Unspecified => "unspecified",
        R::ManifestTimeout => "manifest_timeout",
        R::InsufficientFunds => "insufficient_funds",
    }
}
