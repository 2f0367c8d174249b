//! [`NodeChain`]: the [`Chain`] over a real node. Queries and simulation go to the node's gRPC
//! endpoint, broadcasts, transaction look-ups and block results to its CometBFT RPC; transactions
//! are signed by one [`Signer`] for the client's key.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use futures::stream::BoxStream;

use crate::chain::{
    AccountInfo, BidFilters, CertificateFilter, CertificateResponse, Chain, DeploymentFilters,
    LeaseFilters, MarketParams, Order, OrderFilters, Page, PageRequest, Provider, QueryBidResponse,
    QueryDeploymentResponse, QueryLeaseResponse, TxResult,
};
use crate::error::{ChainError, Result};
use crate::events::BlockEvents;
use crate::follow::{FollowOptions, follow};
use crate::grpc::GrpcClient;
use crate::keys::Key;
use crate::rpc::CometRpc;
use crate::signer::{Signer, SignerConfig};
use crate::transport::{CheckTxResult, TxTransport};

/// The raw node calls of the transaction path, split between gRPC and CometBFT RPC.
pub struct NodeTransport {
    pub grpc: GrpcClient,
    pub rpc: Arc<CometRpc>,
}

#[async_trait]
impl TxTransport for NodeTransport {
    async fn account(&self, address: &str) -> Result<AccountInfo> {
        self.grpc.account(address).await
    }

    async fn simulate(&self, tx_bytes: Vec<u8>) -> Result<u64> {
        self.grpc.simulate(tx_bytes).await
    }

    async fn broadcast_sync(&self, tx_bytes: Vec<u8>) -> Result<CheckTxResult> {
        self.rpc.broadcast_tx_sync(&tx_bytes).await
    }

    async fn get_tx(&self, hash: &str) -> Result<Option<TxResult>> {
        self.rpc.tx(hash).await
    }
}

/// Where the node is and how to talk to it.
#[derive(Debug, Clone)]
pub struct NodeConfig {
    /// e.g. `http://127.0.0.1:9090`
    pub grpc_url: String,
    /// e.g. `http://127.0.0.1:26657`
    pub rpc_url: String,
    /// Bound on each request.
    pub request_timeout: Duration,
    pub signer: SignerConfig,
    pub follow: FollowOptions,
}

/// The Akash chain through one node.
pub struct NodeChain {
    access: Access,
    rpc: Arc<CometRpc>,
    follow: FollowOptions,
}

/// Whether the client holds a key.
enum Access {
    Signing(Box<Signer<NodeTransport>>),
    /// Queries and events only, on behalf of `address`: no key in the process at all.
    ReadOnly {
        address: String,
        transport: NodeTransport,
    },
}

impl NodeChain {
    /// Builds the clients (connections are made on first use).
    pub fn new(key: Key, config: NodeConfig) -> Result<Self> {
        let (transport, rpc) = Self::transport(&config)?;
        Ok(Self {
            access: Access::Signing(Box::new(Signer::new(key, transport, config.signer))),
            rpc,
            follow: config.follow,
        })
    }

    /// A client that queries and follows the chain for `address` and signs nothing: it holds
    /// no key, and [`Chain::broadcast`] refuses.
    pub fn read_only(address: &str, config: NodeConfig) -> Result<Self> {
        match address.parse::<cosmrs::AccountId>() {
            Ok(id) if id.prefix() == "akash" => {}
            _ => {
                return Err(ChainError::Invalid(format!(
                    "{address:?} is not an akash bech32 address"
                )));
            }
        }
        let (transport, rpc) = Self::transport(&config)?;
        Ok(Self {
            access: Access::ReadOnly {
                address: address.to_owned(),
                transport,
            },
            rpc,
            follow: config.follow,
        })
    }

    fn transport(config: &NodeConfig) -> Result<(NodeTransport, Arc<CometRpc>)> {
        let rpc = Arc::new(CometRpc::new(&config.rpc_url, config.request_timeout)?);
        let grpc = GrpcClient::new(&config.grpc_url, config.request_timeout)?;
        Ok((
            NodeTransport {
                grpc,
                rpc: rpc.clone(),
            },
            rpc,
        ))
    }

    fn grpc(&self) -> &GrpcClient {
        match &self.access {
            Access::Signing(signer) => &signer.transport().grpc,
            Access::ReadOnly { transport, .. } => &transport.grpc,
        }
    }
}

#[async_trait]
impl Chain for NodeChain {
    fn address(&self) -> &str {
        match &self.access {
            Access::Signing(signer) => signer.address(),
            Access::ReadOnly { address, .. } => address,
        }
    }

    async fn latest_height(&self) -> Result<u64> {
        self.rpc.latest_height().await
    }

    async fn account(&self, address: &str) -> Result<AccountInfo> {
        self.grpc().account(address).await
    }

    async fn balance(&self, address: &str, denom: &str) -> Result<u128> {
        self.grpc().balance(address, denom).await
    }

