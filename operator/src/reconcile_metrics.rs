//! Reconcile metrics shared by every controller: runs, failures by error category, and duration.
//! The error category comes from the error's `metric_label()`, a fixed set per controller, so the
//! label values stay few.

use std::future::Future;
use std::time::Instant;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

/// The `controller` label of the workload reconciler (`Lease` → workloads).
pub(crate) const WORKLOAD: &str = "workload";
/// The `controller` label of the tenant controller (`Manifest` → deployment on chain).
pub(crate) const TENANT: &str = "tenant";
/// The `controller` label of the overlay sidecar's reconcile pass.
pub(crate) const OVERLAY: &str = "overlay";

/// The names the reconcile metrics are registered under (without the registry's prefix).
pub(crate) const METRIC_NAMES: [&str; 3] = [
    "reconcile_runs",
    "reconcile_failures",
    "reconcile_duration_seconds",
];

/// An error whose kind is a metric label: a short, fixed string per variant.
pub(crate) trait MetricLabel {
    fn metric_label(&self) -> &'static str;
}

/// A label set naming one controller.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct ControllerLabel {
    pub controller: String,
}

/// A label set of one controller's failures of one error category.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct FailureLabel {
    pub controller: String,
    pub error: String,
}

type HistogramFamily = Family<ControllerLabel, Histogram, fn() -> Histogram>;

fn duration_histogram() -> Histogram {
    // From a no-op pass (milliseconds) to a slow chain transaction or namespace deletion.
    Histogram::new([
        0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
    ])
}

/// Runs, failures and durations of reconciles, per controller.
#[derive(Clone)]
pub(crate) struct ReconcileMetrics {
    pub runs: Family<ControllerLabel, Counter>,
    pub failures: Family<FailureLabel, Counter>,
    pub duration_seconds: HistogramFamily,
}

impl Default for ReconcileMetrics {
    fn default() -> Self {
        Self {
            runs: Family::default(),
            failures: Family::default(),
            duration_seconds: Family::new_with_constructor(duration_histogram),
        }
    }
}

impl ReconcileMetrics {
    /// Registers the metrics under [`METRIC_NAMES`].
    pub(crate) fn register(&self, registry: &mut Registry) {
        let [runs, failures, duration] = METRIC_NAMES;
        registry.register(runs, "Reconciles run, by controller", self.runs.clone());
        registry.register(
            failures,
            "Reconciles that failed, by controller and error category",
            self.failures.clone(),
        );
        registry.register(
            duration,
            "How long one reconcile took, by controller",
            self.duration_seconds.clone(),
        );
    }

    /// Runs one reconcile of `controller`, counting it, its failure (by the error's category)
    /// and its duration. The result is passed through unchanged.
    pub(crate) async fn observe<T, E: MetricLabel>(
        &self,
        controller: &'static str,
        reconcile: impl Future<Output = Result<T, E>>,
    ) -> Result<T, E> {
        let started = Instant::now();
        let result = reconcile.await;
        self.record(controller, started, result.as_ref().err());
        result
    }

