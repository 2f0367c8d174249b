//! The serving side of tunnels: accepts TLS connections from peer providers, authorizes each
//! request after the handshake, and only then dials the target and copies bytes both ways.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use rustls::sign::CertifiedKey;
use sha2::{Digest, Sha256};
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, watch};
use tokio_rustls::TlsAcceptor;

use super::counters::{Counted, Counters};
use super::error::OverlayError;
use super::tunnel_cert::{self, TunnelCert};
use super::wire::{self, TunnelRequest, TunnelResponse, pair_sni};
use crate::gateway::tls::stopped;

/// How long a peer may take for the TLS handshake and its request.
pub(crate) const SETUP_TIMEOUT: Duration = Duration::from_secs(10);
/// How long authorization plus dialing the target may take.
pub(crate) const AUTHORIZE_TIMEOUT: Duration = Duration::from_secs(10);
/// Open tunnel connections at most, by default.
pub(crate) const DEFAULT_MAX_CONNECTIONS: usize = 1024;
/// Copy buffer per direction: larger than a TLS record, so one read fills several records.
pub(crate) const COPY_BUFFER: usize = 64 * 1024;

/// The server's certificate for a connection pair, by the SNI the client sent.
pub trait ServerCerts: Send + Sync {
    fn cert_for(&self, sni: &str) -> Option<Arc<CertifiedKey>>;
}

/// Where an authorized tunnel goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthorizedTarget {
    /// `host:port` (or `ip:port`) of the service to connect to.
    pub target: String,
    /// The key its bytes are counted under in [`Counters`].
    pub tunnel_key: String,
    /// This side's WireGuard details, answering a probe that offered the caller's.
    pub wireguard: Option<super::wire::WireGuardOffer>,
}

/// Why a tunnel request is refused; the reason is sent to the peer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub reason: String,
}

/// Decides, after the handshake, whether a peer (its chain, DER leaf first) may have its request.
#[async_trait::async_trait]
pub trait Authorizer: Send + Sync {
    async fn authorize(
        &self,
        peer_chain: &[Vec<u8>],
        req: &TunnelRequest,
    ) -> Result<AuthorizedTarget, Refusal>;
}

/// Issues (and caches) a server-side tunnel certificate for every connection pair it is told
/// about, signed by the provider's on-chain certificate key. An unknown SNI gets no certificate,
/// so the handshake fails before anything else happens.
pub struct IssuingServerCerts {
    cert_pem: String,
    key_pem: String,
    valid_for: Duration,
    pairs: Mutex<HashMap<String, Pair>>,
}

struct Pair {
    request: TunnelRequest,
    issued: Option<(Arc<CertifiedKey>, SystemTime)>,
}

impl std::fmt::Debug for IssuingServerCerts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IssuingServerCerts")
            .field("key_pem", &"[redacted]")
            .field("valid_for", &self.valid_for)
            .finish_non_exhaustive()
    }
}

impl IssuingServerCerts {
    pub fn new(provider_cert_pem: &str, provider_key_pem: &str, valid_for: Duration) -> Self {
        Self {
            cert_pem: provider_cert_pem.to_owned(),
            key_pem: provider_key_pem.to_owned(),
            valid_for,
            pairs: Mutex::new(HashMap::new()),
        }
    }

    /// Serves the connection pair `req`; returns its SNI.
    pub fn allow(&self, req: &TunnelRequest) -> String {
        let sni = pair_sni(req);
        let mut pairs = self.pairs.lock().unwrap_or_else(|p| p.into_inner());
        pairs.entry(sni.clone()).or_insert_with(|| Pair {
            request: req.clone(),
            issued: None,
        });
        sni
    }

    /// Stops serving a connection pair (new handshakes for it fail).
    pub fn forget(&self, req: &TunnelRequest) {
        let mut pairs = self.pairs.lock().unwrap_or_else(|p| p.into_inner());
        pairs.remove(&pair_sni(req));
    }

    fn issue(&self, req: &TunnelRequest) -> Result<TunnelCert, OverlayError> {
        tunnel_cert::issue(
            &self.cert_pem,
            &self.key_pem,
            &req.server_claim(),
            self.valid_for,
        )
    }
}

