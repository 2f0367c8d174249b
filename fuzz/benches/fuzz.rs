//! The fuzz campaign: `cargo bench -p fuzz --bench fuzz`.
//!
//! - `FUZZ_EXECS`: executions over all targets together (default 10,000,000), split by weight;
//! - `FUZZ_SEED`: the random seed (default 1); the same seed and count repeat the same run;
//! - `FUZZ_TARGETS`: a comma-separated list of target names (default: all);
//! - `FUZZ_FINDINGS`: where the inputs of findings are saved (default: `fuzz-findings` in the
//!   target directory).
//!
//! Prints per target: executions, executions per second, panics, over-allocations, the largest
//! allocation peak of one execution, distinct outcomes seen and the final corpus size; then a total
//! line and every finding. Exits with 1 when there is any finding.

use std::path::PathBuf;
use std::time::Instant;

fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name).ok().map_or(default, |v| {
        v.replace('_', "")
            .parse()
            .unwrap_or_else(|_| panic!("{name}={v} is not a number"))
    })
}

fn main() {
    let total = env_u64("FUZZ_EXECS", 10_000_000);
    let seed = env_u64("FUZZ_SEED", 1);
    let only: Vec<String> = std::env::var("FUZZ_TARGETS")
        .unwrap_or_default()
        .split(',')
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect();
    let findings_dir = std::env::var_os("FUZZ_FINDINGS")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            let tmp = std::path::Path::new(env!("CARGO_TARGET_TMPDIR"));
            tmp.parent().unwrap_or(tmp).join("fuzz-findings")
        });
    println!(
        "fuzz: {total} executions, seed {seed}, findings to {}",
        findings_dir.display()
    );
    println!("{}", fuzz::HEADER);
    let start = Instant::now();
    let reports = fuzz::campaign(total, seed, &only, &findings_dir, true, |r| {
        println!("{}", fuzz::format_line(r))
    });
    let execs: u64 = reports.iter().map(|r| r.execs).sum();
    let panics: u64 = reports.iter().map(|r| r.panics).sum();
    let over: u64 = reports.iter().map(|r| r.over_allocations).sum();
    let max = reports.iter().map(|r| r.max_alloc).max().unwrap_or(0);
    let seconds = start.elapsed().as_secs_f64();
    println!(
        "{:<14} {:>11} {:>10.0} {:>7} {:>9} {:>10.1}   ({seconds:.0} s in all, world included)",
        "total",
        execs,
        execs as f64 / reports.iter().map(|r| r.seconds).sum::<f64>().max(1e-9),
        panics,
        over,
        max as f64 / (1 << 20) as f64,
    );
    let findings: Vec<_> = reports.iter().flat_map(|r| &r.findings).collect();
    for f in &findings {
        println!(
            "FINDING {} {}: {} ({})",
            f.target,
            f.kind,
            f.detail,
            f.input.display()
        );
    }
    if !findings.is_empty() {
        std::process::exit(1);
    }
}
