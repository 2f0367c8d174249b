//! Fuzzing on stable Rust: mutation-based harnesses over every input the provider, the tenant
//! controller and the devnet take from others, seeded with real data (the repository's SDL files,
//! the manifests they make, transactions signed as a wallet signs them, a devnet's real RPC and
//! query answers, certificates made as the provider makes them).
//!
//! Each execution runs under `catch_unwind` (a panic is a finding) and a counting allocator (an
//! execution whose allocation peak exceeds [`engine::allocation_bound`] is a finding). Runs are
//! reproducible from their seed. `cargo bench -p fuzz --bench fuzz` runs the campaign
//! (`FUZZ_EXECS`, `FUZZ_SEED`, `FUZZ_TARGETS`); `cargo test -p fuzz` runs a small one.

pub mod alloc;
pub mod engine;
pub mod mutate;
pub mod targets;
pub mod world;

use std::path::Path;
use std::sync::Arc;

use engine::{Target, TargetReport, run_target};
use world::World;

/// A single-threaded runtime whose clock is paused: a handler that waits (the devnet's
/// `broadcast_tx_commit` waits up to 10 s for a block) times out at once, as nothing else runs.
pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .start_paused(true)
        .build()
        .expect("a tokio runtime")
}

/// Every target, over one world.
pub fn targets(world: &Arc<World>) -> Vec<Box<dyn Target>> {
    use targets::*;
    vec![
        Box::new(sdl::SdlTarget::new(world.clone())),
        Box::new(manifest::ManifestJson::new(world.clone())),
        Box::new(manifest::ManifestGrpc::new(world.clone())),
        Box::new(chain_proto::ChainProto::new(world.clone())),
        Box::new(devnet_tx::DevnetTx::new(world.clone())),
        Box::new(devnet_query::DevnetQuery::new(world.clone())),
        Box::new(devnet_rpc::DevnetRpc::new(world.clone())),
        Box::new(chain_rpc::ChainRpc::new(world.clone())),
        Box::new(cert::Cert::new(world.clone())),
    ]
}

/// Splits `total` executions over the targets by their weights (each gets at least its seeds).
pub fn shares(targets: &[Box<dyn Target>], total: u64) -> Vec<u64> {
    let sum: u64 = targets.iter().map(|t| t.weight()).sum();
    targets
        .iter()
        .map(|t| (total * t.weight() / sum.max(1)).max(t.seeds().len() as u64))
        .collect()
}

/// Runs the campaign: `total` executions over the targets whose names `only` lists (all when
/// empty), calling `each` with every target's report as it finishes (`progress`: a line on
/// stderr every minute).
pub fn campaign(
    total: u64,
    seed: u64,
    only: &[String],
    findings_dir: &Path,
    progress: bool,
    mut each: impl FnMut(&TargetReport),
) -> Vec<TargetReport> {
    let world = Arc::new(World::build());
    let mut all = targets(&world);
    all.retain(|t| only.is_empty() || only.iter().any(|o| o == t.name()));
    let counts = shares(&all, total);
    let mut reports = Vec::new();
    for (target, execs) in all.iter_mut().zip(counts) {
        let report = run_target(target.as_mut(), execs, seed, findings_dir, progress);
        each(&report);
        reports.push(report);
    }
    reports
}

/// The report's table: one line per target and a total.
pub fn format_line(r: &TargetReport) -> String {
    format!(
        "{:<14} {:>11} {:>10.0} {:>7} {:>9} {:>10.1} {:>9} {:>8}",
        r.name,
        r.execs,
        r.execs_per_second(),
        r.panics,
        r.over_allocations,
        r.max_alloc as f64 / (1 << 20) as f64,
        r.outcomes,
        r.corpus
    )
}

pub const HEADER: &str =
    "target               execs    execs/s  panics overalloc  max MiB  outcomes   corpus";
