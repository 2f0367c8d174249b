//! Builds and signs transactions with cosmrs (SIGN_MODE_DIRECT), as a wallet does: for tests and
//! tools that drive the devnet.

use cosmrs::crypto::secp256k1::SigningKey;
use cosmrs::tx::{Body, Fee, Msg, SignDoc, SignerInfo};

/// What a signer needs besides the message: chain, account number, sequence, fee and gas.
#[derive(Debug, Clone)]
pub struct SignOpts {
    pub chain_id: String,
    pub account_number: u64,
    pub sequence: u64,
    pub fee_amount: u128,
    pub fee_denom: String,
    pub gas_limit: u64,
    pub memo: String,
}

impl SignOpts {
    /// Default fee and gas (200000 gas at 0.025uakt = 5000uakt).
    pub fn new(chain_id: &str, account_number: u64, sequence: u64) -> Self {
        Self {
            chain_id: chain_id.to_owned(),
            account_number,
            sequence,
            fee_amount: 5_000,
            fee_denom: crate::DENOM_AKT.to_owned(),
            gas_limit: 200_000,
            memo: String::new(),
        }
    }
}

/// Signs `msgs` with `key`; returns the `TxRaw` bytes to broadcast.
pub fn sign_tx(
    key: &SigningKey,
    msgs: Vec<cosmrs::Any>,
    opts: &SignOpts,
) -> anyhow::Result<Vec<u8>> {
    let e = |e: cosmrs::ErrorReport| anyhow::anyhow!("{e}");
    let body = Body::new(msgs, opts.memo.clone(), 0u32);
    let fee = Fee::from_amount_and_gas(
        cosmrs::Coin {
            denom: opts.fee_denom.parse().map_err(e)?,
            amount: opts.fee_amount,
        },
        opts.gas_limit,
    );
    let auth_info = SignerInfo::single_direct(Some(key.public_key()), opts.sequence).auth_info(fee);
    let chain_id = opts
        .chain_id
        .parse()
        .map_err(|err| anyhow::anyhow!("chain id: {err}"))?;
    let doc = SignDoc::new(&body, &auth_info, &chain_id, opts.account_number).map_err(e)?;
    doc.sign(key).map_err(e)?.to_bytes().map_err(e)
}

/// A bank `MsgSend` of `amount` `denom` from `key`'s address to `to`, signed.
pub fn sign_send(
    key: &SigningKey,
    to: &str,
    amount: u128,
    denom: &str,
    opts: &SignOpts,
) -> anyhow::Result<Vec<u8>> {
    let e = |e: cosmrs::ErrorReport| anyhow::anyhow!("{e}");
    let from = key
        .public_key()
        .account_id(crate::BECH32_PREFIX)
        .map_err(e)?;
    let msg = cosmrs::bank::MsgSend {
        from_address: from,
        to_address: to.parse().map_err(e)?,
        amount: vec![cosmrs::Coin {
            denom: denom.parse().map_err(e)?,
            amount,
        }],
    };
    sign_tx(key, vec![msg.to_any().map_err(e)?], opts)
}

/// A minimal `MsgCreateDeployment` for tests and demos: one group per name, each with one unit of
/// 1 CPU, 512 MiB memory and 1 GiB storage at 1000 uact per block, a 0.5 ACT deposit from the
/// owner's balance, and `hash` as the manifest version.
pub fn create_deployment_msg(
    owner: &str,
    dseq: u64,
    group_names: &[&str],
    hash: [u8; 32],
) -> chain_client::akash::deployment::v1beta4::MsgCreateDeployment {
    use chain_client::akash::base::resources::v1beta4 as r;
    use chain_client::akash::deployment::{v1 as dv1, v1beta4 as d};
    use chain_client::dec::resource_value;
    let groups = group_names
        .iter()
        .map(|name| d::GroupSpec {
            name: (*name).to_owned(),
            requirements: Some(Default::default()),
            resources: vec![d::ResourceUnit {
                resource: Some(r::Resources {
                    id: 1,
                    cpu: Some(r::Cpu {
                        units: Some(resource_value(1000)),
                        attributes: vec![],
                    }),
                    memory: Some(r::Memory {
                        quantity: Some(resource_value(512 << 20)),
                        attributes: vec![],
                    }),
                    storage: vec![r::Storage {
                        name: "default".into(),
                        quantity: Some(resource_value(1 << 30)),
                        attributes: vec![],
                    }],
                    gpu: Some(r::Gpu {
                        units: Some(resource_value(0)),
                        attributes: vec![],
                    }),
                    endpoints: vec![],
                }),
                count: 1,
                price: Some(cosmos_sdk_proto::cosmos::base::v1beta1::DecCoin {
                    denom: crate::DENOM_ACT.into(),
                    amount: chain_client::dec::to_wire("1000").unwrap_or_default(),
                }),
            }],
        })
        .collect();
    d::MsgCreateDeployment {
        id: Some(dv1::DeploymentId {
            owner: owner.to_owned(),
            dseq,
        }),
        groups,
        hash: hash.to_vec(),
        deposit: Some(chain_client::akash::base::deposit::v1::Deposit {
            amount: Some(cosmos_sdk_proto::cosmos::base::v1beta1::Coin {
                denom: crate::DENOM_ACT.into(),
                amount: "500000".into(),
            }),
            sources: vec![chain_client::akash::base::deposit::v1::Source::Balance as i32],
        }),
        reclamation: None,
    }
}

/// Wraps any prost message with its type URL into the `Any` that [`sign_tx`] takes.
pub fn any_of<M: prost::Name>(msg: &M) -> cosmrs::Any {
    cosmrs::Any {
        type_url: M::type_url(),
        value: prost::Message::encode_to_vec(msg),
    }
}
