//! A CometBFT 0.38 JSON-RPC client (HTTP POST, JSON-RPC 2.0): `status`, `block_results`,
//! `broadcast_tx_sync` and `tx`. It is the [`BlockSource`] the event stream follows, and the
//! broadcast half of the transaction path.
//!
//! The request and response mapping are plain functions ([`request_body`], [`parse_response`] and
//! the `*_from_json` readers), tested on their own; the HTTP part is reqwest with rustls on ring.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use crate::error::{ChainError, Result};
use crate::events::BlockResults;
use crate::follow::BlockSource;
use crate::transport::{CheckTxResult, TxResult};

/// The codespace given to errors the JSON-RPC layer itself reports.
pub const RPC_CODESPACE: &str = "rpc";

/// A JSON-RPC 2.0 request as CometBFT takes it over POST (byte parameters in base64, integers as
/// strings).
pub fn request_body(id: u64, method: &str, params: Value) -> Value {
    json!({ "jsonrpc": "2.0", "id": id, "method": method, "params": params })
}

/// The `result` of a JSON-RPC response, or its `error` as a [`ChainError`].
pub fn parse_response<T: DeserializeOwned>(body: &[u8]) -> Result<T> {
    let v: Value = serde_json::from_slice(body)
        .map_err(|e| ChainError::Decode(format!("JSON-RPC response is not JSON: {e}")))?;
    if let Some(err) = v.get("error").filter(|e| !e.is_null()) {
        let code = err.get("code").and_then(Value::as_i64).unwrap_or(0);
        let message = err.get("message").and_then(Value::as_str).unwrap_or("");
        let data = err.get("data").and_then(Value::as_str).unwrap_or("");
        return Err(ChainError::Other {
            codespace: RPC_CODESPACE.into(),
            code: u32::try_from(code.unsigned_abs()).unwrap_or(u32::MAX),
            log: if data.is_empty() {
                message.to_owned()
            } else {
                format!("{message}: {data}")
            },
        });
    }
    let result = v
        .get("result")
        .ok_or_else(|| ChainError::Decode("JSON-RPC response without result or error".into()))?;
    T::deserialize(result).map_err(|e| ChainError::Decode(format!("JSON-RPC result: {e}")))
}

fn u64_of(v: &Value, what: &str) -> Result<u64> {
    match v {
        Value::String(s) => s.parse().ok(),
        Value::Number(n) => n.as_u64(),
        _ => None,
    }
    .ok_or_else(|| ChainError::Decode(format!("{what}: not an unsigned integer: {v}")))
}

fn str_of(v: &Value) -> String {
    v.as_str().unwrap_or_default().to_owned()
}

/// `status` → the latest block height.
pub fn latest_height_from_json(status: &Value) -> Result<u64> {
    u64_of(
        &status["sync_info"]["latest_block_height"],
        "sync_info.latest_block_height",
    )
}

/// `broadcast_tx_sync` → the CheckTx result.
pub fn check_tx_from_json(r: &Value) -> Result<CheckTxResult> {
    Ok(CheckTxResult {
        hash: str_of(&r["hash"]),
        code: u32::try_from(u64_of(&r["code"], "code")?)
            .map_err(|_| ChainError::Decode("code out of range".into()))?,
        codespace: str_of(&r["codespace"]),
        log: str_of(&r["log"]),
    })
}

/// `tx` → the included transaction's result.
pub fn tx_from_json(r: &Value) -> Result<TxResult> {
    let res = &r["tx_result"];
    let opt_u64 = |v: &Value, what: &str| {
        if v.is_null() { Ok(0) } else { u64_of(v, what) }
    };
    Ok(TxResult {
        hash: str_of(&r["hash"]),
        height: u64_of(&r["height"], "height")?,
        code: u32::try_from(opt_u64(&res["code"], "tx_result.code")?)
            .map_err(|_| ChainError::Decode("code out of range".into()))?,
        codespace: str_of(&res["codespace"]),
        log: str_of(&res["log"]),
        gas_wanted: opt_u64(&res["gas_wanted"], "gas_wanted")?,
        gas_used: opt_u64(&res["gas_used"], "gas_used")?,
    })
}

/// Whether a `tx` error means "not (yet) in a block" rather than a failure.
pub fn is_tx_not_found(e: &ChainError) -> bool {
    matches!(e, ChainError::Other { codespace, log, .. }
        if codespace == RPC_CODESPACE && log.contains("not found"))
}

/// A CometBFT JSON-RPC endpoint, e.g. `http://127.0.0.1:26657`.
pub struct CometRpc {
    http: reqwest::Client,
    url: reqwest::Url,
    next_id: AtomicU64,
}

impl CometRpc {
    /// A client with a per-request `timeout`.
    pub fn new(url: &str, timeout: Duration) -> Result<Self> {
        let url = reqwest::Url::parse(url)
            .map_err(|e| ChainError::Invalid(format!("RPC URL {url:?}: {e}")))?;
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .build()
            .map_err(|e| ChainError::Invalid(format!("HTTP client: {e}")))?;
        Ok(Self {
            http,
            url,
            next_id: AtomicU64::new(1),
        })
    }

