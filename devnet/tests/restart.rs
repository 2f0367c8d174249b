//! A crash in the middle of a market flow: the `akash-devnet` binary runs deployment → bid →
//! lease through chain-client's `NodeChain`, is killed with SIGKILL, starts again on the same
//! `--home`, still has everything committed before the kill (height, balances, deployment, order,
//! bid, lease, account sequences), and the flow finishes: withdraw, close.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use chain_client::Chain;
use chain_client::chain::{BidFilters, DeploymentFilters, LeaseFilters, OrderFilters, PageRequest};
use chain_client::keys::{Key, Mnemonic};
use chain_client::node::{NodeChain, NodeConfig as ClientConfig};
use chain_client::signer::SignerConfig;
use chain_client::tx::{FeePolicy, GasPrice};
use devnet::genesis::TEST_MNEMONICS;

const CHAIN: &str = "devnet-restart";

/// The running binary and its addresses from the banner.
struct Devnet {
    child: Child,
    rpc: String,
    grpc: String,
}

fn start(home: &std::path::Path) -> Devnet {
    let mut child = Command::new(env!("CARGO_BIN_EXE_akash-devnet"))
        .args(["start", "--chain-id", CHAIN, "--block-time", "200ms"])
        .args(["--rpc-laddr", "127.0.0.1:0", "--grpc-laddr", "127.0.0.1:0"])
        .arg("--home")
        .arg(home)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let (mut rpc, mut grpc) = (String::new(), String::new());
    while grpc.is_empty() {
        let mut line = String::new();
        assert!(out.read_line(&mut line).unwrap() > 0, "exited early");
        if let Some(a) = line.strip_prefix("CometBFT RPC") {
            rpc = a.trim().to_owned();
        } else if let Some(a) = line.strip_prefix("gRPC") {
            grpc = format!("http://{}", a.trim());
        }
    }
    Devnet { child, rpc, grpc }
}

/// SIGKILL to the child we started, by its id: no shutdown path runs.
fn kill(mut d: Devnet) {
    let status = Command::new("kill")
        .arg("-KILL")
        .arg(d.child.id().to_string())
        .status()
        .unwrap();
    assert!(status.success());
    let status = d.child.wait().unwrap();
    assert!(!status.success(), "killed, not exited: {status}");
}

fn client(d: &Devnet, mnemonic: &str) -> NodeChain {
    let key = Key::from_mnemonic(&Mnemonic::from_phrase(mnemonic).unwrap()).unwrap();
    let mut signer =
        SignerConfig::new(CHAIN, FeePolicy::new(GasPrice::parse("0.025uakt").unwrap()));
    signer.poll_interval = Duration::from_millis(100);
    signer.inclusion_timeout = Duration::from_secs(20);
    NodeChain::new(
        key,
        ClientConfig {
            grpc_url: d.grpc.clone(),
            rpc_url: d.rpc.clone(),
            request_timeout: Duration::from_secs(10),
            signer,
            follow: Default::default(),
        },
    )
    .unwrap()
}

