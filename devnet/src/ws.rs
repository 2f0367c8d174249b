//! CometBFT's websocket, `GET /websocket`: JSON-RPC requests over the socket (every method of
//! [`crate::rpc`]) plus `subscribe`, `unsubscribe` and `unsubscribe_all`, as CometBFT 0.38 serves
//! them to cosmjs' `Comet38Client` and tendermint-rpc's `WebSocketClient`.
//!
//! Each event goes out as a JSON-RPC response carrying the subscribe request's `id`, with
//! `result: {query, data: {type: "tendermint/event/…", value}, events}`; `events` maps composite
//! keys (`tm.event`, `tx.hash`, `tx.height`, `{event type}.{attribute}`) to their values, and a
//! subscription's query ([`crate::query`]) is matched against it. Per committed block, in
//! CometBFT's order: `NewBlock`, `NewBlockHeader`, `NewBlockEvents`, then one `Tx` per transaction.

use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::response::Response;
use axum::routing::get;
use serde_json::{Map, Value, json};
use tokio::sync::{broadcast, watch};

use crate::node::Node;
use crate::query::{EventMap, Query, add_events, tx_event_map};
use crate::rpc::{RpcError, b64, block_id, block_json, response, tx_result_json};
use crate::store::BlockRecord;

/// CometBFT's default `max_subscriptions_per_client`.
pub const MAX_SUBSCRIPTIONS_PER_CLIENT: usize = 5;
/// CometBFT's limit on a query's length.
pub const MAX_QUERY_LENGTH: usize = 512;

#[derive(Clone)]
struct WsState {
    node: Arc<Node>,
    stop: watch::Receiver<bool>,
}

/// The `/websocket` route; open connections close when `stop` turns true.
pub fn router(node: Arc<Node>, stop: watch::Receiver<bool>) -> Router {
    Router::new()
        .route("/websocket", get(upgrade))
        .with_state(WsState { node, stop })
}

async fn upgrade(State(state): State<WsState>, ws: WebSocketUpgrade) -> Response {
    ws.on_upgrade(move |socket| serve(socket, state))
}

struct Subscription {
    /// The subscribe request's id: every event for this subscription carries it.
    id: Value,
    text: String,
    query: Query,
}

enum Step {
    Stop,
    Message(Option<Result<Message, axum::Error>>),
    Block(Result<Arc<BlockRecord>, broadcast::error::RecvError>),
}

/// One connection's subscriptions and how it answers a request frame: the socket loop without
/// the socket, so the same code can be driven in-process (the fuzz harness does).
#[derive(Default)]
pub struct Session {
    subs: Vec<Subscription>,
}

impl Session {
    /// Answers one text frame (`None` for a notification, a request without `id`).
    pub async fn handle(&mut self, node: &Arc<Node>, text: &str) -> Option<Value> {
        handle(node, &mut self.subs, text).await
    }

    /// The event frames a committed block makes for this session's subscriptions.
    pub fn events_for(&self, node: &Node, block: &BlockRecord) -> Vec<Value> {
        events_for(node, block, &self.subs)
    }

    /// Whether the session has no subscription.
    pub fn is_empty(&self) -> bool {
        self.subs.is_empty()
    }
}

/// One event as CometBFT publishes it: its JSON data and the map queries match.
struct Published {
    data: Value,
    events: EventMap,
}

async fn serve(mut socket: WebSocket, state: WsState) {
    let WsState { node, mut stop } = state;
    let mut session = Session::default();
    // Subscribed only while there are subscriptions, so no block from before one is delivered.
    let mut blocks: Option<broadcast::Receiver<Arc<BlockRecord>>> = None;
    loop {
        let next_block = async {
            match blocks.as_mut() {
                Some(rx) => rx.recv().await,
                None => std::future::pending().await,
            }
        };
        let step = tokio::select! {
            _ = stop.wait_for(|s| *s) => Step::Stop,
            msg = socket.recv() => Step::Message(msg),
            block = next_block => Step::Block(block),
        };
        let out: Vec<Value> = match step {
            Step::Stop => {
                let _ = socket.send(Message::Close(None)).await;
                return;
            }
            Step::Message(msg) => {
                let text = match msg {
                    None | Some(Err(_)) | Some(Ok(Message::Close(_))) => return,
                    Some(Ok(Message::Text(t))) => t.as_str().to_owned(),
                    Some(Ok(Message::Binary(b))) => String::from_utf8_lossy(&b).into_owned(),
                    // Ping and pong: answered by the socket itself.
                    Some(Ok(_)) => continue,
                };
                let reply = session.handle(&node, &text).await;
                match (session.is_empty(), blocks.is_some()) {
                    (false, false) => blocks = Some(node.subscribe_blocks()),
                    (true, true) => blocks = None,
                    _ => {}
                }
                reply.into_iter().collect()
            }
            Step::Block(Ok(block)) => session.events_for(&node, &block),
            Step::Block(Err(broadcast::error::RecvError::Lagged(n))) => {
                // As CometBFT cancels the subscriptions of a slow client.
                tracing::warn!(
                    missed = n,
                    "websocket client too slow; subscriptions canceled"
                );
                blocks = None;
                let reason = "subscription was canceled (reason: slow client)";
                session
                    .subs
                    .drain(..)
                    .map(|s| response(s.id, Err(RpcError::server(reason))))
                    .collect()
            }
            Step::Block(Err(broadcast::error::RecvError::Closed)) => return,
        };
        for v in out {
            if socket
                .send(Message::Text(v.to_string().into()))
                .await
                .is_err()
            {
                return;
            }
        }
    }
}

