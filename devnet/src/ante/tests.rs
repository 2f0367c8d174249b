use super::*;
use crate::genesis::{GENESIS_AMOUNT, genesis_state, test_accounts};
use crate::sign::{SignOpts, sign_send};

const CHAIN: &str = "devnet-test";

fn params() -> Params {
    Params::new(CHAIN, parse_gas_prices("0.025uakt").unwrap())
}

struct Fixture {
    state: State,
    from: crate::genesis::TestAccount,
    to: String,
}

fn fixture() -> Fixture {
    let mut accounts = test_accounts().unwrap();
    let to = accounts[1].address.clone();
    Fixture {
        state: genesis_state(CHAIN).unwrap(),
        from: accounts.remove(0),
        to,
    }
}

#[test]
fn gas_prices_parse() {
    assert_eq!(
        parse_gas_prices("0.025uakt,1uact").unwrap(),
        vec![("uakt".to_owned(), 25_000), ("uact".to_owned(), 1_000_000)]
    );
    assert!(parse_gas_prices("0.0000001uakt").is_err());
    assert!(parse_gas_prices("1").is_err());
    assert_eq!(parse_gas_prices("").unwrap(), vec![]);
}

#[test]
fn valid_send_moves_coins_charges_fee_and_sets_pubkey_and_sequence() {
    let mut f = fixture();
    let raw = sign_send(
        &f.from.key,
        &f.to,
        1_000,
        "uakt",
        &SignOpts::new(CHAIN, 0, 0),
    )
    .unwrap();
    let r = run_tx(&mut f.state, &raw, Mode::Deliver, &params());
    assert_eq!((r.code, r.log.as_str()), (0, ""));
    assert!(r.gas_used > 0 && r.gas_used <= r.gas_wanted, "{r:?}");
    assert_eq!(r.gas_wanted, 200_000);
    assert_eq!(
        f.state.balance(&f.from.address, "uakt"),
        GENESIS_AMOUNT - 1_000 - 5_000
    );
    assert_eq!(f.state.balance(&f.to, "uakt"), GENESIS_AMOUNT + 1_000);
    assert_eq!(f.state.balance(&fee_collector_address(), "uakt"), 5_000);
    let acc = &f.state.accounts[&f.from.address];
    assert_eq!(acc.sequence, 1);
    assert_eq!(
        acc.pub_key.as_deref(),
        Some(f.from.key.public_key().to_bytes().as_slice())
    );
    let transfer = r.events.iter().find(|e| e.kind == "transfer").unwrap();
    assert_eq!(transfer.get("amount"), Some("1000uakt"));
    assert_eq!(transfer.get("recipient"), Some(f.to.as_str()));
    let fee = r.events.iter().find(|e| e.get("fee").is_some()).unwrap();
    assert_eq!(fee.get("fee"), Some("5000uakt"));
    let acc_seq = r.events.iter().find_map(|e| e.get("acc_seq")).unwrap();
    assert_eq!(acc_seq, format!("{}/0", f.from.address));
    let data = cosmos_sdk_proto::cosmos::base::abci::v1beta1::TxMsgData::decode(r.data.as_slice())
        .unwrap();
    assert_eq!(
        data.msg_responses[0].type_url,
        "/cosmos.bank.v1beta1.MsgSendResponse"
    );

    // The second transaction needs sequence 1; the public key is now on the account.
    let raw = sign_send(&f.from.key, &f.to, 1, "uakt", &SignOpts::new(CHAIN, 0, 1)).unwrap();
    assert_eq!(run_tx(&mut f.state, &raw, Mode::Deliver, &params()).code, 0);
    assert_eq!(f.state.accounts[&f.from.address].sequence, 2);
}

#[test]
fn wrong_sequence_is_code_32_and_changes_nothing() {
    let mut f = fixture();
    let before = f.state.clone();
    let raw = sign_send(
        &f.from.key,
        &f.to,
        1_000,
        "uakt",
        &SignOpts::new(CHAIN, 0, 3),
    )
    .unwrap();
    for mode in [Mode::Check, Mode::Deliver] {
        let r = run_tx(&mut f.state, &raw, mode, &params());
        assert_eq!(r.code, 32);
        assert_eq!(r.codespace, "sdk");
        assert_eq!(
            r.log,
            "account sequence mismatch, expected 0, got 3: incorrect account sequence"
        );
        assert_eq!(
            f.state, before,
            "a rejected tx must change nothing ({mode:?})"
        );
    }
}

