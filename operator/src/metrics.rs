//! Prometheus metrics and the HTTP endpoints `/metrics`, `/healthz` and `/readyz`.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::get;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

/// A label set with one `reason` (or `error`, `resource`) value.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct Reason {
    pub reason: String,
}

/// A label set naming a resource (`cpu`, `memory`, `gpu/nvidia/a100`, `storage/beta2`, ...).
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ResourceLabel {
    pub resource: String,
}

/// A label set naming one tunnel end.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct TunnelLabel {
    pub tunnel: String,
    pub role: String,
}

/// A label set of tunnel ends by role and whether they are established.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct TunnelState {
    pub role: String,
    pub established: String,
}

/// Everything the provider (and its overlay sidecar) counts.
pub struct Metrics {
    registry: Registry,
    pub orders_seen: Counter,
    pub orders_skipped: Family<Reason, Counter>,
    pub bids_sent: Counter,
    pub bids_won: Counter,
    pub bids_lost: Counter,
    pub bids_closed: Family<Reason, Counter>,
    pub bid_failures: Family<Reason, Counter>,
    pub order_to_bid_blocks: Histogram,
    pub order_to_bid_seconds: Histogram,
    pub active_leases: Gauge,
    pub open_bids: Gauge,
    pub allocatable: Family<ResourceLabel, Gauge>,
    pub reserved: Family<ResourceLabel, Gauge>,
    pub available: Family<ResourceLabel, Gauge>,
    pub chain_errors: Family<Reason, Counter>,
    pub tunnels: Family<TunnelState, Gauge>,
    pub tunnel_bytes_sent: Family<TunnelLabel, Counter>,
    pub tunnel_bytes_received: Family<TunnelLabel, Counter>,
    pub tunnel_refusals: Family<Reason, Counter>,
}

impl Metrics {
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("akash_provider");
        let metrics = Self {
            orders_seen: Counter::default(),
            orders_skipped: Family::default(),
            bids_sent: Counter::default(),
            bids_won: Counter::default(),
            bids_lost: Counter::default(),
            bids_closed: Family::default(),
            bid_failures: Family::default(),
            order_to_bid_blocks: Histogram::new([0.0, 1.0, 2.0, 3.0, 5.0, 10.0, 20.0, 50.0]),
            order_to_bid_seconds: Histogram::new([
                0.05, 0.1, 0.25, 0.5, 0.75, 1.0, 1.25, 1.5, 2.0, 3.0, 5.0, 10.0, 30.0, 60.0,
            ]),
            active_leases: Gauge::default(),
            open_bids: Gauge::default(),
            allocatable: Family::default(),
            reserved: Family::default(),
            available: Family::default(),
            chain_errors: Family::default(),
            tunnels: Family::default(),
            tunnel_bytes_sent: Family::default(),
            tunnel_bytes_received: Family::default(),
            tunnel_refusals: Family::default(),
            registry: Registry::default(),
        };
        registry.register(
            "orders_seen",
            "Open orders considered",
            metrics.orders_seen.clone(),
        );
        registry.register(
            "orders_skipped",
            "Orders not bid on, by reason",
            metrics.orders_skipped.clone(),
        );
        registry.register(
            "bids_sent",
            "Bids included in a block",
            metrics.bids_sent.clone(),
        );
        registry.register(
            "bids_won",
            "Bids that became leases",
            metrics.bids_won.clone(),
        );
        registry.register(
            "bids_lost",
            "Bids another provider won",
            metrics.bids_lost.clone(),
        );
        registry.register(
            "bids_closed",
            "Bids closed and their reservations released, by reason",
            metrics.bids_closed.clone(),
        );
        registry.register(
            "bid_failures",
            "Bids the chain refused, by error",
            metrics.bid_failures.clone(),
        );
        registry.register(
            "order_to_bid_blocks",
            "Blocks from an order's creation to the block holding this provider's bid",
            metrics.order_to_bid_blocks.clone(),
        );
        registry.register(
            "order_to_bid_seconds",
            "Seconds from seeing an order to its bid being included in a block",
            metrics.order_to_bid_seconds.clone(),
        );
        registry.register(
            "active_leases",
            "Leases this provider holds",
            metrics.active_leases.clone(),
        );
        registry.register("open_bids", "Bids open on chain", metrics.open_bids.clone());
        registry.register(
            "allocatable",
            "What the cluster offers, per resource (millicores, bytes, units)",
            metrics.allocatable.clone(),
        );
        registry.register(
            "reserved",
            "What bids and leases hold, per resource",
            metrics.reserved.clone(),
        );
        registry.register(
            "available",
            "What is left to bid with, per resource",
            metrics.available.clone(),
        );
        registry.register(
            "chain_errors",
            "Failed chain calls, by error kind",
            metrics.chain_errors.clone(),
        );
        registry.register(
            "overlay_tunnels",
            "Overlay tunnel ends this sidecar runs, by role and whether they are established",
            metrics.tunnels.clone(),
        );
        registry.register(
            "overlay_tunnel_bytes_sent",
            "Payload bytes sent to the peer provider, per tunnel end",
            metrics.tunnel_bytes_sent.clone(),
        );
        registry.register(
            "overlay_tunnel_bytes_received",
            "Payload bytes received from the peer provider, per tunnel end",
            metrics.tunnel_bytes_received.clone(),
        );
        registry.register(
            "overlay_tunnel_refusals",
            "Tunnel requests refused by the serving side, by reason",
            metrics.tunnel_refusals.clone(),
        );
        Self {
            registry,
            ..metrics
        }
    }

    /// Counts one `reason` in a family.
    pub fn count(family: &Family<Reason, Counter>, reason: &str) {
        family
            .get_or_create(&Reason {
                reason: reason.to_owned(),
            })
            .inc();
    }

    /// The text exposition format.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

