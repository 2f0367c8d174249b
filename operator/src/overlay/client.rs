//! The calling side of one tunnel (connection pair): a local listener the workloads connect to;
//! each local connection becomes one TLS connection to the peer provider's tunnel server.

use std::collections::HashSet;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, RwLock};
use std::time::{Duration, SystemTime};

use chain_client::cert::OnChainCertificate;
use rustls::pki_types::ServerName;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, watch};
use tokio::task::JoinHandle;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;

use super::counters::{Counted, Counters, TunnelStats};
use super::error::OverlayError;
use super::local_ports::{self, PortRange};
use super::server::{COPY_BUFFER, DEFAULT_MAX_CONNECTIONS, next_slot};
use super::tunnel_cert::{self, TunnelCert, VerifiedTunnelPeer};
use super::wire::{self, TunnelRequest, TunnelResponse, WireGuardOffer, pair_sni};
use crate::gateway::tls::stopped;

/// How long dialing, the handshake, the server check and the preamble may take together.
pub(crate) const SETUP_TIMEOUT: Duration = Duration::from_secs(10);

/// Decides, after the handshake, whether the server is the peer this tunnel is meant for.
#[async_trait::async_trait]
pub trait ServerVerifier: Send + Sync {
    /// `server_chain` is the server's chain, DER leaf first.
    async fn verify(&self, server_chain: &[Vec<u8>]) -> Result<VerifiedTunnelPeer, OverlayError>;
}

/// Checks the server against on-chain certificates the caller looked up: a valid tunnel chain of
/// `provider`, whose claim is the server side of `request`.
#[derive(Debug, Clone)]
pub struct OnChainServerVerifier {
    pub provider: String,
    pub on_chain: Vec<OnChainCertificate>,
    pub request: TunnelRequest,
}

#[async_trait::async_trait]
impl ServerVerifier for OnChainServerVerifier {
    async fn verify(&self, server_chain: &[Vec<u8>]) -> Result<VerifiedTunnelPeer, OverlayError> {
        let peer = tunnel_cert::verify(server_chain, &self.on_chain, SystemTime::now())?;
        if peer.provider != self.provider {
            return Err(OverlayError::WrongPeer {
                expected: self.provider.clone(),
                got: peer.provider,
            });
        }
        let expected = self.request.server_claim();
        if peer.claim != expected {
            return Err(OverlayError::Claim(format!(
                "the server claims {}, expected {}",
                peer.claim.to_uri(),
                expected.to_uri()
            )));
        }
        Ok(peer)
    }
}

/// What a tunnel client needs.
pub struct TunnelClientConfig {
    /// The peer's tunnel server, `host:port`.
    pub peer: String,
    pub request: TunnelRequest,
    /// This side's certificate for the pair (side = client).
    pub cert: TunnelCert,
    pub verifier: Arc<dyn ServerVerifier>,
    /// The key this tunnel's bytes are counted under.
    pub tunnel_key: String,
    pub counters: Arc<Counters>,
}

/// The client of one connection pair.
#[derive(Clone)]
pub struct TunnelClient {
    inner: Arc<Inner>,
}

struct Inner {
    peer: String,
    request: TunnelRequest,
    sni: ServerName<'static>,
    connector: RwLock<TlsConnector>,
    verifier: Arc<dyn ServerVerifier>,
    stats: Arc<TunnelStats>,
    max_connections: usize,
    /// Where connections go inside WireGuard, once the pair uses it (none: over mTLS).
    wireguard_route: RwLock<Option<SocketAddr>>,
    /// Who may connect locally (the lease's pods); `None`: anyone.
    allowed_sources: RwLock<Option<Arc<HashSet<IpAddr>>>>,
}

impl TunnelClient {
    pub fn new(config: TunnelClientConfig) -> Result<Self, OverlayError> {
        let sni = ServerName::try_from(pair_sni(&config.request))
            .map_err(|e| OverlayError::Tls(e.to_string()))?;
        let connector = TlsConnector::from(Arc::new(super::tls::client_config(&config.cert)?));
        Ok(Self {
            inner: Arc::new(Inner {
                peer: config.peer,
                request: config.request,
                sni,
                connector: RwLock::new(connector),
                verifier: config.verifier,
                stats: config.counters.stats(&config.tunnel_key),
                max_connections: DEFAULT_MAX_CONNECTIONS,
                wireguard_route: RwLock::new(None),
                allowed_sources: RwLock::new(None),
            }),
        })
    }

