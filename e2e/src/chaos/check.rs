//! The invariants at the end of a soak, from the chain and the cluster.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use chain_client::Chain;
use chain_client::akash::market::v1 as mv1;
use chain_client::chain::{BidFilters, collect_all};
use crds::resources::{Bid, Lease, LeaseRef};
use k8s_openapi::api::core::v1::Namespace;
use kube::Api;

use super::lifecycle::{Lifecycle, lease_live, tolerant};
use crate::marketplace::Marketplace;
use crate::wait::{Poll, until};

/// The end state. Every count is 0 in a good run.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Invariants {
    /// Leases closed on chain by anything but their tenant's close, or never made.
    pub leases_lost: usize,
    /// Lifecycles that did not get through.
    pub lifecycles_failed: usize,
    /// Manifest versions sent but not run by every provider of the deployment.
    pub versions_not_delivered: usize,
    /// Orders with more than one bid of one provider.
    pub double_bids: usize,
    /// `Bid` resources left in the providers' namespaces.
    pub bids_left: usize,
    /// Resources still reserved in a provider's inventory (its `reserved` metric).
    pub reserved_left: usize,
    /// `Lease` resources not closed.
    pub leases_not_closed: usize,
    /// Lease namespaces still there.
    pub orphan_namespaces: usize,
    /// Closed deployments whose escrow account or lease payments are not closed.
    pub escrow_unsettled: usize,
    /// What each count above is made of.
    pub details: Vec<String>,
}

impl Invariants {
    pub fn all_hold(&self) -> bool {
        self.counts().iter().all(|(_, n)| *n == 0)
    }