/// Everything the flow has committed, as the chain answers queries about it.
async fn snapshot(chain: &NodeChain, tenant: &str, provider: &str) -> String {
    let mut out = Vec::new();
    for who in [tenant, provider] {
        let account = chain.account(who).await.unwrap();
        out.push(format!(
            "account {who}: number {} sequence {}",
            account.account_number, account.sequence
        ));
        for denom in ["uakt", "uact"] {
            out.push(format!(
                "balance {who} {}{denom}",
                chain.balance(who, denom).await.unwrap()
            ));
        }
    }
    let page = || PageRequest::first(100);
    let owner = tenant.to_owned();
    let d = chain
        .deployments(
            DeploymentFilters {
                owner: owner.clone(),
                ..Default::default()
            },
            page(),
        )
        .await
        .unwrap();
    out.push(format!("deployments {:?}", d.items));
    let o = chain
        .orders(
            OrderFilters {
                owner: owner.clone(),
                ..Default::default()
            },
            page(),
        )
        .await
        .unwrap();
    out.push(format!("orders {:?}", o.items));
    let b = chain
        .bids(
            BidFilters {
                owner: owner.clone(),
                ..Default::default()
            },
            page(),
        )
        .await
        .unwrap();
    out.push(format!("bids {:?}", b.items));
    let l = chain
        .leases(
            LeaseFilters {
                owner,
                ..Default::default()
            },
            page(),
        )
        .await
        .unwrap();
    out.push(format!("leases {:?}", l.items));
    out.join("\n")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_devnet_restarts_with_everything_committed_and_the_flow_finishes() {
    let home = tempfile::tempdir().unwrap();
    let devnet = start(home.path());
    let tenant_chain = client(&devnet, TEST_MNEMONICS[2]);
    let provider_chain = client(&devnet, TEST_MNEMONICS[3]);
    let tenant = tenant_chain.address().to_owned();
    let provider = provider_chain.address().to_owned();

    // Deployment, provider, bid, lease.
    let msg = devnet::sign::create_deployment_msg(&tenant, 9, &["web"], [5; 32]);
    let r = tenant_chain
        .broadcast(vec![chain_client::to_any(&msg)])
        .await
        .unwrap();
    assert_eq!(r.code, 0, "{}", r.log);
    let register = chain_client::akash::provider::v1beta4::MsgCreateProvider {
        owner: provider.clone(),
        host_uri: "https://127.0.0.1:8443".into(),
        attributes: vec![],
        info: None,
    };
    let r = provider_chain
        .broadcast(vec![chain_client::to_any(&register)])
        .await
        .unwrap();
    assert_eq!(r.code, 0, "{}", r.log);
    let bid_id = chain_client::akash::market::v1::BidId {
        owner: tenant.clone(),
        dseq: 9,
        gseq: 1,
        oseq: 1,
        provider: provider.clone(),
        bseq: 0,
    };
    let bid = chain_client::akash::market::v1beta5::MsgCreateBid {
        id: Some(bid_id.clone()),
        price: Some(chain_client::dec::dec_coin("uact", "600").unwrap()),
        deposit: Some(chain_client::akash::base::deposit::v1::Deposit {
            amount: Some(
                chain_client::cosmos_sdk_proto::cosmos::base::v1beta1::Coin {
                    denom: "uact".into(),
                    amount: "500000".into(),
                },
            ),
            sources: vec![chain_client::akash::base::deposit::v1::Source::Balance as i32],
        }),
        resources_offer: vec![],
        reclamation_window: None,
    };
    let r = provider_chain
        .broadcast(vec![chain_client::to_any(&bid)])
        .await
        .unwrap();
    assert_eq!(r.code, 0, "{}", r.log);
    let lease = chain_client::akash::market::v1beta5::MsgCreateLease {
        bid_id: Some(bid_id.clone()),
    };
    let r = tenant_chain
        .broadcast(vec![chain_client::to_any(&lease)])
        .await
        .unwrap();
    assert_eq!(r.code, 0, "{}", r.log);
    let leased_at = r.height;

    let before = snapshot(&tenant_chain, &tenant, &provider).await;
    let height_before = tenant_chain.latest_height().await.unwrap();
    assert!(height_before >= leased_at);
    assert!(
        before.contains(&format!("account {tenant}: number 2 sequence 2")),
        "{before}"
    );
    assert!(
        before.contains(&format!("account {provider}: number 3 sequence 2")),
        "{before}"
    );
    kill(devnet);

    // Restarted on the same home (new ports): the same chain, nothing lost.
    let devnet = start(home.path());
    let tenant_chain = client(&devnet, TEST_MNEMONICS[2]);
    let provider_chain = client(&devnet, TEST_MNEMONICS[3]);
    let height_after = tenant_chain.latest_height().await.unwrap();
    assert!(
        height_after >= height_before,
        "{height_after} < {height_before}"
    );
    let after = snapshot(&tenant_chain, &tenant, &provider).await;
    assert_eq!(after, before);
    let active = provider_chain
        .leases(
            LeaseFilters {
                provider: provider.clone(),
                state: "active".into(),
                ..Default::default()
            },
            PageRequest::first(10),
        )
        .await
        .unwrap();
    assert_eq!(active.items.len(), 1);

    // The flow finishes: the provider withdraws (blocks since the lease, at 600 uact each, the
    // blocks before the kill included), the tenant closes the deployment.
    let paid_before = tenant_chain.balance(&provider, "uact").await.unwrap();
    let withdraw = chain_client::akash::market::v1beta5::MsgWithdrawLease {
        id: active.items[0].lease.as_ref().unwrap().id.clone(),
    };
    let r = provider_chain
        .broadcast(vec![chain_client::to_any(&withdraw)])
        .await
        .unwrap();
    assert_eq!(r.code, 0, "{}", r.log);
    let paid = tenant_chain.balance(&provider, "uact").await.unwrap() - paid_before;
    assert!(
        paid % 600 == 0 && paid / 600 >= u128::from(height_before - leased_at),
        "paid {paid}"
    );
    let close = chain_client::akash::deployment::v1beta4::MsgCloseDeployment {
        id: Some(chain_client::akash::deployment::v1::DeploymentId {
            owner: tenant.clone(),
            dseq: 9,
        }),
    };
    let r = tenant_chain
        .broadcast(vec![chain_client::to_any(&close)])
        .await
        .unwrap();
    assert_eq!(r.code, 0, "{}", r.log);
    let open = tenant_chain
        .leases(
            LeaseFilters {
                owner: tenant.clone(),
                state: "active".into(),
                ..Default::default()
            },
            PageRequest::first(10),
        )
        .await
        .unwrap();
    assert!(open.items.is_empty());
    let account = tenant_chain.account(&tenant).await.unwrap();
    assert_eq!(account.sequence, 3);
    kill(devnet);
}