    /// One JSON-RPC call.
    pub async fn call<T: DeserializeOwned>(&self, method: &str, params: Value) -> Result<T> {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let response = self
            .http
            .post(self.url.clone())
            .json(&request_body(id, method, params))
            .send()
            .await
            .map_err(http_error)?;
        let status = response.status();
        let body = response.bytes().await.map_err(http_error)?;
        // CometBFT answers some errors with HTTP 500 and a JSON-RPC error body: prefer the body.
        match parse_response(&body) {
            Err(ChainError::Decode(_)) if !status.is_success() => {
                Err(ChainError::Transport(format!("{method}: HTTP {status}")))
            }
            other => other,
        }
    }

    /// The latest committed height.
    pub async fn latest_height(&self) -> Result<u64> {
        let status: Value = self.call("status", json!({})).await?;
        latest_height_from_json(&status)
    }

    /// `block_results` at `height`.
    pub async fn block_results(&self, height: u64) -> Result<BlockResults> {
        self.call("block_results", json!({ "height": height.to_string() }))
            .await
    }

    /// `broadcast_tx_sync`: the CheckTx result.
    pub async fn broadcast_tx_sync(&self, tx: &[u8]) -> Result<CheckTxResult> {
        let r: Value = self
            .call(
                "broadcast_tx_sync",
                json!({ "tx": data_encoding::BASE64.encode(tx) }),
            )
            .await?;
        check_tx_from_json(&r)
    }

    /// `tx` by its hex hash; `None` while it is not in a block.
    pub async fn tx(&self, hash_hex: &str) -> Result<Option<TxResult>> {
        let hash = data_encoding::HEXUPPER_PERMISSIVE
            .decode(hash_hex.as_bytes())
            .map_err(|e| ChainError::Invalid(format!("tx hash {hash_hex:?}: {e}")))?;
        let params = json!({ "hash": data_encoding::BASE64.encode(&hash), "prove": false });
        match self.call::<Value>("tx", params).await {
            Ok(r) => tx_from_json(&r).map(Some),
            Err(e) if is_tx_not_found(&e) => Ok(None),
            Err(e) => Err(e),
        }
    }
}

fn http_error(e: reqwest::Error) -> ChainError {
    if e.is_timeout() {
        ChainError::Timeout(e.to_string())
    } else {
        ChainError::Transport(e.to_string())
    }
}

#[async_trait]
impl BlockSource for CometRpc {
    async fn latest_height(&self) -> Result<u64> {
        CometRpc::latest_height(self).await
    }

