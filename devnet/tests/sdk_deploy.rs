//! The official Akash TypeScript SDK (`@akashnetwork/chain-sdk`, under `sdk-ref/`, unmodified) as a
//! tenant: it reads a real SDL (from `testdata/sdl/`), builds the groups and manifest
//! version with its SDL class, sends `MsgCreateDeployment` with a deposit through its CosmJS signer,
//! and reads the order back over gRPC.
//!
//! Needs `node` (Node 20+) on PATH and `sdk-ref/node_modules` installed, as `sdk_client.rs` does.

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use devnet::genesis::{GENESIS_AMOUNT, genesis_state, test_accounts};
use devnet::node::{Node, NodeConfig};
use serde_json::{Value, json};

const CHAIN: &str = "devnet-sdk-deploy";
/// A web SDL priced in `uact`: one placement `westcoast` (attribute host=akash), 0.1 CPU, 512 Mi
/// memory and storage, a global HTTP endpoint.
const SDL: &str = "testdata/sdl/awesome-akash/nextjs.yaml";

fn workspace_root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_typescript_sdk_deploys_an_sdl_and_the_order_is_open() {
    let sdl = workspace_root().join(SDL);
    assert!(sdl.exists(), "{} is missing", sdl.display());
    let home = tempfile::tempdir().unwrap();
    let config = NodeConfig {
        chain_id: CHAIN.into(),
        block_time: Duration::from_millis(200),
        min_gas_prices: devnet::ante::parse_gas_prices("0.025uakt").unwrap(),
        rules: Default::default(),
    };
    let (node, _) = Node::open(home.path(), config, || genesis_state(CHAIN)).unwrap();
    let loopback: SocketAddr = "127.0.0.1:0".parse().unwrap();
    let running = devnet::server::start(node.clone(), loopback, loopback)
        .await
        .unwrap();

    let tenant = &test_accounts().unwrap()[2];
    let out = tokio::time::timeout(
        Duration::from_secs(90),
        tokio::process::Command::new("node")
            .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/sdk/deploy.mjs"))
            .arg(workspace_root())
            .arg(format!("http://{}", running.rpc_addr))
            .arg(format!("http://{}", running.grpc_addr))
            .arg(tenant.mnemonic)
            .arg(&sdl)
            .arg("4242")
            .kill_on_drop(true)
            .output(),
    )
    .await
    .expect("the SDK script did not finish within 90 s")
    .expect("run node (Node 20+ must be on PATH, with sdk-ref/node_modules installed)");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let read: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(read["owner"], tenant.address.as_str());

    // One open order (state 1) for the SDL's one placement, with its resources and price.
    assert_eq!(
        read["orders"],
        json!([{
            "id": {"dseq": "4242", "gseq": 1, "oseq": 1},
            "state": 1,
            "name": "westcoast",
            "attributes": [{"key": "host", "value": "akash"}],
            "resources": [{
                "count": 1,
                "price": {"denom": "uact", "amount": "10000"},
                "cpu": "100",
                "memory": (512u64 << 20).to_string(),
                "storage": [{"name": "default", "size": (512u64 << 20).to_string()}],
                "endpoints": 1,
            }],
        }]),
        "{read}"
    );
    // The deployment (active, state 1) carries the SDK's manifest version as its hash.
    assert_eq!(read["deployment"]["state"], 1);
    assert_eq!(read["deployment"]["hash"], read["version"]);

    // The same order in the devnet's own state, and the deposit taken from the tenant.
    let orders = node.with_state(|s| {
        serde_json::to_value(
            s.orders
                .values()
                .filter(|o| o.0.id.as_ref().is_some_and(|id| id.dseq == 4242))
                .map(|o| o.0.spec.as_ref().map(|g| g.name.clone()))
                .collect::<Vec<_>>(),
        )
        .unwrap()
    });
    assert_eq!(orders, json!(["westcoast"]));
    let balance = node.with_state(|s| s.balance(&tenant.address, "uact"));
    assert_eq!(balance, GENESIS_AMOUNT - 5_000_000);

    running.shutdown().await.unwrap();
}
