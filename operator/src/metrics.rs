//! Prometheus metrics and the HTTP endpoints `/metrics`, `/healthz` and `/readyz`.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

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

use crate::reconcile_metrics::ReconcileMetrics;

/// A label set with one `reason` (or `error`, `resource`) value.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct Reason {
    pub reason: String,
}

/// A label set naming a resource (`cpu`, `memory`, `gpu/nvidia/a100`, `storage/beta2`, ...).
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct ResourceLabel {
    pub resource: String,
}

/// A label set naming one tunnel end.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct TunnelLabel {
    pub tunnel: String,
    pub role: String,
}

/// A label set naming what the provider depends on (`chain`, `kube`).
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct DependencyLabel {
    pub dependency: String,
}

/// A label set of tunnel ends by role and whether they are established.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct TunnelState {
    pub role: String,
    pub established: String,
}

/// Everything the provider (and its overlay sidecar) counts.
pub(crate) struct Metrics {
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
    pub dependency_up: Family<DependencyLabel, Gauge>,
    /// Runs, failures and durations of every controller's reconciles.
    pub reconcile: ReconcileMetrics,
    pub kube_requests: Family<crate::kube_requests::KubeRequest, Counter>,
}

impl Metrics {
    pub(crate) fn new() -> Self {
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
            dependency_up: Family::default(),
            reconcile: ReconcileMetrics::default(),
            kube_requests: Family::default(),
            registry: Registry::default(),
        };
        registry.register(
            "orders_seen",
            "Open orders considered",
            metrics.orders_seen.clone(),
        );
        registry.register(
            "kube_requests",
            "Requests this process sent to the Kubernetes API server, by verb and resource",
            metrics.kube_requests.clone(),
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
        registry.register(
            "dependency_up",
            "1 when the last probe of a dependency (chain: RPC and gRPC; kube: the API server) answered",
            metrics.dependency_up.clone(),
        );
        metrics.reconcile.register(&mut registry);
        Self {
            registry,
            ..metrics
        }
    }

    /// Only the reconcile metrics are exposed: for a process that counts nothing else (the
    /// tenant controller), so its `/metrics` shows no provider counters stuck at zero.
    pub(crate) fn reconcile_only() -> Self {
        let mut registry = Registry::with_prefix("akash_provider");
        let metrics = Self::new();
        metrics.reconcile.register(&mut registry);
        Self {
            registry,
            ..metrics
        }
    }

    /// Counts one `reason` in a family.
    pub(crate) fn count(family: &Family<Reason, Counter>, reason: &str) {
        family
            .get_or_create(&Reason {
                reason: reason.to_owned(),
            })
            .inc();
    }

    /// The text exposition format.
    pub(crate) fn encode(&self) -> String {
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

/// Liveness and readiness, as the probes see them: ready once started, and not while a
/// dependency has been unreachable for longer than [`UNREACHABLE_GRACE`].
#[derive(Default)]
pub(crate) struct Health {
    ready: AtomicBool,
    /// Per dependency, since when and why it has been failing (absent: answering).
    failing: std::sync::Mutex<std::collections::BTreeMap<&'static str, (Instant, String)>>,
}

/// How long a dependency may fail before `/readyz` says so: blips and restarts of a second or
/// two are not outages.
pub(crate) const UNREACHABLE_GRACE: Duration = Duration::from_secs(10);

impl Health {
    pub(crate) fn set_ready(&self, ready: bool) {
        self.ready.store(ready, Ordering::SeqCst);
    }
    #[cfg(test)]
    pub(crate) fn is_ready(&self) -> bool {
        self.ready.load(Ordering::SeqCst) && self.outages(UNREACHABLE_GRACE).is_empty()
    }
    /// `dependency` answered.
    pub(crate) fn reached(&self, dependency: &'static str) {
        let mut failing = self.failing.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((since, _)) = failing.remove(dependency) {
            tracing::info!(dependency, after = ?since.elapsed(), "reachable again");
        }
    }
    /// `dependency` did not answer (`error`: why); the first failure starts the outage.
    pub(crate) fn unreachable(&self, dependency: &'static str, error: String) {
        let mut failing = self.failing.lock().unwrap_or_else(|e| e.into_inner());
        match failing.get_mut(dependency) {
            Some((_, last)) => *last = error,
            None => {
                tracing::warn!(dependency, %error, "unreachable");
                failing.insert(dependency, (Instant::now(), error));
            }
        }
    }
    /// What has failed for at least `grace`: `chain unreachable for 12s: <error>` each.
    pub(crate) fn outages(&self, grace: Duration) -> Vec<String> {
        let failing = self.failing.lock().unwrap_or_else(|e| e.into_inner());
        failing
            .iter()
            .filter(|(_, (since, _))| since.elapsed() >= grace)
            .map(|(name, (since, error))| {
                format!(
                    "{name} unreachable for {}s: {error}",
                    since.elapsed().as_secs()
                )
            })
            .collect()
    }
}

#[derive(Clone)]
struct HttpState {
    metrics: Arc<Metrics>,
    health: Arc<Health>,
}

/// The router of the operations endpoints.
pub(crate) fn router(metrics: Arc<Metrics>, health: Arc<Health>) -> Router {
    Router::new()
        .route("/metrics", get(metrics_text))
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(readyz))
        .with_state(HttpState { metrics, health })
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
    let mut reasons = Vec::new();
    if !state.health.ready.load(Ordering::SeqCst) {
        reasons.push("not serving (starting, or shutting down)".to_owned());
    }
    reasons.extend(state.health.outages(UNREACHABLE_GRACE));
    if reasons.is_empty() {
        (StatusCode::OK, "ready".to_owned())
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("not ready: {}\n", reasons.join("; ")),
        )
    }
}

