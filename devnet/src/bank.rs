//! The bank module: `MsgSend`.

use cosmos_sdk_proto::cosmos::bank::v1beta1::MsgSend;

use crate::ante::SdkError;
use crate::events::Event;
use crate::state::{BankError, Coin, State, coins_to_string};

/// Reads proto coins, rejecting invalid amounts and denominations as the SDK does.
pub fn parse_coins(
    coins: &[cosmos_sdk_proto::cosmos::base::v1beta1::Coin],
) -> Result<Vec<Coin>, SdkError> {
    coins
        .iter()
        .map(|c| {
            let amount: u128 = c.amount.parse().map_err(|_| {
                SdkError::invalid_coins(format!("invalid coin amount {:?}", c.amount))
            })?;
            let valid_denom = c.denom.len() >= 3
                && c.denom.len() <= 128
                && c.denom.starts_with(|ch: char| ch.is_ascii_alphabetic())
                && c.denom
                    .chars()
                    .all(|ch| ch.is_ascii_alphanumeric() || "/:._-".contains(ch));
            if !valid_denom {
                return Err(SdkError::invalid_coins(format!(
                    "invalid denom: {}",
                    c.denom
                )));
            }
            Ok(Coin::new(amount, &c.denom))
        })
        .collect()
}

impl From<BankError> for SdkError {
    fn from(e: BankError) -> Self {
        match e {
            BankError::InsufficientFunds { .. } => SdkError::insufficient_funds(e.to_string()),
        }
    }
}

/// Checks an address is a bech32 `akash1...` account address.
pub fn validate_address(addr: &str, what: &str) -> Result<(), SdkError> {
    match addr.parse::<cosmrs::AccountId>() {
        Ok(id) if id.prefix() == crate::BECH32_PREFIX => Ok(()),
        Ok(id) => Err(SdkError::invalid_address(format!(
            "invalid {what} address: invalid Bech32 prefix; expected {}, got {}",
            crate::BECH32_PREFIX,
            id.prefix()
        ))),
        Err(e) => Err(SdkError::invalid_address(format!(
            "invalid {what} address: {e}"
        ))),
    }
}

/// Validation that needs no state (`ValidateBasic`).
pub fn validate_send(msg: &MsgSend) -> Result<Vec<Coin>, SdkError> {
    validate_address(&msg.from_address, "from")?;
    validate_address(&msg.to_address, "to")?;
    let coins = parse_coins(&msg.amount)?;
    if coins.is_empty() || coins.iter().any(|c| c.amount == 0) {
        return Err(SdkError::invalid_coins(coins_to_string(&coins)));
    }
    Ok(coins)
}

/// Executes a `MsgSend`, emitting the bank events the SDK emits.
pub fn send(state: &mut State, msg: &MsgSend, msg_index: usize) -> Result<Vec<Event>, SdkError> {
    let coins = validate_send(msg)?;
    state.transfer(&msg.from_address, &msg.to_address, &coins)?;
    let amount = coins_to_string(&coins);
    let idx = msg_index.to_string();
    Ok(vec![
        Event::new("message")
            .attr("action", "/cosmos.bank.v1beta1.MsgSend")
            .attr("sender", msg.from_address.clone())
            .attr("module", "bank")
            .attr("msg_index", idx.clone()),
        Event::new("coin_spent")
            .attr("spender", msg.from_address.clone())
            .attr("amount", amount.clone())
            .attr("msg_index", idx.clone()),
        Event::new("coin_received")
            .attr("receiver", msg.to_address.clone())
            .attr("amount", amount.clone())
            .attr("msg_index", idx.clone()),
        Event::new("transfer")
            .attr("recipient", msg.to_address.clone())
            .attr("sender", msg.from_address.clone())
            .attr("amount", amount)
            .attr("msg_index", idx.clone()),
        Event::new("message")
            .attr("sender", msg.from_address.clone())
            .attr("msg_index", idx),
    ])
}
