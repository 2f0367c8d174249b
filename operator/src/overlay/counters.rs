//! Per-tunnel counters shared between the data plane and whoever reports on it (status, metrics).

use std::collections::HashMap;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::SystemTime;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// Counters of one tunnel (one connection pair), over all its connections.
#[derive(Debug)]
pub struct TunnelStats {
    /// Payload bytes sent to the peer through the tunnel.
    sent: AtomicU64,
    /// Payload bytes received from the peer through the tunnel.
    received: AtomicU64,
    connections: AtomicU64,
    active: AtomicU64,
    failures: AtomicU64,
    state: Mutex<State>,
    /// Turns true when the tunnel is taken down; its open connections watch it.
    closed: tokio::sync::watch::Sender<bool>,
}

#[derive(Debug, Default, Clone)]
struct State {
    last_peer_sha256: Option<String>,
    established_since: Option<SystemTime>,
    last_error: Option<String>,
}

/// A copy of a tunnel's counters.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StatsSnapshot {
    pub sent: u64,
    pub received: u64,
    /// Connections established in all.
    pub connections: u64,
    /// Connections open now.
    pub active: u64,
    /// Connections refused or failed before carrying data.
    pub failures: u64,
    /// SHA-256 (hex) of the peer's last tunnel leaf certificate.
    pub last_peer_sha256: Option<String>,
    /// Since when at least one connection has been open (none while none is).
    pub established_since: Option<SystemTime>,
    pub last_error: Option<String>,
}

impl Default for TunnelStats {
    fn default() -> Self {
        Self {
            sent: AtomicU64::new(0),
            received: AtomicU64::new(0),
            connections: AtomicU64::new(0),
            active: AtomicU64::new(0),
            failures: AtomicU64::new(0),
            state: Mutex::new(State::default()),
            closed: tokio::sync::watch::channel(false).0,
        }
    }
}

impl TunnelStats {
    /// Watches whether the tunnel was taken down ([`Counters::close`]).
    pub(crate) fn closed_signal(&self) -> tokio::sync::watch::Receiver<bool> {
        self.closed.subscribe()
    }

    pub fn snapshot(&self) -> StatsSnapshot {
        let state = self.lock().clone();
        StatsSnapshot {
            sent: self.sent.load(Ordering::Relaxed),
            received: self.received.load(Ordering::Relaxed),
            connections: self.connections.load(Ordering::Relaxed),
            active: self.active.load(Ordering::Relaxed),
            failures: self.failures.load(Ordering::Relaxed),
            last_peer_sha256: state.last_peer_sha256,
            established_since: state.established_since,
            last_error: state.last_error,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A connection was established with the peer whose leaf has this fingerprint; it counts as
    /// open until the guard is dropped (also when its task is cancelled).
    pub(crate) fn opened(self: &Arc<Self>, peer_sha256: &str) -> Active {
        self.connections.fetch_add(1, Ordering::Relaxed);
        let mut state = self.lock();
        if self.active.fetch_add(1, Ordering::Relaxed) == 0 {
            state.established_since = Some(SystemTime::now());
        }
        state.last_peer_sha256 = Some(peer_sha256.to_owned());
        Active(self.clone())
    }

    fn closed(&self) {
        let mut state = self.lock();
        if self.active.fetch_sub(1, Ordering::Relaxed) == 1 {
            state.established_since = None;
        }
    }

    pub(crate) fn failed(&self, error: String) {
        self.failures.fetch_add(1, Ordering::Relaxed);
        self.lock().last_error = Some(error);
    }
}

/// An open connection of a tunnel.
pub(crate) struct Active(Arc<TunnelStats>);

impl Drop for Active {
    fn drop(&mut self) {
        self.0.closed();
    }
}

/// Counters by tunnel key.
#[derive(Debug, Default)]
pub struct Counters {
    tunnels: Mutex<HashMap<String, Arc<TunnelStats>>>,
}

impl Counters {
    pub fn new() -> Arc<Self> {
        Arc::new(Self::default())
    }

    /// The counters of `key`, made on first use.
    pub fn stats(&self, key: &str) -> Arc<TunnelStats> {
        let mut tunnels = self.tunnels.lock().unwrap_or_else(|p| p.into_inner());
        tunnels.entry(key.to_owned()).or_default().clone()
    }

    pub fn get(&self, key: &str) -> Option<StatsSnapshot> {
        let tunnels = self.tunnels.lock().unwrap_or_else(|p| p.into_inner());
        tunnels.get(key).map(|s| s.snapshot())
    }

    pub fn snapshot(&self) -> Vec<(String, StatsSnapshot)> {
        let tunnels = self.tunnels.lock().unwrap_or_else(|p| p.into_inner());
        let mut all: Vec<_> = tunnels
            .iter()
            .map(|(k, s)| (k.clone(), s.snapshot()))
            .collect();
        all.sort_by(|a, b| a.0.cmp(&b.0));
        all
    }

    /// Forgets a tunnel that is gone (its counters keep counting for connections still open).
    pub fn remove(&self, key: &str) {
        let mut tunnels = self.tunnels.lock().unwrap_or_else(|p| p.into_inner());
        tunnels.remove(key);
    }

    /// Takes a tunnel down: forgets it and ends its open connections.
    pub fn close(&self, key: &str) {
        let removed = {
            let mut tunnels = self.tunnels.lock().unwrap_or_else(|p| p.into_inner());
            tunnels.remove(key)
        };
        if let Some(stats) = removed {
            stats.closed.send_replace(true);
        }
    }
}

/// A stream that counts what is read from and written to it into a tunnel's counters.
pub(crate) struct Counted<S> {
    inner: S,
    stats: Arc<TunnelStats>,
}

impl<S> Counted<S> {
    pub(crate) fn new(inner: S, stats: Arc<TunnelStats>) -> Self {
        Self { inner, stats }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Counted<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let Self { inner, stats } = self.get_mut();
        let (poll, n) = crate::gateway::poll_read_counted(inner, cx, buf);
        stats.received.fetch_add(n as u64, Ordering::Relaxed);
        poll
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Counted<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let Self { inner, stats } = self.get_mut();
        let poll = Pin::new(inner).poll_write(cx, buf);
        if let Poll::Ready(Ok(n)) = poll {
            stats.sent.fetch_add(n as u64, Ordering::Relaxed);
        }
        poll
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}
