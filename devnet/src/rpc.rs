//! CometBFT 0.38 JSON-RPC over HTTP (axum): both of CometBFT's forms, a JSON-RPC 2.0 `POST /`
//! and the URI form `GET /<method>?<param>=<value>` (hex bytes as `0x…`, strings quoted or bare).
//!
//! Methods: `health`, `status`, `abci_info`, `broadcast_tx_sync`, `broadcast_tx_async`,
//! `broadcast_tx_commit`, `tx`, `tx_search` (by `tx.hash`, `tx.height` or event attributes),
//! `block`, `block_results`, and
//! `abci_query` for gRPC query paths. Integers of 64 bits print as strings
//! and bytes as base64, as CometBFT's JSON does.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Path, Query, State};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{Map, Value, json};

use crate::ante::TxResult;
use crate::node::Node;
use crate::store::BlockRecord;

/// How long `broadcast_tx_commit` waits for the block (CometBFT's `timeout_broadcast_tx_commit`).
pub const BROADCAST_TX_COMMIT_TIMEOUT: Duration = Duration::from_secs(10);

/// A JSON-RPC error.
#[derive(Debug)]
pub struct RpcError {
    code: i64,
    message: &'static str,
    data: String,
}

impl RpcError {
    pub(crate) fn invalid_params(data: impl Into<String>) -> Self {
        Self {
            code: -32602,
            message: "Invalid params",
            data: data.into(),
        }
    }
    pub(crate) fn internal(data: impl Into<String>) -> Self {
        Self {
            code: -32603,
            message: "Internal error",
            data: data.into(),
        }
    }
    pub(crate) fn parse_error(data: impl Into<String>) -> Self {
        Self {
            code: -32700,
            message: "Parse error",
            data: data.into(),
        }
    }
    /// CometBFT's `RPCServerError` (a subscription canceled, for one).
    pub(crate) fn server(data: impl Into<String>) -> Self {
        Self {
            code: -32000,
            message: "Server error",
            data: data.into(),
        }
    }
    fn not_found(method: &str) -> Self {
        Self {
            code: -32601,
            message: "Method not found",
            data: format!("method {method:?} is not served"),
        }
    }
}

/// The RPC routes over a node.
pub fn router(node: Arc<Node>) -> Router {
    Router::new()
        .route("/", post(post_call))
        .route("/{method}", get(get_call))
        .with_state(node)
}

/// A JSON-RPC 2.0 response carrying `id`: `result`, or `error` with CometBFT's string `data`.
pub(crate) fn response(id: Value, outcome: Result<Value, RpcError>) -> Value {
    match outcome {
        Ok(result) => json!({"jsonrpc": "2.0", "id": id, "result": result}),
        Err(e) => {
            json!({"jsonrpc": "2.0", "id": id, "error": {"code": e.code, "message": e.message, "data": e.data}})
        }
    }
}

fn envelope(id: Value, outcome: Result<Value, RpcError>) -> Json<Value> {
    Json(response(id, outcome))
}

async fn post_call(State(node): State<Arc<Node>>, body: axum::body::Bytes) -> Json<Value> {
    // CometBFT reads the body whatever its content type.
    let req: Value = match serde_json::from_slice(&body) {
        Ok(v) => v,
        Err(e) => {
            return envelope(
                Value::Null,
                Err(RpcError {
                    code: -32700,
                    message: "Parse error",
                    data: e.to_string(),
                }),
            );
        }
    };
    let id = req.get("id").cloned().unwrap_or(Value::Null);
    let Some(method) = req.get("method").and_then(Value::as_str) else {
        return envelope(
            id,
            Err(RpcError {
                code: -32600,
                message: "Invalid Request",
                data: "no method".into(),
            }),
        );
    };
    let params = match req.get("params") {
        None | Some(Value::Null) => Map::new(),
        Some(Value::Object(m)) => m.clone(),
        Some(_) => {
            return envelope(
                id,
                Err(RpcError::invalid_params("params must be an object")),
            );
        }
    };
    envelope(id, call(&node, method, &params).await)
}

