//! The deployment module's group messages, signed by the group's owner, as Akash's
//! `x/deployment/handler/server.go` runs them:
//!
//! - `MsgCloseGroup`: any group not closed → closed. The market closes the group's open and active
//!   orders, their open and active bids (deposits refunded to the providers) and active leases
//!   (reason `lease_closed_owner`, paid up to this block, payment closed).
//! - `MsgPauseGroup`: a group neither paused nor closed → paused, with the same market closing.
//! - `MsgStartGroup`: a paused (or `insufficient_funds`) group → open, and the market opens a new
//!   order for it (oseq = the group's highest + 1, created at this block).
//!
//! Codes (codespace `deployment`, `x/deployment/v1/errors.go`): 14 group not found, 15 group
//! already closed, 16 group open, 17 group paused; and, for a group whose deployment is gone or
//! no longer active, 4 deployment not found, 5 deployment closed.

use chain_client::akash::deployment::{v1 as dv1, v1beta4 as dv1beta4};
use chain_client::akash::market::{v1 as mv1, v1beta5 as mv1beta5};
use prost::Name;
use serde_json::json;

use crate::ante::SdkError;
use crate::close::{close_bid_at, close_order, deployment_err, open_order};
use crate::events::{Event, type_url};
use crate::state::{State, keys};

use dv1beta4::group::State as GroupState;

const GROUP_NOT_FOUND: (u32, &str) = (14, "Group not found");
const GROUP_CLOSED: (u32, &str) = (15, "Group already closed");
const GROUP_OPEN: (u32, &str) = (16, "Group open");
const GROUP_PAUSED: (u32, &str) = (17, "Group paused");

fn err((code, reason): (u32, &str)) -> SdkError {
    deployment_err(code, reason)
}

fn owner_of(id: Option<&dv1::GroupId>) -> &str {
    id.map_or("", |id| id.owner.as_str())
}

/// The signer of a `MsgCloseGroup`: the group's owner.
pub fn close_signer(msg: &dv1beta4::MsgCloseGroup) -> &str {
    owner_of(msg.id.as_ref())
}

/// The signer of a `MsgPauseGroup`: the group's owner.
pub fn pause_signer(msg: &dv1beta4::MsgPauseGroup) -> &str {
    owner_of(msg.id.as_ref())
}

/// The signer of a `MsgStartGroup`: the group's owner.
pub fn start_signer(msg: &dv1beta4::MsgStartGroup) -> &str {
    owner_of(msg.id.as_ref())
}

/// What a group message may do to a group in a given state (`ValidateClosable`,
/// `ValidatePausable`, `ValidateStartable`).
#[derive(Clone, Copy)]
enum Action {
    Close,
    Pause,
    Start,
}

impl Action {
    fn type_url(self) -> String {
        match self {
            Self::Close => type_url::<dv1beta4::MsgCloseGroup>(),
            Self::Pause => type_url::<dv1beta4::MsgPauseGroup>(),
            Self::Start => type_url::<dv1beta4::MsgStartGroup>(),
        }
    }

    fn check(self, state: i32) -> Result<(), SdkError> {
        let closed = state == GroupState::Closed as i32;
        match self {
            _ if closed => Err(err(GROUP_CLOSED)),
            Self::Pause if state == GroupState::Paused as i32 => Err(err(GROUP_PAUSED)),
            Self::Start if state == GroupState::Open as i32 => Err(err(GROUP_OPEN)),
            _ => Ok(()),
        }
    }
}

/// The group `id` if `action` applies to it: the group exists in a state `action` accepts and
/// its deployment is active. Returns the group.
fn target(
    state: &State,
    id: Option<&dv1::GroupId>,
    action: Action,
) -> Result<dv1beta4::Group, SdkError> {
    let id = id.ok_or_else(|| err(GROUP_NOT_FOUND))?;
    crate::bank::validate_address(&id.owner, "owner")?;
    let group = state
        .groups
        .get(&keys::group(&id.owner, id.dseq, id.gseq))
        .map(|g| g.0.clone())
        .ok_or_else(|| err(GROUP_NOT_FOUND))?;
    action.check(group.state)?;
    let deployment = state
        .deployments
        .get(&keys::deployment(&id.owner, id.dseq))
        .ok_or_else(|| deployment_err(4, "Deployment not found"))?;
    if deployment.0.state != dv1::deployment::State::Active as i32 {
        return Err(deployment_err(5, "Deployment closed"));
    }
    Ok(group)
}

fn message_event(action: Action, owner: &str, idx: &str) -> Event {
    Event::new("message")
        .attr("action", action.type_url())
        .attr("sender", owner)
        .attr("module", "deployment")
        .attr("msg_index", idx)
}

