//! The official Akash TypeScript SDK (`@akashnetwork/chain-sdk`, under `sdk-ref/`) against a
//! devnet: it reads balances, open orders and deployments over gRPC, and its own signer (CosmJS over
//! CometBFT RPC: `status`, `abci_query`, `broadcast_tx_sync`, `tx_search`) signs a bank send that
//! the devnet verifies and includes.
//!
//! Needs `node` (Node 20+) on PATH and `sdk-ref/node_modules` installed, as the chain-client's SDK
//! tests do.

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use devnet::genesis::{GENESIS_AMOUNT, genesis_state, test_accounts};
use devnet::node::{Node, NodeConfig};
use devnet::sign::{SignOpts, any_of, create_deployment_msg, sign_tx};
use serde_json::{Value, json};

const CHAIN: &str = "devnet-sdk";

async fn start(home: &Path) -> (std::sync::Arc<Node>, devnet::server::Running) {
    let config = NodeConfig {
        chain_id: CHAIN.into(),
        block_time: Duration::from_millis(200),
        min_gas_prices: devnet::ante::parse_gas_prices("0.025uakt").unwrap(),
        rules: Default::default(),
    };
    let (node, _) = Node::open(home, config, || genesis_state(CHAIN)).unwrap();
    let loopback: SocketAddr = "127.0.0.1:0".parse().unwrap();
    let running = devnet::server::start(node.clone(), loopback, loopback)
        .await
        .unwrap();
    (node, running)
}

fn script(name: &str) -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/sdk")
        .join(name)
}

fn workspace_root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_typescript_sdk_reads_deployments_and_orders() {
    let home = tempfile::tempdir().unwrap();
    let (node, running) = start(home.path()).await;

    let tenant = &test_accounts().unwrap()[0];
    let msg = create_deployment_msg(&tenant.address, 77, &["alpha", "beta"], [0xab; 32]);
    let raw = sign_tx(&tenant.key, vec![any_of(&msg)], &SignOpts::new(CHAIN, 0, 0)).unwrap();
    let (hash, check) = node.check_tx(raw).unwrap();
    assert_eq!(check.code, 0, "{}", check.log);
    let found = node
        .wait_for_tx(&hash, Duration::from_secs(10))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(found.result.code, 0, "{}", found.result.log);

    let out = tokio::process::Command::new("node")
        .arg(script("query.mjs"))
        .arg(workspace_root())
        .arg(format!("http://{}", running.grpc_addr))
        .arg(&tenant.address)
        .output()
        .await
        .expect("run node (Node 20+ must be on PATH, with sdk-ref/node_modules installed)");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let read: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(read["balance"], (GENESIS_AMOUNT - 500_000).to_string());
    assert_eq!(
        read["orders"],
        json!([
            {"dseq": "77", "gseq": 1, "name": "alpha"},
            {"dseq": "77", "gseq": 2, "name": "beta"},
        ])
    );
    assert_eq!(
        read["deployments"],
        json!([{"dseq": "77", "hash": "ab".repeat(32), "groups": 2}])
    );

    running.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_typescript_sdk_signs_a_send_the_devnet_accepts() {
    let home = tempfile::tempdir().unwrap();
    let (node, running) = start(home.path()).await;
    let accounts = test_accounts().unwrap();
    let (from, to) = (&accounts[1], &accounts[3]);
    let out = tokio::process::Command::new("node")
        .arg(script("send.mjs"))
        .arg(workspace_root())
        .arg(format!("http://{}", running.rpc_addr))
        .arg(format!("http://{}", running.grpc_addr))
        .arg(from.mnemonic)
        .arg(&to.address)
        .arg("1234")
        .output()
        .await
        .expect("run node (Node 20+ must be on PATH, with sdk-ref/node_modules installed)");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let read: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(read["from"], from.address.as_str());
    assert_eq!(read["balance"], (GENESIS_AMOUNT + 1234).to_string());
    // Signed by the SDK, checked by the devnet: the sender's sequence moved and its key is known.
    let account = node.with_state(|s| s.accounts[&from.address].clone());
    assert_eq!(account.sequence, 1);
    assert_eq!(
        account.pub_key.as_deref(),
        Some(from.key.public_key().to_bytes().as_slice())
    );

    running.shutdown().await.unwrap();
}