/// One request: the response to send, if any (a request without `id` is a notification).
async fn handle(node: &Arc<Node>, subs: &mut Vec<Subscription>, text: &str) -> Option<Value> {
    let req: Value = match serde_json::from_str(text) {
        Ok(v) => v,
        Err(e) => {
            return Some(response(
                Value::Null,
                Err(RpcError::parse_error(format!(
                    "error unmarshaling request: {e}"
                ))),
            ));
        }
    };
    let id = req.get("id").cloned()?;
    let Some(method) = req.get("method").and_then(Value::as_str) else {
        return Some(response(id, Err(RpcError::invalid_params("no method"))));
    };
    let params = match req.get("params") {
        None | Some(Value::Null) => Map::new(),
        Some(Value::Object(m)) => m.clone(),
        // Positional: subscribe and unsubscribe take the query first.
        Some(Value::Array(a)) => a
            .first()
            .map(|q| Map::from_iter([("query".to_owned(), q.clone())]))
            .unwrap_or_default(),
        Some(_) => {
            return Some(response(
                id,
                Err(RpcError::invalid_params("params must be an object")),
            ));
        }
    };
    let outcome = match method {
        "subscribe" => subscribe(subs, id.clone(), &params),
        "unsubscribe" => {
            let text = params.get("query").and_then(Value::as_str).unwrap_or("");
            let before = subs.len();
            subs.retain(|s| s.text != text);
            if subs.len() == before {
                Err(RpcError::internal("subscription not found"))
            } else {
                Ok(json!({}))
            }
        }
        "unsubscribe_all" => {
            if subs.is_empty() {
                Err(RpcError::internal("subscription not found"))
            } else {
                subs.clear();
                Ok(json!({}))
            }
        }
        _ => crate::rpc::call(node, method, &params).await,
    };
    Some(response(id, outcome))
}

fn subscribe(
    subs: &mut Vec<Subscription>,
    id: Value,
    params: &Map<String, Value>,
) -> Result<Value, RpcError> {
    let text = params
        .get("query")
        .and_then(Value::as_str)
        .ok_or_else(|| RpcError::invalid_params("missing parameter query"))?;
    if subs.len() >= MAX_SUBSCRIPTIONS_PER_CLIENT {
        return Err(RpcError::internal(format!(
            "max_subscriptions_per_client {MAX_SUBSCRIPTIONS_PER_CLIENT} reached"
        )));
    }
    if text.len() > MAX_QUERY_LENGTH {
        return Err(RpcError::internal("maximum query length exceeded"));
    }
    let query = Query::parse(text)
        .map_err(|e| RpcError::internal(format!("failed to parse query: {e}")))?;
    if subs.iter().any(|s| s.text == text) {
        return Err(RpcError::internal("already subscribed"));
    }
    subs.push(Subscription {
        id,
        text: text.to_owned(),
        query,
    });
    Ok(json!({}))
}

/// The events of a committed block, in CometBFT's order.
fn published(node: &Node, b: &BlockRecord) -> Vec<Published> {
    let block = block_json(b, node.chain_id());
    let header = block["block"]["header"].clone();
    let tx_results: Vec<Value> = b.tx_results.iter().map(tx_result_json).collect();
    let app_hash = data_encoding::HEXUPPER
        .decode(b.result_app_hash.as_bytes())
        .unwrap_or_default();
    let mut finalize = Map::new();
    if !b.finalize_block_events.is_empty() {
        finalize.insert("events".into(), json!(b.finalize_block_events));
    }
    if !tx_results.is_empty() {
        finalize.insert("tx_results".into(), Value::Array(tx_results));
    }
    if !app_hash.is_empty() {
        finalize.insert("app_hash".into(), json!(b64(&app_hash)));
    }
    let mut block_events = EventMap::new();
    add_events(&mut block_events, &b.finalize_block_events);
    let tagged = |kind: &str, mut events: EventMap| {
        events
            .entry("tm.event".into())
            .or_default()
            .push(kind.into());
        events
    };
    let mut out = vec![
        Published {
            data: json!({"type": "tendermint/event/NewBlock", "value": {
                "block": block["block"],
                "block_id": block_id(&b.hash),
                "result_finalize_block": finalize,
            }}),
            events: tagged("NewBlock", block_events.clone()),
        },
        Published {
            data: json!({"type": "tendermint/event/NewBlockHeader", "value": {"header": header}}),
            events: tagged("NewBlockHeader", EventMap::new()),
        },
        Published {
            data: json!({"type": "tendermint/event/NewBlockEvents", "value": {
                "height": b.height.to_string(),
                "events": b.finalize_block_events,
                "num_txs": b.txs.len().to_string(),
            }}),
            events: tagged("NewBlockEvents", block_events),
        },
    ];
    for (i, (raw, result)) in b.txs.iter().zip(&b.tx_results).enumerate() {
        let hash = crate::node::tx_hash(raw);
        out.push(Published {
            data: json!({"type": "tendermint/event/Tx", "value": {"TxResult": {
                "height": b.height.to_string(),
                "index": i,
                "tx": b64(raw),
                "result": tx_result_json(result),
            }}}),
            events: tx_event_map(&result.events, &hash, b.height),
        });
    }
    out
}

/// The responses a block's events make for `subs`, event by event.
fn events_for(node: &Node, block: &BlockRecord, subs: &[Subscription]) -> Vec<Value> {
    if subs.is_empty() {
        return Vec::new();
    }
    let mut out = Vec::new();
    for p in published(node, block) {
        for s in subs.iter().filter(|s| s.query.matches(&p.events)) {
            out.push(response(
                s.id.clone(),
                Ok(json!({"query": s.text, "data": p.data, "events": p.events})),
            ));
        }
    }
    out
}