    pub fn counts(&self) -> [(&'static str, usize); 9] {
        [
            ("leases lost", self.leases_lost),
            ("lifecycles failed", self.lifecycles_failed),
            (
                "manifest versions not delivered",
                self.versions_not_delivered,
            ),
            ("double bids", self.double_bids),
            ("Bid resources left", self.bids_left),
            ("inventory left reserved", self.reserved_left),
            ("Lease resources not closed", self.leases_not_closed),
            ("orphan lease namespaces", self.orphan_namespaces),
            ("escrow not settled", self.escrow_unsettled),
        ]
    }
}

/// The invariants, once every process runs again.
pub(super) async fn check(
    m: &Marketplace,
    cluster: &crate::Cluster,
    all: &[&Lifecycle],
) -> anyhow::Result<Invariants> {
    let mut inv = Invariants::default();
    for l in all {
        if let Some(failure) = &l.failure {
            inv.lifecycles_failed += 1;
            inv.details.push(failure.clone());
        }
        inv.versions_not_delivered += 2 - l.versions_delivered;
    }
    let dseqs: BTreeSet<u64> = all.iter().map(|l| l.dseq).collect();
    let owner = m.tenant.address().to_owned();
    let chain = &m.tenant;

    // The chain: after a moment for the last closes to land.
    let (leases, bids, deployments) = until(
        "the chain's view of the soak's deployments",
        Duration::from_secs(120),
        || {
            tolerant(async {
                let leases = collect_all(100, |page| {
                    chain.leases(
                        mv1::LeaseFilters {
                            owner: owner.clone(),
                            ..Default::default()
                        },
                        page,
                    )
                })
                .await?;
                let bids = collect_all(100, |page| {
                    chain.bids(
                        BidFilters {
                            owner: owner.clone(),
                            ..Default::default()
                        },
                        page,
                    )
                })
                .await?;
                let deployments = collect_all(100, |page| {
                    chain.deployments(
                        chain_client::akash::deployment::v1beta4::DeploymentFilters {
                            owner: owner.clone(),
                            ..Default::default()
                        },
                        page,
                    )
                })
                .await?;
                Ok(Poll::Ready((leases, bids, deployments)))
            })
        },
    )
    .await?;

    let mut bids_per: BTreeMap<(u64, u32, u32, String), usize> = BTreeMap::new();
    for b in bids.iter().filter_map(|b| b.bid.as_ref()) {
        if let Some(id) = &b.id
            && dseqs.contains(&id.dseq)
        {
            *bids_per
                .entry((id.dseq, id.gseq, id.oseq, id.provider.clone()))
                .or_default() += 1;
        }
    }
    for (key, n) in &bids_per {
        if *n > 1 {
            inv.double_bids += 1;
            inv.details
                .push(format!("{n} bids of one provider on order {key:?}"));
        }
    }

    let mut namespaces = Vec::new();
    for dseq in &dseqs {
        let ours: Vec<_> = leases
            .iter()
            .filter_map(|r| r.lease.as_ref())
            .filter(|l| l.id.as_ref().is_some_and(|id| id.dseq == *dseq))
            .collect();
        if ours.len() < 2 {
            inv.leases_lost += 2 - ours.len();
            inv.details.push(format!(
                "deployment {dseq}: {} leases on chain, 2 groups",
                ours.len()
            ));
        }
        for lease in &ours {
            let id = lease.id.clone().unwrap_or_default();
            namespaces.push(
                LeaseRef {
                    owner: id.owner.clone(),
                    dseq: id.dseq,
                    gseq: id.gseq,
                    oseq: id.oseq,
                    provider: id.provider.clone(),
                }
                .namespace(),
            );
            let closed_by_owner = lease.state == mv1::lease::State::Closed as i32
                && lease.reason == mv1::LeaseClosedReason::LeaseClosedOwner as i32;
            if !closed_by_owner {
                inv.leases_lost += 1;
                inv.details.push(format!(
                    "lease {}/{}/{} of {}: state {}, reason {}",
                    id.dseq, id.gseq, id.oseq, id.provider, lease.state, lease.reason
                ));
            }
        }
        let deployment = deployments.iter().find(|d| {
            d.deployment
                .as_ref()
                .and_then(|d| d.id.as_ref())
                .is_some_and(|id| id.dseq == *dseq)
        });
        let escrow_closed = deployment
            .and_then(|d| d.escrow_account.as_ref())
            .and_then(|a| a.state.as_ref())
            .is_some_and(|s| {
                s.state == chain_client::akash::escrow::types::v1::State::Closed as i32
            });
        let payments_closed = leases
            .iter()
            .filter(|r| {
                r.lease
                    .as_ref()
                    .and_then(|l| l.id.as_ref())
                    .is_some_and(|id| id.dseq == *dseq)
            })
            .all(|r| {
                r.escrow_payment
                    .as_ref()
                    .and_then(|p| p.state.as_ref())
                    .is_some_and(|s| {
                        s.state == chain_client::akash::escrow::types::v1::State::Closed as i32
                    })
            });
        if !escrow_closed || !payments_closed {
            inv.escrow_unsettled += 1;
            inv.details.push(format!(
                "deployment {dseq}: escrow account closed {escrow_closed}, payments closed {payments_closed}"
            ));
        }
    }

    // The providers: no Bid left, nothing reserved, every Lease closed, no lease namespace.
    let settle = Duration::from_secs(120);
    for (i, site) in m.sites.iter().enumerate() {
        let bids_api: Api<Bid> = site.ns.api();
        let gone = until(
            &format!("provider {i}'s Bid resources gone"),
            settle,
            || {
                tolerant(async {
                    let n = bids_api.list(&Default::default()).await?.items.len();
                    Ok(if n == 0 {
                        Poll::Ready(())
                    } else {
                        Poll::Pending(format!("{n} left"))
                    })
                })
            },
        )
        .await;
        if gone.is_err() {
            let n = bids_api.list(&Default::default()).await?.items.len();
            inv.bids_left += n;
            inv.details
                .push(format!("provider {i}: {n} Bid resources left"));
        }
        let reserved = until(
            &format!("provider {i}'s reservations back to 0"),
            settle,
            || {
                tolerant(async {
                    let text = site.process.metrics().await.unwrap_or_default();
                    let held: Vec<String> = text
                        .lines()
                        .filter(|l| l.starts_with("akash_provider_reserved{"))
                        .filter(|l| l.rsplit(' ').next().is_some_and(|v| v != "0" && v != "0.0"))
                        .map(str::to_owned)
                        .collect();
                    Ok(if held.is_empty() && !text.is_empty() {
                        Poll::Ready(())
                    } else {
                        Poll::Pending(format!("{held:?}"))
                    })
                })
            },
        )
        .await;
        if let Err(e) = reserved {
            inv.reserved_left += 1;
            inv.details.push(format!("provider {i}: {e:#}"));
        }
        let leases_api: Api<Lease> = site.ns.api();
        let open = until(&format!("provider {i}'s Leases closed"), settle, || {
            tolerant(async {
                let open: Vec<String> = leases_api
                    .list(&Default::default())
                    .await?
                    .items
                    .into_iter()
                    .filter(lease_live)
                    .map(|l| kube::ResourceExt::name_any(&l))
                    .collect();
                Ok(if open.is_empty() {
                    Poll::Ready(())
                } else {
                    Poll::Pending(format!("{open:?}"))
                })
            })
        })
        .await;
        if let Err(e) = open {
            inv.leases_not_closed += 1;
            inv.details.push(format!("provider {i}: {e:#}"));
        }
    }
    let ns_api = Api::<Namespace>::all(cluster.client());
    let orphans = until("the lease namespaces gone", settle, || {
        tolerant(async {
            let mut left = Vec::new();
            for ns in &namespaces {
                if ns_api.get_opt(ns).await?.is_some() {
                    left.push(ns.clone());
                }
            }
            Ok(if left.is_empty() {
                Poll::Ready(())
            } else {
                Poll::Pending(format!("{left:?}"))
            })
        })
    })
    .await;
    if let Err(e) = orphans {
        let mut left = 0;
        for ns in &namespaces {
            if ns_api.get_opt(ns).await.ok().flatten().is_some() {
                left += 1;
            }
        }
        inv.orphan_namespaces = left;
        inv.details.push(format!("{e:#}"));
    }
    Ok(inv)
}
