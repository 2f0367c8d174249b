//! The `manifest_ready` bench at a small size, so that it cannot rot: six leases turned up
//! through the real provider, devnet and control plane, three manifests in flight. Nothing is
//! timed here; the bench prints the figures. What is checked is that each figure was measured
//! for every lease: a watcher or a metric the bench reads that stopped working fails here.

#[allow(dead_code, unreachable_pub)]
#[path = "../benches/manifest_ready.rs"]
mod manifest_ready;

use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_manifest_ready_bench_runs_at_a_small_size_and_measures_every_lease() {
    let outcome = manifest_ready::run_with(manifest_ready::Settings {
        block_time: "500ms".into(),
        leases: vec![6],
        concurrency: 3,
        idle: Duration::from_secs(2),
    })
    .await;
    manifest_ready::cleanup().await;
    let steps = outcome.unwrap();
    assert_eq!(steps.len(), 1);
    let step = &steps[0];
    assert_eq!((step.leases, step.new, step.failed), (6, 6, 0));
    // Each lease Active, its objects applied and its manifest answered, each seen by the bench.
    assert_eq!(step.latencies_ms.len(), 6, "leases seen Active");
    assert_eq!(step.applied_ms.len(), 6, "lease Ingresses seen");
    assert_eq!(step.answers_ms.len(), 6, "gateway answers");
    // The provider's request counter moved: at least one server-side apply per lease.
    let applies: f64 = step
        .requests
        .iter()
        .filter(|(key, _)| key.starts_with("APPLY "))
        .map(|(_, n)| n)
        .sum();
    assert!(applies >= 6.0, "{:?}", step.requests);
    assert!(step.rss_kib > 0);
    assert!(step.idle.is_some());
}
