//! The Akash deployment module's `MsgCreateDeployment`, with what the market and escrow modules do
//! for it: the deployment, its groups (gseq 1..N, open), one open order per group (oseq 1), and a
//! deployment-scoped escrow account holding the deposit.
//!
//! Error codes are the deployment module's (codespace `deployment`): 3 deployment exists,
//! 7 invalid groups, 8 invalid deployment id, 9 empty hash, 10 invalid hash, 19 group spec invalid,
//! 20 deposit invalid. Prices and deposits are in `uact`, as on today's Akash.

use chain_client::akash::base::deposit::v1::Source;
use chain_client::akash::deployment::{v1 as dv1, v1beta4 as dv1beta4};
use chain_client::akash::escrow::{id::v1 as escrow_id, types::v1 as escrow};
use chain_client::akash::market::{v1 as mv1, v1beta5 as mv1beta5};
use cosmos_sdk_proto::cosmos::base::v1beta1::DecCoin;
use serde_json::json;

use crate::ante::SdkError;
use crate::events::{Event, type_url};
use crate::state::{Coin, Proto, State, coins_to_string, keys};

/// The denomination of deployment prices and deposits.
pub const PRICE_DENOM: &str = crate::DENOM_ACT;
/// The smallest deposit a deployment accepts (0.5 ACT).
pub const MIN_DEPOSIT: u128 = 500_000;
/// Length of a deployment hash (SHA-256 of the manifest).
pub const HASH_LEN: usize = 32;

fn err(code: u32, reason: &str, detail: impl std::fmt::Display) -> SdkError {
    let detail = detail.to_string();
    SdkError {
        code,
        codespace: "deployment",
        log: if detail.is_empty() {
            reason.to_owned()
        } else {
            format!("{detail}: {reason}")
        },
    }
}

const INVALID_GROUPS: (u32, &str) = (7, "Invalid groups");
const INVALID_ID: (u32, &str) = (8, "Invalid: deployment id");
const GROUP_SPEC: (u32, &str) = (19, "GroupSpec invalid");
const DEPOSIT: (u32, &str) = (20, "Deposit invalid");

/// The `escrow` module account that holds deposits: SHA-256("escrow")[:20].
pub fn escrow_module_address() -> String {
    use sha2::Digest;
    let hash = sha2::Sha256::digest(b"escrow");
    cosmrs::AccountId::new(crate::BECH32_PREFIX, &hash[..20])
        .map(|a| a.to_string())
        .unwrap_or_default()
}

/// The signer of a `MsgCreateDeployment`: the deployment's owner.
pub fn signer(msg: &dv1beta4::MsgCreateDeployment) -> &str {
    msg.id.as_ref().map_or("", |id| id.owner.as_str())
}

fn validate_group(spec: &dv1beta4::GroupSpec) -> Result<(), SdkError> {
    let bad = |detail: String| err(GROUP_SPEC.0, GROUP_SPEC.1, detail);
    if spec.name.is_empty() {
        return Err(bad("empty group spec name".into()));
    }
    if spec.resources.is_empty() {
        return Err(bad(format!("group {}: no resources", spec.name)));
    }
    for (i, ru) in spec.resources.iter().enumerate() {
        if ru.count == 0 {
            return Err(bad(format!(
                "group {}: resource {i}: count must be positive",
                spec.name
            )));
        }
        let price = ru
            .price
            .as_ref()
            .ok_or_else(|| bad(format!("group {}: resource {i}: no price", spec.name)))?;
        if price.denom != PRICE_DENOM {
            return Err(bad(format!(
                "group {}: resource {i}: price denomination {:?}: pricing must be in {PRICE_DENOM}",
                spec.name, price.denom
            )));
        }
        chain_client::dec::from_wire(&price.amount)
            .map_err(|e| bad(format!("group {}: resource {i}: price: {e}", spec.name)))?;
    }
    Ok(())
}

