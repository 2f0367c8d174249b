//! A transaction as a real chain checks and runs it.
//!
//! The ante step (decode, signers, gas for size and signatures, fee, public key, sequence,
//! signature, sequence increment) runs on a copy of the state: if it fails, the transaction is
//! rejected and nothing changes. If it passes, its changes (fee taken, sequence incremented) are
//! kept, and the messages run on a further copy that is kept only if every message succeeds, as in
//! the Cosmos SDK's `runTx`. In check mode (the mempool's `CheckTx`) messages are not run.
//!
//! Errors carry the Cosmos SDK's codes and log texts (codespace `sdk`).

use cosmos_sdk_proto::cosmos::crypto::secp256k1::PubKey;
use cosmos_sdk_proto::cosmos::tx::signing::v1beta1::SignMode;
use cosmos_sdk_proto::cosmos::tx::v1beta1::{AuthInfo, SignDoc, TxBody, TxRaw, mode_info};
use k256::ecdsa::signature::Verifier;
use prost::Message;
use serde::{Deserialize, Serialize};

use crate::events::Event;
use crate::gas::{self, GasMeter};
use crate::msgs::Msg;
use crate::state::{Coin, State, coins_to_string};

/// How a transaction is being run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Mempool admission (`CheckTx`): ante only, minimum gas prices enforced.
    Check,
    /// Inclusion in a block: ante and messages.
    Deliver,
    /// `Simulate`: no signature check, no gas limit.
    Simulate,
}

/// A Cosmos SDK error: code, codespace and log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SdkError {
    pub code: u32,
    pub codespace: &'static str,
    pub log: String,
}

macro_rules! sdk_errors {
    ($($name:ident = $code:literal, $reason:literal;)*) => {
        impl SdkError {
            $(
                #[doc = concat!("`", $reason, "` (sdk code ", stringify!($code), ")")]
                pub fn $name(msg: impl Into<String>) -> Self {
                    let msg: String = msg.into();
                    let log = if msg.is_empty() { $reason.to_owned() } else { format!("{msg}: {}", $reason) };
                    Self { code: $code, codespace: "sdk", log }
                }
            )*
        }
    };
}

sdk_errors! {
    tx_decode = 2, "tx parse error";
    unauthorized = 4, "unauthorized";
    insufficient_funds = 5, "insufficient funds";
    unknown_request = 6, "unknown request";
    invalid_address = 7, "invalid address";
    invalid_pubkey = 8, "invalid pubkey";
    unknown_address = 9, "unknown address";
    invalid_coins = 10, "invalid coins";
    out_of_gas = 11, "out of gas";
    memo_too_large = 12, "memo too large";
    insufficient_fee = 13, "insufficient fee";
    invalid_request = 18, "invalid request";
    wrong_sequence = 32, "incorrect account sequence";
}

/// The outcome of a transaction, as ABCI reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TxResult {
    pub code: u32,
    pub codespace: String,
    pub log: String,
    /// Encoded `TxMsgData` (the messages' responses) on success.
    pub data: Vec<u8>,
    pub gas_wanted: u64,
    pub gas_used: u64,
    pub events: Vec<Event>,
}

impl TxResult {
    pub fn is_ok(&self) -> bool {
        self.code == 0
    }
}

/// Chain parameters the checks need.
#[derive(Debug, Clone)]
pub struct Params {
    pub chain_id: String,
    /// Minimum gas prices (denom, price × 10⁶ per unit of gas); the fee must meet one of them.
    pub min_gas_prices: Vec<(String, u128)>,
    pub max_memo_characters: usize,
}

impl Params {
    pub fn new(chain_id: &str, min_gas_prices: Vec<(String, u128)>) -> Self {
        Self {
            chain_id: chain_id.to_owned(),
            min_gas_prices,
            max_memo_characters: 256,
        }
    }
}

