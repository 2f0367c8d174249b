//! The chain's certificate events, for whatever trusts certificates from a cache (the gateway's
//! client authentication, the overlay's peers): a revocation ends that trust at the next block
//! rather than when the cache entry expires.

use std::sync::Arc;

use chain_client::Chain;
use chain_client::events::AkashEvent;
use tokio::sync::watch;

use crate::chain_events::FollowedBlock;

/// What a block said about certificates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum CertificateChange<'a> {
    /// The owner revoked one of its certificates (which one, the event does not say).
    Revoked(&'a str),
    /// The owner published a certificate.
    Published(&'a str),
    /// A block's events could not be read: anything may have changed.
    Missed,
}

/// Follows the chain from block `from` (the next one when `None`) until `stop`, telling
/// `on_change` of every certificate change.
pub(crate) async fn follow(
    chain: Arc<dyn Chain>,
    from: Option<u64>,
    stop: watch::Receiver<bool>,
    mut on_change: impl FnMut(CertificateChange<'_>) + Send,
) {
    crate::chain_events::follow(chain, from, stop, |block| match block {
        FollowedBlock::Events { height, events } => {
            for event in events {
                match event {
                    AkashEvent::CertificateRevoked { owner } => {
                        tracing::info!(%owner, height, "a certificate was revoked on chain: its owner's certificates are checked again");
                        on_change(CertificateChange::Revoked(owner));
                    }
                    AkashEvent::CertificateCreated { owner } => {
                        on_change(CertificateChange::Published(owner));
                    }
                    _ => {}
                }
            }
        }
        FollowedBlock::Missed => {
            tracing::warn!("a block's events could not be read: every cached certificate is checked again");
            on_change(CertificateChange::Missed);
        }
    })
    .await;
}
