//! Starts a node's interfaces (CometBFT RPC, gRPC) and its block production, and stops them.

use std::net::SocketAddr;
use std::sync::Arc;

use chain_client::akash::audit::v1::query_server::QueryServer as AuditQueryServer;
use chain_client::akash::cert::v1::query_server::QueryServer as CertQueryServer;
use chain_client::akash::deployment::v1beta4::query_server::QueryServer as DeploymentQueryServer;
use chain_client::akash::escrow::v1::query_server::QueryServer as EscrowQueryServer;
use chain_client::akash::market::v1beta5::query_server::QueryServer as MarketQueryServer;
use chain_client::akash::provider::v1beta4::query_server::QueryServer as ProviderQueryServer;
use cosmos_sdk_proto::cosmos::auth::v1beta1::query_server::QueryServer as AuthQueryServer;
use cosmos_sdk_proto::cosmos::bank::v1beta1::query_server::QueryServer as BankQueryServer;
use cosmos_sdk_proto::cosmos::tx::v1beta1::service_server::ServiceServer;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinSet;

use crate::grpc::Services;
use crate::grpc_akash::AkashQueries;
use crate::node::Node;

/// A running node: its bound addresses and its tasks.
pub struct Running {
    pub node: Arc<Node>,
    pub rpc_addr: SocketAddr,
    pub grpc_addr: SocketAddr,
    stop: watch::Sender<bool>,
    tasks: JoinSet<anyhow::Result<()>>,
}

async fn stopped(mut rx: watch::Receiver<bool>) {
    // An error means the sender is gone, which also means stop.
    let _ = rx.wait_for(|s| *s).await;
}

/// Binds both listeners (port 0 picks a free port) and starts serving and producing blocks.
///
/// A fresh chain commits its first block before either interface opens: a real node answers RPC
/// only once it has one, and clients such as CosmJS refuse a status without a block hash.
pub async fn start(
    node: Arc<Node>,
    rpc_laddr: SocketAddr,
    grpc_laddr: SocketAddr,
) -> anyhow::Result<Running> {
    if node.height() == 0 {
        let first = node.clone();
        tokio::task::spawn_blocking(move || first.produce_block()).await??;
    }
    let rpc_listener = TcpListener::bind(rpc_laddr)
        .await
        .map_err(|e| anyhow::anyhow!("binding RPC {rpc_laddr}: {e}"))?;
    let grpc_listener = TcpListener::bind(grpc_laddr)
        .await
        .map_err(|e| anyhow::anyhow!("binding gRPC {grpc_laddr}: {e}"))?;
    let rpc_addr = rpc_listener.local_addr()?;
    let grpc_addr = grpc_listener.local_addr()?;
    let (stop, stop_rx) = watch::channel(false);
    let mut tasks = JoinSet::new();

    let router =
        crate::rpc::router(node.clone()).merge(crate::ws::router(node.clone(), stop_rx.clone()));
    let rx = stop_rx.clone();
    tasks.spawn(async move {
        axum::serve(rpc_listener, router)
            .with_graceful_shutdown(stopped(rx))
            .await?;
        Ok(())
    });

    let services = Services::new(node.clone());
    let akash = AkashQueries::new(node.clone());
    let rx = stop_rx.clone();
    tasks.spawn(async move {
        tonic::transport::Server::builder()
            .add_service(ServiceServer::new(services.clone()))
            .add_service(AuthQueryServer::new(services.clone()))
            .add_service(BankQueryServer::new(services))
            .add_service(DeploymentQueryServer::new(akash.clone()))
            .add_service(MarketQueryServer::new(akash.clone()))
            .add_service(ProviderQueryServer::new(akash.clone()))
            .add_service(CertQueryServer::new(akash.clone()))
            .add_service(AuditQueryServer::new(akash.clone()))
            .add_service(EscrowQueryServer::new(akash))
            .serve_with_incoming_shutdown(
                tonic::transport::server::TcpIncoming::from(grpc_listener),
                stopped(rx),
            )
            .await?;
        Ok(())
    });

    let producer = node.clone();
    tasks.spawn(producer.run(stopped(stop_rx)));

    Ok(Running {
        node,
        rpc_addr,
        grpc_addr,
        stop,
        tasks,
    })
}

impl Running {
    /// Waits until a task ends (an error, normally) or `signal` resolves, then stops everything.
    pub async fn serve_until(
        mut self,
        signal: impl std::future::Future<Output = ()>,
    ) -> anyhow::Result<()> {
        let first = tokio::select! {
            () = signal => Ok(()),
            Some(r) = self.tasks.join_next() => r.map_err(anyhow::Error::from).and_then(|r| r),
        };
        let rest = self.shutdown_inner().await;
        first.and(rest)
    }

    /// Stops serving and block production, and waits for them to end.
    pub async fn shutdown(mut self) -> anyhow::Result<()> {
        self.shutdown_inner().await
    }

    async fn shutdown_inner(&mut self) -> anyhow::Result<()> {
        self.stop.send_replace(true);
        let mut result = Ok(());
        while let Some(r) = self.tasks.join_next().await {
            if let Err(e) = r.map_err(anyhow::Error::from).and_then(|r| r) {
                result = Err(e);
            }
        }
        result
    }
}
