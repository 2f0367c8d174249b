//! The devnet's CometBFT JSON-RPC, in-process: `POST /` bodies and `GET /<method>?…` URIs through
//! its axum router, and websocket text frames through a websocket session (several frames per
//! input, so subscribe/unsubscribe sequences happen), after which the session's subscriptions are
//! matched against the world's last block as if it had just been committed.
//!
//! Input: `P` + body, `G` + URI, or `W` + frames separated by 0x1e.

use std::sync::Arc;

use axum::body::Body;
use devnet::ws::Session;
use http_body_util::BodyExt;
use serde_json::{Value, json};
use tower::ServiceExt;

use crate::engine::{Target, label};
use crate::mutate::{self, Rng};
use crate::world::World;

const FRAME_SEPARATOR: u8 = 0x1e;

pub struct DevnetRpc {
    world: Arc<World>,
    rt: tokio::runtime::Runtime,
    router: axum::Router,
    last_block: devnet::store::BlockRecord,
}

impl DevnetRpc {
    pub fn new(world: Arc<World>) -> Self {
        let router = devnet::rpc::router(world.node.clone());
        let last_block = world
            .node
            .block(world.node.height())
            .ok()
            .flatten()
            .expect("the world's last block");
        Self {
            world,
            rt: crate::runtime(),
            router,
            last_block,
        }
    }
}

fn requests(w: &World) -> Vec<Value> {
    let tx = data_encoding::BASE64.encode(&w.txs[w.txs.len() - 1]);
    let hash = devnet::node::tx_hash(&w.txs[0]);
    let (path, data) = crate::targets::devnet_query::requests(w).swap_remove(10);
    vec![
        json!({"method": "status"}),
        json!({"method": "health", "params": null}),
        json!({"method": "abci_info", "params": {}}),
        json!({"method": "block", "params": {"height": "2"}}),
        json!({"method": "block_results", "params": {"height": 3}}),
        json!({"method": "tx", "params": {"hash": format!("0x{hash}"), "prove": false}}),
        json!({"method": "tx_search", "params": {"query": format!("tx.height>=1 AND message.sender='{}'", w.tenant()), "page": "1", "per_page": "2", "order_by": "desc"}}),
        json!({"method": "tx_search", "params": {"query": format!("tx.hash='{hash}'")}}),
        json!({"method": "abci_query", "params": {"path": crate::targets::devnet_query::PATHS[path], "data": data_encoding::HEXLOWER.encode(&data), "height": "0", "prove": false}}),
        json!({"method": "broadcast_tx_sync", "params": {"tx": tx}}),
        json!({"method": "broadcast_tx_async", "params": {"tx": tx}}),
        json!({"method": "broadcast_tx_commit", "params": {"tx": tx}}),
    ]
}