async fn get_call(
    State(node): State<Arc<Node>>,
    Path(method): Path<String>,
    Query(query): Query<std::collections::BTreeMap<String, String>>,
) -> Json<Value> {
    // URI values: `"text"` is a string, `0x…` hex bytes, anything else as written.
    let params: Map<String, Value> = query
        .into_iter()
        .map(|(k, v)| {
            let v = v
                .strip_prefix('"')
                .and_then(|s| s.strip_suffix('"'))
                .map(str::to_owned)
                .unwrap_or(v);
            (k, Value::String(v))
        })
        .collect();
    envelope(json!(-1), call(&node, &method, &params).await)
}

/// Bytes from a parameter: `0x`-prefixed hex, else base64 (CometBFT's JSON form of bytes).
/// Base64 text may itself start with `0x` (about one hash in 2,000 does), so a prefixed value that
/// is not hex is read as base64.
fn bytes_param(params: &Map<String, Value>, name: &str) -> Result<Vec<u8>, RpcError> {
    let s = params
        .get(name)
        .and_then(Value::as_str)
        .ok_or_else(|| RpcError::invalid_params(format!("missing parameter {name}")))?;
    if let Some(hex) = s.strip_prefix("0x").or_else(|| s.strip_prefix("0X"))
        && let Ok(bytes) = data_encoding::HEXLOWER_PERMISSIVE.decode(hex.as_bytes())
    {
        return Ok(bytes);
    }
    data_encoding::BASE64
        .decode(s.as_bytes())
        .map_err(|e| RpcError::invalid_params(format!("{name}: {e}")))
}

fn height_param(params: &Map<String, Value>, node: &Node) -> Result<u64, RpcError> {
    let latest = node.height();
    let h = match params.get("height") {
        None | Some(Value::Null) => return Ok(latest),
        Some(Value::Number(n)) => n.as_u64(),
        Some(Value::String(s)) if s.is_empty() => return Ok(latest),
        Some(Value::String(s)) => s.parse().ok(),
        Some(_) => None,
    }
    .ok_or_else(|| RpcError::invalid_params("height must be a non-negative integer"))?;
    if h == 0 {
        return Ok(latest);
    }
    if h > latest {
        return Err(RpcError::internal(format!(
            "height {h} must be less than or equal to the current blockchain height {latest}"
        )));
    }
    Ok(h)
}

/// The node's identity as `status` shows it, derived from the chain id: node id (hex), the
/// validator's ed25519 public key (base64; the devnet has no consensus, so it signs nothing) and
/// address (hex, the first 20 bytes of the key's SHA-256, as CometBFT derives it).
fn identity(chain_id: &str) -> (String, String, String) {
    use sha2::{Digest, Sha256};
    let node_id = Sha256::digest(format!("akash-devnet node {chain_id}").as_bytes());
    let pub_key = Sha256::digest(format!("akash-devnet validator {chain_id}").as_bytes());
    let address = Sha256::digest(pub_key);
    (
        data_encoding::HEXLOWER.encode(&node_id[..20]),
        data_encoding::BASE64.encode(&pub_key),
        data_encoding::HEXUPPER.encode(&address[..20]),
    )
}

pub(crate) fn b64(bytes: &[u8]) -> String {
    data_encoding::BASE64.encode(bytes)
}

/// An `ExecTxResult` (or `ResponseCheckTx`) as CometBFT prints it.
pub fn tx_result_json(r: &TxResult) -> Value {
    json!({
        "code": r.code,
        "data": if r.data.is_empty() { Value::Null } else { Value::String(b64(&r.data)) },
        "log": r.log,
        "info": "",
        "gas_wanted": r.gas_wanted.to_string(),
        "gas_used": r.gas_used.to_string(),
        "events": r.events,
        "codespace": r.codespace,
    })
}

