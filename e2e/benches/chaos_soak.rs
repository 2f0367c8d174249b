//! The chaos soak (issue 16): `cargo bench -p e2e --bench chaos_soak` lives through deployments
//! of two groups (one lease on each of two providers) while processes are SIGKILLed, and prints
//! the kills, the lifecycle time beside a baseline without kills from the same run, and the
//! invariants. Settings, from the environment:
//! - `CHAOS_SEED`: the kill schedule (default: from the clock, printed);
//! - `CHAOS_DEPLOYMENTS`: deployments under kills (default 50, so 100 lease lifecycles);
//! - `CHAOS_BASELINE`: deployments before, without kills (default 5);
//! - `CHAOS_CONCURRENCY`: deployments in flight (default 4);
//! - `CHAOS_MIN_KILLS`: kills at least (default 50).
//!
//! Exits 1 when an invariant does not hold.

use std::process::ExitCode;
use std::time::Duration;

use e2e::chaos::{SoakConfig, seed_from_env, soak};

fn setting(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn main() -> ExitCode {
    let config = SoakConfig {
        seed: seed_from_env(),
        baseline: setting("CHAOS_BASELINE", 5),
        deployments: setting("CHAOS_DEPLOYMENTS", 50),
        concurrency: setting("CHAOS_CONCURRENCY", 4),
        min_kills: setting("CHAOS_MIN_KILLS", 50),
        pause: (Duration::from_secs(2), Duration::from_secs(5)),
        down: (Duration::from_millis(100), Duration::from_millis(2000)),
    };
    println!("chaos soak: {config:?}");
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a runtime");
    match runtime.block_on(soak(&config)) {
        Ok(report) => {
            println!("{}", report.table());
            if report.invariants.all_hold() {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            }
        }
        Err(e) => {
            eprintln!("the soak could not run: {e:#}");
            ExitCode::FAILURE
        }
    }
}
