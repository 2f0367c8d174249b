//! `akash-provider`: the Akash provider as a Kubernetes operator.
//!
//! Subcommands: `run` (the provider), `crd` (print the custom resource definitions) and `sdl`
//! (validate an SDL file, print its groups, manifest or version, or a `Manifest` resource);
//! `tenant` and `overlay` arrive with their issues.

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
    /// Run the provider: register on chain, bid on orders that fit the cluster, keep leases.
    Run(Box<operator::provider::config::RunArgs>),
    /// Print the custom resource definitions of akash.network/v1 (for `kubectl apply -f -`).
    Crd(crd_cmd::CrdArgs),
    /// Validate an SDL file; print its groups, manifest or manifest version.
    Sdl(sdl_cmd::SdlArgs),
}

fn main() -> ExitCode {
    match Cli::parse().command {
        Some(Command::Run(args)) => run_provider(*args),
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

fn run_provider(args: operator::provider::config::RunArgs) -> ExitCode {
    init_tracing();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("error: starting the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(operator::provider::run(args)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = format!("{e:#}"), "akash-provider stopped");
            ExitCode::FAILURE
        }
    }
}

/// Logs to stderr, filtered by `RUST_LOG` (default `info`); `AKASH_LOG_FORMAT=json` for JSON lines.
fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| "info,kube=warn,hyper=warn,tower=warn".into());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr);
    if std::env::var("AKASH_LOG_FORMAT").is_ok_and(|f| f == "json") {
        builder.json().init();
    } else {
        builder.init();
    }
}
