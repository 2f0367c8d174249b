//! The whitepaper's market rules, which today's Akash leaves to tenants and providers, applied by
//! the devnet at the end of each block when enabled:
//!
//! - **Matching** (`match_after_blocks`): once an order has waited that many blocks, the devnet
//!   acts as the facilitator and leases its lowest-priced open bid (the earliest on a tie), as if
//!   the tenant had sent `MsgCreateLease`.
//! - **Lease confirmation** (`reconfirmation_blocks`): a provider confirms a lease with
//!   `MsgWithdrawLease`. A lease left unconfirmed for longer is closed (reason
//!   `lease_closed_reason_unstable`), the blocks since its last confirmation are not paid, the
//!   provider's bid deposit (its collateral) goes to the tenant, and the group gets a new open
//!   order.
//!
//! Both are off (0) by default, so the devnet behaves as today's Akash. Events go to the block's
//! `finalize_block_events`.

use chain_client::akash::market::{v1 as mv1, v1beta5 as mv1beta5};
use serde_json::json;

use crate::close::{bid_id_json, close_order, drain_escrow};
use crate::events::Event;
use crate::state::State;

/// Which whitepaper rules the devnet applies (0 turns a rule off).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WhitepaperRules {
    /// Blocks an order collects bids before the devnet leases the cheapest one.
    pub match_after_blocks: u64,
    /// Blocks a lease may go without a `MsgWithdrawLease` before it is closed as stale.
    pub reconfirmation_blocks: u64,
}

fn amount(price: Option<&cosmos_sdk_proto::cosmos::base::v1beta1::DecCoin>) -> u128 {
    price
        .and_then(|p| p.amount.parse().ok())
        .unwrap_or(u128::MAX)
}

/// Applies the enabled rules at the end of the block at `height`; returns the block's events.
pub fn end_block(state: &mut State, height: u64, rules: &WhitepaperRules) -> Vec<Event> {
    let mut events = Vec::new();
    let h = i64::try_from(height).unwrap_or(i64::MAX);
    if rules.reconfirmation_blocks > 0 {
        events.extend(close_stale_leases(state, h, rules.reconfirmation_blocks));
    }
    if rules.match_after_blocks > 0 {
        events.extend(match_orders(state, height, rules.match_after_blocks));
    }
    events
}

fn match_orders(state: &mut State, height: u64, after: u64) -> Vec<Event> {
    let due: Vec<String> = state
        .orders
        .iter()
        .filter(|(_, o)| {
            o.0.state == mv1beta5::order::State::Open as i32
                && u64::try_from(o.0.created_at)
                    .unwrap_or(u64::MAX)
                    .saturating_add(after)
                    <= height
        })
        .map(|(k, _)| k.clone())
        .collect();
    let mut events = Vec::new();
    for order_key in due {
        let prefix = format!("{order_key}/");
        let best = state
            .bids
            .range(prefix.clone()..)
            .take_while(|(k, _)| k.starts_with(&prefix))
            .filter(|(_, b)| b.0.state == mv1beta5::bid::State::Open as i32)
            .min_by_key(|(k, b)| (amount(b.0.price.as_ref()), b.0.created_at, (*k).clone()))
            .and_then(|(_, b)| b.0.id.clone());
        let Some(bid_id) = best else { continue };
        let mut next = state.clone();
        match crate::lease::create_lease(
            &mut next,
            &mv1beta5::MsgCreateLease {
                bid_id: Some(bid_id),
            },
            0,
            height,
        ) {
            Ok(evs) => {
                *state = next;
                events.extend(evs.into_iter().filter(|e| e.kind != "message"));
            }
            Err(e) => tracing::warn!(order = %order_key, "matching failed: {}", e.log),
        }
    }
    events
}

fn close_stale_leases(state: &mut State, height: i64, period: u64) -> Vec<Event> {
    let period = i64::try_from(period).unwrap_or(i64::MAX);
    let stale: Vec<String> = state
        .leases
        .iter()
        .filter(|(k, l)| {
            let confirmed = state
                .lease_confirmed_at
                .get(*k)
                .copied()
                .unwrap_or(l.0.created_at);
            l.0.state == mv1::lease::State::Active as i32
                && confirmed.saturating_add(period) < height
        })
        .map(|(k, _)| k.clone())
        .collect();
    let mut events = Vec::new();
    for key in stale {
        let Some(lease) = state.leases.get(&key).map(|l| l.0.clone()) else {
            continue;
        };
        let id = lease.id.clone().unwrap_or_default();
        let mut next = state.clone();
        // The blocks since the last confirmation are not paid: the lease was not confirmed.
        if let Some(l) = next.leases.get_mut(&key) {
            l.0.state = mv1::lease::State::Closed as i32;
            l.0.closed_on = height;
            l.0.reason = mv1::LeaseClosedReason::Unstable as i32;
        }
        if let Some(b) = next.bids.get_mut(&key) {
            b.0.state = mv1beta5::bid::State::Closed as i32;
        }
        if let Some(p) = next.payments.get_mut(&key).and_then(|p| p.0.state.as_mut()) {
            p.state = chain_client::akash::escrow::types::v1::State::Closed as i32;
        }
        // The collateral goes to the tenant.
        if let Err(e) = drain_escrow(&mut next, &format!("bid/{key}"), &id.owner) {
            tracing::warn!(lease = %key, "forfeiting the deposit failed: {}", e.log);
            continue;
        }
        let bid_id = mv1::BidId {
            owner: id.owner.clone(),
            dseq: id.dseq,
            gseq: id.gseq,
            oseq: id.oseq,
            provider: id.provider.clone(),
            bseq: id.bseq,
        };
        events.push(Event::typed_of::<chain_client::akash::market::v1::EventLeaseClosed>(&json!({"id": bid_id_json(&bid_id), "reason": mv1::LeaseClosedReason::Unstable.as_str_name()}),
        ));
        events.push(Event::typed_of::<
            chain_client::akash::market::v1::EventBidClosed,
        >(&json!({"id": bid_id_json(&bid_id)})));
        events.extend(close_order(
            &mut next, &id.owner, id.dseq, id.gseq, id.oseq, "0",
        ));
        // The group's next order, open for bids.
        events.extend(crate::close::reopen_order(
            &mut next, &id.owner, id.dseq, id.gseq, id.oseq, height, "0",
        ));
        *state = next;
    }
    events
}

#[cfg(test)]
mod tests;
