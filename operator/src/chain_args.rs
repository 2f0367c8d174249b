//! Where the chain is and how to pay for transactions: the settings `run` and `tenant` share.

use std::time::Duration;

use anyhow::Context;
use chain_client::keys::Key;
use chain_client::node::{NodeChain, NodeConfig};
use chain_client::signer::SignerConfig;
use chain_client::tx::{FeePolicy, GasPrice};
use clap::Args;

/// The chain endpoints and the transaction settings.
#[derive(Debug, Clone, Args)]
pub struct ChainArgs {
    /// Chain id of the network (`akashnet-2` on mainnet).
    #[arg(long, env = "AKASH_CHAIN_ID")]
    pub chain_id: String,
    /// CometBFT RPC endpoint (blocks, events, broadcasts).
    #[arg(long, env = "AKASH_RPC_URL", default_value = "http://127.0.0.1:26657")]
    pub rpc_url: String,
    /// gRPC endpoint (queries, simulation).
    #[arg(long, env = "AKASH_GRPC_URL", default_value = "http://127.0.0.1:9090")]
    pub grpc_url: String,
    /// Gas price for fees, as amount and denom.
    #[arg(long, env = "AKASH_GAS_PRICE", default_value = "0.025uakt")]
    pub gas_price: String,
    /// Gas limit = simulated gas × this factor.
    #[arg(long, env = "AKASH_GAS_ADJUSTMENT", default_value = "1.5")]
    pub gas_adjustment: String,
    /// How long to wait for a transaction to be included in a block.
    #[arg(long, env = "AKASH_TX_TIMEOUT", default_value = "60s", value_parser = humantime::parse_duration)]
    pub tx_timeout: Duration,
    /// How often to poll the node for new blocks and transaction results.
    #[arg(long, env = "AKASH_POLL_INTERVAL", default_value = "500ms", value_parser = humantime::parse_duration)]
    pub poll_interval: Duration,
}

impl ChainArgs {
    /// A chain client for `address` that holds no key: queries and events only.
    pub fn connect_read_only(&self, address: &str) -> anyhow::Result<NodeChain> {
        Ok(NodeChain::read_only(address, self.node_config()?)?)
    }

    /// A chain client signing with `key`.
    pub fn connect(&self, key: Key) -> anyhow::Result<NodeChain> {
        Ok(NodeChain::new(key, self.node_config()?)?)
    }

    fn node_config(&self) -> anyhow::Result<NodeConfig> {
        let gas_price = GasPrice::parse(&self.gas_price).context("--gas-price")?;
        let mut fee = FeePolicy::new(gas_price);
        fee.gas_adjustment =
            chain_client::tx::Dec18::parse(&self.gas_adjustment).context("--gas-adjustment")?;
        let mut signer = SignerConfig::new(self.chain_id.clone(), fee);
        signer.inclusion_timeout = self.tx_timeout;
        signer.poll_interval = self.poll_interval;
        let follow = chain_client::follow::FollowOptions {
            poll_interval: self.poll_interval,
            ..Default::default()
        };
        Ok(NodeConfig {
            grpc_url: self.grpc_url.clone(),
            rpc_url: self.rpc_url.clone(),
            request_timeout: Duration::from_secs(15),
            signer,
            follow,
        })
    }
}
