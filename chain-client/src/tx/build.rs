//! Building and signing a Cosmos transaction in SIGN_MODE_DIRECT.
//!
//! `TxBody{messages, memo}` and `AuthInfo{signer_infos: [{public_key, mode: DIRECT, sequence}],
//! fee}` are encoded once; the `SignDoc{body_bytes, auth_info_bytes, chain_id, account_number}`
//! over exactly those bytes is signed, and `TxRaw{body_bytes, auth_info_bytes, [signature]}` is
//! what goes to the node.

use cosmos_sdk_proto::cosmos::base::v1beta1::Coin;
use cosmos_sdk_proto::cosmos::tx::signing::v1beta1::SignMode;
use cosmos_sdk_proto::cosmos::tx::v1beta1::{
    AuthInfo, Fee as ProtoFee, ModeInfo, SignDoc, SignerInfo, TxBody, TxRaw, mode_info,
};
use prost::Message;
use sha2::Digest;

use super::fee::Fee;
use crate::error::ChainError;
use crate::keys::Key;

/// What the signature binds a transaction to besides its content.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignerData {
    pub chain_id: String,
    pub account_number: u64,
    pub sequence: u64,
}

/// A signed transaction, ready to broadcast.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedTx {
    /// Encoded `TxRaw`.
    pub bytes: Vec<u8>,
    /// Upper-case hex SHA-256 of `bytes`: the hash the chain indexes the transaction under.
    pub hash: String,
}

/// The hash CometBFT gives a transaction: SHA-256 of its bytes, upper-case hex.
pub fn tx_hash(tx_bytes: &[u8]) -> String {
    data_encoding::HEXUPPER.encode(&sha2::Sha256::digest(tx_bytes))
}

fn body(msgs: &[prost_types::Any], memo: &str) -> Result<TxBody, ChainError> {
    if msgs.is_empty() {
        return Err(ChainError::Invalid(
            "a transaction needs at least one message".into(),
        ));
    }
    Ok(TxBody {
        messages: msgs
            .iter()
            .map(|m| cosmos_sdk_proto::Any {
                type_url: m.type_url.clone(),
                value: m.value.clone(),
            })
            .collect(),
        memo: memo.to_owned(),
        ..Default::default()
    })
}

fn auth_info(key: &Key, sequence: u64, fee: &Fee) -> Result<AuthInfo, ChainError> {
    let public_key = key
        .public_key()
        .to_any()
        .map_err(|e| ChainError::Invalid(format!("public key: {e}")))?;
    Ok(AuthInfo {
        signer_infos: vec![SignerInfo {
            public_key: Some(public_key),
            mode_info: Some(ModeInfo {
                sum: Some(mode_info::Sum::Single(mode_info::Single {
                    mode: SignMode::Direct as i32,
                })),
            }),
            sequence,
        }],
        fee: Some(ProtoFee {
            amount: if fee.amount == 0 {
                Vec::new()
            } else {
                vec![Coin {
                    denom: fee.denom.clone(),
                    amount: fee.amount.to_string(),
                }]
            },
            gas_limit: fee.gas_limit,
            payer: String::new(),
            granter: String::new(),
        }),
        ..Default::default()
    })
}

/// The `SignDoc` bytes a signature covers.
pub fn sign_doc_bytes(
    body_bytes: &[u8],
    auth_info_bytes: &[u8],
    chain_id: &str,
    account_number: u64,
) -> Vec<u8> {
    SignDoc {
        body_bytes: body_bytes.to_vec(),
        auth_info_bytes: auth_info_bytes.to_vec(),
        chain_id: chain_id.to_owned(),
        account_number,
    }
    .encode_to_vec()
}

/// Builds and signs a transaction carrying `msgs` (in order).
pub fn sign_tx(
    key: &Key,
    msgs: &[prost_types::Any],
    memo: &str,
    fee: &Fee,
    signer: &SignerData,
) -> Result<SignedTx, ChainError> {
    let body_bytes = body(msgs, memo)?.encode_to_vec();
    let auth_info_bytes = auth_info(key, signer.sequence, fee)?.encode_to_vec();
    let doc = sign_doc_bytes(
        &body_bytes,
        &auth_info_bytes,
        &signer.chain_id,
        signer.account_number,
    );
    let signature = key
        .sign(&doc)
        .map_err(|e| ChainError::Invalid(e.to_string()))?;
    let bytes = TxRaw {
        body_bytes,
        auth_info_bytes,
        signatures: vec![signature],
    }
    .encode_to_vec();
    Ok(SignedTx {
        hash: tx_hash(&bytes),
        bytes,
    })
}

