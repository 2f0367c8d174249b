//! `akash-devnet`: a local single-node chain that speaks the Akash API.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Parser, Subcommand};
use devnet::node::{Node, NodeConfig};

/// A local single-node chain that speaks the Akash API.
#[derive(Debug, Parser)]
#[command(name = "akash-devnet", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Start the node: a block every block time, CometBFT RPC and Cosmos gRPC on loopback.
    Start(StartArgs),
}

#[derive(Debug, clap::Args)]
struct StartArgs {
    /// Directory holding the chain's database; a fresh directory gets a new genesis.
    #[arg(long, env = "AKASH_DEVNET_HOME", default_value = ".akash-devnet")]
    home: PathBuf,
    /// Chain ID.
    #[arg(long, env = "AKASH_DEVNET_CHAIN_ID", default_value = "akash-devnet-1")]
    chain_id: String,
    /// Time between blocks (e.g. 1s, 500ms; at least 100ms).
    #[arg(long, env = "AKASH_DEVNET_BLOCK_TIME", default_value = "1s", value_parser = devnet::time::parse_duration)]
    block_time: Duration,
    /// CometBFT JSON-RPC listen address.
    #[arg(
        long,
        env = "AKASH_DEVNET_RPC_LADDR",
        default_value = "127.0.0.1:26657"
    )]
    rpc_laddr: SocketAddr,
    /// Cosmos gRPC listen address.
    #[arg(
        long,
        env = "AKASH_DEVNET_GRPC_LADDR",
        default_value = "127.0.0.1:9090"
    )]
    grpc_laddr: SocketAddr,
    /// Minimum gas prices the mempool requires (e.g. 0.025uakt, or empty for none).
    #[arg(long, env = "AKASH_DEVNET_MIN_GAS_PRICES", default_value = "0.025uakt")]
    min_gas_prices: String,
    /// Whitepaper matching: after an order has waited this many blocks, the devnet leases its
    /// cheapest bid (earliest on a tie). 0: off, the tenant picks (today's Akash).
    #[arg(long, env = "AKASH_DEVNET_MATCH_AFTER_BLOCKS", default_value_t = 0)]
    match_after_blocks: u64,
    /// Whitepaper lease confirmation: a lease without MsgWithdrawLease for this many blocks is
    /// closed, its bid deposit goes to the tenant and the order opens again. 0: off.
    #[arg(long, env = "AKASH_DEVNET_RECONFIRMATION_BLOCKS", default_value_t = 0)]
    reconfirmation_blocks: u64,
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    // Logs to stderr; stdout carries the banner (accounts and addresses) only.
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .init();
    let runtime = tokio::runtime::Runtime::new()?;
    match cli.command {
        Command::Start(args) => runtime.block_on(start(args)),
    }
}

async fn start(args: StartArgs) -> anyhow::Result<()> {
    let min_gas_prices =
        devnet::ante::parse_gas_prices(&args.min_gas_prices).map_err(anyhow::Error::msg)?;
    let config = NodeConfig {
        chain_id: args.chain_id.clone(),
        block_time: args.block_time,
        min_gas_prices,
        rules: devnet::whitepaper::WhitepaperRules {
            match_after_blocks: args.match_after_blocks,
            reconfirmation_blocks: args.reconfirmation_blocks,
        },
    };
    let chain_id = args.chain_id.clone();
    let (node, fresh) = Node::open(&args.home, config, || {
        devnet::genesis::genesis_state(&chain_id)
    })?;
    // SIGTERM is caught from before the addresses are printed: whoever reads them may stop the
    // node at once, and an uncaught SIGTERM would kill it without saving.
    let shutdown = shutdown_signal();
    print_banner(&args, fresh, node.height())?;
    let running = devnet::server::start(node, args.rpc_laddr, args.grpc_laddr).await?;
    println!("CometBFT RPC  http://{}", running.rpc_addr);
    println!("gRPC          {}", running.grpc_addr);
    running.serve_until(shutdown).await
}

/// Ctrl-C or SIGTERM (how process supervisors and test harnesses stop the node); SIGTERM's
/// handler is installed when this is called, not when the future is first polled.
fn shutdown_signal() -> impl std::future::Future<Output = ()> {
    let term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate());
    async move {
        match term {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(e) => {
                tracing::warn!("cannot listen for SIGTERM: {e}");
                let _ = tokio::signal::ctrl_c().await;
            }
        }
        tracing::info!("shutting down");
    }
}

fn print_banner(args: &StartArgs, fresh: bool, height: u64) -> anyhow::Result<()> {
    println!("akash-devnet {}", env!("CARGO_PKG_VERSION"));
    println!("chain id      {}", args.chain_id);
    println!("home          {}", args.home.display());
    if fresh {
        println!("genesis       written (fresh home)");
    } else {
        println!("resuming      at height {height}");
    }
    println!("block time    {:?}", args.block_time);
    println!();
    println!("Test accounts (public keys for local use only; never fund them on a real network)");
    println!("HD path {}", devnet::genesis::HD_PATH);
    for (i, a) in devnet::genesis::test_accounts()?.iter().enumerate() {
        println!("({i}) {}", a.address);
        println!("    mnemonic: {}", a.mnemonic);
    }
    println!();
    Ok(())
}
