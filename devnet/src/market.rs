//! The Akash market module's `MsgCreateBid`: a registered provider bids on an open order with a
//! deposit, held in a bid-scoped escrow account.
//!
//! Checks, with the market module's codes (codespace `market`): 2 owner and provider are the same
//! account, 4 bid price above max order price (the order's Σ price × count, same denomination),
//! 13 order not open, 15 order not found, 19 zero price, 21 bid exists from provider, 22 price
//! invalid, 28 deposit invalid (below 0.5 AKT/ACT), 30 unknown provider, 31 invalid bid (bseq ≠ 0,
//! more than 20 bids on the order, reclamation window outside 1h..720h). The resources offer is
//! stored as sent; checking it against the group (and attributes, capabilities, auditors) is left
//! to a later slice.

use chain_client::akash::base::deposit::v1::Source;
use chain_client::akash::escrow::{id::v1 as escrow_id, types::v1 as escrow};
use chain_client::akash::market::{v1 as mv1, v1beta5 as mv1beta5};
use cosmos_sdk_proto::cosmos::base::v1beta1::DecCoin;
use serde_json::json;

use crate::ante::SdkError;
use crate::events::{Event, type_url};
use crate::state::{Proto, State, coins_to_string, keys};

/// Minimum bid deposit per denomination (market `bid_min_deposits`).
pub const BID_MIN_DEPOSIT: u128 = 500_000;
/// Market `order_max_bids`.
pub const ORDER_MAX_BIDS: usize = 20;
const MIN_RECLAMATION_SECS: i64 = 3600;
const MAX_RECLAMATION_SECS: i64 = 720 * 3600;

fn err(code: u32, reason: &str, detail: impl std::fmt::Display) -> SdkError {
    let detail = detail.to_string();
    SdkError {
        code,
        codespace: "market",
        log: if detail.is_empty() {
            reason.to_owned()
        } else {
            format!("{detail}: {reason}")
        },
    }
}

/// The signer of a `MsgCreateBid`: the provider.
pub fn bid_signer(msg: &mv1beta5::MsgCreateBid) -> &str {
    msg.id.as_ref().map_or("", |id| id.provider.as_str())
}

/// Store key of a bid: its order's key, then the provider and bseq.
/// A market-module error without detail (codespace `market`), as the other modules raise them.
pub fn market_err(code: u32, reason: &str) -> SdkError {
    err(code, reason, "")
}

/// The store key of a lease: the key of the bid it was made from.
pub fn lease_key(id: &mv1::LeaseId) -> String {
    bid_key(&mv1::BidId {
        owner: id.owner.clone(),
        dseq: id.dseq,
        gseq: id.gseq,
        oseq: id.oseq,
        provider: id.provider.clone(),
        bseq: id.bseq,
    })
}

/// The active lease `id` names, with its store key; the chain's errors when there is none (20) or
/// it is no longer active (10).
pub fn active_lease(state: &State, id: &mv1::LeaseId) -> Result<(String, mv1::Lease), SdkError> {
    let key = lease_key(id);
    let lease = state
        .leases
        .get(&key)
        .map(|l| l.0.clone())
        .ok_or_else(|| market_err(20, "invalid lease: lease not found"))?;
    if lease.state != mv1::lease::State::Active as i32 {
        return Err(market_err(10, "lease not active"));
    }
    Ok((key, lease))
}

pub fn bid_key(id: &mv1::BidId) -> String {
    format!(
        "{}/{}/{:010}",
        keys::order(&id.owner, id.dseq, id.gseq, id.oseq),
        id.provider,
        id.bseq
    )
}

/// A `LegacyDec` wire value (integer × 10¹⁸) as Go's JSON prints it: 18 decimals.
pub fn legacy_dec_json(wire: &str) -> String {
    let digits = format!("{wire:0>19}");
    let (int, frac) = digits.split_at(digits.len() - 18);
    format!("{int}.{frac}")
}

fn parse_wire(amount: &str, what: &str) -> Result<u128, SdkError> {
    amount
        .parse()
        .map_err(|_| err(22, "bid price is invalid", format!("{what} {amount:?}")))
}

