//! SDL files per second: parse + validate + groups + manifest + version, over every file of
//! `testdata/sdl/awesome-akash`, for this crate and for the official TypeScript SDK
//! (`sdk-ref/sdl-bench.mjs`) on the same files in the same run.
//!
//! Run with `cargo bench -p crds --bench sdl_throughput`. Set `SDL_BENCH_SECONDS` (default 3) for
//! the minimum time of each side. `cargo test` runs it at 0.2 s a side.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use crds::sdl::Sdl;

fn main() {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let dir = repo.join("testdata/sdl/awesome-akash");
    // `cargo bench` passes `--bench`. Under `cargo test` (the target has `test = true`) the bench
    // runs at a small size, so that it cannot rot, and a side that fails fails the test.
    let small = !std::env::args().any(|a| a == "--bench");
    let min_seconds: f64 = std::env::var("SDL_BENCH_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(if small { 0.2 } else { 3.0 });

    let mut paths: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", dir.display()))
        .map(|e| e.expect("a directory entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "yaml" || x == "yml"))
        .collect();
    paths.sort();
    let texts: Vec<String> = paths
        .iter()
        .map(|p| std::fs::read_to_string(p).expect("a readable SDL file"))
        .collect();

    let pass = || {
        let mut accepted = 0usize;
        for text in &texts {
            if let Ok(sdl) = Sdl::parse(text) {
                std::hint::black_box(sdl.groups());
                std::hint::black_box(sdl.manifest());
                std::hint::black_box(sdl.manifest_version());
                accepted += 1;
            }
        }
        accepted
    };
    let accepted = pass();
    let start = Instant::now();
    let mut passes = 0u32;
    while start.elapsed().as_secs_f64() < min_seconds {
        std::hint::black_box(pass());
        passes += 1;
    }
    let seconds = start.elapsed().as_secs_f64();
    let rust = (texts.len() as f64 * f64::from(passes)) / seconds;
    println!(
        "rust  (crds):      {rust:>10.0} files/s  ({} files, {accepted} accepted, {passes} passes in {seconds:.2}s)",
        texts.len()
    );

    let out = Command::new("node")
        .arg(repo.join("sdk-ref/sdl-bench.mjs"))
        .arg(&dir)
        .arg(min_seconds.to_string())
        .current_dir(&repo)
        .output();
    match out {
        Ok(out) if out.status.success() => {
            let line = String::from_utf8_lossy(&out.stdout);
            let value: serde_json::Value =
                serde_json::from_str(line.trim()).expect("sdl-bench.mjs prints one JSON line");
            let sdk = value["files_per_second"]
                .as_f64()
                .expect("files_per_second");
            println!(
                "typescript (SDK):  {sdk:>10.0} files/s  ({} passes in {:.2}s)",
                value["passes"],
                value["seconds"].as_f64().unwrap_or_default()
            );
            println!("ratio rust / sdk:  {:>10.1}x", rust / sdk);
        }
        Ok(out) => {
            let error = String::from_utf8_lossy(&out.stderr);
            assert!(!small, "the SDK side failed: {error}");
            eprintln!("the SDK side failed: {error}");
        }
        Err(e) => {
            assert!(!small, "the SDK side needs node: {e}");
            eprintln!("the SDK side needs node: {e}");
        }
    }
    assert!(accepted > 0 && rust > 0.0, "no SDL file was read");
}