pub(crate) fn block_id(hash: &str) -> Value {
    json!({"hash": hash, "parts": {"total": 1, "hash": hash}})
}

pub(crate) fn block_json(b: &BlockRecord, chain_id: &str) -> Value {
    let last = if b.last_block_hash.is_empty() {
        json!({"hash": "", "parts": {"total": 0, "hash": ""}})
    } else {
        block_id(&b.last_block_hash)
    };
    json!({
        "block_id": block_id(&b.hash),
        "block": {
            "header": {
                "version": {"block": "11", "app": "0"},
                "chain_id": chain_id,
                "height": b.height.to_string(),
                "time": b.time,
                "last_block_id": last,
                "last_commit_hash": "",
                "data_hash": "",
                "validators_hash": "",
                "next_validators_hash": "",
                "consensus_hash": "",
                "app_hash": b.app_hash,
                "last_results_hash": "",
                "evidence_hash": "",
                // The devnet's one validator proposes every block (CosmJS requires the field).
                "proposer_address": identity(chain_id).2,
            },
            "data": {"txs": b.txs.iter().map(|t| b64(t)).collect::<Vec<_>>()},
            "evidence": {"evidence": []},
            "last_commit": {"height": b.height.saturating_sub(1).to_string(), "round": 0, "block_id": last, "signatures": []},
        }
    })
}

fn block_results_json(b: &BlockRecord) -> Value {
    let txs: Vec<Value> = b.tx_results.iter().map(tx_result_json).collect();
    json!({
        "height": b.height.to_string(),
        "txs_results": if txs.is_empty() { Value::Null } else { Value::Array(txs) },
        "finalize_block_events": b.finalize_block_events,
        "validator_updates": [],
        "consensus_param_updates": null,
        "app_hash": b.result_app_hash,
    })
}

fn load_block(node: &Node, height: u64) -> Result<BlockRecord, RpcError> {
    node.block(height)
        .map_err(|e| RpcError::internal(e.to_string()))?
        .ok_or_else(|| RpcError::internal(format!("could not find results for height #{height}")))
}