/// Parses `0.025uakt` or `0.025uakt,0.025uact` into (denom, price × 10⁶).
pub fn parse_gas_prices(s: &str) -> Result<Vec<(String, u128)>, String> {
    s.split(',')
        .filter(|p| !p.trim().is_empty())
        .map(|p| {
            let p = p.trim();
            let split = p
                .find(|c: char| !(c.is_ascii_digit() || c == '.'))
                .ok_or_else(|| format!("gas price {p:?} has no denom"))?;
            let (num, denom) = p.split_at(split);
            let (int, frac) = num.split_once('.').unwrap_or((num, ""));
            if frac.len() > 6 || int.is_empty() && frac.is_empty() {
                return Err(format!("gas price {p:?}: at most 6 decimals"));
            }
            let int: u128 = if int.is_empty() {
                0
            } else {
                int.parse().map_err(|_| format!("bad gas price {p:?}"))?
            };
            let frac_val: u128 = if frac.is_empty() {
                0
            } else {
                format!("{frac:0<6}")
                    .parse()
                    .map_err(|_| format!("bad gas price {p:?}"))?
            };
            Ok((denom.to_owned(), int * 1_000_000 + frac_val))
        })
        .collect()
}

/// A decoded transaction.
pub struct DecodedTx {
    pub body: TxBody,
    pub auth_info: AuthInfo,
    pub body_bytes: Vec<u8>,
    pub auth_info_bytes: Vec<u8>,
    pub signatures: Vec<Vec<u8>>,
    pub msgs: Vec<Msg>,
}

/// Decodes `TxRaw` bytes into body, auth info and known messages.
pub fn decode(raw: &[u8]) -> Result<DecodedTx, SdkError> {
    let tx = TxRaw::decode(raw).map_err(|e| SdkError::tx_decode(e.to_string()))?;
    let body =
        TxBody::decode(tx.body_bytes.as_slice()).map_err(|e| SdkError::tx_decode(e.to_string()))?;
    let auth_info = AuthInfo::decode(tx.auth_info_bytes.as_slice())
        .map_err(|e| SdkError::tx_decode(e.to_string()))?;
    let msgs = body
        .messages
        .iter()
        .map(Msg::decode)
        .collect::<Result<Vec<_>, _>>()?;
    Ok(DecodedTx {
        body,
        auth_info,
        body_bytes: tx.body_bytes,
        auth_info_bytes: tx.auth_info_bytes,
        signatures: tx.signatures,
        msgs,
    })
}

/// Runs one transaction against `state` in `mode`. See the module documentation for what changes
/// when.
pub fn run_tx(state: &mut State, raw: &[u8], mode: Mode, params: &Params) -> TxResult {
    let tx = match decode(raw) {
        Ok(tx) => tx,
        Err(e) => return failed(e, 0, 0, Vec::new()),
    };
    let gas_limit = tx.auth_info.fee.as_ref().map_or(0, |f| f.gas_limit);
    let mut meter = match mode {
        Mode::Simulate => GasMeter::infinite(),
        _ => GasMeter::new(gas_limit),
    };
    let mut ante_state = state.clone();
    let ante_events = match ante(&mut ante_state, &tx, raw.len(), mode, params, &mut meter) {
        Ok(events) => events,
        Err(e) => return failed(e, gas_limit, meter.used(), Vec::new()),
    };
    *state = ante_state;
    if mode == Mode::Check {
        return TxResult {
            code: 0,
            codespace: String::new(),
            log: String::new(),
            data: Vec::new(),
            gas_wanted: gas_limit,
            gas_used: meter.used(),
            events: ante_events,
        };
    }
    let mut msg_state = state.clone();
    let mut events = ante_events.clone();
    let mut responses = Vec::new();
    for (i, msg) in tx.msgs.iter().enumerate() {
        let step = meter
            .consume(gas::PER_MESSAGE_GAS, "message")
            .map_err(|e| SdkError::out_of_gas(e.to_string()))
            .and_then(|()| msg.execute(&mut msg_state, i));
        match step {
            Ok((msg_events, response)) => {
                events.extend(msg_events);
                responses.push(response);
            }
            Err(e) => {
                let e = SdkError {
                    log: format!("failed to execute message; message index: {i}: {}", e.log),
                    ..e
                };
                return failed(e, gas_limit, meter.used(), ante_events);
            }
        }
    }
    *state = msg_state;
    let data = cosmos_sdk_proto::cosmos::base::abci::v1beta1::TxMsgData {
        #[allow(deprecated)]
        data: Vec::new(),
        msg_responses: responses,
    }
    .encode_to_vec();
    TxResult {
        code: 0,
        codespace: String::new(),
        log: String::new(),
        data,
        gas_wanted: gas_limit,
        gas_used: meter.used(),
        events,
    }
}

