//! Closing: the provider's `MsgCloseBid` and the tenant's `MsgCloseDeployment`.
//!
//! - `MsgCloseBid` on an open bid closes it and refunds its deposit. On an active bid (a lease),
//!   it also closes the lease with the message's reason, closes the order and pauses the group.
//! - `MsgCloseDeployment` closes the deployment, its groups, orders, bids and leases (reason
//!   `lease_closed_owner`), refunds every bid deposit to its provider and the deployment's escrow
//!   balance to the owner.
//!
//! Codes: market 18 bid not found, 11 bid not active (a bid already lost or closed); deployment 4
//! deployment not found, 5 deployment closed.

use chain_client::akash::deployment::{v1 as dv1, v1beta4 as dv1beta4};
use chain_client::akash::escrow::types::v1 as escrow;
use chain_client::akash::market::{v1 as mv1, v1beta5 as mv1beta5};
use serde_json::json;

use crate::ante::SdkError;
use crate::events::{Event, type_url};
use crate::market::bid_key;
use crate::market::market_err;
use crate::state::{Coin, State, keys};

pub(crate) fn deployment_err(code: u32, reason: &str) -> SdkError {
    SdkError {
        code,
        codespace: "deployment",
        log: reason.to_owned(),
    }
}

/// The signer of a `MsgCloseBid`: the provider.
pub fn close_bid_signer(msg: &mv1beta5::MsgCloseBid) -> &str {
    msg.id.as_ref().map_or("", |id| id.provider.as_str())
}

/// The signer of a `MsgCloseDeployment`: the owner.
pub fn close_deployment_signer(msg: &dv1beta4::MsgCloseDeployment) -> &str {
    msg.id.as_ref().map_or("", |id| id.owner.as_str())
}

pub(crate) fn bid_id_json(id: &mv1::BidId) -> serde_json::Value {
    json!({
        "owner": id.owner, "dseq": id.dseq.to_string(), "gseq": id.gseq, "oseq": id.oseq,
        "provider": id.provider, "bseq": id.bseq,
    })
}

/// Closes an escrow account and pays its remaining funds (whole units) to `to`.
pub(crate) fn drain_escrow(state: &mut State, key: &str, to: &str) -> Result<(), SdkError> {
    let Some(account) = state.escrow_accounts.get_mut(key) else {
        return Ok(());
    };
    let Some(st) = account.0.state.as_mut() else {
        return Ok(());
    };
    st.state = escrow::State::Closed as i32;
    let refunds: Vec<Coin> = std::mem::take(&mut st.funds)
        .into_iter()
        .filter_map(|f| {
            let wire: u128 = f.amount.parse().ok()?;
            Some(Coin::new(wire / 10u128.pow(18), &f.denom))
        })
        .filter(|c| c.amount > 0)
        .collect();
    state.transfer(&crate::deployment::escrow_module_address(), to, &refunds)?;
    Ok(())
}

/// Closes the bid at `key` (and its lease, if active) with `reason`; returns the events.
pub(crate) fn close_bid_at(
    state: &mut State,
    key: &str,
    reason: mv1::LeaseClosedReason,
    height: i64,
    idx: &str,
) -> Result<Vec<Event>, SdkError> {
    let mut events = Vec::new();
    let Some(bid) = state.bids.get_mut(key) else {
        return Ok(events);
    };
    let was_active = bid.0.state == mv1beta5::bid::State::Active as i32;
    if bid.0.state != mv1beta5::bid::State::Open as i32 && !was_active {
        return Ok(events);
    }
    bid.0.state = mv1beta5::bid::State::Closed as i32;
    let id = bid.0.id.clone().unwrap_or_default();
    drain_escrow(state, &format!("bid/{key}"), &id.provider)?;
    if was_active {
        if let Some(lease) = state.leases.get_mut(key) {
            lease.0.state = mv1::lease::State::Closed as i32;
            lease.0.closed_on = height;
            lease.0.reason = reason as i32;
        }
        events.extend(crate::escrow::pay_out(state, key, &id.provider, idx)?);
        if let Some(p) = state.payments.get_mut(key).and_then(|p| p.0.state.as_mut()) {
            p.state = escrow::State::Closed as i32;
        }
        events.push(
            Event::typed_of::<chain_client::akash::market::v1::EventLeaseClosed>(
                &json!({"id": bid_id_json(&id), "reason": reason.as_str_name()}),
            )
            .attr("msg_index", idx),
        );
    }
    events.push(
        Event::typed_of::<chain_client::akash::market::v1::EventBidClosed>(
            &json!({"id": bid_id_json(&id)}),
        )
        .attr("msg_index", idx),
    );
    Ok(events)
}

