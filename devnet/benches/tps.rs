//! Transactions per second: `cargo bench -p devnet --bench tps`.
//!
//! Starts a devnet in-process (signature checks and the 0.025uakt minimum gas price on, as the
//! binary runs), pre-signs bank `MsgSend` transactions from each test account with chain-client's
//! signing (consecutive sequences), broadcasts them with `broadcast_tx_sync` over the CometBFT RPC
//! port (one sender per account, in parallel), and prints how many were accepted (CheckTx) and
//! committed per second. It runs twice: from the empty genesis (the baseline) and from a genesis
//! already holding `TPS_LEASES` leases (default 10000, each with its deployment, group, order,
//! bid, escrow accounts and payment, made by the modules' own messages), and prints the ratio.
//! `TPS_TXS` (default 4000) and `TPS_BLOCK_TIME_MS` (default 500) change the run.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chain_client::akash::base::deposit::v1::{Deposit, Source};
use chain_client::akash::market::{v1 as mv1, v1beta5 as mv1beta5};
use chain_client::akash::provider::v1beta4::MsgCreateProvider;
use chain_client::keys::{Key, Mnemonic};
use chain_client::rpc::CometRpc;
use chain_client::tx::{Fee, SignerData, sign_tx};
use devnet::genesis::{TEST_MNEMONICS, genesis_state, test_accounts};
use devnet::msgs::Msg;
use devnet::node::{Node, NodeConfig};
use devnet::sign::{any_of, create_deployment_msg};
use devnet::state::State;

const CHAIN: &str = "devnet-tps";

fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

#[allow(dead_code)] // The small-size test calls `compare` directly.
fn main() -> anyhow::Result<()> {
    let total = env_u64("TPS_TXS", 4000);
    let block_time = Duration::from_millis(env_u64("TPS_BLOCK_TIME_MS", 500));
    let leases = env_u64("TPS_LEASES", 10_000);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(compare(total, block_time, leases))?;
    Ok(())
}

/// Committed transactions per second of one run.
pub struct Figures {
    pub accepted_per_s: f64,
    pub committed_per_s: f64,
}

/// The run from the empty genesis, then from a genesis holding `leases` leases; both printed.
pub async fn compare(
    total: u64,
    block_time: Duration,
    leases: u64,
) -> anyhow::Result<(Figures, Figures)> {
    println!("== baseline: the empty genesis");
    let empty = run(total, block_time, genesis_state(CHAIN)?).await?;
    let building = Instant::now();
    let full = state_with_leases(leases)?;
    println!(
        "== {} leases in the genesis state (made in {:.2?})",
        full.leases.len(),
        building.elapsed()
    );
    let loaded = run(total, block_time, full).await?;
    println!(
        "with {leases} leases: accepted {:.0}% and committed {:.0}% of the empty state's tx/s",
        100.0 * loaded.accepted_per_s / empty.accepted_per_s,
        100.0 * loaded.committed_per_s / empty.committed_per_s
    );
    Ok((empty, loaded))
}

/// The genesis state with `n` active leases of test account 0's deployments (one group each) on
/// test account 1, each made by the modules' messages as a block would run them.
pub fn state_with_leases(n: u64) -> anyhow::Result<State> {
    let accounts = test_accounts()?;
    let (tenant, provider) = (&accounts[0].address, &accounts[1].address);
    let mut state = genesis_state(CHAIN)?;
    let execute = |state: &mut State, any: cosmrs::Any| -> anyhow::Result<()> {
        let msg = Msg::decode(&any).map_err(|e| anyhow::anyhow!("{e:?}"))?;
        msg.execute(state, 0)
            .map_err(|e| anyhow::anyhow!("{}: {e:?}", any.type_url))?;
        Ok(())
    };
    execute(
        &mut state,
        any_of(&MsgCreateProvider {
            owner: provider.clone(),
            host_uri: "https://127.0.0.1:8443".into(),
            attributes: vec![],
            info: None,
        }),
    )?;
    for dseq in 1..=n {
        let mut hash = [0u8; 32];
        hash[..8].copy_from_slice(&dseq.to_be_bytes());
        execute(
            &mut state,
            any_of(&create_deployment_msg(tenant, dseq, &["g"], hash)),
        )?;
        let id = mv1::BidId {
            owner: tenant.clone(),
            dseq,
            gseq: 1,
            oseq: 1,
            provider: provider.clone(),
            bseq: 0,
        };
        execute(
            &mut state,
            any_of(&mv1beta5::MsgCreateBid {
                id: Some(id.clone()),
                price: Some(chain_client::dec::dec_coin("uact", "900")?),
                deposit: Some(Deposit {
                    amount: Some(cosmos_sdk_proto::cosmos::base::v1beta1::Coin {
                        denom: "uact".into(),
                        amount: "500000".into(),
                    }),
                    sources: vec![Source::Balance as i32],
                }),
                resources_offer: vec![],
                reclamation_window: None,
            }),
        )?;
        execute(
            &mut state,
            any_of(&mv1beta5::MsgCreateLease { bid_id: Some(id) }),
        )?;
    }
    Ok(state)
}

