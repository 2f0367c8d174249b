//! The Akash market module's `MsgCreateLease`, signed by the tenant: the chosen bid becomes
//! active, every other open bid on the order is lost and its deposit refunded, the order becomes
//! active, and an escrow payment from the deployment's account to the provider starts at the bid
//! price per block.
//!
//! Codes (codespace `market`): 12 bid not open, 13 order not open, 18 bid not found.

use chain_client::akash::escrow::{id::v1 as escrow_id, types::v1 as escrow};
use chain_client::akash::market::{v1 as mv1, v1beta5 as mv1beta5};
use cosmos_sdk_proto::cosmos::base::v1beta1::{Coin as ProtoCoin, DecCoin};
use serde_json::json;

use crate::ante::SdkError;
use crate::events::{Event, type_url};
use crate::market::market_err as err;
use crate::market::{bid_key, legacy_dec_json};
use crate::state::{Coin, Proto, State, keys};

/// The signer of a `MsgCreateLease`: the deployment's owner.
pub fn signer(msg: &mv1beta5::MsgCreateLease) -> &str {
    msg.bid_id.as_ref().map_or("", |id| id.owner.as_str())
}

fn bid_id_json(id: &mv1::BidId) -> serde_json::Value {
    json!({
        "owner": id.owner, "dseq": id.dseq.to_string(), "gseq": id.gseq, "oseq": id.oseq,
        "provider": id.provider, "bseq": id.bseq,
    })
}

/// Executes `MsgCreateLease` at block `height`.
pub fn create_lease(
    state: &mut State,
    msg: &mv1beta5::MsgCreateLease,
    msg_index: usize,
    height: u64,
) -> Result<Vec<Event>, SdkError> {
    let id = msg
        .bid_id
        .clone()
        .ok_or_else(|| err(18, "invalid bid: bid not found"))?;
    crate::bank::validate_address(&id.owner, "owner")?;
    let key = bid_key(&id);
    let bid = state
        .bids
        .get(&key)
        .map(|b| b.0.clone())
        .ok_or_else(|| err(18, "invalid bid: bid not found"))?;
    if bid.state != mv1beta5::bid::State::Open as i32 {
        return Err(err(12, "bid not open"));
    }
    let order_key = keys::order(&id.owner, id.dseq, id.gseq, id.oseq);
    let order_open = state
        .orders
        .get(&order_key)
        .is_some_and(|o| o.0.state == mv1beta5::order::State::Open as i32);
    if !order_open {
        return Err(err(13, "bid: order not open"));
    }
    let created_at = i64::try_from(height).unwrap_or(i64::MAX);
    let idx = msg_index.to_string();
    // Charge the running leases up to now, so the new payment starts at this height.
    let settled = crate::escrow::settle(state, &id.owner, id.dseq, created_at, &idx);
    let mut events = vec![
        Event::new("message")
            .attr(
                "action",
                type_url::<chain_client::akash::market::v1beta5::MsgCreateLease>(),
            )
            .attr("sender", id.owner.clone())
            .attr("module", "market")
            .attr("msg_index", idx.clone()),
    ];

    events.extend(settled);

    // The other open bids on the order lose; their deposits go back to their providers.
    let escrow_addr = crate::deployment::escrow_module_address();
    let prefix = format!("{order_key}/");
    let others: Vec<String> = state
        .bids
        .range(prefix.clone()..)
        .take_while(|(k, _)| k.starts_with(&prefix))
        .filter(|(k, b)| **k != key && b.0.state == mv1beta5::bid::State::Open as i32)
        .map(|(k, _)| k.clone())
        .collect();
    for other in others {
        let Some(b) = state.bids.get_mut(&other) else {
            continue;
        };
        b.0.state = mv1beta5::bid::State::Lost as i32;
        let lost_id = b.0.id.clone().unwrap_or_default();
        if let Some(account) = state.escrow_accounts.get_mut(&format!("bid/{other}"))
            && let Some(st) = account.0.state.as_mut()
        {
            st.state = escrow::State::Closed as i32;
            let refunds: Vec<Coin> = std::mem::take(&mut st.funds)
                .into_iter()
                .filter_map(|f| {
                    let wire: u128 = f.amount.parse().ok()?;
                    Some(Coin::new(wire / 10u128.pow(18), &f.denom))
                })
                .collect();
            state.transfer(&escrow_addr, &lost_id.provider, &refunds)?;
        }
        events.push(
            Event::typed_of::<chain_client::akash::market::v1::EventBidClosed>(
                &json!({"id": bid_id_json(&lost_id)}),
            )
            .attr("msg_index", idx.clone()),
        );
    }

    if let Some(b) = state.bids.get_mut(&key) {
        b.0.state = mv1beta5::bid::State::Active as i32;
    }
    if let Some(o) = state.orders.get_mut(&order_key) {
        o.0.state = mv1beta5::order::State::Active as i32;
    }
    let price = bid.price.clone().unwrap_or_default();
    let lease_id = mv1::LeaseId {
        owner: id.owner.clone(),
        dseq: id.dseq,
        gseq: id.gseq,
        oseq: id.oseq,
        provider: id.provider.clone(),
        bseq: id.bseq,
    };
    state.leases.insert(
        key.clone(),
        Proto(mv1::Lease {
            id: Some(lease_id),
            state: mv1::lease::State::Active as i32,
            price: Some(price.clone()),
            created_at,
            closed_on: 0,
            reason: 0,
            reclamation: None,
        }),
    );
    state.payments.insert(
        key,
        Proto(escrow::Payment {
            id: Some(escrow_id::Payment {
                aid: Some(escrow_id::Account {
                    scope: escrow_id::Scope::Deployment as i32,
                    xid: format!("{}/{}", id.owner, id.dseq),
                }),
                xid: format!("{}/{}/{}", id.gseq, id.oseq, id.provider),
            }),
            state: Some(escrow::PaymentState {
                owner: id.provider.clone(),
                state: escrow::State::Open as i32,
                rate: Some(price.clone()),
                balance: Some(DecCoin {
                    denom: price.denom.clone(),
                    amount: "0".into(),
                }),
                unsettled: Some(DecCoin {
                    denom: price.denom.clone(),
                    amount: "0".into(),
                }),
                withdrawn: Some(ProtoCoin {
                    denom: price.denom.clone(),
                    amount: "0".into(),
                }),
            }),
        }),
    );
    events.push(
        Event::typed_of::<chain_client::akash::market::v1::EventLeaseCreated>(&json!({
            "id": bid_id_json(&id),
            "price": {"denom": price.denom, "amount": legacy_dec_json(&price.amount)},
        }))
        .attr("msg_index", idx),
    );
    Ok(events)
}

#[cfg(test)]
mod tests;