#[test]
fn bad_signature_is_code_4_and_changes_nothing() {
    let mut f = fixture();
    let before = f.state.clone();
    // Signed for another chain: the sign doc differs, so the signature does not verify here.
    let raw = sign_send(
        &f.from.key,
        &f.to,
        1_000,
        "uakt",
        &SignOpts::new("other-chain", 0, 0),
    )
    .unwrap();
    let r = run_tx(&mut f.state, &raw, Mode::Check, &params());
    assert_eq!(r.code, 4);
    assert_eq!(
        r.log,
        "signature verification failed; please verify account number (0), sequence (0) and chain-id (devnet-test): unauthorized"
    );
    assert_eq!(f.state, before);

    // A flipped bit in the signature.
    let raw = sign_send(
        &f.from.key,
        &f.to,
        1_000,
        "uakt",
        &SignOpts::new(CHAIN, 0, 0),
    )
    .unwrap();
    let mut tx = TxRaw::decode(raw.as_slice()).unwrap();
    tx.signatures[0][5] ^= 1;
    let r = run_tx(&mut f.state, &tx.encode_to_vec(), Mode::Deliver, &params());
    assert_eq!(r.code, 4);
    assert_eq!(f.state, before);

    // Wrong account number.
    let raw = sign_send(
        &f.from.key,
        &f.to,
        1_000,
        "uakt",
        &SignOpts::new(CHAIN, 7, 0),
    )
    .unwrap();
    assert_eq!(run_tx(&mut f.state, &raw, Mode::Check, &params()).code, 4);
    assert_eq!(f.state, before);
}

#[test]
fn signing_for_someone_elses_address_is_rejected() {
    let mut f = fixture();
    let before = f.state.clone();
    let other = &test_accounts().unwrap()[2];
    // A MsgSend from `other` signed with our key: the key does not match the signer address.
    let msg = cosmos_sdk_proto::cosmos::bank::v1beta1::MsgSend {
        from_address: other.address.clone(),
        to_address: f.to.clone(),
        amount: vec![cosmos_sdk_proto::cosmos::base::v1beta1::Coin {
            denom: "uakt".into(),
            amount: "5".into(),
        }],
    };
    let any = cosmrs::Any {
        type_url: "/cosmos.bank.v1beta1.MsgSend".into(),
        value: msg.encode_to_vec(),
    };
    let raw = crate::sign::sign_tx(&f.from.key, vec![any], &SignOpts::new(CHAIN, 2, 0)).unwrap();
    let r = run_tx(&mut f.state, &raw, Mode::Check, &params());
    assert_eq!(r.code, 8, "{}", r.log);
    assert!(
        r.log.starts_with("pubKey does not match signer address"),
        "{}",
        r.log
    );
    assert_eq!(f.state, before);
}

#[test]
fn fee_below_minimum_gas_price_is_code_13_in_check() {
    let mut f = fixture();
    let before = f.state.clone();
    let opts = SignOpts {
        fee_amount: 100,
        ..SignOpts::new(CHAIN, 0, 0)
    };
    let raw = sign_send(&f.from.key, &f.to, 1, "uakt", &opts).unwrap();
    let r = run_tx(&mut f.state, &raw, Mode::Check, &params());
    assert_eq!(r.code, 13);
    assert_eq!(
        r.log,
        "insufficient fees; got: 100uakt required: 5000uakt: insufficient fee"
    );
    assert_eq!(f.state, before);
}

#[test]
fn fee_beyond_balance_is_code_5_and_changes_nothing() {
    let mut f = fixture();
    let before = f.state.clone();
    let opts = SignOpts {
        fee_amount: GENESIS_AMOUNT + 1,
        ..SignOpts::new(CHAIN, 0, 0)
    };
    let raw = sign_send(&f.from.key, &f.to, 1, "uakt", &opts).unwrap();
    let r = run_tx(&mut f.state, &raw, Mode::Check, &params());
    assert_eq!(r.code, 5);
    assert_eq!(
        r.log,
        format!(
            "spendable balance {GENESIS_AMOUNT}uakt is smaller than {}uakt: failed to deduct fees from {}: insufficient funds",
            GENESIS_AMOUNT + 1,
            f.from.address
        )
    );
    assert_eq!(f.state, before);
}

#[test]
fn send_beyond_balance_fails_in_block_but_fee_and_sequence_stick() {
    let mut f = fixture();
    let raw = sign_send(
        &f.from.key,
        &f.to,
        GENESIS_AMOUNT,
        "uakt",
        &SignOpts::new(CHAIN, 0, 0),
    )
    .unwrap();
    // The mempool admits it: CheckTx runs only the ante step.
    let mut check = f.state.clone();
    assert_eq!(run_tx(&mut check, &raw, Mode::Check, &params()).code, 0);
    let r = run_tx(&mut f.state, &raw, Mode::Deliver, &params());
    assert_eq!(r.code, 5);
    assert!(
        r.log
            .starts_with("failed to execute message; message index: 0: spendable balance"),
        "{}",
        r.log
    );
    assert!(r.log.ends_with(": insufficient funds"), "{}", r.log);
    assert_eq!(
        f.state.balance(&f.from.address, "uakt"),
        GENESIS_AMOUNT - 5_000
    );
    assert_eq!(f.state.balance(&f.to, "uakt"), GENESIS_AMOUNT);
    assert_eq!(f.state.accounts[&f.from.address].sequence, 1);
    assert!(r.events.iter().all(|e| e.kind != "transfer"));
}