fn failed(e: SdkError, gas_wanted: u64, gas_used: u64, events: Vec<Event>) -> TxResult {
    TxResult {
        code: e.code,
        codespace: e.codespace.to_owned(),
        log: e.log,
        data: Vec::new(),
        gas_wanted,
        gas_used,
        events,
    }
}

fn ante(
    state: &mut State,
    tx: &DecodedTx,
    tx_len: usize,
    mode: Mode,
    params: &Params,
    meter: &mut GasMeter,
) -> Result<Vec<Event>, SdkError> {
    // ValidateBasic.
    if tx.msgs.is_empty() {
        return Err(SdkError::invalid_request(
            "must contain at least one message",
        ));
    }
    let fee = tx
        .auth_info
        .fee
        .as_ref()
        .ok_or_else(|| SdkError::invalid_request("missing fee"))?;
    let signers = signers_of(&tx.msgs, &fee.payer)?;
    if tx.signatures.is_empty() {
        return Err(SdkError::unauthorized("no signatures supplied"));
    }
    if tx.signatures.len() != signers.len() {
        return Err(SdkError::unauthorized(format!(
            "wrong number of signers; expected {}, got {}",
            signers.len(),
            tx.signatures.len()
        )));
    }
    if tx.auth_info.signer_infos.len() != signers.len() {
        return Err(SdkError::unauthorized(format!(
            "wrong number of signer infos; expected {}, got {}",
            signers.len(),
            tx.auth_info.signer_infos.len()
        )));
    }
    let memo_len = tx.body.memo.chars().count();
    if memo_len > params.max_memo_characters {
        return Err(SdkError::memo_too_large(format!(
            "maximum number of characters is {} but received {memo_len} characters",
            params.max_memo_characters
        )));
    }
    if tx.body.timeout_height != 0 && state.height + 1 > tx.body.timeout_height {
        return Err(SdkError {
            code: 30,
            codespace: "sdk",
            log: format!(
                "block height: {}, timeout height: {}: tx timeout height",
                state.height + 1,
                tx.body.timeout_height
            ),
        });
    }

    // Gas for the transaction's size.
    let oog = |e: gas::OutOfGas| SdkError::out_of_gas(e.to_string());
    meter.consume(gas::BASE_GAS, "ante").map_err(oog)?;
    meter
        .consume(gas::PER_BYTE_GAS.saturating_mul(tx_len as u64), "txSize")
        .map_err(oog)?;

    // Fee: minimum gas prices (mempool only, as in the SDK), then deduction from the payer.
    let fee_coins = crate::bank::parse_coins(&fee.amount)?;
    if mode == Mode::Check && !params.min_gas_prices.is_empty() {
        let required: Vec<Coin> = params
            .min_gas_prices
            .iter()
            .map(|(denom, price)| {
                let amount = (u128::from(fee.gas_limit) * price).div_ceil(1_000_000);
                Coin::new(amount, denom)
            })
            .collect();
        let paid = required.iter().any(|r| {
            fee_coins
                .iter()
                .any(|c| c.denom == r.denom && c.amount >= r.amount)
        });
        if !paid {
            return Err(SdkError::insufficient_fee(format!(
                "insufficient fees; got: {} required: {}",
                coins_to_string(&fee_coins),
                coins_to_string(&required)
            )));
        }
    }
    let payer = if fee.payer.is_empty() {
        signers[0].clone()
    } else {
        fee.payer.clone()
    };
    if !state.accounts.contains_key(&payer) {
        return Err(SdkError::unknown_address(format!(
            "fee payer address: {payer} does not exist"
        )));
    }
    let mut events = Vec::new();
    if !fee_coins.is_empty() {
        state
            .transfer(&payer, &fee_collector_address(), &fee_coins)
            .map_err(|e| {
                let e = SdkError::from(e);
                SdkError {
                    log: format!(
                        "{}: failed to deduct fees from {payer}",
                        e.log.trim_end_matches(": insufficient funds")
                    ) + ": insufficient funds",
                    ..e
                }
            })?;
    }
    events.push(
        Event::new("tx")
            .attr("fee", coins_to_string(&fee_coins))
            .attr("fee_payer", payer.clone()),
    );

    // Public keys, sequences and signatures, signer by signer.
    for (i, signer) in signers.iter().enumerate() {
        let info = &tx.auth_info.signer_infos[i];
        let account =
            state.accounts.get(signer).cloned().ok_or_else(|| {
                SdkError::unknown_address(format!("account {signer} does not exist"))
            })?;
        let pub_key = match (&account.pub_key, &info.public_key) {
            (Some(pk), _) => pk.clone(),
            (None, Some(any)) => {
                if any.type_url != "/cosmos.crypto.secp256k1.PubKey" {
                    return Err(SdkError::invalid_pubkey(format!(
                        "unsupported public key type {}",
                        any.type_url
                    )));
                }
                let pk = PubKey::decode(any.value.as_slice())
                    .map_err(|e| SdkError::invalid_pubkey(e.to_string()))?
                    .key;
                let addr = k256::ecdsa::VerifyingKey::from_sec1_bytes(&pk)
                    .ok()
                    .and_then(|vk| {
                        cosmrs::crypto::PublicKey::from(vk)
                            .account_id(crate::BECH32_PREFIX)
                            .ok()
                    })
                    .ok_or_else(|| SdkError::invalid_pubkey("invalid secp256k1 public key"))?;
                if addr.as_ref() != signer {
                    return Err(SdkError::invalid_pubkey(format!(
                        "pubKey does not match signer address {signer} with signer index: {i}"
                    )));
                }
                pk
            }
            (None, None) => {
                return Err(SdkError::invalid_pubkey("pubkey on account is not set"));
            }
        };
        meter
            .consume(gas::PER_SIGNATURE_GAS, "ante verify: secp256k1")
            .map_err(oog)?;
        if info.sequence != account.sequence {
            return Err(SdkError::wrong_sequence(format!(
                "account sequence mismatch, expected {}, got {}",
                account.sequence, info.sequence
            )));
        }
        if mode != Mode::Simulate {
            let direct = matches!(
                info.mode_info.as_ref().and_then(|m| m.sum.as_ref()),
                Some(mode_info::Sum::Single(s)) if s.mode == SignMode::Direct as i32
            );
            let sign_doc = SignDoc {
                body_bytes: tx.body_bytes.clone(),
                auth_info_bytes: tx.auth_info_bytes.clone(),
                chain_id: params.chain_id.clone(),
                account_number: account.number,
            }
            .encode_to_vec();
            if !direct || !verify(&pub_key, &sign_doc, &tx.signatures[i]) {
                return Err(SdkError::unauthorized(format!(
                    "signature verification failed; please verify account number ({}), sequence ({}) and chain-id ({})",
                    account.number, account.sequence, params.chain_id
                )));
            }
        }
        let acc = state.ensure_account(signer);
        acc.pub_key = Some(pub_key);
        acc.sequence += 1;
        events.push(Event::new("tx").attr("acc_seq", format!("{signer}/{}", account.sequence)));
        events.push(
            Event::new("tx").attr("signature", data_encoding::BASE64.encode(&tx.signatures[i])),
        );
    }
    Ok(events)
}