    async fn block_results(&self, height: u64) -> Result<BlockResults> {
        CometRpc::block_results(self, height).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    #[test]
    fn requests_are_json_rpc_2() {
        assert_eq!(
            request_body(7, "block_results", json!({"height": "12"})),
            json!({"jsonrpc": "2.0", "id": 7, "method": "block_results", "params": {"height": "12"}})
        );
    }

    #[test]
    fn status_gives_the_latest_height() {
        let body = br#"{"jsonrpc":"2.0","id":1,"result":{"node_info":{"network":"akashnet-2"},
            "sync_info":{"latest_block_hash":"AB","latest_block_height":"20512","catching_up":false}}}"#;
        let status: Value = parse_response(body).unwrap();
        assert_eq!(latest_height_from_json(&status).unwrap(), 20512);
        assert!(latest_height_from_json(&json!({"sync_info": {}})).is_err());
    }

    #[test]
    fn json_rpc_errors_become_chain_errors() {
        let body = br#"{"jsonrpc":"2.0","id":3,"error":{"code":-32603,"message":"Internal error",
            "data":"height 99 must be less than or equal to the current blockchain height 12"}}"#;
        let err = parse_response::<Value>(body).unwrap_err();
        assert_eq!(
            err,
            ChainError::Other {
                codespace: "rpc".into(),
                code: 32603,
                log: "Internal error: height 99 must be less than or equal to the current blockchain height 12".into()
            }
        );
        assert!(!is_tx_not_found(&err));
        let not_found = parse_response::<Value>(
            br#"{"jsonrpc":"2.0","id":4,"error":{"code":-32603,"message":"Internal error","data":"tx (0A1B) not found"}}"#,
        )
        .unwrap_err();
        assert!(is_tx_not_found(&not_found));
        assert_eq!(
            parse_response::<Value>(b"<html>bad gateway</html>")
                .unwrap_err()
                .metric_label(),
            "decode"
        );
    }

    #[test]
    fn check_tx_and_tx_results_map() {
        let check = check_tx_from_json(&json!({
            "code": 32, "data": "", "codespace": "sdk", "hash": "0A1B",
            "log": "account sequence mismatch, expected 7, got 6: incorrect account sequence"
        }))
        .unwrap();
        assert_eq!(check.code, 32);
        assert_eq!(check.codespace, "sdk");
        assert_eq!(check.hash, "0A1B");
        let tx = tx_from_json(&json!({
            "hash": "0A1B", "height": "812", "index": 0,
            "tx_result": {"code": 0, "log": "", "gas_wanted": "150000", "gas_used": "98765",
                          "events": [], "codespace": ""},
            "tx": "CgA="
        }))
        .unwrap();
        assert_eq!(
            tx,
            TxResult {
                hash: "0A1B".into(),
                height: 812,
                code: 0,
                codespace: String::new(),
                log: String::new(),
                gas_wanted: 150_000,
                gas_used: 98_765
            }
        );
    }

    #[test]
    fn block_results_come_out_of_the_rpc_envelope() {
        let body = std::fs::read(format!(
            "{}/tests/fixtures/events/block_results_market.json",
            env!("CARGO_MANIFEST_DIR")
        ))
        .unwrap();
        let r: BlockResults = parse_response(&body).unwrap();
        assert_eq!(r.height, 1234);
        assert_eq!(r.txs_results.len(), 3);
        assert_eq!(r.finalize_block_events.len(), 3);
    }

    /// A one-shot HTTP server on loopback: returns the request body it got.
    async fn serve_once(
        status: &str,
        body: &'static str,
    ) -> (String, tokio::task::JoinHandle<String>) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let status = status.to_owned();
        let handle = tokio::spawn(async move {
            let (mut sock, _) = listener.accept().await.unwrap();
            let mut buf = Vec::new();
            let mut chunk = [0u8; 4096];
            // Read headers, then as many body bytes as Content-Length says.
            loop {
                let n = sock.read(&mut chunk).await.unwrap();
                buf.extend_from_slice(&chunk[..n]);
                let text = String::from_utf8_lossy(&buf).to_string();
                if let Some(end) = text.find("\r\n\r\n") {
                    let len: usize = text[..end]
                        .lines()
                        .find_map(|l| {
                            let (k, v) = l.split_once(':')?;
                            k.eq_ignore_ascii_case("content-length")
                                .then(|| v.trim().parse().ok())?
                        })
                        .unwrap_or(0);
                    if buf.len() >= end + 4 + len {
                        let reply = format!(
                            "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                            body.len()
                        );
                        sock.write_all(reply.as_bytes()).await.unwrap();
                        return text[end + 4..].to_string();
                    }
                }
                assert!(n > 0, "connection closed early");
            }
        });
        (url, handle)
    }

    #[tokio::test]
    async fn tx_sends_the_hash_in_base64_and_maps_not_found_to_none() {
        let (url, server) = serve_once(
            "200 OK",
            r#"{"jsonrpc":"2.0","id":1,"error":{"code":-32603,"message":"Internal error","data":"tx (0A1B) not found"}}"#,
        )
        .await;
        let rpc = CometRpc::new(&url, Duration::from_secs(5)).unwrap();
        assert_eq!(rpc.tx("0a1b").await.unwrap(), None);
        let request: Value = serde_json::from_str(&server.await.unwrap()).unwrap();
        assert_eq!(request["method"], "tx");
        assert_eq!(request["params"]["hash"], "Chs=");
        assert_eq!(request["jsonrpc"], "2.0");
    }

    #[tokio::test]
    async fn broadcast_sends_the_tx_in_base64() {
        let (url, server) = serve_once(
            "200 OK",
            r#"{"jsonrpc":"2.0","id":1,"result":{"code":0,"data":"","log":"[]","codespace":"","hash":"ABCD"}}"#,
        )
        .await;
        let rpc = CometRpc::new(&url, Duration::from_secs(5)).unwrap();
        let r = rpc.broadcast_tx_sync(&[1, 2, 3]).await.unwrap();
        assert_eq!((r.code, r.hash.as_str()), (0, "ABCD"));
        let request: Value = serde_json::from_str(&server.await.unwrap()).unwrap();
        assert_eq!(request["method"], "broadcast_tx_sync");
        assert_eq!(request["params"]["tx"], "AQID");
    }

    #[tokio::test]
    async fn an_http_error_without_a_json_body_is_a_transport_error() {
        let (url, _server) = serve_once("502 Bad Gateway", "upstream down").await;
        let rpc = CometRpc::new(&url, Duration::from_secs(5)).unwrap();
        let err = rpc.latest_height().await.unwrap_err();
        assert_eq!(
            err,
            ChainError::Transport("status: HTTP 502 Bad Gateway".into())
        );
    }

    #[tokio::test]
    async fn an_unreachable_node_is_a_transport_error() {
        // Bind then drop, so the port is closed.
        let port = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap().port()
        };
        let rpc =
            CometRpc::new(&format!("http://127.0.0.1:{port}"), Duration::from_secs(5)).unwrap();
        assert_eq!(
            rpc.latest_height().await.unwrap_err().metric_label(),
            "transport"
        );
    }
}