/// Sets the group's state; returns its `kind` event (the full name of `EventGroupClosed`, …).
fn set_state(state: &mut State, id: &dv1::GroupId, to: GroupState, kind: &str, idx: &str) -> Event {
    if let Some(g) = state
        .groups
        .get_mut(&keys::group(&id.owner, id.dseq, id.gseq))
    {
        g.0.state = to as i32;
    }
    Event::typed(
        kind,
        &json!({"id": {"owner": id.owner, "dseq": id.dseq.to_string(), "gseq": id.gseq}}),
    )
    .attr("msg_index", idx)
}

/// The market's `OnGroupClosed`: the group's open and active orders close, with their open and
/// active bids (refunded) and leases (`lease_closed_owner`, paid up to `height`).
fn close_market(
    state: &mut State,
    id: &dv1::GroupId,
    height: i64,
    idx: &str,
) -> Result<Vec<Event>, SdkError> {
    let mut events = crate::escrow::settle(state, &id.owner, id.dseq, height, idx);
    let prefix = format!("{}/", keys::group(&id.owner, id.dseq, id.gseq));
    let orders: Vec<(String, u32)> = state
        .orders
        .iter()
        .filter(|(k, o)| {
            k.starts_with(&prefix) && o.0.state != mv1beta5::order::State::Closed as i32
        })
        .filter_map(|(k, o)| Some((format!("{k}/"), o.0.id.as_ref()?.oseq)))
        .collect();
    for (order_prefix, oseq) in orders {
        events.extend(close_order(state, &id.owner, id.dseq, id.gseq, oseq, idx));
        let bids: Vec<String> = state
            .bids
            .keys()
            .filter(|k| k.starts_with(&order_prefix))
            .cloned()
            .collect();
        for key in bids {
            events.extend(close_bid_at(
                state,
                &key,
                mv1::LeaseClosedReason::LeaseClosedOwner,
                height,
                idx,
            )?);
        }
    }
    Ok(events)
}

fn block_height(height: u64) -> i64 {
    i64::try_from(height).unwrap_or(i64::MAX)
}

/// Executes `MsgCloseGroup` at block `height`.
pub fn close(
    state: &mut State,
    msg: &dv1beta4::MsgCloseGroup,
    msg_index: usize,
    height: u64,
) -> Result<Vec<Event>, SdkError> {
    stop(state, msg.id.as_ref(), Action::Close, msg_index, height)
}

/// Executes `MsgPauseGroup` at block `height`.
pub fn pause(
    state: &mut State,
    msg: &dv1beta4::MsgPauseGroup,
    msg_index: usize,
    height: u64,
) -> Result<Vec<Event>, SdkError> {
    stop(state, msg.id.as_ref(), Action::Pause, msg_index, height)
}

/// Closes or pauses the group, then closes its orders, bids and leases.
fn stop(
    state: &mut State,
    id: Option<&dv1::GroupId>,
    action: Action,
    msg_index: usize,
    height: u64,
) -> Result<Vec<Event>, SdkError> {
    let group = target(state, id, action)?;
    let id = group.id.unwrap_or_default();
    let idx = msg_index.to_string();
    let (to, kind) = match action {
        Action::Pause => (GroupState::Paused, dv1::EventGroupPaused::full_name()),
        _ => (GroupState::Closed, dv1::EventGroupClosed::full_name()),
    };
    let mut events = vec![
        message_event(action, &id.owner, &idx),
        set_state(state, &id, to, &kind, &idx),
    ];
    events.extend(close_market(state, &id, block_height(height), &idx)?);
    Ok(events)
}

/// Executes `MsgStartGroup` at block `height`: the group opens with a new order.
pub fn start(
    state: &mut State,
    msg: &dv1beta4::MsgStartGroup,
    msg_index: usize,
    height: u64,
) -> Result<Vec<Event>, SdkError> {
    let group = target(state, msg.id.as_ref(), Action::Start)?;
    let id = group.id.unwrap_or_default();
    let idx = msg_index.to_string();
    let prefix = format!("{}/", keys::group(&id.owner, id.dseq, id.gseq));
    let last = state
        .orders
        .range(prefix.clone()..)
        .take_while(|(k, _)| k.starts_with(&prefix))
        .filter_map(|(_, o)| o.0.id.as_ref().map(|i| i.oseq))
        .max()
        .unwrap_or(0);
    let reclamation = state
        .deployments
        .get(&keys::deployment(&id.owner, id.dseq))
        .and_then(|d| d.0.reclamation);
    let order = mv1::OrderId {
        owner: id.owner.clone(),
        dseq: id.dseq,
        gseq: id.gseq,
        oseq: last + 1,
    };
    Ok(vec![
        message_event(Action::Start, &id.owner, &idx),
        set_state(
            state,
            &id,
            GroupState::Open,
            &dv1::EventGroupStarted::full_name(),
            &idx,
        ),
        open_order(
            state,
            order,
            group.group_spec,
            reclamation,
            block_height(height),
            &idx,
        ),
    ])
}

#[cfg(test)]
mod tests;
