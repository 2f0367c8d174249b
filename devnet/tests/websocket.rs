//! CometBFT's websocket (`/websocket`) and `tx_search` on a devnet over its real port: JSON-RPC
//! calls over the socket, `subscribe` to `NewBlock` and `Tx` with events in CometBFT 0.38's shape,
//! `unsubscribe`, and searching transactions by height, hash and sender with pages.

use std::net::SocketAddr;
use std::time::Duration;

use devnet::genesis::{genesis_state, test_accounts};
use devnet::node::{Node, NodeConfig};
use devnet::sign::{SignOpts, sign_send};
use futures::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;

const CHAIN: &str = "devnet-ws";

async fn start(home: &std::path::Path) -> devnet::server::Running {
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

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn send(ws: &mut Socket, req: Value) {
    ws.send(Message::Text(req.to_string().into()))
        .await
        .unwrap();
}

/// The next JSON message, within 10 s.
async fn next(ws: &mut Socket) -> Value {
    loop {
        let msg = tokio::time::timeout(Duration::from_secs(10), ws.next())
            .await
            .expect("no message within 10 s")
            .unwrap()
            .unwrap();
        if let Message::Text(t) = msg {
            return serde_json::from_str(t.as_str()).unwrap();
        }
    }
}

/// Reads messages until one has `id`, within 10 s.
async fn reply_to(ws: &mut Socket, id: &Value) -> Value {
    tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            let v = next(ws).await;
            if &v["id"] == id {
                return v;
            }
        }
    })
    .await
    .unwrap_or_else(|_| panic!("no message with id {id} within 10 s"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn websocket_serves_calls_and_new_block_and_tx_events() {
    let home = tempfile::tempdir().unwrap();
    let running = start(home.path()).await;
    let (mut ws, _) =
        tokio_tungstenite::connect_async(format!("ws://{}/websocket", running.rpc_addr))
            .await
            .unwrap();

    // Ordinary methods over the socket.
    send(
        &mut ws,
        json!({"jsonrpc": "2.0", "id": 7, "method": "status", "params": {}}),
    )
    .await;
    let status = reply_to(&mut ws, &json!(7)).await;
    assert_eq!(status["result"]["node_info"]["network"], CHAIN);

    // Subscriptions: the acknowledgement is an empty result with the request's id.
    let block_query = "tm.event='NewBlock'";
    send(
        &mut ws,
        json!({"jsonrpc": "2.0", "id": 1, "method": "subscribe", "params": {"query": block_query}}),
    )
    .await;
    assert_eq!(reply_to(&mut ws, &json!(1)).await["result"], json!({}));
    let accounts = test_accounts().unwrap();
    let (from, to) = (&accounts[0], &accounts[1]);
    let tx_query = format!("tm.event='Tx' AND message.sender='{}'", from.address);
    send(&mut ws, json!({"jsonrpc": "2.0", "id": "tx-sub", "method": "subscribe", "params": {"query": tx_query}})).await;
    assert_eq!(
        reply_to(&mut ws, &json!("tx-sub")).await["result"],
        json!({})
    );
    // The same query twice is an error, as in CometBFT.
    send(
        &mut ws,
        json!({"jsonrpc": "2.0", "id": 2, "method": "subscribe", "params": {"query": block_query}}),
    )
    .await;
    let dup = reply_to(&mut ws, &json!(2)).await;
    assert_eq!(dup["error"]["code"], -32603, "{dup}");
    assert_eq!(dup["error"]["data"], "already subscribed");

    // A NewBlock event: a response with the subscribe id, the query, typed data and events.
    let event = reply_to(&mut ws, &json!(1)).await;
    assert_eq!(event["jsonrpc"], "2.0");
    let result = &event["result"];
    assert_eq!(result["query"], block_query);
    assert_eq!(result["data"]["type"], "tendermint/event/NewBlock");
    let value = &result["data"]["value"];
    assert_eq!(value["block"]["header"]["chain_id"], CHAIN);
    let height: u64 = value["block"]["header"]["height"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(height >= 1);
    assert!(value["block_id"]["hash"].as_str().unwrap().len() == 64);
    assert!(value["result_finalize_block"].is_object());
    assert_eq!(result["events"]["tm.event"], json!(["NewBlock"]));

    // A transaction broadcast over the socket: its Tx event arrives on the other subscription.
    let raw = sign_send(
        &from.key,
        &to.address,
        1234,
        "uact",
        &SignOpts::new(CHAIN, 0, 0),
    )
    .unwrap();
    let tx_b64 = data_encoding::BASE64.encode(&raw);
    send(
        &mut ws,
        json!({"jsonrpc": "2.0", "id": 9, "method": "broadcast_tx_sync", "params": {"tx": tx_b64}}),
    )
    .await;
    let check = reply_to(&mut ws, &json!(9)).await;
    assert_eq!(check["result"]["code"], 0, "{check}");
    let hash = check["result"]["hash"].as_str().unwrap().to_owned();

    // Until the Tx event: the NewBlock events seen meanwhile, by height (NewBlock comes first).
    let mut new_blocks = std::collections::BTreeMap::new();
    let event = loop {
        let v = next(&mut ws).await;
        if v["id"] == "tx-sub" {
            break v;
        }
        assert_eq!(v["id"], 1, "{v}");
        let value = v["result"]["data"]["value"].clone();
        new_blocks.insert(
            value["block"]["header"]["height"]
                .as_str()
                .unwrap()
                .to_owned(),
            value,
        );
    };
    let result = &event["result"];
    assert_eq!(result["query"], tx_query.as_str());
    assert_eq!(result["data"]["type"], "tendermint/event/Tx");
    let tx_result = &result["data"]["value"]["TxResult"];
    assert_eq!(tx_result["tx"], tx_b64.as_str());
    assert_eq!(tx_result["index"], 0);
    assert_eq!(tx_result["result"]["code"], 0);
    let tx_height = tx_result["height"].as_str().unwrap().to_owned();
    let events = &result["events"];
    assert_eq!(events["tm.event"], json!(["Tx"]));
    assert_eq!(events["tx.hash"], json!([hash]));
    assert_eq!(events["tx.height"], json!([tx_height]));
    assert_eq!(events["transfer.recipient"], json!([to.address]));

    // The block that carried it, on the NewBlock subscription, before the Tx event.
    let carried = &new_blocks[&tx_height];
    assert_eq!(carried["block"]["data"]["txs"], json!([tx_b64]));
    assert_eq!(carried["result_finalize_block"]["tx_results"][0]["code"], 0);

    // Unsubscribing stops the events; unknown subscriptions are an error.
    send(&mut ws, json!({"jsonrpc": "2.0", "id": 3, "method": "unsubscribe", "params": {"query": block_query}})).await;
    assert_eq!(reply_to(&mut ws, &json!(3)).await["result"], json!({}));
    send(&mut ws, json!({"jsonrpc": "2.0", "id": 4, "method": "unsubscribe", "params": {"query": block_query}})).await;
    assert_eq!(
        reply_to(&mut ws, &json!(4)).await["error"]["data"],
        "subscription not found"
    );
    send(
        &mut ws,
        json!({"jsonrpc": "2.0", "id": 5, "method": "unsubscribe_all"}),
    )
    .await;
    assert_eq!(reply_to(&mut ws, &json!(5)).await["result"], json!({}));
    tokio::time::sleep(Duration::from_millis(500)).await;
    send(
        &mut ws,
        json!({"jsonrpc": "2.0", "id": 6, "method": "health"}),
    )
    .await;
    // Nothing but the reply: no event arrived after unsubscribing.
    assert_eq!(next(&mut ws).await["id"], 6);

    ws.close(None).await.unwrap();
    running.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tx_search_by_height_hash_and_sender_with_pages() {
    let home = tempfile::tempdir().unwrap();
    let running = start(home.path()).await;
    let node = running.node.clone();
    let accounts = test_accounts().unwrap();
    let (from, to) = (&accounts[2], &accounts[3]);
    // Three sends in one block (consecutive sequences in the mempool).
    let mut hashes = Vec::new();
    for seq in 0..3 {
        let raw = sign_send(
            &from.key,
            &to.address,
            10 + u128::from(seq),
            "uact",
            &SignOpts::new(CHAIN, 2, seq),
        )
        .unwrap();
        let (hash, check) = node.check_tx(raw).unwrap();
        assert_eq!(check.code, 0, "{}", check.log);
        hashes.push(hash);
    }
    let mut found = None;
    for h in &hashes {
        found = node.wait_for_tx(h, Duration::from_secs(10)).await.unwrap();
    }
    let height = found.unwrap().location.height;
    assert!(
        hashes
            .iter()
            .all(|h| node.tx(h).unwrap().unwrap().location.height == height)
    );

    let rpc = chain_client::rpc::CometRpc::new(
        &format!("http://{}", running.rpc_addr),
        Duration::from_secs(10),
    )
    .unwrap();
    let search = |query: String, extra: Value| {
        let mut params = json!({"query": query});
        params
            .as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        let rpc = &rpc;
        async move { rpc.call::<Value>("tx_search", params).await }
    };

    let all = search(format!("tx.height={height}"), json!({}))
        .await
        .unwrap();
    assert_eq!(all["total_count"], "3");
    let got: Vec<&str> = all["txs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["hash"].as_str().unwrap())
        .collect();
    assert_eq!(got, hashes.iter().map(String::as_str).collect::<Vec<_>>());
    assert_eq!(all["txs"][1]["index"], 1);
    assert_eq!(all["txs"][1]["height"], height.to_string());

    // Pages of 2, newest first.
    let page2 = search(
        format!("tx.height = {height}"),
        json!({"page": "2", "per_page": "2", "order_by": "desc"}),
    )
    .await
    .unwrap();
    assert_eq!(page2["total_count"], "3");
    assert_eq!(page2["txs"].as_array().unwrap().len(), 1);
    assert_eq!(page2["txs"][0]["hash"], hashes[0].as_str());
    let beyond = search(
        format!("tx.height={height}"),
        json!({"page": 3, "per_page": 2}),
    )
    .await;
    assert!(format!("{:?}", beyond.unwrap_err()).contains("page should be within [1, 2] range"),);

    // By hash, and by an event attribute over a height range.
    let one = search(format!("tx.hash='{}'", hashes[1]), json!({}))
        .await
        .unwrap();
    assert_eq!(one["total_count"], "1");
    assert_eq!(one["txs"][0]["index"], 1);
    let by_sender = search(
        format!("message.sender='{}' AND tx.height<={height}", from.address),
        json!({"per_page": 100}),
    )
    .await
    .unwrap();
    assert_eq!(by_sender["total_count"], "3");
    let nobody = search(format!("message.sender='{}'", to.address), json!({}))
        .await
        .unwrap();
    assert_eq!(nobody["total_count"], "0");
    assert_eq!(nobody["txs"], json!([]));

    running.shutdown().await.unwrap();
}

/// CosmJS' `Comet38Client` (from `sdk-ref/node_modules`, a dependency of the official SDK) over
/// `ws://`: needs `node` (Node 20+) on PATH, as `tests/sdk_client.rs` does.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cosmjs_comet38_client_subscribes_over_the_websocket() {
    let home = tempfile::tempdir().unwrap();
    let running = start(home.path()).await;
    let accounts = test_accounts().unwrap();
    let (from, to) = (&accounts[0], &accounts[1]);
    let raw = sign_send(
        &from.key,
        &to.address,
        99,
        "uact",
        &SignOpts::new(CHAIN, 0, 0),
    )
    .unwrap();
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/sdk/websocket.mjs");
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap();
    let out = tokio::time::timeout(
        Duration::from_secs(60),
        tokio::process::Command::new("node")
            .arg(script)
            .arg(root)
            .arg(format!("ws://{}", running.rpc_addr))
            .arg(data_encoding::BASE64.encode(&raw))
            .kill_on_drop(true)
            .output(),
    )
    .await
    .expect("the node script did not finish within 60 s")
    .expect("run node (Node 20+ must be on PATH, with sdk-ref/node_modules installed)");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let read: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(read["network"], CHAIN);
    assert_eq!(read["blockChainId"], CHAIN);
    assert!(read["blockHeight"].as_u64().unwrap() >= 1);
    assert!(read["headerHeight"].as_u64().unwrap() >= 1);
    assert_eq!(read["broadcastCode"], 0);
    let hash = devnet::node::tx_hash(&raw);
    assert_eq!(read["broadcastHash"], hash.as_str());
    assert_eq!(read["txHash"], hash.as_str());
    assert_eq!(read["txCode"], 0);
    let found = running.node.tx(&hash).unwrap().unwrap();
    assert_eq!(read["txHeight"], found.location.height);
    assert!(
        read["txEvents"]
            .as_array()
            .unwrap()
            .contains(&json!("transfer"))
    );
    running.shutdown().await.unwrap();
}