/// Verifies a 64-byte (r‖s, low-s) secp256k1 signature over SHA-256 of `msg`.
fn verify(pub_key: &[u8], msg: &[u8], sig: &[u8]) -> bool {
    let Ok(vk) = k256::ecdsa::VerifyingKey::from_sec1_bytes(pub_key) else {
        return false;
    };
    let Ok(sig) = k256::ecdsa::Signature::from_slice(sig) else {
        return false;
    };
    vk.verify(msg, &sig).is_ok()
}

/// The distinct signers of the messages, in order of first appearance, then the fee payer when
/// one is named and is not among them: as in the Cosmos SDK, whoever pays must sign, or anyone
/// could spend another account's balance on fees.
fn signers_of(msgs: &[Msg], fee_payer: &str) -> Result<Vec<String>, SdkError> {
    let mut out: Vec<String> = Vec::new();
    for m in msgs {
        let s = m.signer();
        crate::bank::validate_address(s, "signer")?;
        if !out.iter().any(|o| o == s) {
            out.push(s.to_owned());
        }
    }
    if !fee_payer.is_empty() {
        crate::bank::validate_address(fee_payer, "fee payer")?;
        if !out.iter().any(|o| o == fee_payer) {
            out.push(fee_payer.to_owned());
        }
    }
    Ok(out)
}

/// The `fee_collector` module account: the first 20 bytes of SHA-256 of its name.
pub fn fee_collector_address() -> String {
    use sha2::Digest;
    let hash = sha2::Sha256::digest(b"fee_collector");
    cosmrs::AccountId::new(crate::BECH32_PREFIX, &hash[..20])
        .map(|a| a.to_string())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests;
