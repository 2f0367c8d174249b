//! The bid round of a step: wait out the bid collection of each unleased group's open order, then
//! choose by the rule in [`crate::tenant::select`] and lease the winners in one transaction.

use std::time::Duration;

use chain_client::Chain;
use chain_client::ChainError;
use chain_client::akash::market::{v1 as mv1, v1beta5 as mv5};
use crds::resources::{GroupLeaseStatus, ManifestStatus};

use super::{Ctx, FlowError, Progress};
use crate::tenant::plan::Plan;
use crate::tenant::select::{self, Candidate};

pub(super) enum BidRound {
    /// Leases were created.
    Leased,
    /// Look again after this long (bids still being collected, or none eligible yet).
    Waiting(Duration),
}

/// Looks at the open order of every unleased group: still collecting bids, or time to choose.
/// The chosen bids are leased in one transaction.
pub(super) async fn bid_round(
    ctx: &Ctx<'_>,
    plan: &Plan,
    status: &mut ManifestStatus,
    owner: &str,
    dseq: u64,
    unleased: &[u32],
    progress: &mut Vec<Progress>,
) -> Result<BidRound, FlowError> {
    let height = ctx.chain.latest_height().await?;
    let orders = chain_client::chain::collect_all(100, |page| {
        ctx.chain.orders(
            mv5::OrderFilters {
                owner: owner.to_owned(),
                dseq,
                state: "open".into(),
                ..Default::default()
            },
            page,
        )
    })
    .await?;
    let mut lease_msgs = Vec::new();
    let mut chosen = Vec::new();
    let mut min_wait: Option<u64> = None;
    for &gseq in unleased {
        let Some(order) = orders
            .iter()
            .filter(|o| o.id.as_ref().is_some_and(|id| id.gseq == gseq))
            .max_by_key(|o| o.id.as_ref().map(|id| id.oseq))
        else {
            continue;
        };
        let oid = order.id.clone().unwrap_or_default();
        let due = u64::try_from(order.created_at).unwrap_or(0) + plan.wait_blocks;
        let bids = open_bids(ctx.chain, &oid).await?;
        let gs = group_mut(status, gseq);
        gs.bids_seen = u32::try_from(bids.len()).unwrap_or(u32::MAX);
        gs.oseq = Some(oid.oseq);
        if height < due {
            let left = due - height;
            min_wait = Some(min_wait.map_or(left, |w| w.min(left)));
            progress.push(Progress::WaitingForBids {
                gseq,
                blocks_left: left,
            });
            continue;
        }
        let candidates = candidates(
            ctx.chain,
            &bids,
            !plan.filter.required_attributes.is_empty(),
        )
        .await?;
        progress.push(Progress::BidsReceived {
            gseq,
            bids: candidates
                .iter()
                .map(|c| (c.provider.clone(), display_price(c)))
                .collect(),
        });
        let gs = group_mut(status, gseq);
        match select::choose(&candidates, &plan.filter, &gs.dropped_providers) {
            Some(winner) => {
                let bid_id = bids
                    .iter()
                    .filter_map(|b| b.id.clone())
                    .find(|id| id.provider == winner.provider && id.bseq == winner.bseq);
                lease_msgs.push(chain_client::to_any(&mv5::MsgCreateLease { bid_id }));
                chosen.push((gseq, winner.provider.clone(), display_price(winner)));
            }
            None => {
                gs.message = Some(format!(
                    "{} bids, none eligible (filters, or providers dropped before)",
                    candidates.len()
                ));
                progress.push(Progress::NoEligibleBid {
                    gseq,
                    bids: candidates.len(),
                });
            }
        }
    }
    if !lease_msgs.is_empty() {
        ctx.chain.broadcast(lease_msgs).await?;
        for (gseq, provider, price) in chosen {
            progress.push(Progress::LeaseCreated {
                gseq,
                provider,
                price,
            });
        }
        return Ok(BidRound::Leased);
    }
    let blocks = u32::try_from(min_wait.unwrap_or(1)).unwrap_or(u32::MAX);
    Ok(BidRound::Waiting(
        ctx.block_interval
            .saturating_mul(blocks)
            .min(Duration::from_secs(30)),
    ))
}

pub(super) fn group_mut(status: &mut ManifestStatus, gseq: u32) -> &mut GroupLeaseStatus {
    let idx = status
        .groups
        .iter()
        .position(|g| g.gseq == gseq)
        .unwrap_or_else(|| {
            status.groups.push(GroupLeaseStatus {
                gseq,
                ..Default::default()
            });
            status.groups.len() - 1
        });
    &mut status.groups[idx]
}

async fn open_bids(chain: &dyn Chain, order: &mv1::OrderId) -> Result<Vec<mv5::Bid>, ChainError> {
    let all = chain_client::chain::collect_all(100, |page| {
        chain.bids(
            mv5::BidFilters {
                owner: order.owner.clone(),
                dseq: order.dseq,
                gseq: order.gseq,
                oseq: order.oseq,
                state: "open".into(),
                ..Default::default()
            },
            page,
        )
    })
    .await?;
    Ok(all
        .into_iter()
        .filter_map(|r| r.bid)
        .filter(|b| {
            b.id.as_ref().is_some_and(|id| {
                id.dseq == order.dseq && id.gseq == order.gseq && id.oseq == order.oseq
            })
        })
        .collect())
}

async fn candidates(
    chain: &dyn Chain,
    bids: &[mv5::Bid],
    with_attributes: bool,
) -> Result<Vec<Candidate>, ChainError> {
    let mut out = Vec::with_capacity(bids.len());
    for bid in bids {
        let id = bid.id.clone().unwrap_or_default();
        let price = bid.price.clone().unwrap_or_default();
        let attributes = if with_attributes {
            chain
                .provider(&id.provider)
                .await?
                .map(|p| p.attributes.into_iter().map(|a| (a.key, a.value)).collect())
                .unwrap_or_default()
        } else {
            Vec::new()
        };
        out.push(Candidate {
            provider: id.provider,
            bseq: id.bseq,
            denom: price.denom,
            price: price.amount.parse().unwrap_or(u128::MAX),
            created_at: bid.created_at,
            attributes,
        });
    }
    Ok(out)
}

fn display_price(c: &Candidate) -> String {
    let amount = chain_client::dec::from_wire(&c.price.to_string()).unwrap_or_default();
    format!("{amount}{}", c.denom)
}