    /// Presents `cert` from the next connection on (a renewed tunnel certificate).
    pub(crate) fn set_cert(&self, cert: &TunnelCert) -> Result<(), OverlayError> {
        let connector = TlsConnector::from(Arc::new(super::tls::client_config(cert)?));
        *self
            .inner
            .connector
            .write()
            .unwrap_or_else(|p| p.into_inner()) = connector;
        Ok(())
    }

    /// Carries new connections through WireGuard to `route` (the server's overlay address and
    /// data port), or over mTLS again with `None`.
    pub(crate) fn set_wireguard_route(&self, route: Option<SocketAddr>) {
        *self
            .inner
            .wireguard_route
            .write()
            .unwrap_or_else(|p| p.into_inner()) = route;
    }

    /// Lets only `sources` connect locally from now on (`None`: anyone).
    pub(crate) fn set_allowed_sources(&self, sources: Option<Arc<HashSet<IpAddr>>>) {
        *self
            .inner
            .allowed_sources
            .write()
            .unwrap_or_else(|p| p.into_inner()) = sources;
    }

    fn source_allowed(&self, ip: IpAddr) -> bool {
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
            v4 => v4,
        };
        self.inner
            .allowed_sources
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .as_ref()
            .is_none_or(|set| set.contains(&ip))
    }

    pub(crate) fn wireguard_route(&self) -> Option<SocketAddr> {
        *self
            .inner
            .wireguard_route
            .read()
            .unwrap_or_else(|p| p.into_inner())
    }

    /// Checks the WireGuard path of the pair: the server authorizes a probe sent through it.
    pub(crate) async fn probe_wireguard(&self, route: SocketAddr) -> Result<(), OverlayError> {
        let request = TunnelRequest {
            probe: true,
            ..self.inner.request.clone()
        };
        super::wg_data::open(route, &request).await.map(|_| ())
    }

    pub fn stats(&self) -> Arc<TunnelStats> {
        self.inner.stats.clone()
    }

    /// Opens one tunnel connection: dial, handshake, check the server, request, expect ok.
    pub async fn open(&self) -> Result<(TlsStream<TcpStream>, VerifiedTunnelPeer), OverlayError> {
        tokio::time::timeout(SETUP_TIMEOUT, self.inner.exchange(false, None))
            .await
            .map_err(|_| OverlayError::Timeout("tunnel setup"))?
            .map(|(tls, peer, _)| (tls, peer))
    }

    /// Checks the whole path without connecting the target: dial, handshake, check the server,
    /// and have it authorize this pair. The peer it verified on success.
    /// With `wireguard`, this side's WireGuard details go along, and the server's come back if
    /// it runs WireGuard.
    pub async fn probe(
        &self,
        wireguard: Option<WireGuardOffer>,
    ) -> Result<(VerifiedTunnelPeer, Option<WireGuardOffer>), OverlayError> {
        tokio::time::timeout(SETUP_TIMEOUT, self.inner.exchange(true, wireguard))
            .await
            .map_err(|_| OverlayError::Timeout("tunnel probe"))?
            .map(|(_, peer, theirs)| (peer, theirs))
    }

    /// Accepts local connections on `local` and carries each through its own tunnel connection,
    /// until the handle is stopped.
    pub async fn listen(&self, local: SocketAddr) -> Result<ClientHandle, OverlayError> {
        self.listen_on(TcpListener::bind(local).await?)
    }

    /// [`TunnelClient::listen`] on a free port of `ports` on `ip`, searched from a port derived
    /// from `key` (see [`local_ports::bind_in`]; `flag` names the range in errors).
    pub(crate) async fn listen_in(
        &self,
        ip: IpAddr,
        ports: PortRange,
        key: &str,
        flag: &str,
    ) -> Result<ClientHandle, OverlayError> {
        let listener = local_ports::bind_in(ip, ports, key, flag).await?;
        self.listen_on(listener)
    }

    fn listen_on(&self, listener: TcpListener) -> Result<ClientHandle, OverlayError> {
        let local_addr = listener.local_addr()?;
        let (stop, mut shutdown) = watch::channel(false);
        let client = self.clone();
        let task = tokio::spawn(async move {
            let slots = Arc::new(Semaphore::new(client.inner.max_connections));
            loop {
                let Some(slot) = next_slot(&slots, &mut shutdown).await else {
                    return;
                };
                let local = tokio::select! {
                    _ = stopped(&mut shutdown) => return,
                    accepted = listener.accept() => match accepted {
                        Ok((stream, from)) if client.source_allowed(from.ip()) => stream,
                        Ok((_, from)) => {
                            // Another lease's pod (or anything else) that found the port.
                            tracing::warn!(%from, peer = %client.inner.peer, "refused a local connection from a source that is not one of the lease's pods");
                            client.inner.stats.failed(format!("local connection from {from} refused: not a pod of the lease"));
                            continue;
                        }
                        Err(e) => {
                            tracing::warn!(error = %e, "accepting a local tunnel connection failed");
                            tokio::time::sleep(Duration::from_millis(50)).await;
                            continue;
                        }
                    },
                };
                let client = client.clone();
                let mut shutdown = shutdown.clone();
                tokio::spawn(async move {
                    let _slot = slot;
                    tokio::select! {
                        _ = stopped(&mut shutdown) => {}
                        _ = client.carry(local) => {}
                    }
                });
            }
        });
        Ok(ClientHandle {
            local_addr,
            stop,
            task,
        })
    }

    /// Carries one local connection; a failure closes it (by dropping) and is recorded.
    async fn carry(&self, mut local: TcpStream) {
        let _ = local.set_nodelay(true);
        let stats = &self.inner.stats;
        if let Some(route) = self.wireguard_route() {
            let remote = match super::wg_data::open(route, &self.inner.request).await {
                Ok(remote) => remote,
                Err(e) => {
                    tracing::info!(peer = %self.inner.peer, %route, error = %e, reason = e.metric_label(), "WireGuard connection failed");
                    stats.failed(e.to_string());
                    return;
                }
            };
            let _active = stats.opened(&format!("wireguard:{route}"));
            let mut tunnel = Counted::new(remote, stats.clone());
            let _ = tokio::io::copy_bidirectional_with_sizes(
                &mut local,
                &mut tunnel,
                COPY_BUFFER,
                COPY_BUFFER,
            )
            .await;
            return;
        }
        let (tls, peer) = match self.open().await {
            Ok(pair) => pair,
            Err(e) => {
                tracing::info!(peer = %self.inner.peer, error = %e, reason = e.metric_label(), "tunnel failed");
                stats.failed(e.to_string());
                return;
            }
        };
        let _active = stats.opened(&peer.leaf_sha256_hex);
        let mut tunnel = Counted::new(tls, stats.clone());
        if let Err(e) = tokio::io::copy_bidirectional_with_sizes(
            &mut local,
            &mut tunnel,
            COPY_BUFFER,
            COPY_BUFFER,
        )
        .await
        {
            tracing::debug!(peer = %self.inner.peer, error = %e, "tunnel connection ended with an error");
        }
    }
}