/// Liveness and readiness, as the probes see them.
#[derive(Default)]
pub struct Health {
    ready: AtomicBool,
}

impl Health {
    pub fn set_ready(&self, ready: bool) {
        self.ready.store(ready, Ordering::SeqCst);
    }
    pub fn is_ready(&self) -> bool {
        self.ready.load(Ordering::SeqCst)
    }
}

#[derive(Clone)]
struct HttpState {
    metrics: Arc<Metrics>,
    health: Arc<Health>,
}

/// The router of the operations endpoints.
pub fn router(metrics: Arc<Metrics>, health: Arc<Health>) -> Router {
    Router::new()
        .route("/metrics", get(metrics_text))
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(readyz))
        .with_state(HttpState { metrics, health })
}

/// Only `/healthz` and `/readyz`, for processes without the provider's metrics (the tenant
/// controller).
pub fn health_router(health: Arc<Health>) -> Router {
    Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(readyz))
        .with_state(HttpState {
            metrics: Arc::new(Metrics::new()),
            health,
        })
}

async fn metrics_text(State(state): State<HttpState>) -> impl IntoResponse {
    (
        [(
            axum::http::header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        state.metrics.encode(),
    )
}

async fn readyz(State(state): State<HttpState>) -> impl IntoResponse {
    if state.health.is_ready() {
        (StatusCode::OK, "ready")
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "not ready")
    }
}

/// Serves the operations endpoints until the process ends.
pub async fn serve(
    addr: SocketAddr,
    metrics: Arc<Metrics>,
    health: Arc<Health>,
) -> anyhow::Result<tokio::task::JoinHandle<()>> {
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|e| anyhow::anyhow!("binding the metrics address {addr}: {e}"))?;
    tracing::info!(addr = %listener.local_addr()?, "serving /metrics, /healthz and /readyz");
    Ok(tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, router(metrics, health)).await {
            tracing::error!(error = %e, "the metrics server stopped");
        }
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metrics_are_exposed_with_the_prefix_and_labels() {
        let m = Metrics::new();
        m.bids_sent.inc();
        Metrics::count(&m.orders_skipped, "cpu");
        m.order_to_bid_blocks.observe(1.0);
        let text = m.encode();
        assert!(text.contains("akash_provider_bids_sent_total 1"), "{text}");
        assert!(
            text.contains(r#"akash_provider_orders_skipped_total{reason="cpu"} 1"#),
            "{text}"
        );
        assert!(
            text.contains("akash_provider_order_to_bid_blocks_count 1"),
            "{text}"
        );
    }
}