impl Target for DevnetRpc {
    fn name(&self) -> &'static str {
        "devnet_rpc"
    }

    fn seeds(&self) -> Vec<Vec<u8>> {
        let w = &self.world;
        let mut seeds = Vec::new();
        for (i, mut r) in requests(w).into_iter().enumerate() {
            r["jsonrpc"] = json!("2.0");
            r["id"] = json!(i);
            let mut post = b"P".to_vec();
            post.extend(serde_json::to_vec(&r).unwrap_or_default());
            seeds.push(post);
            let mut ws = b"W".to_vec();
            ws.extend(serde_json::to_vec(&r).unwrap_or_default());
            seeds.push(ws);
        }
        for uri in [
            "/status".to_owned(),
            "/block?height=2".to_owned(),
            "/block_results?height=\"3\"".to_owned(),
            format!("/tx?hash=0x{}", devnet::node::tx_hash(&w.txs[1])),
            format!(
                "/tx_search?query=\"message.sender='{}'\"&per_page=1",
                w.tenant()
            ),
            "/abci_query?path=\"/akash.market.v1beta5.Query/Params\"&data=0x".to_owned(),
        ] {
            let mut get = b"G".to_vec();
            get.extend(uri.into_bytes());
            seeds.push(get);
        }
        let frames = [
            json!({"jsonrpc": "2.0", "id": 1, "method": "subscribe", "params": {"query": "tm.event='NewBlock'"}}),
            json!({"jsonrpc": "2.0", "id": 2, "method": "subscribe", "params": ["tm.event='Tx' AND tx.height>1"]}),
            json!({"jsonrpc": "2.0", "id": "3", "method": "subscribe", "params": {"query": format!("tm.event='Tx' AND message.sender CONTAINS '{}'", &w.tenant()[..12])}}),
            json!({"jsonrpc": "2.0", "id": 4, "method": "subscribe", "params": {"query": "akash.v1.module EXISTS AND tx.height<=100"}}),
            json!({"jsonrpc": "2.0", "id": 5, "method": "unsubscribe", "params": {"query": "tm.event='NewBlock'"}}),
            json!({"jsonrpc": "2.0", "id": 6, "method": "unsubscribe_all"}),
            json!({"jsonrpc": "2.0", "method": "subscribe", "params": {"query": "tm.event='NewBlockHeader'"}}),
        ];
        for window in [&frames[..4], &frames[1..6], &frames[2..]] {
            let mut ws = b"W".to_vec();
            for (i, f) in window.iter().enumerate() {
                if i > 0 {
                    ws.push(FRAME_SEPARATOR);
                }
                ws.extend(serde_json::to_vec(f).unwrap_or_default());
            }
            seeds.push(ws);
        }
        seeds
    }

    fn mutate(&self, rng: &mut Rng, base: &[u8], donor: &[u8]) -> Vec<u8> {
        let (kind, body) = base.split_first().unwrap_or((&b'P', &[]));
        let kind = if rng.one_in(50) {
            *rng.pick(b"PGW")
        } else {
            *kind
        };
        let donor = donor.get(1..).unwrap_or_default();
        let mut out = vec![kind];
        if kind != b'G' && rng.one_in(2) {
            // One frame (or the body) changed as JSON.
            let mut frames: Vec<Vec<u8>> = body
                .split(|b| *b == FRAME_SEPARATOR)
                .map(<[u8]>::to_vec)
                .collect();
            let i = rng.below(frames.len());
            let donor_tree: Value = serde_json::from_slice(
                donor
                    .split(|b| *b == FRAME_SEPARATOR)
                    .next()
                    .unwrap_or_default(),
            )
            .unwrap_or(Value::Null);
            if let Ok(mut tree) = serde_json::from_slice::<Value>(&frames[i]) {
                mutate::json(rng, &mut tree, &donor_tree);
                frames[i] = serde_json::to_vec(&tree).unwrap_or_default();
            } else {
                mutate::bytes(rng, &mut frames[i], donor);
            }
            if rng.one_in(8) {
                let j = rng.below(frames.len());
                let copy = frames[j].clone();
                frames.push(copy);
            }
            out.extend(frames.join(&FRAME_SEPARATOR));
        } else {
            let mut body = body.to_vec();
            mutate::bytes(rng, &mut body, donor);
            out.extend(body);
        }
        out
    }

    fn run(&mut self, input: &[u8]) -> String {
        let Some((kind, body)) = input.split_first() else {
            return "empty".into();
        };
        match kind {
            b'P' | b'G' => {
                let request = if *kind == b'P' {
                    axum::http::Request::post("/").body(Body::from(body.to_vec()))
                } else {
                    let uri = String::from_utf8_lossy(body);
                    axum::http::Request::get(uri.as_ref()).body(Body::empty())
                };
                let Ok(request) = request else {
                    return "not a request".into();
                };
                let router = self.router.clone();
                self.rt.block_on(async move {
                    let response = match router.oneshot(request).await {
                        Ok(r) => r,
                        Err(e) => return label("router", &e.to_string()),
                    };
                    let status = response.status().as_u16();
                    let bytes = response
                        .into_body()
                        .collect()
                        .await
                        .map(|b| b.to_bytes())
                        .unwrap_or_default();
                    let v: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
                    let code = v["error"]["code"].as_i64().unwrap_or(0);
                    format!(
                        "http:{status}:{code}:{}",
                        v["error"]["data"]
                            .as_str()
                            .map(|d| label("", d))
                            .unwrap_or_default()
                    )
                })
            }
            b'W' => {
                let node = self.world.node.clone();
                let block = &self.last_block;
                self.rt.block_on(async move {
                    let mut session = Session::default();
                    let mut out = String::from("ws");
                    for frame in body.split(|b| *b == FRAME_SEPARATOR) {
                        let text = String::from_utf8_lossy(frame);
                        match session.handle(&node, &text).await {
                            None => out.push_str(":none"),
                            Some(v) => {
                                let code = v["error"]["code"].as_i64().unwrap_or(0);
                                out.push_str(&format!(":{code}"));
                            }
                        }
                    }
                    let events = session.events_for(&node, block);
                    out.push_str(&format!(":events {}", events.len().min(9)));
                    out
                })
            }
            _ => "unknown kind".into(),
        }
    }
}
