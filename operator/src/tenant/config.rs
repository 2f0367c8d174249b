//! `akash-provider tenant` configuration: the controller's flags, and the CLI's subcommands.
//! Keys are files or Secrets, never flags.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Subcommand};

use crate::chain_args::ChainArgs;

/// Settings of the tenant controller.
#[derive(Debug, Clone, Args)]
pub struct TenantArgs {
    #[command(flatten)]
    pub(crate) chain: ChainArgs,
    /// Only watch `Manifest` resources in this namespace (default: every namespace).
    #[arg(long, env = "AKASH_TENANT_WATCH_NAMESPACE")]
    pub(crate) watch_namespace: Option<String>,
    /// A provider unreachable, or with services not ready, this long is replaced by another.
    #[arg(long, env = "AKASH_TENANT_FAILURE_THRESHOLD", default_value = "5m", value_parser = humantime::parse_duration)]
    pub(crate) failure_threshold: Duration,
    /// How often a running deployment's status is read from its providers.
    #[arg(long, env = "AKASH_TENANT_STATUS_INTERVAL", default_value = "10s", value_parser = humantime::parse_duration)]
    pub(crate) status_interval: Duration,
    /// About one block: how often to look while waiting for the chain.
    #[arg(long, env = "AKASH_BLOCK_INTERVAL", default_value = "1s", value_parser = humantime::parse_duration)]
    pub(crate) block_interval: Duration,
    /// Address of `/metrics` (the reconcile metrics), `/healthz` and `/readyz`.
    #[arg(long, env = "AKASH_METRICS_ADDR", default_value = "0.0.0.0:8081")]
    pub(crate) metrics_addr: std::net::SocketAddr,
}

/// `akash-provider tenant`: the controller, or one of the commands for a terminal.
#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct TenantCommand {
    #[command(subcommand)]
    pub command: Option<TenantSubcommand>,
    #[command(flatten)]
    pub controller: Option<TenantArgs>,
}

#[derive(Debug, Subcommand)]
pub enum TenantSubcommand {
    /// Deploy an SDL file: post it, wait for bids, lease the cheapest, send the manifest, and
    /// follow it until every service is ready.
    Deploy(DeployArgs),
    /// Show a deployment: its leases, providers, and the services' readiness and endpoints.
    Status(DseqArgs),
    /// Close a deployment on chain; the escrow's remainder goes back to the tenant.
    Close(DseqArgs),
    /// Print the deployment's container logs, from each provider's gateway.
    Logs(LogsArgs),
    /// Print the Kubernetes events of the deployment's leases (pods scheduled, images pulled,
    /// containers started or failing), from each provider's gateway.
    Events(EventsArgs),
    /// Run a command in one of the deployment's containers (`sh` for a shell, with `--tty
    /// --stdin`); exits with the command's exit code.
    Shell(ShellArgs),
}

#[derive(Debug, Args)]
pub struct ShellArgs {
    /// The deployment sequence `deploy` printed.
    pub(crate) dseq: u64,
    /// The service to run the command in.
    pub(crate) service: String,
    /// The command and its arguments (after `--` when they start with `-`).
    #[arg(required = true, num_args = 1.., trailing_var_arg = true)]
    pub(crate) command: Vec<String>,
    #[command(flatten)]
    pub(crate) common: CliCommon,
    /// Authenticate to the provider with a token signed by the account's key (JWT, as Akash
    /// Console does) instead of the account's certificate, which is then neither needed nor made.
    #[arg(long)]
    pub(crate) jwt: bool,
    /// Which replica of the service (its pods sorted by name), from 0.
    #[arg(long, default_value_t = 0)]
    pub(crate) replica_index: u32,
    /// Give the command a terminal (this terminal is put in raw mode while it runs).
    #[arg(long, short = 't')]
    pub(crate) tty: bool,
    /// Pass this program's input to the command.
    #[arg(long, short = 'i')]
    pub(crate) stdin: bool,
    /// The lease's group, when the deployment has several (by default the one whose manifest
    /// has the service).
    #[arg(long)]
    pub(crate) gseq: Option<u32>,
}

