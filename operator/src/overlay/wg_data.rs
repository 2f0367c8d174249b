//! The connections of WireGuard mode: plain TCP inside the WireGuard network, to the serving
//! sidecar's overlay address, with the same request/response preamble as the mTLS tunnels.
//! WireGuard authenticates the source address (a peer can only send from its own), and a peer
//! exists only for a provider whose on-chain certificate vouched for its key.

use std::net::SocketAddr;
use std::sync::Arc;

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, watch};

use super::admission::ChainAuthorizer;
use super::counters::Counters;
use super::error::OverlayError;
use super::server::{DEFAULT_MAX_CONNECTIONS, SETUP_TIMEOUT, accept, next_slot};
use super::wire::{self, TunnelRequest, TunnelResponse};
use super::wireguard::WireGuard;
use crate::gateway::tls::stopped;

/// The port the serving side listens on, on its overlay address.
pub(crate) const DATA_PORT: u16 = 8446;

/// Opens one connection of `request`'s pair through WireGuard to `route`.
pub(crate) async fn open(
    route: SocketAddr,
    request: &TunnelRequest,
) -> Result<TcpStream, OverlayError> {
    tokio::time::timeout(SETUP_TIMEOUT, async {
        let mut tcp = TcpStream::connect(route)
            .await
            .map_err(|source| OverlayError::Target {
                target: route.to_string(),
                source,
            })?;
        let _ = tcp.set_nodelay(true);
        wire::write_frame(&mut tcp, request).await?;
        let response: TunnelResponse = wire::read_frame(&mut tcp).await?;
        if !response.ok {
            return Err(OverlayError::Refused(
                response.error.unwrap_or_else(|| "no reason given".into()),
            ));
        }
        Ok(tcp)
    })
    .await
    .map_err(|_| OverlayError::Timeout("WireGuard connection setup"))?
}

/// Serves the pairs `authorizer` admits to WireGuard peers, on `listener` (bound to this side's
/// overlay address), until `shutdown`.
pub(crate) async fn serve(
    listener: TcpListener,
    wg: Arc<WireGuard>,
    authorizer: Arc<ChainAuthorizer>,
    counters: Arc<Counters>,
    mut shutdown: watch::Receiver<bool>,
) {
    let slots = Arc::new(Semaphore::new(DEFAULT_MAX_CONNECTIONS));
    loop {
        let Some(slot) = next_slot(&slots, &mut shutdown).await else {
            return;
        };
        let Some((tcp, remote)) = accept(&listener, &mut shutdown, "WireGuard").await else {
            return;
        };
        let (wg, authorizer, counters) = (wg.clone(), authorizer.clone(), counters.clone());
        let mut shutdown = shutdown.clone();
        tokio::spawn(async move {
            let _slot = slot;
            tokio::select! {
                _ = stopped(&mut shutdown) => {}
                result = serve_one(tcp, remote, &wg, &authorizer, &counters) => if let Err(e) = result {
                    tracing::debug!(%remote, error = %e, "WireGuard connection ended");
                }
            }
        });
    }
}

async fn serve_one(
    mut tcp: TcpStream,
    remote: SocketAddr,
    wg: &WireGuard,
    authorizer: &ChainAuthorizer,
    counters: &Counters,
) -> Result<(), OverlayError> {
    let _ = tcp.set_nodelay(true);
    let Some(provider) = wg.provider_at(remote.ip()) else {
        return Err(OverlayError::Refused(format!(
            "{} is no WireGuard peer's address",
            remote.ip()
        )));
    };
    let request: TunnelRequest = tokio::time::timeout(SETUP_TIMEOUT, wire::read_frame(&mut tcp))
        .await
        .map_err(|_| OverlayError::Timeout("WireGuard connection request"))??;
    super::server::answer_and_carry(
        tcp,
        &request,
        async { authorizer.authorize_peer(&provider, &request) },
        counters,
        &format!("wireguard:{provider}"),
    )
    .await
}
