//! Nobody can make the provider pay their transaction fees.

use std::time::Duration;

use chain_client::Chain;
use e2e::devnet::{Devnet, TEST_MNEMONICS};
use e2e::scenario::{PROVIDER_KEY, STRANGER_KEY};
use e2e::tenant;
use e2e::wait::{Poll, until};

use super::WAIT;

/// A MsgSend of 1 uakt from `from` to itself whose fee names `payer`, signed by `from` alone.
fn send_paid_by(
    from: &devnet::genesis::TestAccount,
    account_number: u64,
    sequence: u64,
    chain_id: &str,
    payer: &str,
) -> anyhow::Result<Vec<u8>> {
    use cosmos_sdk_proto::Any;
    use cosmos_sdk_proto::cosmos::bank::v1beta1::MsgSend;
    use cosmos_sdk_proto::cosmos::base::v1beta1::Coin;
    use cosmos_sdk_proto::cosmos::crypto::secp256k1::PubKey;
    use cosmos_sdk_proto::cosmos::tx::signing::v1beta1::SignMode;
    use cosmos_sdk_proto::cosmos::tx::v1beta1::{
        AuthInfo, Fee, ModeInfo, SignDoc, SignerInfo, TxBody, TxRaw, mode_info,
    };
    use cosmos_sdk_proto::prost::Message;
    let coin = |amount: &str| Coin {
        denom: "uakt".into(),
        amount: amount.into(),
    };
    let body = TxBody {
        messages: vec![Any {
            type_url: "/cosmos.bank.v1beta1.MsgSend".into(),
            value: MsgSend {
                from_address: from.address.clone(),
                to_address: from.address.clone(),
                amount: vec![coin("1")],
            }
            .encode_to_vec(),
        }],
        ..Default::default()
    };
    let auth_info = AuthInfo {
        signer_infos: vec![SignerInfo {
            public_key: Some(Any {
                type_url: "/cosmos.crypto.secp256k1.PubKey".into(),
                value: PubKey {
                    key: from.key.public_key().to_bytes(),
                }
                .encode_to_vec(),
            }),
            mode_info: Some(ModeInfo {
                sum: Some(mode_info::Sum::Single(mode_info::Single {
                    mode: SignMode::Direct as i32,
                })),
            }),
            sequence,
        }],
        fee: Some(Fee {
            amount: vec![coin("5000000")],
            gas_limit: 200_000,
            payer: payer.to_owned(),
            granter: String::new(),
        }),
        ..Default::default()
    };
    let body_bytes = body.encode_to_vec();
    let auth_info_bytes = auth_info.encode_to_vec();
    let doc = SignDoc {
        body_bytes: body_bytes.clone(),
        auth_info_bytes: auth_info_bytes.clone(),
        chain_id: chain_id.to_owned(),
        account_number,
    };
    let signature = from
        .key
        .sign(&doc.encode_to_vec())
        .map_err(|e| anyhow::anyhow!("{e}"))?
        .to_vec();
    Ok(TxRaw {
        body_bytes,
        auth_info_bytes,
        signatures: vec![signature],
    }
    .encode_to_vec())
}

/// A stranger names the provider's account as fee payer of its own transaction, signed by
/// itself only: the devnet refuses it, and the provider pays nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stranger_cannot_make_the_provider_pay_its_fees() -> anyhow::Result<()> {
    e2e::init_tracing();
    let devnet = Devnet::start("e2e-attack-fees", "200ms")?;
    let provider = tenant::client(&devnet, TEST_MNEMONICS[PROVIDER_KEY])?;
    let stranger = tenant::client(&devnet, TEST_MNEMONICS[STRANGER_KEY])?;
    let accounts = devnet::genesis::test_accounts()?;
    let from = &accounts[STRANGER_KEY];
    assert_eq!(from.address, stranger.address());
    let before = provider.balance(provider.address(), "uakt").await?;
    let account = stranger.account(stranger.address()).await?;
    let raw = send_paid_by(
        from,
        account.account_number,
        account.sequence,
        &devnet.chain_id,
        provider.address(),
    )?;
    let rpc = chain_client::rpc::CometRpc::new(&devnet.rpc_url, Duration::from_secs(10))?;
    let result = rpc.broadcast_tx_sync(&raw).await?;
    assert_eq!(result.code, 4, "{}", result.log);
    assert!(
        result.log.contains("wrong number of signers"),
        "{}",
        result.log
    );
    // Blocks go by; the provider's balance does not move.
    let height = provider.latest_height().await?;
    until("two more blocks", WAIT, || async {
        let now = provider.latest_height().await?;
        Ok(if now >= height + 2 {
            Poll::Ready(())
        } else {
            Poll::Pending(format!("height {now}"))
        })
    })
    .await?;
    assert_eq!(provider.balance(provider.address(), "uakt").await?, before);
    Ok(())
}
