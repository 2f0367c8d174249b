//! The `tps` bench at a small size, so that it cannot rot: both runs (the empty genesis and one
//! holding leases made by the modules' messages) commit every transaction they send. Nothing is
//! timed here; the bench prints the figures.

#[allow(dead_code, unreachable_pub)]
#[path = "../benches/tps.rs"]
mod tps;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_tps_bench_runs_at_a_small_size_with_and_without_leases() {
    let leases = tps::state_with_leases(20).unwrap();
    assert_eq!(leases.leases.len(), 20);
    assert_eq!(leases.bids.len(), 20);
    let (empty, loaded) = tps::compare(80, std::time::Duration::from_millis(100), 20)
        .await
        .unwrap();
    assert!(empty.committed_per_s > 0.0 && loaded.committed_per_s > 0.0);
}
