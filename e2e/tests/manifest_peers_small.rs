//! The `manifest_peers` bench at a small size, so that it cannot rot: a manifest of 4 services
//! reaching 2 real providers, sent by the tenant to both and sent to one and fetched by the other
//! from its peer. Nothing is timed here; the bench prints the figures.

#[allow(dead_code, unreachable_pub)]
#[path = "../benches/manifest_peers.rs"]
mod manifest_peers;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_manifest_peers_bench_runs_at_a_small_size_and_both_modes_reach_every_provider() {
    let rows = manifest_peers::run_with(manifest_peers::Settings {
        providers: vec![2],
        services: 4,
        env: 1,
        env_bytes: 64,
        rounds: 1,
        fetch_interval: "1s".into(),
    })
    .await
    .unwrap();
    assert_eq!(rows.len(), 1);
    let (n, bytes, results) = &rows[0];
    assert_eq!(*n, 2);
    let (all, seed) = (&results["all"], &results["seed"]);
    assert_eq!((all.len(), seed.len()), (1, 1));
    // Each mode measured the manifest reaching both providers; the tenant uploaded it to both,
    // or to one only.
    assert_eq!(all[0].uploaded, 2 * bytes);
    assert!(seed[0].uploaded < all[0].uploaded);
    assert!(!all[0].reach.is_zero() && !seed[0].reach.is_zero());
}
