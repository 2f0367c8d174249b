//! The `bid_latency` bench at a small size, so that it cannot rot: two single orders, then 30
//! orders in one block bid on in batches of 25 and in one transaction, against the real provider,
//! devnet and control plane. Nothing is timed here; the bench prints the figures.

#[allow(dead_code, unreachable_pub)]
#[path = "../benches/bid_latency.rs"]
mod bid_latency;

use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_bid_latency_bench_runs_at_a_small_size_and_every_order_gets_its_bid() {
    let batches = bid_latency::run_with(bid_latency::Settings {
        block_time: "1s".into(),
        block: Duration::from_secs(1),
        rounds: 2,
        orders: vec![30],
        bid_batch_sizes: vec![25, 1000],
    })
    .await
    .unwrap();
    assert_eq!(batches.len(), 2);
    for b in &batches {
        assert_eq!(b.total, b.orders, "{}", b.line());
    }
}