/// Dispatches one call.
pub async fn call(
    node: &Arc<Node>,
    method: &str,
    params: &Map<String, Value>,
) -> Result<Value, RpcError> {
    match method {
        "health" => Ok(json!({})),
        "status" => {
            let height = node.height();
            let (hash, app_hash, time) = match node
                .block(height)
                .map_err(|e| RpcError::internal(e.to_string()))?
            {
                Some(b) => (b.hash, b.result_app_hash, b.time),
                // Before the first block: genesis values, so clients can decode the status.
                None => {
                    let app = node.with_state(|s| data_encoding::HEXUPPER.encode(&s.app_hash()));
                    (
                        String::new(),
                        app,
                        crate::time::rfc3339(std::time::SystemTime::now()),
                    )
                }
            };
            let (node_id, validator_pub_key, validator_address) = identity(node.chain_id());
            Ok(json!({
                "node_info": {
                    "protocol_version": {"p2p": "8", "block": "11", "app": "0"},
                    "id": node_id,
                    "listen_addr": "tcp://127.0.0.1:26656",
                    "network": node.chain_id(),
                    "version": "0.38.21",
                    "channels": "40202122233038606100",
                    "moniker": "akash-devnet",
                    "other": {"tx_index": "on", "rpc_address": ""},
                },
                "sync_info": {
                    "latest_block_hash": hash,
                    "latest_app_hash": app_hash,
                    "latest_block_height": height.to_string(),
                    "latest_block_time": time,
                    "earliest_block_height": if height == 0 { "0" } else { "1" },
                    "catching_up": false,
                },
                "validator_info": {
                    "address": validator_address,
                    "pub_key": {"type": "tendermint/PubKeyEd25519", "value": validator_pub_key},
                    "voting_power": "10",
                },
            }))
        }
        "abci_info" => {
            let (height, app_hash) = node.with_state(|s| (s.height, s.app_hash()));
            Ok(json!({"response": {
                "data": "akash-devnet",
                "version": env!("CARGO_PKG_VERSION"),
                "last_block_height": height.to_string(),
                "last_block_app_hash": b64(&app_hash),
            }}))
        }
        "broadcast_tx_sync" | "broadcast_tx_async" => {
            let tx = bytes_param(params, "tx")?;
            let (hash, r) = node.check_tx(tx).map_err(RpcError::internal)?;
            Ok(
                json!({"code": r.code, "data": "", "log": r.log, "codespace": r.codespace, "hash": hash}),
            )
        }
        "broadcast_tx_commit" => {
            let tx = bytes_param(params, "tx")?;
            let (hash, check) = node.check_tx(tx).map_err(RpcError::internal)?;
            if !check.is_ok() {
                return Ok(json!({
                    "check_tx": tx_result_json(&check),
                    "tx_result": tx_result_json(&TxResult { code: 0, codespace: String::new(), log: String::new(), data: Vec::new(), gas_wanted: 0, gas_used: 0, events: Vec::new() }),
                    "hash": hash,
                    "height": "0",
                }));
            }
            let found = node
                .wait_for_tx(&hash, BROADCAST_TX_COMMIT_TIMEOUT)
                .await
                .map_err(|e| RpcError::internal(e.to_string()))?
                .ok_or_else(|| {
                    RpcError::internal("timed out waiting for tx to be included in a block")
                })?;
            Ok(json!({
                "check_tx": tx_result_json(&check),
                "tx_result": tx_result_json(&found.result),
                "hash": hash,
                "height": found.location.height.to_string(),
            }))
        }
        "tx" => {
            let hash_bytes = bytes_param(params, "hash")?;
            let hash = data_encoding::HEXUPPER.encode(&hash_bytes);
            let found = node
                .tx(&hash)
                .map_err(|e| RpcError::internal(e.to_string()))?
                .ok_or_else(|| RpcError::internal(format!("tx ({hash}) not found")))?;
            Ok(json!({
                "hash": found.hash,
                "height": found.location.height.to_string(),
                "index": found.location.index,
                "tx_result": tx_result_json(&found.result),
                "tx": b64(&found.raw),
            }))
        }
        "block" => {
            let h = height_param(params, node)?;
            Ok(block_json(&load_block(node, h)?, node.chain_id()))
        }
        "block_results" => {
            let h = height_param(params, node)?;
            Ok(block_results_json(&load_block(node, h)?))
        }
        "abci_query" => {
            let path = params
                .get("path")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned();
            // CometBFT's JSON carries `data` as hex (with or without 0x).
            let data = match params.get("data").and_then(Value::as_str) {
                None | Some("") => Vec::new(),
                Some(d) => data_encoding::HEXLOWER_PERMISSIVE
                    .decode(d.trim_start_matches("0x").as_bytes())
                    .map_err(|e| RpcError::invalid_params(format!("data: {e}")))?,
            };
            let height = node.height().to_string();
            Ok(match crate::abci_query::query(node, &path, &data).await {
                Ok(value) => json!({"response": {
                    "code": 0, "log": "", "info": "", "index": "0", "key": null,
                    "value": b64(&value), "proofOps": null, "height": height, "codespace": "",
                }}),
                Err(status) => {
                    // The SDK's codes: 38 not found, 6 unknown request, 1 otherwise.
                    let code = match status.code() {
                        tonic::Code::NotFound => 38,
                        tonic::Code::Unimplemented => 6,
                        _ => 1,
                    };
                    json!({"response": {
                        "code": code,
                        "log": format!("rpc error: code = {:?} desc = {}", status.code(), status.message()),
                        "info": "", "index": "0", "key": null, "value": null, "proofOps": null,
                        "height": height, "codespace": "sdk",
                    }})
                }
            })
        }
        "tx_search" => tx_search(node, params),
        other => Err(RpcError::not_found(other)),
    }
}