/// `ValidateBasic`: checks that need no state. Returns the deposit.
pub fn validate_create(msg: &dv1beta4::MsgCreateDeployment) -> Result<Coin, SdkError> {
    let id = msg
        .id
        .as_ref()
        .ok_or_else(|| err(INVALID_ID.0, INVALID_ID.1, "missing id"))?;
    crate::bank::validate_address(&id.owner, "owner")?;
    if id.dseq == 0 {
        return Err(err(INVALID_ID.0, INVALID_ID.1, "dseq must be positive"));
    }
    if msg.groups.is_empty() {
        return Err(err(INVALID_GROUPS.0, INVALID_GROUPS.1, "empty groups"));
    }
    for (i, g) in msg.groups.iter().enumerate() {
        if msg.groups[..i].iter().any(|o| o.name == g.name) {
            return Err(err(
                INVALID_GROUPS.0,
                INVALID_GROUPS.1,
                format!("duplicate deployment group name {:?}", g.name),
            ));
        }
        validate_group(g)?;
    }
    if msg.hash.is_empty() {
        return Err(err(9, "Invalid: empty hash", ""));
    }
    if msg.hash.len() != HASH_LEN {
        return Err(err(
            10,
            "Invalid: deployment hash",
            format!("length {} is not {HASH_LEN}", msg.hash.len()),
        ));
    }
    let deposit = msg
        .deposit
        .as_ref()
        .ok_or_else(|| err(DEPOSIT.0, DEPOSIT.1, "missing deposit"))?;
    let amount = deposit
        .amount
        .as_ref()
        .ok_or_else(|| err(DEPOSIT.0, DEPOSIT.1, "missing deposit amount"))?;
    let coin = crate::bank::parse_coins(std::slice::from_ref(amount))?.remove(0);
    if coin.denom != PRICE_DENOM {
        return Err(err(
            DEPOSIT.0,
            DEPOSIT.1,
            format!("deposit denomination {} must be {PRICE_DENOM}", coin.denom),
        ));
    }
    if coin.amount < MIN_DEPOSIT {
        return Err(err(
            DEPOSIT.0,
            DEPOSIT.1,
            format!("deposit {coin} is below the minimum {MIN_DEPOSIT}{PRICE_DENOM}"),
        ));
    }
    if !deposit.sources.contains(&(Source::Balance as i32)) {
        return Err(err(
            DEPOSIT.0,
            DEPOSIT.1,
            "deposit sources must include balance",
        ));
    }
    Ok(coin)
}

fn deployment_id_json(id: &dv1::DeploymentId) -> serde_json::Value {
    json!({"owner": id.owner, "dseq": id.dseq.to_string()})
}

fn order_id_json(id: &mv1::OrderId) -> serde_json::Value {
    json!({"owner": id.owner, "dseq": id.dseq.to_string(), "gseq": id.gseq, "oseq": id.oseq})
}

/// The signer of a `MsgUpdateDeployment`: the owner.
pub fn update_signer(msg: &dv1beta4::MsgUpdateDeployment) -> &str {
    msg.id.as_ref().map_or("", |id| id.owner.as_str())
}

/// Executes `MsgUpdateDeployment`: a new manifest hash for an active deployment.
pub fn update(
    state: &mut State,
    msg: &dv1beta4::MsgUpdateDeployment,
    msg_index: usize,
) -> Result<Vec<Event>, SdkError> {
    let id = msg
        .id
        .clone()
        .ok_or_else(|| err(INVALID_ID.0, INVALID_ID.1, "missing id"))?;
    crate::bank::validate_address(&id.owner, "owner")?;
    if msg.hash.is_empty() {
        return Err(err(9, "Invalid: empty hash", ""));
    }
    if msg.hash.len() != HASH_LEN {
        return Err(err(
            10,
            "Invalid: deployment hash",
            format!("length {} is not {HASH_LEN}", msg.hash.len()),
        ));
    }
    let d = state
        .deployments
        .get_mut(&keys::deployment(&id.owner, id.dseq))
        .ok_or_else(|| err(4, "Deployment not found", ""))?;
    if d.0.state != dv1::deployment::State::Active as i32 {
        return Err(err(5, "Deployment closed", ""));
    }
    d.0.hash.clone_from(&msg.hash);
    let idx = msg_index.to_string();
    Ok(vec![
        Event::new("message")
            .attr("action", type_url::<chain_client::akash::deployment::v1beta4::MsgUpdateDeployment>())
            .attr("sender", id.owner.clone())
            .attr("module", "deployment")
            .attr("msg_index", idx.clone()),
        Event::typed_of::<chain_client::akash::deployment::v1::EventDeploymentUpdated>(&json!({"id": deployment_id_json(&id), "hash": data_encoding::BASE64.encode(&msg.hash)}),
        )
        .attr("msg_index", idx),
    ])
}