/// A transaction for `Simulate`: the real body, signer info and sequence, no fee, and an empty
/// signature (the node skips signature checks when simulating but still checks the sequence).
pub fn simulation_tx(
    key: &Key,
    msgs: &[prost_types::Any],
    memo: &str,
    sequence: u64,
) -> Result<Vec<u8>, ChainError> {
    let fee = Fee {
        gas_limit: 0,
        amount: 0,
        denom: String::new(),
    };
    Ok(TxRaw {
        body_bytes: body(msgs, memo)?.encode_to_vec(),
        auth_info_bytes: auth_info(key, sequence, &fee)?.encode_to_vec(),
        signatures: vec![Vec::new()],
    }
    .encode_to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::akash::market::v1::BidId;
    use crate::akash::market::v1beta5::{MsgCloseBid, MsgCreateBid};
    use cosmos_sdk_proto::cosmos::crypto::secp256k1::PubKey;
    use cosmrs::bip32::secp256k1::ecdsa::signature::Verifier;
    use cosmrs::crypto::secp256k1::{Signature, VerifyingKey};

    fn bid_id() -> BidId {
        BidId {
            owner: "akash1tenant".into(),
            dseq: 42,
            gseq: 1,
            oseq: 1,
            provider: "akash1provider".into(),
            bseq: 0,
        }
    }

    fn signer() -> SignerData {
        SignerData {
            chain_id: "akashnet-2".into(),
            account_number: 17,
            sequence: 9,
        }
    }

    fn fee() -> Fee {
        Fee {
            gas_limit: 150_000,
            amount: 3_750,
            denom: "uakt".into(),
        }
    }

    /// Decodes a raw transaction the way a node does and checks its signature.
    fn verify(
        bytes: &[u8],
        chain_id: &str,
        account_number: u64,
    ) -> Result<(TxBody, AuthInfo), String> {
        let raw = TxRaw::decode(bytes).map_err(|e| e.to_string())?;
        let body = TxBody::decode(raw.body_bytes.as_slice()).map_err(|e| e.to_string())?;
        let auth = AuthInfo::decode(raw.auth_info_bytes.as_slice()).map_err(|e| e.to_string())?;
        let [signer_info] = auth.signer_infos.as_slice() else {
            return Err("expected one signer".into());
        };
        let pk_any = signer_info.public_key.as_ref().ok_or("no public key")?;
        if pk_any.type_url != "/cosmos.crypto.secp256k1.PubKey" {
            return Err(format!("public key type {}", pk_any.type_url));
        }
        let pk = PubKey::decode(pk_any.value.as_slice()).map_err(|e| e.to_string())?;
        let vk = VerifyingKey::from_sec1_bytes(&pk.key).map_err(|e| e.to_string())?;
        let doc = sign_doc_bytes(
            &raw.body_bytes,
            &raw.auth_info_bytes,
            chain_id,
            account_number,
        );
        let [sig] = raw.signatures.as_slice() else {
            return Err("expected one signature".into());
        };
        let sig = Signature::from_slice(sig).map_err(|e| e.to_string())?;
        vk.verify(&doc, &sig).map_err(|e| e.to_string())?;
        Ok((body, auth))
    }

    #[test]
    fn a_signed_tx_verifies_and_carries_what_was_asked() {
        let key = Key::random("akash").unwrap();
        let msgs = [
            crate::to_any(&MsgCreateBid {
                id: Some(bid_id()),
                ..Default::default()
            }),
            crate::to_any(&MsgCloseBid {
                id: Some(bid_id()),
                reason: 10000,
            }),
        ];
        let tx = sign_tx(&key, &msgs, "bid", &fee(), &signer()).unwrap();
        assert_eq!(tx.hash, tx_hash(&tx.bytes));
        assert_eq!(tx.hash.len(), 64);

        let (body, auth) = verify(&tx.bytes, "akashnet-2", 17).expect("verifies");
        let urls: Vec<_> = body.messages.iter().map(|m| m.type_url.as_str()).collect();
        assert_eq!(
            urls,
            [
                "/akash.market.v1beta5.MsgCreateBid",
                "/akash.market.v1beta5.MsgCloseBid"
            ]
        );
        let decoded = MsgCloseBid::decode(body.messages[1].value.as_slice()).unwrap();
        assert_eq!(decoded.reason, 10000);
        assert_eq!(body.memo, "bid");

        let si = &auth.signer_infos[0];
        assert_eq!(si.sequence, 9);
        assert_eq!(
            si.mode_info,
            Some(ModeInfo {
                sum: Some(mode_info::Sum::Single(mode_info::Single {
                    mode: SignMode::Direct as i32
                }))
            })
        );
        let f = auth.fee.unwrap();
        assert_eq!(f.gas_limit, 150_000);
        assert_eq!(
            f.amount,
            vec![Coin {
                denom: "uakt".into(),
                amount: "3750".into()
            }]
        );
    }

    #[test]
    fn the_signature_binds_chain_id_and_account_number() {
        let key = Key::random("akash").unwrap();
        let msgs = [crate::to_any(&MsgCloseBid::default())];
        let tx = sign_tx(&key, &msgs, "", &fee(), &signer()).unwrap();
        assert!(verify(&tx.bytes, "akashnet-2", 17).is_ok());
        assert!(verify(&tx.bytes, "akashnet-3", 17).is_err());
        assert!(verify(&tx.bytes, "akashnet-2", 18).is_err());

        // A tampered body no longer verifies.
        let mut raw = TxRaw::decode(tx.bytes.as_slice()).unwrap();
        let mut body = TxBody::decode(raw.body_bytes.as_slice()).unwrap();
        body.memo = "tampered".into();
        raw.body_bytes = body.encode_to_vec();
        assert!(verify(&raw.encode_to_vec(), "akashnet-2", 17).is_err());
    }

    #[test]
    fn an_empty_transaction_is_refused() {
        let key = Key::random("akash").unwrap();
        assert!(matches!(
            sign_tx(&key, &[], "", &fee(), &signer()),
            Err(ChainError::Invalid(_))
        ));
    }

    #[test]
    fn the_simulation_tx_has_the_sequence_and_an_empty_signature() {
        let key = Key::random("akash").unwrap();
        let bytes = simulation_tx(&key, &[crate::to_any(&MsgCloseBid::default())], "", 5).unwrap();
        let raw = TxRaw::decode(bytes.as_slice()).unwrap();
        assert_eq!(raw.signatures, vec![Vec::<u8>::new()]);
        let auth = AuthInfo::decode(raw.auth_info_bytes.as_slice()).unwrap();
        assert_eq!(auth.signer_infos[0].sequence, 5);
        assert!(auth.fee.unwrap().amount.is_empty());
    }
}
