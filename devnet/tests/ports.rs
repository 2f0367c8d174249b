//! Drives a node through its real ports on 127.0.0.1 (ephemeral): Cosmos gRPC and CometBFT
//! JSON-RPC, with transactions signed by cosmrs.

use std::net::SocketAddr;
use std::time::Duration;

use cosmos_sdk_proto::cosmos::auth::v1beta1::{
    BaseAccount, QueryAccountRequest, query_client::QueryClient as AuthClient,
};
use cosmos_sdk_proto::cosmos::bank::v1beta1::{
    QueryAllBalancesRequest, QueryBalanceRequest, query_client::QueryClient as BankClient,
};
use cosmos_sdk_proto::cosmos::tx::v1beta1::{
    BroadcastMode, BroadcastTxRequest, GetTxRequest, SimulateRequest, service_client::ServiceClient,
};
use devnet::genesis::{GENESIS_AMOUNT, genesis_state, test_accounts};
use devnet::node::{Node, NodeConfig};
use devnet::sign::{SignOpts, sign_send};
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use prost::Message;
use serde_json::{Value, json};

const CHAIN: &str = "devnet-ports";

async fn start_node(home: &std::path::Path) -> devnet::server::Running {
    let config = NodeConfig {
        chain_id: CHAIN.into(),
        block_time: Duration::from_millis(200),
        min_gas_prices: devnet::ante::parse_gas_prices("0.025uakt").unwrap(),
        rules: Default::default(),
    };
    let (node, _) = Node::open(home, config, || genesis_state(CHAIN)).unwrap();
    let loopback: SocketAddr = "127.0.0.1:0".parse().unwrap();
    devnet::server::start(node, loopback, loopback)
        .await
        .unwrap()
}

async fn http(addr: SocketAddr, req: hyper::Request<Full<Bytes>>) -> Value {
    let stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let (mut sender, conn) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
            .await
            .unwrap();
    tokio::spawn(conn);
    let resp = sender.send_request(req).await.unwrap();
    assert_eq!(resp.status(), 200);
    let body = resp.into_body().collect().await.unwrap().to_bytes();
    serde_json::from_slice(&body).unwrap()
}

async fn rpc_get(addr: SocketAddr, path_and_query: &str) -> Value {
    let req = hyper::Request::get(path_and_query)
        .header("host", addr.to_string())
        .body(Full::new(Bytes::new()))
        .unwrap();
    http(addr, req).await
}

async fn rpc_post(addr: SocketAddr, method: &str, params: Value) -> Value {
    let body = json!({"jsonrpc": "2.0", "id": 7, "method": method, "params": params});
    let req = hyper::Request::post("/")
        .header("host", addr.to_string())
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(body.to_string())))
        .unwrap();
    let v = http(addr, req).await;
    assert_eq!(v["id"], 7);
    v
}