    /// Counts one reconcile of `controller` that started at `started` and failed with `error`
    /// (or succeeded).
    pub(crate) fn record(
        &self,
        controller: &'static str,
        started: Instant,
        error: Option<&impl MetricLabel>,
    ) {
        let label = ControllerLabel {
            controller: controller.to_owned(),
        };
        self.duration_seconds
            .get_or_create(&label)
            .observe(started.elapsed().as_secs_f64());
        self.runs.get_or_create(&label).inc();
        if let Some(error) = error {
            self.failures
                .get_or_create(&FailureLabel {
                    controller: controller.to_owned(),
                    error: error.metric_label().to_owned(),
                })
                .inc();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::Metrics;

    fn workload_finalizer_error() -> crate::workload::reconcile::ReconcileError {
        crate::workload::reconcile::ReconcileError::Finalizer("namespace x is terminating".into())
    }

    #[tokio::test]
    async fn a_failed_reconcile_counts_a_run_a_failure_by_category_and_a_duration() {
        let metrics = Metrics::new();
        let failed: Result<(), _> = metrics
            .reconcile
            .observe(WORKLOAD, async { Err(workload_finalizer_error()) })
            .await;
        assert!(failed.is_err(), "the error is passed through");
        let ok: Result<u8, crate::workload::reconcile::ReconcileError> =
            metrics.reconcile.observe(WORKLOAD, async { Ok(7) }).await;
        assert_eq!(ok.ok(), Some(7));
        let text = metrics.encode();
        assert!(
            text.contains(r#"akash_provider_reconcile_runs_total{controller="workload"} 2"#),
            "{text}"
        );
        assert!(
            text.contains(
                r#"akash_provider_reconcile_failures_total{controller="workload",error="finalizer"} 1"#
            ),
            "{text}"
        );
        assert!(
            text.contains(
                r#"akash_provider_reconcile_duration_seconds_count{controller="workload"} 2"#
            ),
            "{text}"
        );
    }

    #[tokio::test]
    async fn each_controller_and_category_has_its_own_series() {
        let metrics = ReconcileMetrics::default();
        let tenant_key: Result<(), _> = metrics
            .observe(TENANT, async {
                Err(crate::tenant::controller::ReconcileError::Key(
                    "no such Secret".into(),
                ))
            })
            .await;
        assert!(tenant_key.is_err());
        let overlay: Result<(), _> = metrics
            .observe(OVERLAY, async {
                Err(crate::overlay::sidecar::PassError::Leases(
                    kube::Error::LinesCodecMaxLineLengthExceeded,
                ))
            })
            .await;
        assert!(overlay.is_err());
        let count = |controller: &str, error: &str| {
            metrics
                .failures
                .get_or_create(&FailureLabel {
                    controller: controller.into(),
                    error: error.into(),
                })
                .get()
        };
        assert_eq!(count(TENANT, "key"), 1);
        assert_eq!(count(OVERLAY, "leases"), 1);
        assert_eq!(count(WORKLOAD, "finalizer"), 0);
    }

    #[test]
    fn the_tenant_registry_has_only_the_reconcile_metrics() {
        let metrics = Metrics::reconcile_only();
        metrics
            .reconcile
            .runs
            .get_or_create(&ControllerLabel {
                controller: TENANT.into(),
            })
            .inc();
        let text = metrics.encode();
        assert!(
            text.contains(r#"akash_provider_reconcile_runs_total{controller="tenant"} 1"#),
            "{text}"
        );
        assert!(!text.contains("bids_sent"), "{text}");
    }

    #[tokio::test]
    async fn the_tenant_controllers_metrics_endpoint_serves_its_reconcile_metrics() {
        use http_body_util::BodyExt;
        use tower::ServiceExt;

        let metrics = std::sync::Arc::new(Metrics::reconcile_only());
        let failed: Result<(), _> = metrics
            .reconcile
            .observe(TENANT, async {
                Err(crate::tenant::controller::ReconcileError::Finalizer(
                    "object has no name".into(),
                ))
            })
            .await;
        assert!(failed.is_err());
        let router = crate::metrics::router(metrics, std::sync::Arc::default());
        let request = axum::http::Request::get("/metrics")
            .body(axum::body::Body::empty())
            .expect("a request");
        let response = router.oneshot(request).await.expect("an answer");
        assert_eq!(response.status(), axum::http::StatusCode::OK);
        let body = response
            .into_body()
            .collect()
            .await
            .expect("the body")
            .to_bytes();
        let text = String::from_utf8_lossy(&body);
        assert!(
            text.contains(
                r#"akash_provider_reconcile_failures_total{controller="tenant",error="finalizer"} 1"#
            ),
            "{text}"
        );
    }
}