async fn run(total: u64, block_time: Duration, genesis: State) -> anyhow::Result<Figures> {
    let home = tempfile::tempdir()?;
    let config = NodeConfig {
        chain_id: CHAIN.into(),
        block_time,
        min_gas_prices: devnet::ante::parse_gas_prices("0.025uakt").map_err(anyhow::Error::msg)?,
        rules: Default::default(),
    };
    let (node, _) = Node::open(home.path(), config, || Ok(genesis))?;
    let loopback: SocketAddr = "127.0.0.1:0".parse()?;
    let running = devnet::server::start(node.clone(), loopback, loopback).await?;
    let rpc_url = format!("http://{}", running.rpc_addr);

    // Pre-signed: per account, sends with sequences 0, 1, 2, … to the next account.
    let keys: Vec<Key> = TEST_MNEMONICS
        .iter()
        .map(|m| Key::from_mnemonic(&Mnemonic::from_phrase(m)?))
        .collect::<Result<_, _>>()?;
    let senders = keys.len() as u64;
    let per_sender = total.div_ceil(senders);
    let fee = Fee {
        gas_limit: 100_000,
        amount: 2_500,
        denom: "uakt".into(),
    };
    let signing = Instant::now();
    let mut batches: Vec<Vec<(String, Vec<u8>)>> = Vec::new();
    for (i, key) in keys.iter().enumerate() {
        let to = keys[(i + 1) % keys.len()].address().to_string();
        let mut batch = Vec::new();
        for sequence in 0..per_sender {
            let msg = cosmos_sdk_proto::cosmos::bank::v1beta1::MsgSend {
                from_address: key.address().to_string(),
                to_address: to.clone(),
                amount: vec![cosmos_sdk_proto::cosmos::base::v1beta1::Coin {
                    denom: "uact".into(),
                    amount: "1".into(),
                }],
            };
            let signer = SignerData {
                chain_id: CHAIN.into(),
                account_number: i as u64,
                sequence,
            };
            let signed = sign_tx(key, &[chain_client::to_any(&msg)], "", &fee, &signer)?;
            batch.push((signed.hash, signed.bytes));
        }
        batches.push(batch);
    }
    let sent = senders * per_sender;
    println!(
        "signed {sent} MsgSend transactions from {senders} accounts in {:.2?}",
        signing.elapsed()
    );

    let start_height = node.height();
    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for batch in batches {
        let rpc = Arc::new(CometRpc::new(&rpc_url, Duration::from_secs(30))?);
        tasks.spawn(async move {
            let mut accepted = 0u64;
            let mut last = String::new();
            for (hash, bytes) in batch {
                let r = rpc.broadcast_tx_sync(&bytes).await?;
                anyhow::ensure!(r.code == 0, "CheckTx code {}: {}", r.code, r.log);
                accepted += 1;
                last = hash;
            }
            anyhow::Ok((accepted, last))
        });
    }
    let mut accepted = 0;
    let mut last_hashes = Vec::new();
    while let Some(r) = tasks.join_next().await {
        let (n, last) = r??;
        accepted += n;
        last_hashes.push(last);
    }
    let accept_time = started.elapsed();
    for hash in &last_hashes {
        node.wait_for_tx(hash, Duration::from_secs(60))
            .await?
            .ok_or_else(|| anyhow::anyhow!("{hash} not committed within 60 s"))?;
    }
    let commit_time = started.elapsed();

    let end_height = node.height();
    let (mut committed, mut failed, mut fullest) = (0u64, 0u64, 0usize);
    for h in start_height + 1..=end_height {
        if let Some(b) = node.block(h)? {
            fullest = fullest.max(b.txs.len());
            for r in &b.tx_results {
                if r.code == 0 {
                    committed += 1;
                } else {
                    failed += 1;
                }
            }
        }
    }
    running.shutdown().await?;

    println!("block time {block_time:?}, min gas price 0.025uakt, signatures checked");
    println!(
        "accepted  {accepted} txs in {:.2?}: {:.0} tx/s (broadcast_tx_sync, {senders} senders in parallel)",
        accept_time,
        accepted as f64 / accept_time.as_secs_f64()
    );
    println!(
        "committed {committed} txs ({failed} failed) in {:.2?}: {:.0} tx/s, {} blocks, at most {fullest} txs in one block",
        commit_time,
        committed as f64 / commit_time.as_secs_f64(),
        end_height - start_height
    );
    anyhow::ensure!(committed == sent, "{committed} of {sent} committed");
    Ok(Figures {
        accepted_per_s: accepted as f64 / accept_time.as_secs_f64(),
        committed_per_s: committed as f64 / commit_time.as_secs_f64(),
    })
}