pub(crate) fn close_order(
    state: &mut State,
    owner: &str,
    dseq: u64,
    gseq: u32,
    oseq: u32,
    idx: &str,
) -> Option<Event> {
    let order = state
        .orders
        .get_mut(&keys::order(owner, dseq, gseq, oseq))?;
    if order.0.state == mv1beta5::order::State::Closed as i32 {
        return None;
    }
    order.0.state = mv1beta5::order::State::Closed as i32;
    Some(
        Event::typed_of::<chain_client::akash::market::v1::EventOrderClosed>(
            &json!({"id": {"owner": owner, "dseq": dseq.to_string(), "gseq": gseq, "oseq": oseq}}),
        )
        .attr("msg_index", idx),
    )
}

/// Opens the order `id` for `spec` at `height`; returns its `EventOrderCreated`.
pub(crate) fn open_order(
    state: &mut State,
    id: mv1::OrderId,
    spec: Option<dv1beta4::GroupSpec>,
    reclamation: Option<mv1::DeploymentReclamation>,
    height: i64,
    idx: &str,
) -> Event {
    let event = Event::typed_of::<chain_client::akash::market::v1::EventOrderCreated>(&json!({"id": {"owner": id.owner, "dseq": id.dseq.to_string(), "gseq": id.gseq, "oseq": id.oseq}}),
    )
    .attr("msg_index", idx);
    state.orders.insert(
        keys::order(&id.owner, id.dseq, id.gseq, id.oseq),
        crate::state::Proto(mv1beta5::Order {
            id: Some(id),
            state: mv1beta5::order::State::Open as i32,
            spec,
            created_at: height,
            reclamation,
        }),
    );
    event
}

/// Opens the group's next order (oseq + 1) after the order `oseq`, if the group is open.
pub(crate) fn reopen_order(
    state: &mut State,
    owner: &str,
    dseq: u64,
    gseq: u32,
    oseq: u32,
    height: i64,
    idx: &str,
) -> Option<Event> {
    let group_open = state
        .groups
        .get(&keys::group(owner, dseq, gseq))
        .is_some_and(|g| g.0.state == dv1beta4::group::State::Open as i32);
    if !group_open {
        return None;
    }
    let old = state
        .orders
        .get(&keys::order(owner, dseq, gseq, oseq))?
        .0
        .clone();
    let id = mv1::OrderId {
        owner: owner.to_owned(),
        dseq,
        gseq,
        oseq: oseq + 1,
    };
    Some(open_order(
        state,
        id,
        old.spec,
        old.reclamation,
        height,
        idx,
    ))
}

/// The signer of a `MsgCloseLease`: the tenant.
pub fn close_lease_signer(msg: &mv1beta5::MsgCloseLease) -> &str {
    msg.id.as_ref().map_or("", |id| id.owner.as_str())
}

/// Executes the tenant's `MsgCloseLease` at block `height`: the lease and its bid close (the
/// deposit goes back to the provider), the order closes, and the group gets a new open order.
pub fn close_lease(
    state: &mut State,
    msg: &mv1beta5::MsgCloseLease,
    msg_index: usize,
    height: u64,
) -> Result<Vec<Event>, SdkError> {
    let id = msg
        .id
        .clone()
        .ok_or_else(|| market_err(20, "invalid lease: lease not found"))?;
    crate::bank::validate_address(&id.owner, "owner")?;
    let (key, _lease) = crate::market::active_lease(state, &id)?;
    let idx = msg_index.to_string();
    let h = i64::try_from(height).unwrap_or(i64::MAX);
    let mut events = vec![
        Event::new("message")
            .attr(
                "action",
                type_url::<chain_client::akash::market::v1beta5::MsgCloseLease>(),
            )
            .attr("sender", id.owner.clone())
            .attr("module", "market")
            .attr("msg_index", idx.clone()),
    ];
    // Pay the provider up to now before the payment closes.
    events.extend(crate::escrow::settle(state, &id.owner, id.dseq, h, &idx));
    let reason = mv1::LeaseClosedReason::try_from(msg.reason)
        .ok()
        .filter(|r| *r != mv1::LeaseClosedReason::LeaseClosedInvalid)
        .unwrap_or(mv1::LeaseClosedReason::LeaseClosedOwner);
    events.extend(close_bid_at(state, &key, reason, h, &idx)?);
    events.extend(close_order(
        state, &id.owner, id.dseq, id.gseq, id.oseq, &idx,
    ));
    events.extend(reopen_order(
        state, &id.owner, id.dseq, id.gseq, id.oseq, h, &idx,
    ));
    Ok(events)
}

