//! `akash-provider`: the Akash provider as a Kubernetes operator.
//!
//! Subcommands: `run` (the provider), `tenant` (the tenant controller, or `tenant deploy|status|
//! close` from a terminal), `overlay` (the cross-provider tunnel sidecar), `crd` (print the custom resource definitions) and `sdl` (validate an
//! SDL file, print its groups, manifest or version, or a `Manifest` resource).

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
    /// The tenant controller (`Manifest` resources become deployments), or `tenant deploy FILE`,
    /// `tenant status DSEQ`, `tenant close DSEQ` from a terminal.
    Tenant(Box<operator::tenant::config::TenantCommand>),
    /// The overlay sidecar: tunnels between this provider's workloads and the ones other providers
    /// run for the same deployment.
    Overlay(Box<operator::overlay::sidecar::OverlayArgs>),
    /// Print the custom resource definitions of akash.network/v1 (for `kubectl apply -f -`).
    Crd(crd_cmd::CrdArgs),
    /// Validate an SDL file; print its groups, manifest or manifest version.
    Sdl(sdl_cmd::SdlArgs),
}

fn main() -> ExitCode {
    match Cli::parse().command {
        Some(Command::Run(args)) => run_provider(*args),
        Some(Command::Tenant(args)) => run_tenant(*args),
        Some(Command::Overlay(args)) => run_overlay(*args),
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
    block_on(operator::provider::run(args), |e| {
        tracing::error!(error = format!("{e:#}"), "akash-provider stopped");
    })
}

fn run_overlay(args: operator::overlay::sidecar::OverlayArgs) -> ExitCode {
    init_tracing();
    block_on(operator::overlay::sidecar::run(args), |e| {
        tracing::error!(error = format!("{e:#}"), "the overlay stopped");
    })
}

fn run_tenant(args: operator::tenant::config::TenantCommand) -> ExitCode {
    use operator::tenant::config::TenantSubcommand;
    use operator::tenant::{cli, cli_shell, cli_streams, run};
    let on_error = |e: anyhow::Error| eprintln!("error: {e:#}");
    match (args.command, args.controller) {
        (Some(TenantSubcommand::Deploy(a)), _) => block_on(cli::deploy(a), on_error),
        (Some(TenantSubcommand::Status(a)), _) => block_on(cli::status(a), on_error),
        (Some(TenantSubcommand::Close(a)), _) => block_on(cli::close(a), on_error),
        (Some(TenantSubcommand::Logs(a)), _) => block_on(cli_streams::logs(a), on_error),
        (Some(TenantSubcommand::Events(a)), _) => block_on(cli_streams::events(a), on_error),
        (Some(TenantSubcommand::Shell(a)), _) => block_on(cli_shell::shell(a), on_error),
        (None, _) => {
            // clap leaves an optional flattened group unset when its settings come from the
            // environment (a Deployment's env) or from a nested group: parse the controller's
            // settings on their own, from the same command line and environment.
            let controller =
                TenantEnv::parse_from(std::env::args_os().skip_while(|a| a != "tenant")).args;
            init_tracing();
            block_on(run(controller), |e| {
                tracing::error!(error = format!("{e:#}"), "the tenant controller stopped");
            })
        }
    }
}

/// The controller's settings alone.
#[derive(Debug, Parser)]
#[command(name = "akash-provider tenant")]
struct TenantEnv {
    #[command(flatten)]
    args: operator::tenant::config::TenantArgs,
}

fn block_on(
    work: impl std::future::Future<Output = anyhow::Result<()>>,
    on_error: impl FnOnce(anyhow::Error),
) -> ExitCode {
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
    match runtime.block_on(work) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            on_error(e);
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