impl Inner {
    async fn exchange(
        &self,
        probe: bool,
        wireguard: Option<WireGuardOffer>,
    ) -> Result<
        (
            TlsStream<TcpStream>,
            VerifiedTunnelPeer,
            Option<WireGuardOffer>,
        ),
        OverlayError,
    > {
        let tcp = TcpStream::connect(&self.peer)
            .await
            .map_err(|source| OverlayError::Target {
                target: self.peer.clone(),
                source,
            })?;
        let _ = tcp.set_nodelay(true);
        let connector = self
            .connector
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        let mut tls = connector
            .connect(self.sni.clone(), tcp)
            .await
            .map_err(OverlayError::Handshake)?;
        let chain = super::tls::peer_chain(tls.get_ref().1);
        let peer = self.verifier.verify(&chain).await?;
        let request = TunnelRequest {
            probe,
            wireguard,
            ..self.request.clone()
        };
        wire::write_frame(&mut tls, &request).await?;
        let response: TunnelResponse = wire::read_frame(&mut tls).await?;
        if !response.ok {
            return Err(OverlayError::Refused(
                response.error.unwrap_or_else(|| "no reason given".into()),
            ));
        }
        Ok((tls, peer, response.wireguard))
    }
}

/// A running client listener.
pub struct ClientHandle {
    local_addr: SocketAddr,
    stop: watch::Sender<bool>,
    task: JoinHandle<()>,
}

impl ClientHandle {
    /// Where the workloads connect (the bound port when asked for port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Stops listening and closes the tunnel's open connections.
    pub async fn stop(self) {
        let _ = self.stop.send(true);
        let _ = self.task.await;
    }
}
