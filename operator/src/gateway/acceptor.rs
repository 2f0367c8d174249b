//! The gateway's connections: TCP accepted within the global and per-source limits, the TLS
//! handshake in a task of its own under a timeout, and each connection closed once nothing was
//! received or sent on it for the idle timeout.

use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc, watch};
use tokio::time::{Instant, Sleep};
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;
use tonic::transport::server::Connected;

use super::limits::{GatewayLimits, Source, SourceLimits, SourceSlot};
use super::tls::stopped;

/// A connection whose handshake completed: the stream, the peer's address and certificates.
pub(super) struct Accepted {
    pub stream: Conn,
    pub remote: SocketAddr,
    pub certs: Arc<Vec<Vec<u8>>>,
}

/// A TLS connection that holds one of the server's connection slots and one of its source's
/// until it is dropped, and fails once idle for too long.
pub(super) struct Conn {
    stream: TlsStream<TcpStream>,
    idle_timeout: Duration,
    idle: Pin<Box<Sleep>>,
    _slot: OwnedSemaphorePermit,
    _source: SourceSlot,
}

impl Conn {
    fn active(&mut self) {
        self.idle.as_mut().reset(Instant::now() + self.idle_timeout);
    }

    fn idle_expired(&mut self, cx: &mut Context<'_>) -> bool {
        self.idle.as_mut().poll(cx).is_ready()
    }

    /// A write's outcome as the idle timer sees it: bytes written are activity, and a write still
    /// pending past the idle timeout fails (a client that stopped reading holds the connection no
    /// longer than an idle one).
    fn written(
        &mut self,
        cx: &mut Context<'_>,
        poll: Poll<std::io::Result<usize>>,
    ) -> Poll<std::io::Result<usize>> {
        match poll {
            Poll::Ready(Ok(n)) => {
                if n > 0 {
                    self.active();
                }
                Poll::Ready(Ok(n))
            }
            Poll::Pending if self.idle_expired(cx) => Poll::Ready(Err(idle_error())),
            other => other,
        }
    }
}

fn idle_error() -> std::io::Error {
    std::io::Error::new(
        std::io::ErrorKind::TimedOut,
        "nothing received or sent within the idle timeout",
    )
}

/// Polls `stream` to read into `buf`; with the poll, how many bytes it added to `buf`.
pub(crate) fn poll_read_counted<S: AsyncRead + Unpin>(
    stream: &mut S,
    cx: &mut Context<'_>,
    buf: &mut ReadBuf<'_>,
) -> (Poll<std::io::Result<()>>, usize) {
    let before = buf.filled().len();
    let poll = Pin::new(stream).poll_read(cx, buf);
    (poll, buf.filled().len().saturating_sub(before))
}

impl AsyncRead for Conn {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let this = self.get_mut();
        match poll_read_counted(&mut this.stream, cx, buf) {
            (Poll::Ready(Ok(())), read) => {
                if read > 0 {
                    this.active();
                }
                Poll::Ready(Ok(()))
            }
            (Poll::Pending, _) if this.idle_expired(cx) => Poll::Ready(Err(idle_error())),
            (other, _) => other,
        }
    }
}

impl AsyncWrite for Conn {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let this = self.get_mut();
        let poll = Pin::new(&mut this.stream).poll_write(cx, buf);
        this.written(cx, poll)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        let this = self.get_mut();
        let poll = Pin::new(&mut this.stream).poll_write_vectored(cx, bufs);
        this.written(cx, poll)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_shutdown(cx)
    }
}

/// tonic finds the client's certificates (`Request::peer_certs`) in the TLS stream's info.
impl Connected for Conn {
    type ConnectInfo = <TlsStream<TcpStream> as Connected>::ConnectInfo;

    fn connect_info(&self) -> Self::ConnectInfo {
        self.stream.connect_info()
    }
}

/// Accepts TCP connections on `listener` and completes each TLS handshake in a task of its own
/// (a slow client delays no one), until `shutdown` turns true. A connection beyond its source's
/// limits is closed at once; failed handshakes are logged and dropped.
pub(super) fn spawn_acceptor(
    listener: TcpListener,
    config: Arc<rustls::ServerConfig>,
    limits: &GatewayLimits,
    mut shutdown: watch::Receiver<bool>,
    what: &'static str,
) -> mpsc::Receiver<Accepted> {
    let (tx, rx) = mpsc::channel(64);
    let acceptor = TlsAcceptor::from(config);
    let handshakes = Arc::new(Semaphore::new(limits.max_handshakes.max(1)));
    let slots = Arc::new(Semaphore::new(limits.max_connections.max(1)));
    let sources = SourceLimits::new(
        limits.max_connections_per_source,
        limits.max_handshakes_per_source,
    );
    let (handshake_timeout, idle_timeout) = (limits.handshake_timeout, limits.idle_timeout);
    tokio::spawn(async move {
        loop {
            let (Ok(handshake), Ok(slot)) = (
                handshakes.clone().acquire_owned().await,
                slots.clone().acquire_owned().await,
            ) else {
                return;
            };
            let (tcp, remote) = tokio::select! {
                _ = stopped(&mut shutdown) => return,
                accepted = listener.accept() => match accepted {
                    Ok(pair) => pair,
                    Err(e) => {
                        tracing::warn!(gateway = what, error = %e, "accepting a connection failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                },
            };
            // Over its source's limits: closed before a byte of TLS.
            let Some(mut source) = sources.admit(Source::of(remote.ip())) else {
                continue;
            };
            let acceptor = acceptor.clone();
            let tx = tx.clone();
            tokio::spawn(async move {
                let _ = tcp.set_nodelay(true);
                let handshaken =
                    tokio::time::timeout(handshake_timeout, acceptor.accept(tcp)).await;
                drop(handshake);
                source.handshake_done();
                match handshaken {
                    Ok(Ok(stream)) => {
                        let certs = stream
                            .get_ref()
                            .1
                            .peer_certificates()
                            .map(|c| c.iter().map(|c| c.as_ref().to_vec()).collect())
                            .unwrap_or_default();
                        let conn = Conn {
                            stream,
                            idle_timeout,
                            idle: Box::pin(tokio::time::sleep(idle_timeout)),
                            _slot: slot,
                            _source: source,
                        };
                        let _ = tx
                            .send(Accepted {
                                stream: conn,
                                remote,
                                certs: Arc::new(certs),
                            })
                            .await;
                    }
                    Ok(Err(e)) => {
                        tracing::debug!(gateway = what, %remote, error = %e, "TLS handshake failed")
                    }
                    Err(_) => {
                        tracing::debug!(gateway = what, %remote, "TLS handshake timed out")
                    }
                }
            });
        }
    });
    rx
}
