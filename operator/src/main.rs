//! `akash-provider`: the Akash provider as a Kubernetes operator.
//!
//! Subcommands: `crd` (print the custom resource definitions) and `sdl` (validate an SDL file, print
//! its groups, manifest or version, or a `Manifest` resource); `run`, `tenant` and `overlay` arrive
//! with their issues.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod crd_cmd;
mod sdl_cmd;
mod to_cr;

/// The Akash provider as a Kubernetes operator.
#[derive(Debug, Parser)]
#[command(name = "akash-provider", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Print the custom resource definitions of akash.network/v1 (for `kubectl apply -f -`).
    Crd(crd_cmd::CrdArgs),
    /// Validate an SDL file; print its groups, manifest or manifest version.
    Sdl(sdl_cmd::SdlArgs),
}

fn main() -> ExitCode {
    match Cli::parse().command {
        Some(Command::Crd(args)) => crd_cmd::run(&args),
        Some(Command::Sdl(args)) => sdl_cmd::run(&args),
        None => {
            println!(
                "akash-provider {}: see --help for the subcommands",
                env!("CARGO_PKG_VERSION")
            );
            ExitCode::SUCCESS
        }
    }
}