/// Executes `MsgCreateBid` at block `height`.
pub fn create_bid(
    state: &mut State,
    msg: &mv1beta5::MsgCreateBid,
    msg_index: usize,
    height: u64,
) -> Result<Vec<Event>, SdkError> {
    let id = msg
        .id
        .clone()
        .ok_or_else(|| err(31, "invalid bid", "missing id"))?;
    crate::bank::validate_address(&id.owner, "owner")?;
    crate::bank::validate_address(&id.provider, "provider")?;
    if id.owner == id.provider {
        return Err(err(2, "owner and provider are the same account", ""));
    }
    if id.bseq != 0 {
        return Err(err(31, "invalid bid", "bseq must be 0"));
    }
    let price = msg
        .price
        .clone()
        .ok_or_else(|| err(22, "bid price is invalid", "missing price"))?;
    let bid_amount = parse_wire(&price.amount, "price")?;
    if bid_amount == 0 {
        return Err(err(19, "invalid bid: zero price", ""));
    }
    if let Some(w) = msg.reclamation_window
        && !(MIN_RECLAMATION_SECS..=MAX_RECLAMATION_SECS).contains(&w.seconds)
    {
        return Err(err(
            31,
            "invalid bid",
            format!("reclamation window of {}s is outside 1h..720h", w.seconds),
        ));
    }
    let deposit = msg
        .deposit
        .as_ref()
        .and_then(|d| d.amount.as_ref())
        .ok_or_else(|| err(28, "deposit invalid", "missing deposit"))?;
    let deposit = crate::bank::parse_coins(std::slice::from_ref(deposit))?.remove(0);
    if ![crate::DENOM_AKT, crate::DENOM_ACT].contains(&deposit.denom.as_str())
        || deposit.amount < BID_MIN_DEPOSIT
    {
        return Err(err(
            28,
            "deposit invalid",
            format!(
                "deposit {deposit} is below the minimum {BID_MIN_DEPOSIT}{}",
                deposit.denom
            ),
        ));
    }

    if !state.providers.contains_key(&id.provider) {
        return Err(err(30, "unknown provider", &id.provider));
    }
    let order_key = keys::order(&id.owner, id.dseq, id.gseq, id.oseq);
    let order = state
        .orders
        .get(&order_key)
        .map(|o| o.0.clone())
        .ok_or_else(|| err(15, "invalid order: order not found", ""))?;
    if order.state != mv1beta5::order::State::Open as i32 {
        return Err(err(13, "bid: order not open", ""));
    }
    // The order's price: Σ price × count over its resource units, in one denomination.
    let mut max = 0u128;
    for ru in order
        .spec
        .as_ref()
        .map(|s| s.resources.as_slice())
        .unwrap_or_default()
    {
        let p = ru.price.clone().unwrap_or_default();
        if p.denom != price.denom {
            return Err(err(
                22,
                "bid price is invalid",
                format!(
                    "denomination {} does not match the order's {}",
                    price.denom, p.denom
                ),
            ));
        }
        max = max.saturating_add(
            parse_wire(&p.amount, "order price")?.saturating_mul(u128::from(ru.count)),
        );
    }
    if bid_amount > max {
        return Err(err(
            4,
            "bid price above max order price",
            format!(
                "{}{} > {}{}",
                legacy_dec_json(&price.amount),
                price.denom,
                legacy_dec_json(&max.to_string()),
                price.denom
            ),
        ));
    }
    let key = bid_key(&id);
    if state.bids.contains_key(&key) {
        return Err(err(21, "invalid bid: bid exists from provider", ""));
    }
    let on_order = state
        .bids
        .range(format!("{order_key}/")..)
        .take_while(|(k, _)| k.starts_with(&format!("{order_key}/")))
        .count();
    if on_order >= ORDER_MAX_BIDS {
        return Err(err(
            31,
            "invalid bid",
            format!("too many existing bids ({on_order})"),
        ));
    }

    let escrow_addr = crate::deployment::escrow_module_address();
    state.transfer(&id.provider, &escrow_addr, std::slice::from_ref(&deposit))?;
    let created_at = i64::try_from(height).unwrap_or(i64::MAX);
    state.bids.insert(
        key.clone(),
        Proto(mv1beta5::Bid {
            id: Some(id.clone()),
            state: mv1beta5::bid::State::Open as i32,
            price: Some(price.clone()),
            created_at,
            resources_offer: msg.resources_offer.clone(),
            reclamation_window: msg.reclamation_window,
        }),
    );
    let xid = format!(
        "{}/{}/{}/{}/{}/{}",
        id.owner, id.dseq, id.gseq, id.oseq, id.provider, id.bseq
    );
    let dec_amount = chain_client::dec::to_wire(&deposit.amount.to_string())
        .map_err(|e| err(28, "deposit invalid", e))?;
    state.escrow_accounts.insert(
        format!("bid/{key}"),
        Proto(escrow::Account {
            id: Some(escrow_id::Account {
                scope: escrow_id::Scope::Bid as i32,
                xid,
            }),
            state: Some(escrow::AccountState {
                owner: id.provider.clone(),
                state: escrow::State::Open as i32,
                transferred: Vec::new(),
                settled_at: created_at,
                funds: vec![escrow::Balance {
                    denom: deposit.denom.clone(),
                    amount: dec_amount.clone(),
                }],
                deposits: vec![escrow::Depositor {
                    owner: id.provider.clone(),
                    height: created_at,
                    source: Source::Balance as i32,
                    balance: Some(DecCoin {
                        denom: deposit.denom.clone(),
                        amount: dec_amount,
                    }),
                    direct: true,
                }],
            }),
        }),
    );

    let idx = msg_index.to_string();
    let amount = coins_to_string(std::slice::from_ref(&deposit));
    Ok(vec![
        Event::new("message")
            .attr(
                "action",
                type_url::<chain_client::akash::market::v1beta5::MsgCreateBid>(),
            )
            .attr("sender", id.provider.clone())
            .attr("module", "market")
            .attr("msg_index", idx.clone()),
        Event::new("transfer")
            .attr("recipient", escrow_addr)
            .attr("sender", id.provider.clone())
            .attr("amount", amount)
            .attr("msg_index", idx.clone()),
        Event::typed_of::<chain_client::akash::market::v1::EventBidCreated>(&json!({
            "id": {
                "owner": id.owner, "dseq": id.dseq.to_string(), "gseq": id.gseq, "oseq": id.oseq,
                "provider": id.provider, "bseq": id.bseq,
            },
            "price": {"denom": price.denom, "amount": legacy_dec_json(&price.amount)},
        }))
        .attr("msg_index", idx),
    ])
}

#[cfg(test)]
mod tests;