#[test]
fn gas_limit_is_enforced() {
    let mut f = fixture();
    let before = f.state.clone();
    // Too little for the ante step: rejected, nothing changes.
    let opts = SignOpts {
        gas_limit: 1_000,
        fee_amount: 5_000,
        ..SignOpts::new(CHAIN, 0, 0)
    };
    let raw = sign_send(&f.from.key, &f.to, 1, "uakt", &opts).unwrap();
    let r = run_tx(&mut f.state, &raw, Mode::Check, &params());
    assert_eq!(r.code, 11);
    assert_eq!(
        r.log,
        "out of gas in location: ante; gasWanted: 1000, gasUsed: 20000: out of gas"
    );
    assert_eq!(f.state, before);

    // Enough for the ante step, not for the message: included, fails, fee charged.
    let ante_gas = gas::BASE_GAS + gas::PER_BYTE_GAS * raw.len() as u64 + gas::PER_SIGNATURE_GAS;
    let opts = SignOpts {
        gas_limit: ante_gas + 10,
        fee_amount: 5_000,
        ..SignOpts::new(CHAIN, 0, 0)
    };
    let raw = sign_send(&f.from.key, &f.to, 1, "uakt", &opts).unwrap();
    let r = run_tx(&mut f.state, &raw, Mode::Deliver, &params());
    assert_eq!(r.code, 11, "{}", r.log);
    assert!(
        r.log.contains("out of gas in location: message"),
        "{}",
        r.log
    );
    assert_eq!(r.gas_wanted, ante_gas + 10);
    assert_eq!(f.state.balance(&f.to, "uakt"), GENESIS_AMOUNT);
    assert_eq!(
        f.state.balance(&f.from.address, "uakt"),
        GENESIS_AMOUNT - 5_000
    );
}

#[test]
fn simulate_reports_gas_without_checking_the_signature() {
    let mut f = fixture();
    let raw = sign_send(
        &f.from.key,
        &f.to,
        1,
        "uakt",
        &SignOpts::new("not-this-chain", 0, 0),
    )
    .unwrap();
    let r = run_tx(&mut f.state, &raw, Mode::Simulate, &params());
    assert_eq!(r.code, 0, "{}", r.log);
    let expected = gas::BASE_GAS
        + gas::PER_BYTE_GAS * raw.len() as u64
        + gas::PER_SIGNATURE_GAS
        + gas::PER_MESSAGE_GAS;
    assert_eq!(r.gas_used, expected);
}

#[test]
fn undecodable_and_unknown_messages_are_code_2() {
    let mut f = fixture();
    let before = f.state.clone();
    let r = run_tx(&mut f.state, b"\xff\xff not a tx", Mode::Check, &params());
    assert_eq!((r.code, r.codespace.as_str()), (2, "sdk"));
    let any = cosmrs::Any {
        type_url: "/akash.nothing.v1.MsgNothing".into(),
        value: vec![],
    };
    let raw = crate::sign::sign_tx(&f.from.key, vec![any], &SignOpts::new(CHAIN, 0, 0)).unwrap();
    let r = run_tx(&mut f.state, &raw, Mode::Check, &params());
    assert_eq!(r.code, 2);
    assert_eq!(
        r.log,
        "unable to resolve type URL /akash.nothing.v1.MsgNothing: tx parse error"
    );
    assert_eq!(f.state, before);
}

#[test]
fn fee_collector_is_the_module_address() {
    // sha256("fee_collector")[:20] with the akash prefix, as the SDK derives module accounts.
    assert_eq!(
        fee_collector_address(),
        "akash17xpfvakm2amg962yls6f84z3kell8c5lazw8j8"
    );
}