impl ServerCerts for IssuingServerCerts {
    fn cert_for(&self, sni: &str) -> Option<Arc<CertifiedKey>> {
        let mut pairs = self.pairs.lock().unwrap_or_else(|p| p.into_inner());
        let pair = pairs.get_mut(sni)?;
        let now = SystemTime::now();
        // Renewed once two thirds of its life are over, so a peer never sees it expire.
        if let Some((key, not_after)) = &pair.issued
            && not_after
                .duration_since(now)
                .is_ok_and(|left| left > self.valid_for / 3)
        {
            return Some(key.clone());
        }
        match self.issue(&pair.request).and_then(|c| {
            let key = c.certified_key()?;
            Ok((key, c.not_after))
        }) {
            Ok((key, not_after)) => {
                pair.issued = Some((key.clone(), not_after));
                Some(key)
            }
            Err(e) => {
                tracing::warn!(sni, error = %e, "cannot issue the server tunnel certificate");
                None
            }
        }
    }
}

/// A tunnel server bound to its address.
pub struct TunnelServer {
    listener: TcpListener,
    acceptor: TlsAcceptor,
    authorizer: Arc<dyn Authorizer>,
    counters: Arc<Counters>,
    max_connections: usize,
}

impl TunnelServer {
    pub async fn bind(
        addr: SocketAddr,
        certs: Arc<dyn ServerCerts>,
        authorizer: Arc<dyn Authorizer>,
    ) -> Result<Self, OverlayError> {
        let config = super::tls::server_config(certs)?;
        let listener = TcpListener::bind(addr).await?;
        Ok(Self {
            listener,
            acceptor: TlsAcceptor::from(Arc::new(config)),
            authorizer,
            counters: Counters::new(),
            max_connections: DEFAULT_MAX_CONNECTIONS,
        })
    }

    /// Open connections at most; more wait in the kernel's backlog.
    pub fn with_max_connections(mut self, max: usize) -> Self {
        self.max_connections = max.max(1);
        self
    }

    /// Counts into these counters (shared with a reporter) instead of its own.
    pub fn with_counters(mut self, counters: Arc<Counters>) -> Self {
        self.counters = counters;
        self
    }

    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    pub fn counters(&self) -> Arc<Counters> {
        self.counters.clone()
    }

    /// Serves until `shutdown` turns true; open tunnels are closed then too.
    pub async fn run(self, mut shutdown: watch::Receiver<bool>) {
        let slots = Arc::new(Semaphore::new(self.max_connections));
        loop {
            let Some(slot) = next_slot(&slots, &mut shutdown).await else {
                return;
            };
            let Some((tcp, remote)) = accept(&self.listener, &mut shutdown, "tunnel").await else {
                return;
            };
            let conn = Connection {
                acceptor: self.acceptor.clone(),
                authorizer: self.authorizer.clone(),
                counters: self.counters.clone(),
            };
            let mut shutdown = shutdown.clone();
            tokio::spawn(async move {
                let _slot = slot;
                tokio::select! {
                    _ = stopped(&mut shutdown) => {}
                    result = conn.serve(tcp) => if let Err(e) = result {
                        tracing::debug!(%remote, error = %e, reason = e.metric_label(), "tunnel connection ended");
                    }
                }
            });
        }
    }
}

/// A connection slot of `slots`, or None once `shutdown` turns true (or the slots are closed):
/// an accept loop holds one before it accepts, so that it stops accepting at its limit.
pub(crate) async fn next_slot(
    slots: &Arc<Semaphore>,
    shutdown: &mut watch::Receiver<bool>,
) -> Option<OwnedSemaphorePermit> {
    tokio::select! {
        _ = stopped(shutdown) => None,
        slot = slots.clone().acquire_owned() => slot.ok(),
    }
}