/// Serves the operations endpoints until the process ends.
pub(crate) async fn serve(
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

#[cfg(test)]
mod health_tests {
    use std::time::Duration;

    use super::Health;

    #[test]
    fn a_dependency_failing_past_the_grace_makes_the_provider_unready_until_it_answers() {
        let health = Health::default();
        assert!(!health.is_ready(), "not ready before it says so");
        health.set_ready(true);
        assert!(health.is_ready());
        health.unreachable("chain", "connection refused".into());
        // Within the grace it stays ready; past it (a zero grace here) the outage is named.
        assert!(health.is_ready());
        let outages = health.outages(Duration::ZERO);
        assert_eq!(outages.len(), 1, "{outages:?}");
        assert!(outages[0].starts_with("chain unreachable for 0s: connection refused"));
        // A later failure keeps the start and updates the reason.
        health.unreachable("chain", "timed out".into());
        health.unreachable("kube", "503".into());
        let outages = health.outages(Duration::ZERO);
        assert_eq!(outages.len(), 2);
        assert!(outages[0].ends_with("timed out") && outages[1].starts_with("kube"));
        health.reached("chain");
        health.reached("kube");
        assert!(health.outages(Duration::ZERO).is_empty());
        assert!(health.is_ready());
    }
}

#[cfg(test)]
mod dashboard_tests {
    use std::collections::{BTreeMap, BTreeSet};

    use super::Metrics;

    /// The chart's Grafana dashboard.
    const DASHBOARD: &str = include_str!("../../helm/akash-provider/dashboards/provider.json");

    /// Every metric the provider registers, by exposed base name, with its type.
    fn registered() -> BTreeMap<String, String> {
        Metrics::new()
            .encode()
            .lines()
            .filter_map(|line| {
                let mut words = line.strip_prefix("# TYPE ")?.split_whitespace();
                Some((words.next()?.to_owned(), words.next()?.to_owned()))
            })
            .collect()
    }

    /// The series names a panel may query for a metric of `kind` named `base`.
    fn series_of(base: &str, kind: &str) -> Vec<String> {
        match kind {
            "counter" => vec![format!("{base}_total")],
            "histogram" => ["_bucket", "_sum", "_count"]
                .map(|s| format!("{base}{s}"))
                .to_vec(),
            _ => vec![base.to_owned()],
        }
    }

    /// Names starting with `akash_provider_` anywhere in the dashboard: the panels' expressions
    /// and the variables' queries.
    fn used_names(dashboard: &serde_json::Value) -> BTreeSet<String> {
        let mut exprs = Vec::new();
        let mut stack = vec![dashboard];
        while let Some(value) = stack.pop() {
            match value {
                serde_json::Value::Object(map) => stack.extend(map.values()),
                serde_json::Value::Array(items) => stack.extend(items),
                serde_json::Value::String(text) => exprs.push(text.clone()),
                _ => {}
            }
        }
        let mut names = BTreeSet::new();
        for expr in exprs {
            let mut rest = expr.as_str();
            while let Some(at) = rest.find("akash_provider_") {
                let tail = &rest[at..];
                let end = tail
                    .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                    .unwrap_or(tail.len());
                names.insert(tail[..end].to_owned());
                rest = &tail[end..];
            }
        }
        names
    }

    #[test]
    fn every_metric_the_dashboard_queries_is_one_the_provider_registers() {
        let dashboard: serde_json::Value =
            serde_json::from_str(DASHBOARD).expect("the dashboard is JSON");
        let registered = registered();
        assert!(
            registered.contains_key("akash_provider_reconcile_runs"),
            "{registered:?}"
        );
        let known: BTreeSet<String> = registered
            .iter()
            .flat_map(|(base, kind)| series_of(base, kind))
            .collect();
        let used = used_names(&dashboard);
        assert!(used.len() > 10, "{used:?}");
        let unknown: Vec<&String> = used.difference(&known).collect();
        assert!(unknown.is_empty(), "not registered: {unknown:?}");
        // Every panel but a row has a query, and each has its own id.
        let panels = dashboard["panels"].as_array().expect("panels");
        let ids: BTreeSet<u64> = panels.iter().filter_map(|p| p["id"].as_u64()).collect();
        assert_eq!(ids.len(), panels.len());
        for panel in panels.iter().filter(|p| p["type"] != "row") {
            let targets = panel["targets"].as_array().map_or(0, Vec::len);
            assert!(targets > 0, "{}", panel["title"]);
        }
    }

    #[test]
    fn the_check_finds_a_misspelt_metric() {
        let dashboard = serde_json::json!({
            "panels": [{ "targets": [{ "expr": "rate(akash_provider_bids_snet_total[5m])" }] }]
        });
        let used = used_names(&dashboard);
        assert_eq!(
            used,
            BTreeSet::from(["akash_provider_bids_snet_total".to_owned()])
        );
        let known: BTreeSet<String> = registered()
            .iter()
            .flat_map(|(base, kind)| series_of(base, kind))
            .collect();
        assert!(!known.contains("akash_provider_bids_snet_total"));
        assert!(known.contains("akash_provider_bids_sent_total"));
        assert!(known.contains("akash_provider_order_to_bid_seconds_bucket"));
    }
}