/// A non-negative integer parameter, as a JSON number or a decimal string; `None` when absent.
fn int_param(params: &Map<String, Value>, name: &str) -> Result<Option<u64>, RpcError> {
    match params.get(name) {
        None | Some(Value::Null) => Some(None),
        Some(Value::String(s)) if s.is_empty() => Some(None),
        Some(Value::Number(n)) => n.as_u64().map(Some),
        Some(Value::String(s)) => s.parse().ok().map(Some),
        Some(_) => None,
    }
    .ok_or_else(|| RpcError::invalid_params(format!("{name} must be a non-negative integer")))
}

/// CometBFT's `per_page`: 30 when absent or 0, at most 100.
pub const DEFAULT_PER_PAGE: u64 = 30;
pub const MAX_PER_PAGE: u64 = 100;

/// Query keys the store does not index by value: `tx.hash` has its own index, `tx.height` is the
/// block order, and every transaction has `tm.event = 'Tx'`.
pub(crate) const UNINDEXED: [&str; 3] = ["tx.hash", "tx.height", "tm.event"];

/// `tx_search`: the committed transactions whose events match `query` (`tx.hash`, `tx.height`,
/// any indexed attribute such as `message.sender`), ordered by height and index (`order_by`
/// `asc`, the default, or `desc`), a page of `per_page` at a time.
fn tx_search(node: &Node, params: &Map<String, Value>) -> Result<Value, RpcError> {
    use crate::query::{Op, Operand, Query, tx_event_map};
    let text = params
        .get("query")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let query = Query::parse(text)
        .map_err(|e| RpcError::internal(format!("failed to parse query: {e}")))?;
    let descending = match params.get("order_by").and_then(Value::as_str) {
        None | Some("" | "asc") => false,
        Some("desc") => true,
        Some(_) => {
            return Err(RpcError::internal(
                "expected order_by to be either `asc` or `desc` or empty",
            ));
        }
    };
    let internal = |e: anyhow::Error| RpcError::internal(e.to_string());
    let mut found = Vec::new();
    if let Some(hash) = query.equal_to("tx.hash") {
        // One candidate: the index by hash.
        let hash = hash.text();
        if let Some(f) = node.tx(&hash).map_err(internal)? {
            // The hash in either case, as the query wrote it.
            let events = tx_event_map(&f.result.events, &hash, f.location.height);
            if query.matches(&events) {
                found.push(f);
            }
        }
    } else {
        // The heights the query allows, then each block's transactions.
        let (mut low, mut high) = (1u64, node.height());
        for c in query.conditions.iter().filter(|c| c.key == "tx.height") {
            let bound = |n: f64| n.max(0.0) as u64;
            match &c.op {
                Op::Eq(Operand::Number(n)) => {
                    (low, high) = (low.max(bound(*n)), high.min(bound(*n)))
                }
                Op::Eq(Operand::Text(t)) => {
                    let n = t.parse::<u64>().unwrap_or(0);
                    (low, high) = (low.max(n), high.min(n));
                }
                Op::Ge(n) => low = low.max(bound(n.ceil())),
                Op::Gt(n) => low = low.max(bound(n.floor()) + 1),
                Op::Le(n) => high = high.min(bound(n.floor())),
                Op::Lt(n) => high = high.min(bound(n.ceil()).saturating_sub(1)),
                _ => {}
            }
        }
        // An attribute the query must equal: the index names the candidates; otherwise every
        // block in the height range is read.
        let indexed = query.conditions.iter().find_map(|c| match &c.op {
            Op::Eq(Operand::Text(value)) if !UNINDEXED.contains(&c.key.as_str()) => {
                Some((c.key.as_str(), value.as_str()))
            }
            _ => None,
        });
        let candidates: Vec<(u64, Option<u32>)> = match indexed {
            Some((attribute, value)) => {
                // The index may lag the last block or two: those are read whole.
                let indexed = node.events_indexed_height().map_err(internal)?;
                let mut c: Vec<(u64, Option<u32>)> = node
                    .tx_locations_with(attribute, value, low, high.min(indexed))
                    .map_err(internal)?
                    .into_iter()
                    .map(|l| (l.height, Some(l.index)))
                    .collect();
                c.extend((low.max(indexed + 1)..=high).map(|h| (h, None)));
                c
            }
            None => (low..=high).map(|h| (h, None)).collect(),
        };
        let mut block: Option<crate::store::BlockRecord> = None;
        for (height, only) in candidates {
            if block.as_ref().is_none_or(|b| b.height != height) {
                block = node.block(height).map_err(internal)?;
            }
            let Some(block) = &block else {
                continue;
            };
            let indexes = match only {
                Some(i) => i as usize..i as usize + 1,
                None => 0..block.txs.len(),
            };
            for i in indexes {
                let (Some(raw), Some(result)) = (block.txs.get(i), block.tx_results.get(i)) else {
                    continue;
                };
                let index = u32::try_from(i).unwrap_or(u32::MAX);
                let hash = crate::node::tx_hash(raw);
                if query.matches(&tx_event_map(&result.events, &hash, height)) {
                    found.push(crate::node::FoundTx {
                        hash,
                        location: crate::store::TxLocation { height, index },
                        raw: raw.clone(),
                        result: result.clone(),
                        block_time: block.time.clone(),
                    });
                }
            }
        }
    }
    if descending {
        found.reverse();
    }
    let total = found.len() as u64;
    let per_page = match int_param(params, "per_page")? {
        None | Some(0) => DEFAULT_PER_PAGE,
        Some(n) => n.min(MAX_PER_PAGE),
    };
    let pages = if total == 0 {
        1
    } else {
        total.div_ceil(per_page)
    };
    let page = int_param(params, "page")?.unwrap_or(1);
    if page == 0 || page > pages {
        return Err(RpcError::invalid_params(format!(
            "page should be within [1, {pages}] range, given {page}"
        )));
    }
    let skip = usize::try_from((page - 1) * per_page).unwrap_or(usize::MAX);
    let txs: Vec<Value> = found
        .iter()
        .skip(skip)
        .take(usize::try_from(per_page).unwrap_or(usize::MAX))
        .map(|f| {
            json!({
                "hash": f.hash,
                "height": f.location.height.to_string(),
                "index": f.location.index,
                "tx_result": tx_result_json(&f.result),
                "tx": b64(&f.raw),
            })
        })
        .collect();
    Ok(json!({"txs": txs, "total_count": total.to_string()}))
}

#[cfg(test)]
mod bytes_param_tests {
    use super::*;

    #[test]
    fn base64_that_starts_with_0x_is_read_as_base64_and_hex_as_hex() {
        let hash = [0xd3u8; 32];
        let mut b64 = data_encoding::BASE64.encode(&hash);
        // A base64 value starting with "0x": decode it as base64, not as broken hex.
        b64.replace_range(0..2, "0x");
        let expected = data_encoding::BASE64.decode(b64.as_bytes()).unwrap();
        let params: Map<String, Value> = [("hash".to_owned(), Value::String(b64))]
            .into_iter()
            .collect();
        assert_eq!(bytes_param(&params, "hash").unwrap(), expected);
        let hex = format!("0x{}", data_encoding::HEXUPPER.encode(&hash));
        let params: Map<String, Value> = [("hash".to_owned(), Value::String(hex))]
            .into_iter()
            .collect();
        assert_eq!(bytes_param(&params, "hash").unwrap(), hash.to_vec());
    }
}