/// The next connection on `listener`, or None once `shutdown` turns true. A failed accept (of a
/// `what` connection) is logged and tried again after a pause: the listener itself stays good.
pub(crate) async fn accept(
    listener: &TcpListener,
    shutdown: &mut watch::Receiver<bool>,
    what: &str,
) -> Option<(TcpStream, SocketAddr)> {
    loop {
        tokio::select! {
            _ = stopped(shutdown) => return None,
            accepted = listener.accept() => match accepted {
                Ok(pair) => return Some(pair),
                Err(e) => {
                    tracing::warn!(error = %e, "accepting a {what} connection failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            },
        }
    }
}

struct Connection {
    acceptor: TlsAcceptor,
    authorizer: Arc<dyn Authorizer>,
    counters: Arc<Counters>,
}

impl Connection {
    async fn serve(self, tcp: TcpStream) -> Result<(), OverlayError> {
        let _ = tcp.set_nodelay(true);
        let (tls, chain, request) = tokio::time::timeout(SETUP_TIMEOUT, async {
            let mut tls = self
                .acceptor
                .accept(tcp)
                .await
                .map_err(OverlayError::Handshake)?;
            let chain = super::tls::peer_chain(tls.get_ref().1);
            match wire::read_frame::<_, TunnelRequest>(&mut tls).await {
                Ok(request) => Ok((tls, chain, request)),
                Err(e) => {
                    // Tell the peer why, if it is still listening.
                    let _ =
                        wire::write_frame(&mut tls, &TunnelResponse::refused(e.to_string())).await;
                    let _ = tls.shutdown().await;
                    Err(e)
                }
            }
        })
        .await
        .map_err(|_| OverlayError::Timeout("tunnel handshake and request"))??;

        let leaf = chain.first().map(Sha256::digest).unwrap_or_default();
        answer_and_carry(
            tls,
            &request,
            self.authorizer.authorize(&chain, &request),
            &self.counters,
            &super::hex(&leaf),
        )
        .await
    }
}

/// After a peer's request: authorize it, connect the target (not for a probe), answer, and
/// carry bytes both ways until either side ends or the tunnel is taken down. Shared by the mTLS
/// server and the WireGuard data path; `peer` labels the peer in the counters.
pub(crate) async fn answer_and_carry<S>(
    mut conn: S,
    request: &TunnelRequest,
    authorize: impl std::future::Future<Output = Result<AuthorizedTarget, Refusal>>,
    counters: &Counters,
    peer: &str,
) -> Result<(), OverlayError>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    let authorized = tokio::time::timeout(AUTHORIZE_TIMEOUT, async {
        let target = authorize
            .await
            .map_err(|r| OverlayError::Refused(r.reason))?;
        if request.probe {
            return Ok((target, None));
        }
        let stream =
            TcpStream::connect(&target.target)
                .await
                .map_err(|source| OverlayError::Target {
                    target: target.target.clone(),
                    source,
                })?;
        Ok::<_, OverlayError>((target, Some(stream)))
    })
    .await
    .unwrap_or(Err(OverlayError::Timeout("tunnel authorization")));
    let (target, stream) = match authorized {
        Ok(pair) => pair,
        Err(e) => {
            let reason = match &e {
                OverlayError::Refused(reason) => reason.clone(),
                // The peer learns that the target is down, not where it is.
                OverlayError::Target { .. } => "the tunnel target is unreachable".into(),
                other => other.to_string(),
            };
            tracing::info!(owner = %request.owner, dseq = request.dseq, error = %e, "tunnel refused");
            let _ = wire::write_frame(&mut conn, &TunnelResponse::refused(reason)).await;
            let _ = conn.shutdown().await;
            return Err(e);
        }
    };
    let response = TunnelResponse {
        wireguard: target.wireguard.clone(),
        ..TunnelResponse::ok()
    };
    wire::write_frame(&mut conn, &response).await?;
    let Some(mut stream) = stream else {
        // A probe: authorized, and nothing connected.
        let _ = conn.shutdown().await;
        return Ok(());
    };
    let _ = stream.set_nodelay(true);

    let stats = counters.stats(&target.tunnel_key);
    let mut closed = stats.closed_signal();
    let _active = stats.opened(peer);
    let mut tunnel = Counted::new(conn, stats.clone());
    tokio::select! {
        copied = tokio::io::copy_bidirectional_with_sizes(
            &mut tunnel,
            &mut stream,
            COPY_BUFFER,
            COPY_BUFFER,
        ) => { copied?; }
        // The tunnel was taken down (its lease closed): its open connections end too.
        _ = closed.wait_for(|c| *c) => {}
    }
    Ok(())
}
