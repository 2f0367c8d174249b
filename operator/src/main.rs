//! `akash-provider`: the Akash provider as a Kubernetes operator.
//!
//! Subcommands arrive with their issues (`run`, `tenant`, `overlay`, `crd`, `sdl`); today the binary
//! only answers `--help` and `--version`.

use clap::Parser;

/// The Akash provider as a Kubernetes operator.
#[derive(Debug, Parser)]
#[command(name = "akash-provider", version, about, long_about = None)]
struct Cli {}

fn main() {
    Cli::parse();
    println!(
        "akash-provider {}: no subcommands yet; see --help",
        env!("CARGO_PKG_VERSION")
    );
}
