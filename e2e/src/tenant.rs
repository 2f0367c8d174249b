//! A tenant (or a competing provider) as a chain client: the project's own `chain-client` against
//! the test's devnet, signing with one of the devnet's test mnemonics.

use std::time::Duration;

use anyhow::Context;
use chain_client::Chain;
use chain_client::akash::base::deposit::v1::{Deposit, Source};
use chain_client::akash::deployment::{v1 as dv1, v1beta4 as dv4};
use chain_client::keys::{Key, Mnemonic};
use chain_client::node::{NodeChain, NodeConfig};
use chain_client::signer::SignerConfig;
use chain_client::tx::{FeePolicy, GasPrice};
use cosmos_sdk_proto::cosmos::base::v1beta1::Coin;

use crate::devnet::Devnet;

/// A chain client for `mnemonic` on the devnet, polling fast.
pub fn client(devnet: &Devnet, mnemonic: &str) -> anyhow::Result<NodeChain> {
    client_for(
        &devnet.chain_id,
        &devnet.rpc_url,
        &devnet.grpc_url,
        mnemonic,
    )
}

/// A chain client for `mnemonic` on the node at these addresses.
pub fn client_for(
    chain_id: &str,
    rpc_url: &str,
    grpc_url: &str,
    mnemonic: &str,
) -> anyhow::Result<NodeChain> {
    let key = Key::from_mnemonic(&Mnemonic::from_phrase(mnemonic)?)?;
    let mut signer = SignerConfig::new(
        chain_id.to_owned(),
        FeePolicy::new(GasPrice::parse("0.025uakt")?),
    );
    signer.poll_interval = Duration::from_millis(100);
    signer.inclusion_timeout = Duration::from_secs(30);
    let follow = chain_client::follow::FollowOptions {
        poll_interval: Duration::from_millis(100),
        ..Default::default()
    };
    Ok(NodeChain::new(
        key,
        NodeConfig {
            grpc_url: grpc_url.to_owned(),
            rpc_url: rpc_url.to_owned(),
            request_timeout: Duration::from_secs(10),
            signer,
            follow,
        },
    )?)
}

/// The testdata SDL file `name` (under `testdata/sdl/awesome-akash/`).
pub fn testdata_sdl(name: &str) -> anyhow::Result<crds::sdl::Sdl> {
    let path = crate::repo_dir()
        .join("testdata/sdl/awesome-akash")
        .join(name);
    let text =
        std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
    crds::sdl::Sdl::parse(&text).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))
}

/// The `MsgCreateDeployment` of the SDL as deployment (owner, dseq), with a 5 ACT deposit.
pub fn deployment_msg(
    owner: &str,
    dseq: u64,
    sdl: &crds::sdl::Sdl,
) -> anyhow::Result<dv4::MsgCreateDeployment> {
    Ok(dv4::MsgCreateDeployment {
        id: Some(dv1::DeploymentId {
            owner: owner.to_owned(),
            dseq,
        }),
        groups: operator::chain_groups::to_chain(sdl.groups())?,
        hash: sdl.manifest_version().to_vec(),
        deposit: Some(Deposit {
            amount: Some(Coin {
                denom: "uact".into(),
                amount: "5000000".into(),
            }),
            sources: vec![Source::Balance as i32],
        }),
        reclamation: None,
    })
}

/// Posts the SDL as deployment `dseq` of the client's account, with a 5 ACT deposit.
pub async fn create_deployment(
    tenant: &NodeChain,
    sdl: &crds::sdl::Sdl,
    dseq: u64,
) -> anyhow::Result<dv4::MsgCreateDeployment> {
    let msg = deployment_msg(tenant.address(), dseq, sdl)?;
    tenant
        .broadcast(vec![chain_client::to_any(&msg)])
        .await
        .context("MsgCreateDeployment")?;
    Ok(msg)
}