/// A `MsgSend` of 1 uakt from `from` to `to` whose 5000uakt fee names `payer`, signed by each of
/// `signers` (account, account number) in turn, every signer at sequence 0.
fn send_with_fee_payer(
    from: &crate::genesis::TestAccount,
    to: &str,
    payer: &str,
    signers: &[(&crate::genesis::TestAccount, u64)],
) -> Vec<u8> {
    use cosmos_sdk_proto::Any;
    use cosmos_sdk_proto::cosmos::base::v1beta1::Coin as ProtoCoin;
    use cosmos_sdk_proto::cosmos::tx::v1beta1::{Fee, ModeInfo, SignerInfo, TxBody};
    let send = cosmos_sdk_proto::cosmos::bank::v1beta1::MsgSend {
        from_address: from.address.clone(),
        to_address: to.to_owned(),
        amount: vec![ProtoCoin {
            denom: "uakt".into(),
            amount: "1".into(),
        }],
    };
    let body = TxBody {
        messages: vec![Any {
            type_url: "/cosmos.bank.v1beta1.MsgSend".into(),
            value: send.encode_to_vec(),
        }],
        ..Default::default()
    };
    let auth_info = AuthInfo {
        signer_infos: signers
            .iter()
            .map(|(account, _)| SignerInfo {
                public_key: Some(Any {
                    type_url: "/cosmos.crypto.secp256k1.PubKey".into(),
                    value: PubKey {
                        key: account.key.public_key().to_bytes(),
                    }
                    .encode_to_vec(),
                }),
                mode_info: Some(ModeInfo {
                    sum: Some(mode_info::Sum::Single(mode_info::Single {
                        mode: SignMode::Direct as i32,
                    })),
                }),
                sequence: 0,
            })
            .collect(),
        fee: Some(Fee {
            amount: vec![ProtoCoin {
                denom: "uakt".into(),
                amount: "5000".into(),
            }],
            gas_limit: 200_000,
            payer: payer.to_owned(),
            granter: String::new(),
        }),
        ..Default::default()
    };
    let body_bytes = body.encode_to_vec();
    let auth_info_bytes = auth_info.encode_to_vec();
    let signatures = signers
        .iter()
        .map(|(account, number)| {
            let doc = SignDoc {
                body_bytes: body_bytes.clone(),
                auth_info_bytes: auth_info_bytes.clone(),
                chain_id: CHAIN.into(),
                account_number: *number,
            }
            .encode_to_vec();
            account.key.sign(&doc).expect("signature").to_vec()
        })
        .collect();
    TxRaw {
        body_bytes,
        auth_info_bytes,
        signatures,
    }
    .encode_to_vec()
}

/// Naming someone else as fee payer without their signature would spend their balance on fees:
/// the payer is a signer, as in the Cosmos SDK, and a transaction without its signature is
/// refused before anything is charged.
#[test]
fn a_fee_payer_who_did_not_sign_is_code_4_and_pays_nothing() {
    let mut f = fixture();
    let victim = &test_accounts().unwrap()[2];
    let before = f.state.clone();
    let raw = send_with_fee_payer(&f.from, &f.to, &victim.address, &[(&f.from, 0)]);
    for mode in [Mode::Check, Mode::Deliver] {
        let r = run_tx(&mut f.state, &raw, mode, &params());
        assert_eq!(r.code, 4, "{mode:?}: {}", r.log);
        assert_eq!(
            r.log,
            "wrong number of signers; expected 2, got 1: unauthorized"
        );
        assert_eq!(f.state, before, "{mode:?}: nothing charged, nothing sent");
    }
    // Signed by the sender twice over (the payer's slot with the sender's key): refused too.
    let raw = send_with_fee_payer(
        &f.from,
        &f.to,
        &victim.address,
        &[(&f.from, 0), (&f.from, 0)],
    );
    let r = run_tx(&mut f.state, &raw, Mode::Deliver, &params());
    assert_eq!(r.code, 8, "{}", r.log);
    assert!(
        r.log.starts_with("pubKey does not match signer address"),
        "{}",
        r.log
    );
    assert_eq!(f.state, before);
}

#[test]
fn a_fee_payer_who_signed_pays_the_fee() {
    let mut f = fixture();
    let payer = &test_accounts().unwrap()[2];
    let raw = send_with_fee_payer(&f.from, &f.to, &payer.address, &[(&f.from, 0), (payer, 2)]);
    let r = run_tx(&mut f.state, &raw, Mode::Deliver, &params());
    assert_eq!((r.code, r.log.as_str()), (0, ""));
    assert_eq!(f.state.balance(&f.from.address, "uakt"), GENESIS_AMOUNT - 1);
    assert_eq!(
        f.state.balance(&payer.address, "uakt"),
        GENESIS_AMOUNT - 5_000
    );
    assert_eq!(f.state.accounts[&payer.address].sequence, 1);
    let fee = r
        .events
        .iter()
        .find(|e| e.get("fee_payer").is_some())
        .unwrap();
    assert_eq!(fee.get("fee_payer"), Some(payer.address.as_str()));
}

#[test]
fn a_fee_payer_that_is_not_an_address_is_refused() {
    let mut f = fixture();
    let before = f.state.clone();
    let raw = send_with_fee_payer(&f.from, &f.to, "cosmos1nobody", &[(&f.from, 0)]);
    let r = run_tx(&mut f.state, &raw, Mode::Check, &params());
    assert_eq!(r.code, 7, "{}", r.log);
    assert!(r.log.starts_with("invalid fee payer address"), "{}", r.log);
    assert_eq!(f.state, before);
}