/// Clients such as CosmJS refuse a status without a block hash, and a real node answers RPC only
/// after its first block: a fresh devnet's first answer already names block 1 and its hash.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fresh_chain_answers_status_with_its_first_block() {
    let home = tempfile::tempdir().unwrap();
    let running = start_node(home.path()).await;
    let status = rpc_get(running.rpc_addr, "/status").await;
    let sync = &status["result"]["sync_info"];
    let height: u64 = sync["latest_block_height"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(height >= 1, "status before the first block: {sync}");
    let hash = sync["latest_block_hash"].as_str().unwrap();
    assert_eq!(hash.len(), 64, "latest_block_hash {hash:?}");
    assert_eq!(sync["earliest_block_height"], "1");
    running.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bank_send_over_grpc_and_rpc() {
    let home = tempfile::tempdir().unwrap();
    let config = NodeConfig {
        chain_id: CHAIN.into(),
        block_time: Duration::from_millis(200),
        min_gas_prices: devnet::ante::parse_gas_prices("0.025uakt").unwrap(),
        rules: Default::default(),
    };
    let (node, _) = Node::open(home.path(), config, || genesis_state(CHAIN)).unwrap();
    let loopback: SocketAddr = "127.0.0.1:0".parse().unwrap();
    let running = devnet::server::start(node, loopback, loopback)
        .await
        .unwrap();
    let (rpc, grpc) = (running.rpc_addr, running.grpc_addr);
    assert!(rpc.ip().is_loopback() && grpc.ip().is_loopback());

    let channel = tonic::transport::Channel::from_shared(format!("http://{grpc}"))
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut txs = ServiceClient::new(channel.clone());
    let mut auth = AuthClient::new(channel.clone());
    let mut bank = BankClient::new(channel);

    let accounts = test_accounts().unwrap();
    let (from, to) = (&accounts[0], accounts[3].address.clone());

    // The account as a wallet reads it before signing.
    let any = auth
        .account(QueryAccountRequest {
            address: from.address.clone(),
        })
        .await
        .unwrap()
        .into_inner()
        .account
        .unwrap();
    assert_eq!(any.type_url, "/cosmos.auth.v1beta1.BaseAccount");
    let account = BaseAccount::decode(any.value.as_slice()).unwrap();
    assert_eq!(
        (account.account_number, account.sequence, account.pub_key),
        (0, 0, None)
    );
    let missing = auth
        .account(QueryAccountRequest {
            address: cosmrs::AccountId::new("akash", &[0; 20])
                .unwrap()
                .to_string(),
        })
        .await
        .unwrap_err();
    assert_eq!(missing.code(), tonic::Code::NotFound);

    // Simulate, then broadcast over gRPC.
    let opts = SignOpts::new(CHAIN, account.account_number, account.sequence);
    let raw = sign_send(&from.key, &to, 1_234, "uakt", &opts).unwrap();
    let sim = txs
        .simulate(SimulateRequest {
            tx_bytes: raw.clone(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let gas_used = sim.gas_info.unwrap().gas_used;
    assert!(gas_used > 0 && gas_used < opts.gas_limit, "{gas_used}");
    let resp = txs
        .broadcast_tx(BroadcastTxRequest {
            tx_bytes: raw.clone(),
            mode: BroadcastMode::Sync as i32,
        })
        .await
        .unwrap()
        .into_inner()
        .tx_response
        .unwrap();
    assert_eq!((resp.code, resp.raw_log.as_str()), (0, ""));
    let hash = resp.txhash.clone();
    assert_eq!(hash, devnet::node::tx_hash(&raw));

    // Included in a block: the URI form of `tx` finds it.
    let mut found = Value::Null;
    for _ in 0..50 {
        let v = rpc_get(rpc, &format!("/tx?hash=0x{hash}")).await;
        if v.get("result").is_some() {
            found = v["result"].clone();
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(found["hash"], hash.as_str(), "tx not found over RPC");
    assert_eq!(found["tx_result"]["code"], 0);
    let height: u64 = found["height"].as_str().unwrap().parse().unwrap();
    assert!(height >= 1);

    // GetTx over gRPC.
    let got = txs
        .get_tx(GetTxRequest { hash: hash.clone() })
        .await
        .unwrap()
        .into_inner();
    let tx_response = got.tx_response.unwrap();
    assert_eq!((tx_response.code, tx_response.height), (0, height as i64));
    assert!(tx_response.events.iter().any(|e| e.r#type == "transfer"));
    assert_eq!(
        got.tx.unwrap().body.unwrap().messages[0].type_url,
        "/cosmos.bank.v1beta1.MsgSend"
    );

    // Balances changed.
    let balance = bank
        .balance(QueryBalanceRequest {
            address: to.clone(),
            denom: "uakt".into(),
        })
        .await
        .unwrap()
        .into_inner()
        .balance
        .unwrap();
    assert_eq!(balance.amount, (GENESIS_AMOUNT + 1_234).to_string());
    let all = bank
        .all_balances(QueryAllBalancesRequest {
            address: from.address.clone(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let amounts: Vec<(String, String)> = all
        .balances
        .into_iter()
        .map(|c| (c.denom, c.amount))
        .collect();
    assert_eq!(
        amounts,
        vec![
            ("uact".into(), GENESIS_AMOUNT.to_string()),
            ("uakt".into(), (GENESIS_AMOUNT - 1_234 - 5_000).to_string())
        ]
    );

    // block_results at that height carries the tx's events in CometBFT 0.38 shape.
    let results = rpc_post(rpc, "block_results", json!({"height": height.to_string()})).await;
    let r = &results["result"];
    assert_eq!(r["height"], height.to_string());
    assert!(r["finalize_block_events"].is_array());
    let events = r["txs_results"][0]["events"].as_array().unwrap();
    let transfer = events.iter().find(|e| e["type"] == "transfer").unwrap();
    let amount = transfer["attributes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["key"] == "amount")
        .unwrap();
    assert_eq!(amount["value"], "1234uakt");
    let block = rpc_post(rpc, "block", json!({"height": height.to_string()})).await;
    let txs_in_block = block["result"]["block"]["data"]["txs"].as_array().unwrap();
    assert!(txs_in_block.contains(&json!(data_encoding::BASE64.encode(&raw))));
    assert_eq!(block["result"]["block"]["header"]["chain_id"], CHAIN);

    // The same sequence again over RPC: code 32, and broadcast_tx_commit of the next one.
    let stale = sign_send(&from.key, &to, 1, "uakt", &SignOpts::new(CHAIN, 0, 0)).unwrap();
    let v = rpc_post(
        rpc,
        "broadcast_tx_sync",
        json!({"tx": data_encoding::BASE64.encode(&stale)}),
    )
    .await;
    assert_eq!(v["result"]["code"], 32);
    assert_eq!(v["result"]["codespace"], "sdk");
    assert_eq!(
        v["result"]["log"],
        "account sequence mismatch, expected 1, got 0: incorrect account sequence"
    );
    let next = sign_send(&from.key, &to, 1, "uakt", &SignOpts::new(CHAIN, 0, 1)).unwrap();
    let v = rpc_get(
        rpc,
        &format!(
            "/broadcast_tx_commit?tx=0x{}",
            data_encoding::HEXLOWER.encode(&next)
        ),
    )
    .await;
    let r = &v["result"];
    assert_eq!(r["check_tx"]["code"], 0);
    assert_eq!(r["tx_result"]["code"], 0, "{v}");
    assert!(r["height"].as_str().unwrap().parse::<u64>().unwrap() > height);

    let status = rpc_get(rpc, "/status").await;
    assert_eq!(status["result"]["node_info"]["network"], CHAIN);
    assert!(
        status["result"]["sync_info"]["latest_block_height"]
            .as_str()
            .unwrap()
            .parse::<u64>()
            .unwrap()
            > height
    );
    let unknown = rpc_post(rpc, "no_such_method", json!({})).await;
    assert_eq!(unknown["error"]["code"], -32601);

    running.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn create_deployment_opens_orders_seen_over_grpc_and_block_results() {
    use chain_client::akash::deployment::v1::DeploymentId;
    use chain_client::akash::deployment::v1beta4::{
        QueryDeploymentRequest, query_client::QueryClient as DeploymentClient,
    };
    use chain_client::akash::market::v1beta5::{
        OrderFilters, QueryOrdersRequest, query_client::QueryClient as MarketClient,
    };

    let home = tempfile::tempdir().unwrap();
    let running = start_node(home.path()).await;
    let (rpc, grpc) = (running.rpc_addr, running.grpc_addr);
    let tenant = &test_accounts().unwrap()[1];

    let msg =
        devnet::sign::create_deployment_msg(&tenant.address, 100, &["alpha", "beta"], [7; 32]);
    let raw = devnet::sign::sign_tx(
        &tenant.key,
        vec![devnet::sign::any_of(&msg)],
        &SignOpts::new(CHAIN, 1, 0),
    )
    .unwrap();
    let v = rpc_post(
        rpc,
        "broadcast_tx_commit",
        json!({"tx": data_encoding::BASE64.encode(&raw)}),
    )
    .await;
    let r = &v["result"];
    assert_eq!(r["tx_result"]["code"], 0, "{v}");
    let height = r["height"].as_str().unwrap().to_owned();

    // The typed events, as a provider's event follower reads them from block_results.
    let results = rpc_get(rpc, &format!("/block_results?height={height}")).await;
    let events = results["result"]["txs_results"][0]["events"]
        .as_array()
        .unwrap()
        .clone();
    let orders: Vec<Value> = events
        .iter()
        .filter(|e| e["type"] == "akash.market.v1.EventOrderCreated")
        .map(|e| {
            let id = e["attributes"]
                .as_array()
                .unwrap()
                .iter()
                .find(|a| a["key"] == "id")
                .unwrap();
            serde_json::from_str(id["value"].as_str().unwrap()).unwrap()
        })
        .collect();
    assert_eq!(
        orders,
        vec![
            json!({"owner": tenant.address, "dseq": "100", "gseq": 1, "oseq": 1}),
            json!({"owner": tenant.address, "dseq": "100", "gseq": 2, "oseq": 1}),
        ]
    );

    // The provider's own decoder (chain-client) reads the same block.
    let typed: chain_client::events::BlockResults =
        serde_json::from_value(results["result"].clone()).unwrap();
    let decoded = chain_client::events::decode_block_results(&typed).unwrap();
    let kinds: Vec<String> = decoded
        .events
        .iter()
        .map(|e| match e {
            chain_client::events::AkashEvent::DeploymentCreated(d) => {
                format!("deployment {}", d.id.as_ref().unwrap().dseq)
            }
            chain_client::events::AkashEvent::OrderCreated(o) => {
                format!("order {}", o.id.as_ref().unwrap().gseq)
            }
            other => format!("{other:?}"),
        })
        .collect();
    assert_eq!(kinds, ["deployment 100", "order 1", "order 2"]);

    let channel = tonic::transport::Channel::from_shared(format!("http://{grpc}"))
        .unwrap()
        .connect()
        .await
        .unwrap();
    let d = DeploymentClient::new(channel.clone())
        .deployment(QueryDeploymentRequest {
            id: Some(DeploymentId {
                owner: tenant.address.clone(),
                dseq: 100,
            }),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(d.deployment.unwrap().hash, vec![7; 32]);
    assert_eq!(
        d.groups
            .iter()
            .map(|g| g.group_spec.as_ref().unwrap().name.as_str())
            .collect::<Vec<_>>(),
        ["alpha", "beta"]
    );
    assert!(d.escrow_account.is_some());
    let open = MarketClient::new(channel)
        .orders(QueryOrdersRequest {
            filters: Some(OrderFilters {
                state: "open".into(),
                ..Default::default()
            }),
            pagination: None,
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(open.orders.len(), 2);
    assert_eq!(open.orders[1].spec.as_ref().unwrap().name, "beta");

    running.shutdown().await.unwrap();
}