#[derive(Debug, Args)]
pub struct EventsArgs {
    /// The deployment sequence `deploy` printed.
    pub(crate) dseq: u64,
    #[command(flatten)]
    pub(crate) common: CliCommon,
    /// Authenticate to the provider with a token signed by the account's key (JWT, as Akash
    /// Console does) instead of the account's certificate, which is then neither needed nor made.
    #[arg(long)]
    pub(crate) jwt: bool,
    /// Keep printing events as they happen.
    #[arg(long, short = 'f')]
    pub(crate) follow: bool,
}

#[derive(Debug, Args)]
pub struct LogsArgs {
    /// The deployment sequence `deploy` printed.
    pub(crate) dseq: u64,
    #[command(flatten)]
    pub(crate) common: CliCommon,
    /// Authenticate to the provider with a token signed by the account's key (JWT, as Akash
    /// Console does) instead of the account's certificate, which is then neither needed nor made.
    #[arg(long)]
    pub(crate) jwt: bool,
    /// Only these services (repeat or comma-separate).
    #[arg(long = "service", value_delimiter = ',')]
    pub(crate) services: Vec<String>,
    /// Keep printing lines as the containers write them.
    #[arg(long, short = 'f')]
    pub(crate) follow: bool,
    /// Only the last N lines of each container's log.
    #[arg(long)]
    pub(crate) tail: Option<u32>,
}

/// What every CLI command needs.
#[derive(Debug, Args)]
pub(crate) struct CliCommon {
    #[command(flatten)]
    pub(crate) chain: ChainArgs,
    /// File holding the tenant's BIP-39 mnemonic.
    #[arg(long, env = "AKASH_KEY_FILE")]
    pub(crate) key_file: PathBuf,
    /// Where the tenant's certificate and deployment records are kept.
    #[arg(long, env = "AKASH_TENANT_HOME", default_value_os_t = default_home())]
    pub(crate) home: PathBuf,
    /// About one block: how often to look while waiting for the chain.
    #[arg(long, env = "AKASH_BLOCK_INTERVAL", default_value = "1s", value_parser = humantime::parse_duration)]
    pub(crate) block_interval: Duration,
}

fn default_home() -> PathBuf {
    std::env::var_os("HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("."))
        .join(".akash-provider/tenant")
}

#[derive(Debug, Args)]
pub struct DeployArgs {
    /// The SDL file (`deploy.yaml`).
    pub(crate) file: PathBuf,
    #[command(flatten)]
    pub(crate) common: CliCommon,
    /// Escrow deposit posted with the deployment.
    #[arg(long, default_value = "5000000uact")]
    pub(crate) deposit: String,
    /// Blocks to collect bids for before the cheapest (earliest on ties) wins.
    #[arg(long, default_value_t = 5)]
    pub(crate) wait_blocks: u32,
    /// Give up waiting for every service to be ready after this long (the deployment stays).
    #[arg(long, default_value = "10m", value_parser = humantime::parse_duration)]
    pub(crate) timeout: Duration,
    /// Post as this deployment sequence (default: the chain's current height).
    #[arg(long)]
    pub(crate) dseq: Option<u64>,
    /// Only take bids from these providers (repeat or comma-separate).
    #[arg(long = "provider", value_delimiter = ',')]
    pub(crate) providers: Vec<String>,
    /// Send the manifest to one provider only; the others fetch it from their peers.
    #[arg(long)]
    pub(crate) seed_one: bool,
}

#[derive(Debug, Args)]
pub struct DseqArgs {
    /// The deployment sequence `deploy` printed.
    pub(crate) dseq: u64,
    #[command(flatten)]
    pub(crate) common: CliCommon,
}
