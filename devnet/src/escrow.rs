//! Escrow settlement and `MsgWithdrawLease`.
//!
//! A deployment's escrow account pays each active lease its price per block. Settlement is lazy,
//! as on Akash: when a provider withdraws, every open payment of the deployment is charged for the
//! blocks since the account's `settled_at`. If the account cannot cover what is due, it pays what
//! it has, becomes overdrawn, and the deployment's leases close with reason
//! `lease_closed_reason_insufficient_funds`. A withdrawal then moves the payment's whole units to
//! the provider (the fraction below one unit stays in the payment's balance).
//!
//! Amounts are `LegacyDec` wire integers (value × 10¹⁸). Codes (codespace `market`): 10 lease not
//! active, 20 lease not found.

use chain_client::akash::escrow::types::v1 as escrow;
use chain_client::akash::market::{v1 as mv1, v1beta5 as mv1beta5};
use cosmos_sdk_proto::cosmos::base::v1beta1::DecCoin;
use serde_json::json;

use crate::ante::SdkError;
use crate::events::{Event, type_url};
use crate::market::market_err as err;
use crate::state::{Coin, State, keys};

const UNIT: u128 = 1_000_000_000_000_000_000;

fn wire(amount: &str) -> u128 {
    amount.parse().unwrap_or(0)
}

/// The signer of a `MsgWithdrawLease`: the provider.
pub fn withdraw_signer(msg: &mv1beta5::MsgWithdrawLease) -> &str {
    msg.id.as_ref().map_or("", |id| id.provider.as_str())
}

/// Charges the deployment's open payments for the blocks since the last settlement. Returns the
/// events of leases closed for insufficient funds.
pub fn settle(state: &mut State, owner: &str, dseq: u64, height: i64, idx: &str) -> Vec<Event> {
    let dkey = keys::deployment(owner, dseq);
    let Some(account) = state.escrow_accounts.get(&dkey).map(|a| a.0.clone()) else {
        return Vec::new();
    };
    let Some(mut st) = account.state.clone() else {
        return Vec::new();
    };
    if st.state != escrow::State::Open as i32 {
        return Vec::new();
    }
    let blocks = u128::try_from(height.saturating_sub(st.settled_at)).unwrap_or(0);
    let prefix = format!("{dkey}/");
    let payment_keys: Vec<String> = state
        .payments
        .iter()
        .filter(|(k, p)| {
            k.starts_with(&prefix)
                && p.0
                    .state
                    .as_ref()
                    .is_some_and(|s| s.state == escrow::State::Open as i32)
        })
        .map(|(k, _)| k.clone())
        .collect();
    let mut overdrawn = false;
    for key in &payment_keys {
        let Some(p) = state.payments.get_mut(key).and_then(|p| p.0.state.as_mut()) else {
            continue;
        };
        let rate = p.rate.clone().unwrap_or_default();
        let due = wire(&rate.amount).saturating_mul(blocks);
        let Some(fund) = st.funds.iter_mut().find(|f| f.denom == rate.denom) else {
            continue;
        };
        let available = wire(&fund.amount);
        let paid = due.min(available);
        if paid < due {
            overdrawn = true;
        }
        fund.amount = (available - paid).to_string();
        let balance = p.balance.get_or_insert_with(|| DecCoin {
            denom: rate.denom.clone(),
            amount: "0".into(),
        });
        balance.amount = (wire(&balance.amount) + paid).to_string();
        match st.transferred.iter_mut().find(|t| t.denom == rate.denom) {
            Some(t) => t.amount = (wire(&t.amount) + paid).to_string(),
            None => st.transferred.push(DecCoin {
                denom: rate.denom.clone(),
                amount: paid.to_string(),
            }),
        }
    }
    st.settled_at = height;
    let mut events = Vec::new();
    if overdrawn {
        st.state = escrow::State::Overdrawn as i32;
        for key in &payment_keys {
            let Some(lease) = state.leases.get_mut(key) else {
                continue;
            };
            if lease.0.state != mv1::lease::State::Active as i32 {
                continue;
            }
            lease.0.state = mv1::lease::State::InsufficientFunds as i32;
            lease.0.closed_on = height;
            lease.0.reason = mv1::LeaseClosedReason::InsufficientFunds as i32;
            let id = lease.0.id.clone().unwrap_or_default();
            events.push(
                Event::typed_of::<chain_client::akash::market::v1::EventLeaseClosed>(&json!({
                        "id": {
                            "owner": id.owner, "dseq": id.dseq.to_string(), "gseq": id.gseq, "oseq": id.oseq,
                            "provider": id.provider, "bseq": id.bseq,
                        },
                        "reason": mv1::LeaseClosedReason::InsufficientFunds.as_str_name(),
                    }),
                )
                .attr("msg_index", idx),
            );
        }
    }
    if let Some(a) = state.escrow_accounts.get_mut(&dkey) {
        a.0.state = Some(st);
    }
    events
}

/// Moves the whole units of the payment's balance at `key` to `provider`.
pub(crate) fn pay_out(
    state: &mut State,
    key: &str,
    provider: &str,
    idx: &str,
) -> Result<Option<Event>, SdkError> {
    let Some(p) = state.payments.get_mut(key).and_then(|p| p.0.state.as_mut()) else {
        return Ok(None);
    };
    let Some(balance) = p.balance.as_mut() else {
        return Ok(None);
    };
    let whole = wire(&balance.amount) / UNIT;
    if whole == 0 {
        return Ok(None);
    }
    balance.amount = (wire(&balance.amount) - whole * UNIT).to_string();
    let denom = balance.denom.clone();
    let withdrawn = p.withdrawn.get_or_insert_with(Default::default);
    withdrawn.denom.clone_from(&denom);
    withdrawn.amount = (withdrawn.amount.parse::<u128>().unwrap_or(0) + whole).to_string();
    let escrow_addr = crate::deployment::escrow_module_address();
    state.transfer(&escrow_addr, provider, &[Coin::new(whole, &denom)])?;
    Ok(Some(
        Event::new("transfer")
            .attr("recipient", provider)
            .attr("sender", escrow_addr)
            .attr("amount", format!("{whole}{denom}"))
            .attr("msg_index", idx),
    ))
}

/// Executes `MsgWithdrawLease` at block `height`.
pub fn withdraw_lease(
    state: &mut State,
    msg: &mv1beta5::MsgWithdrawLease,
    msg_index: usize,
    height: u64,
) -> Result<Vec<Event>, SdkError> {
    let id = msg
        .id
        .clone()
        .ok_or_else(|| err(20, "invalid lease: lease not found"))?;
    let (key, _lease) = crate::market::active_lease(state, &id)?;
    let idx = msg_index.to_string();
    let height = i64::try_from(height).unwrap_or(i64::MAX);
    let mut events = vec![
        Event::new("message")
            .attr(
                "action",
                type_url::<chain_client::akash::market::v1beta5::MsgWithdrawLease>(),
            )
            .attr("sender", id.provider.clone())
            .attr("module", "market")
            .attr("msg_index", idx.clone()),
    ];
    events.extend(settle(state, &id.owner, id.dseq, height, &idx));
    state.lease_confirmed_at.insert(key.clone(), height);
    events.extend(pay_out(state, &key, &id.provider, &idx)?);
    Ok(events)
}

#[cfg(test)]
mod tests;