/// Executes `MsgCloseBid` at block `height`.
pub fn close_bid(
    state: &mut State,
    msg: &mv1beta5::MsgCloseBid,
    msg_index: usize,
    height: u64,
) -> Result<Vec<Event>, SdkError> {
    let id = msg
        .id
        .clone()
        .ok_or_else(|| market_err(18, "invalid bid: bid not found"))?;
    crate::bank::validate_address(&id.provider, "provider")?;
    let key = bid_key(&id);
    let bid = state
        .bids
        .get(&key)
        .map(|b| b.0.clone())
        .ok_or_else(|| market_err(18, "invalid bid: bid not found"))?;
    let active = bid.state == mv1beta5::bid::State::Active as i32;
    if bid.state != mv1beta5::bid::State::Open as i32 && !active {
        return Err(market_err(11, "bid not active"));
    }
    let reason =
        mv1::LeaseClosedReason::try_from(msg.reason).unwrap_or(mv1::LeaseClosedReason::Unspecified);
    let idx = msg_index.to_string();
    let height = i64::try_from(height).unwrap_or(i64::MAX);
    let mut events = vec![
        Event::new("message")
            .attr(
                "action",
                type_url::<chain_client::akash::market::v1beta5::MsgCloseBid>(),
            )
            .attr("sender", id.provider.clone())
            .attr("module", "market")
            .attr("msg_index", idx.clone()),
    ];
    if active {
        events.extend(crate::escrow::settle(
            state, &id.owner, id.dseq, height, &idx,
        ));
    }
    events.extend(close_bid_at(state, &key, reason, height, &idx)?);
    if active {
        events.extend(close_order(
            state, &id.owner, id.dseq, id.gseq, id.oseq, &idx,
        ));
        if let Some(g) = state
            .groups
            .get_mut(&keys::group(&id.owner, id.dseq, id.gseq))
        {
            g.0.state = dv1beta4::group::State::Paused as i32;
            events.push(
                Event::typed_of::<chain_client::akash::deployment::v1::EventGroupPaused>(&json!({"id": {"owner": id.owner, "dseq": id.dseq.to_string(), "gseq": id.gseq}}),
                )
                .attr("msg_index", idx.clone()),
            );
        }
    }
    Ok(events)
}

/// Executes `MsgCloseDeployment` at block `height`.
pub fn close_deployment(
    state: &mut State,
    msg: &dv1beta4::MsgCloseDeployment,
    msg_index: usize,
    height: u64,
) -> Result<Vec<Event>, SdkError> {
    let id = msg
        .id
        .clone()
        .ok_or_else(|| deployment_err(4, "Deployment not found"))?;
    crate::bank::validate_address(&id.owner, "owner")?;
    let dkey = keys::deployment(&id.owner, id.dseq);
    let deployment = state
        .deployments
        .get_mut(&dkey)
        .ok_or_else(|| deployment_err(4, "Deployment not found"))?;
    if deployment.0.state == dv1::deployment::State::Closed as i32 {
        return Err(deployment_err(5, "Deployment closed"));
    }
    deployment.0.state = dv1::deployment::State::Closed as i32;
    let idx = msg_index.to_string();
    let height = i64::try_from(height).unwrap_or(i64::MAX);
    let mut events = vec![
        Event::new("message")
            .attr(
                "action",
                type_url::<chain_client::akash::deployment::v1beta4::MsgCloseDeployment>(),
            )
            .attr("sender", id.owner.clone())
            .attr("module", "deployment")
            .attr("msg_index", idx.clone()),
    ];
    // Pay the providers up to now before their payments close.
    events.extend(crate::escrow::settle(
        state, &id.owner, id.dseq, height, &idx,
    ));
    let prefix = format!("{dkey}/");
    let in_deployment = |k: &String| k.starts_with(&prefix);
    let bid_keys: Vec<String> = state
        .bids
        .keys()
        .filter(|k| in_deployment(k))
        .cloned()
        .collect();
    for key in bid_keys {
        events.extend(close_bid_at(
            state,
            &key,
            mv1::LeaseClosedReason::LeaseClosedOwner,
            height,
            &idx,
        )?);
    }
    let order_ids: Vec<mv1::OrderId> = state
        .orders
        .iter()
        .filter(|(k, _)| in_deployment(k))
        .filter_map(|(_, o)| o.0.id.clone())
        .collect();
    for o in order_ids {
        events.extend(close_order(state, &o.owner, o.dseq, o.gseq, o.oseq, &idx));
    }
    let group_keys: Vec<String> = state
        .groups
        .keys()
        .filter(|k| in_deployment(k))
        .cloned()
        .collect();
    for key in group_keys {
        if let Some(g) = state.groups.get_mut(&key) {
            g.0.state = dv1beta4::group::State::Closed as i32;
            let gid = g.0.id.clone().unwrap_or_default();
            events.push(
                Event::typed_of::<chain_client::akash::deployment::v1::EventGroupClosed>(&json!({"id": {"owner": gid.owner, "dseq": gid.dseq.to_string(), "gseq": gid.gseq}}),
                )
                .attr("msg_index", idx.clone()),
            );
        }
    }
    drain_escrow(state, &dkey, &id.owner)?;
    events.push(
        Event::typed_of::<chain_client::akash::deployment::v1::EventDeploymentClosed>(
            &json!({"id": {"owner": id.owner, "dseq": id.dseq.to_string()}}),
        )
        .attr("msg_index", idx),
    );
    Ok(events)
}

#[cfg(test)]
mod tests;
