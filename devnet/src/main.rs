//! `akash-devnet`: a local single-node chain that speaks the Akash API.
//!
//! The node arrives with the issue "devnet"; today the binary only answers `--help` and `--version`.

use clap::Parser;

/// A local single-node chain that speaks the Akash API.
#[derive(Debug, Parser)]
#[command(name = "akash-devnet", version, about, long_about = None)]
struct Cli {}

fn main() {
    Cli::parse();
    println!(
        "akash-devnet {}: the chain is not built yet; see --help",
        env!("CARGO_PKG_VERSION")
    );
}
