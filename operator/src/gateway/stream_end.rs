//! When a tenant's long-lived stream (logs, events, shell, status) must end on the provider's
//! side: the gateway stops, or the lease it reads closes. The lease is looked at every
//! [`LEASE_CHECK_EVERY`] with one GET of its `Lease` resource, only while a stream is open.

use std::sync::Arc;
use std::time::Duration;

use kube::ResourceExt;
use tokio::sync::watch;

use super::source::{LeaseSource, is_live};

/// Between looks at the lease of an open stream.
pub(crate) const LEASE_CHECK_EVERY: Duration = Duration::from_secs(5);

/// Why a stream was ended by the provider.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum EndReason {
    /// The gateway is stopping.
    Stopping,
    /// The lease is closing, closed or its resource is gone.
    LeaseClosed,
}

impl EndReason {
    /// The websocket close code and reason a tenant sees: 1001 (going away) when the provider
    /// stops; the Go provider's 4001 (lease not found) when the lease closed.
    pub(crate) fn close_frame(self) -> (u16, &'static str) {
        match self {
            Self::Stopping => (1001, "the provider is shutting down"),
            Self::LeaseClosed => (4001, "the lease closed"),
        }
    }
}

/// Watches what ends one stream.
#[derive(Clone)]
pub(crate) struct StreamEnd {
    stopping: watch::Receiver<bool>,
    lease: Option<(Arc<dyn LeaseSource>, String)>,
    every: Duration,
}

impl StreamEnd {
    /// Ends when the gateway stops or the Lease resource of `lease` in `leases` is no longer
    /// live.
    pub(crate) fn new(
        stopping: watch::Receiver<bool>,
        leases: Arc<dyn LeaseSource>,
        lease: &crds::resources::Lease,
    ) -> Self {
        Self {
            stopping,
            lease: Some((leases, lease.name_any())),
            every: LEASE_CHECK_EVERY,
        }
    }

    /// Ends only when the gateway stops.
    #[cfg(test)]
    pub(crate) fn on_stop(stopping: watch::Receiver<bool>) -> Self {
        Self {
            stopping,
            lease: None,
            every: LEASE_CHECK_EVERY,
        }
    }

    /// Looks at the lease every `every` instead (tests).
    #[cfg(test)]
    pub(crate) fn checking_every(mut self, every: Duration) -> Self {
        self.every = every;
        self
    }

    /// Resolves when the stream must end. A failed read of the lease is not an end: the API
    /// server may be briefly away; it is asked again at the next check.
    pub(crate) async fn wait(&mut self) -> EndReason {
        let stopping = &mut self.stopping;
        let lease = self.lease.clone();
        let every = self.every;
        let closed = async move {
            let Some((leases, name)) = lease else {
                return std::future::pending().await;
            };
            loop {
                tokio::time::sleep(every).await;
                match leases.lease(&name).await {
                    Ok(Some(lease)) if is_live(&lease) => {}
                    Ok(_) => return,
                    Err(e) => {
                        tracing::debug!(lease = name, error = %e, "stream: lease check failed")
                    }
                }
            }
        };
        tokio::select! {
            () = super::tls::stopped(stopping) => EndReason::Stopping,
            () = closed => EndReason::LeaseClosed,
        }
    }
}

#[cfg(test)]
mod tests {
    use crds::resources::{Lease, LeasePhase, LeaseRef, LeaseStatus};

    use super::*;
    use crate::gateway::source::MemoryLeaseSource;
    use crate::test_support;

    fn lease(name: &str) -> Lease {
        let lease_id = LeaseRef {
            owner: "akash1owner".into(),
            dseq: 1,
            gseq: 1,
            oseq: 1,
            provider: "akash1provider".into(),
        };
        let mut lease = test_support::lease(name, lease_id);
        lease.status = Some(LeaseStatus::default());
        lease
    }

    fn put(source: &MemoryLeaseSource, lease: Lease) {
        let mut held = source.leases.lock().unwrap();
        held.insert(lease.name_any(), lease);
    }

    #[tokio::test]
    async fn a_stream_ends_when_its_lease_closes_and_not_before() {
        let source = Arc::new(MemoryLeaseSource::default());
        put(&source, lease("a"));
        let (_stop_tx, stop) = watch::channel(false);
        let mut end = StreamEnd::new(stop, source.clone(), &lease("a"))
            .checking_every(Duration::from_millis(10));
        let waiting = tokio::spawn(async move { end.wait().await });
        // Twenty checks or so.
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert!(!waiting.is_finished(), "the lease is live");
        let mut closing = lease("a");
        closing.status.as_mut().unwrap().phase = Some(LeasePhase::Closing);
        put(&source, closing);
        assert_eq!(waiting.await.unwrap(), EndReason::LeaseClosed);
    }

    #[tokio::test]
    async fn a_stream_ends_when_its_lease_resource_is_gone() {
        let source = Arc::new(MemoryLeaseSource::default());
        let (_stop_tx, stop) = watch::channel(false);
        let mut end =
            StreamEnd::new(stop, source, &lease("gone")).checking_every(Duration::from_millis(10));
        assert_eq!(end.wait().await, EndReason::LeaseClosed);
    }

    #[tokio::test]
    async fn a_stream_ends_when_the_gateway_stops() {
        let (stop_tx, stop) = watch::channel(false);
        let mut end = StreamEnd::on_stop(stop);
        let waiting = tokio::spawn(async move { end.wait().await });
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert!(!waiting.is_finished());
        stop_tx.send(true).unwrap();
        assert_eq!(waiting.await.unwrap(), EndReason::Stopping);
    }
}