    async fn orders(&self, filters: OrderFilters, page: PageRequest) -> Result<Page<Order>> {
        self.grpc().orders(filters, page).await
    }

    async fn bids(&self, filters: BidFilters, page: PageRequest) -> Result<Page<QueryBidResponse>> {
        self.grpc().bids(filters, page).await
    }

    async fn leases(
        &self,
        filters: LeaseFilters,
        page: PageRequest,
    ) -> Result<Page<QueryLeaseResponse>> {
        self.grpc().leases(filters, page).await
    }

    async fn deployments(
        &self,
        filters: DeploymentFilters,
        page: PageRequest,
    ) -> Result<Page<QueryDeploymentResponse>> {
        self.grpc().deployments(filters, page).await
    }

    async fn providers(&self, page: PageRequest) -> Result<Page<Provider>> {
        self.grpc().providers(page).await
    }

    async fn provider(&self, owner: &str) -> Result<Option<Provider>> {
        self.grpc().provider(owner).await
    }

    async fn certificates(
        &self,
        filter: CertificateFilter,
        page: PageRequest,
    ) -> Result<Page<CertificateResponse>> {
        self.grpc().certificates(filter, page).await
    }

    async fn market_params(&self) -> Result<MarketParams> {
        self.grpc().market_params().await
    }

    async fn provider_audited_attributes(
        &self,
        owner: &str,
    ) -> Result<Vec<crate::akash::audit::v1::AuditedProvider>> {
        self.grpc().provider_audited_attributes(owner).await
    }

    async fn broadcast(&self, msgs: Vec<prost_types::Any>) -> Result<TxResult> {
        match &self.access {
            Access::Signing(signer) => signer.broadcast(&msgs).await,
            Access::ReadOnly { address, .. } => Err(ChainError::Invalid(format!(
                "this client of {address} holds no key: it signs no transaction"
            ))),
        }
    }

    fn events(&self, from_height: u64) -> BoxStream<'static, Result<BlockEvents>> {
        follow(self.rpc.clone(), from_height, self.follow)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tx::{FeePolicy, GasPrice};

    fn config(grpc_url: &str, rpc_url: &str) -> NodeConfig {
        NodeConfig {
            grpc_url: grpc_url.into(),
            rpc_url: rpc_url.into(),
            request_timeout: Duration::from_secs(2),
            signer: SignerConfig::new(
                "akash-devnet",
                FeePolicy::new(GasPrice::parse("0.025uakt").unwrap()),
            ),
            follow: FollowOptions::default(),
        }
    }

    fn closed_port() -> u16 {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    }

    #[tokio::test]
    async fn a_node_chain_signs_as_its_key_and_reports_an_absent_node() {
        let key = Key::random("akash").unwrap();
        let address = key.address().to_string();
        let port = closed_port();
        let url = format!("http://127.0.0.1:{port}");
        let chain: Arc<dyn Chain> = Arc::new(NodeChain::new(key, config(&url, &url)).unwrap());
        assert_eq!(chain.address(), address);
        assert_eq!(
            chain.latest_height().await.unwrap_err().metric_label(),
            "transport"
        );
        // Broadcasting first reads the account over gRPC: the same failure, typed.
        let err = chain
            .broadcast(vec![crate::to_any(
                &crate::akash::market::v1beta5::MsgWithdrawLease::default(),
            )])
            .await
            .unwrap_err();
        assert_eq!(err.metric_label(), "transport", "{err:?}");
    }

    #[tokio::test]
    async fn a_read_only_node_chain_queries_for_its_address_and_signs_nothing() {
        let address = Key::random("akash").unwrap().address().to_string();
        let port = closed_port();
        let url = format!("http://127.0.0.1:{port}");
        let chain: Arc<dyn Chain> =
            Arc::new(NodeChain::read_only(&address, config(&url, &url)).unwrap());
        assert_eq!(chain.address(), address);
        assert_eq!(
            chain.latest_height().await.unwrap_err().metric_label(),
            "transport",
            "queries go to the node"
        );
        // Refused before anything is sent (a signing client would first read the account).
        let err = chain
            .broadcast(vec![crate::to_any(
                &crate::akash::market::v1beta5::MsgWithdrawLease::default(),
            )])
            .await
            .unwrap_err();
        assert!(
            matches!(&err, ChainError::Invalid(m) if m.contains("holds no key")),
            "{err:?}"
        );
        assert!(NodeChain::read_only("cosmos1notakash", config(&url, &url)).is_err());
    }

    #[test]
    fn bad_urls_are_refused_up_front() {
        let key = || Key::random("akash").unwrap();
        assert!(NodeChain::new(key(), config("http://127.0.0.1:9090", "not a url")).is_err());
        assert!(NodeChain::new(key(), config("::", "http://127.0.0.1:26657")).is_err());
    }
}