/// Executes `MsgCreateDeployment` at block `height`.
pub fn create(
    state: &mut State,
    msg: &dv1beta4::MsgCreateDeployment,
    msg_index: usize,
    height: u64,
) -> Result<Vec<Event>, SdkError> {
    let deposit = validate_create(msg)?;
    let id = msg.id.clone().unwrap_or_default();
    let dkey = keys::deployment(&id.owner, id.dseq);
    if state.deployments.contains_key(&dkey) {
        return Err(err(3, "Deployment exists", ""));
    }
    let escrow_addr = escrow_module_address();
    state.transfer(&id.owner, &escrow_addr, std::slice::from_ref(&deposit))?;
    let created_at = i64::try_from(height).unwrap_or(i64::MAX);
    let idx = msg_index.to_string();
    let amount = coins_to_string(std::slice::from_ref(&deposit));
    let mut events = vec![
        Event::new("message")
            .attr(
                "action",
                type_url::<chain_client::akash::deployment::v1beta4::MsgCreateDeployment>(),
            )
            .attr("sender", id.owner.clone())
            .attr("module", "deployment")
            .attr("msg_index", idx.clone()),
        Event::new("coin_spent")
            .attr("spender", id.owner.clone())
            .attr("amount", amount.clone())
            .attr("msg_index", idx.clone()),
        Event::new("coin_received")
            .attr("receiver", escrow_addr.clone())
            .attr("amount", amount.clone())
            .attr("msg_index", idx.clone()),
        Event::new("transfer")
            .attr("recipient", escrow_addr)
            .attr("sender", id.owner.clone())
            .attr("amount", amount)
            .attr("msg_index", idx.clone()),
    ];

    state.deployments.insert(
        dkey.clone(),
        Proto(dv1::Deployment {
            id: Some(id.clone()),
            state: dv1::deployment::State::Active as i32,
            hash: msg.hash.clone(),
            created_at,
            reclamation: msg.reclamation,
        }),
    );
    events.push(
        Event::typed_of::<chain_client::akash::deployment::v1::EventDeploymentCreated>(&json!({"id": deployment_id_json(&id), "hash": data_encoding::BASE64.encode(&msg.hash)}),
        )
        .attr("msg_index", idx.clone()),
    );

    for (i, spec) in msg.groups.iter().enumerate() {
        let gseq = u32::try_from(i + 1).unwrap_or(u32::MAX);
        let group_id = dv1::GroupId {
            owner: id.owner.clone(),
            dseq: id.dseq,
            gseq,
        };
        state.groups.insert(
            keys::group(&id.owner, id.dseq, gseq),
            Proto(dv1beta4::Group {
                id: Some(group_id),
                state: dv1beta4::group::State::Open as i32,
                group_spec: Some(spec.clone()),
                created_at,
            }),
        );
        let order_id = mv1::OrderId {
            owner: id.owner.clone(),
            dseq: id.dseq,
            gseq,
            oseq: 1,
        };
        state.orders.insert(
            keys::order(&id.owner, id.dseq, gseq, 1),
            Proto(mv1beta5::Order {
                id: Some(order_id.clone()),
                state: mv1beta5::order::State::Open as i32,
                spec: Some(spec.clone()),
                created_at,
                reclamation: msg.reclamation,
            }),
        );
        events.push(
            Event::typed_of::<chain_client::akash::market::v1::EventOrderCreated>(
                &json!({"id": order_id_json(&order_id)}),
            )
            .attr("msg_index", idx.clone()),
        );
    }

    let dec_amount = chain_client::dec::to_wire(&deposit.amount.to_string())
        .map_err(|e| err(DEPOSIT.0, DEPOSIT.1, e))?;
    state.escrow_accounts.insert(
        dkey,
        Proto(escrow::Account {
            id: Some(escrow_id::Account {
                scope: escrow_id::Scope::Deployment as i32,
                xid: format!("{}/{}", id.owner, id.dseq),
            }),
            state: Some(escrow::AccountState {
                owner: id.owner.clone(),
                state: escrow::State::Open as i32,
                transferred: Vec::new(),
                settled_at: created_at,
                funds: vec![escrow::Balance {
                    denom: deposit.denom.clone(),
                    amount: dec_amount.clone(),
                }],
                deposits: vec![escrow::Depositor {
                    owner: id.owner.clone(),
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
    Ok(events)
}

#[cfg(test)]
mod tests;
