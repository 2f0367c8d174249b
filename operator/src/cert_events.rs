//! The chain's certificate events, for whatever trusts certificates from a cache (the gateway's
//! client authentication, the overlay's peers): a revocation ends that trust at the next block
//! rather than when the cache entry expires.

use std::sync::Arc;
use std::time::Duration;

use chain_client::events::AkashEvent;
use chain_client::{Chain, ChainError};
use futures::StreamExt;
use tokio::sync::watch;

/// What a block said about certificates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CertificateChange<'a> {
    /// The owner revoked one of its certificates (which one, the event does not say).
    Revoked(&'a str),
    /// The owner published a certificate.
    Published(&'a str),
    /// A block's events could not be read: anything may have changed.
    Missed,
}

/// Follows the chain from block `from` (the next one when `None`) until `stop`, telling
/// `on_change` of every certificate change.
pub async fn follow(
    chain: Arc<dyn Chain>,
    from: Option<u64>,
    mut stop: watch::Receiver<bool>,
    mut on_change: impl FnMut(CertificateChange<'_>) + Send,
) {
    let from = match from {
        Some(height) => height,
        None => loop {
            match chain.latest_height().await {
                Ok(height) => break height + 1,
                Err(e) => {
                    tracing::warn!(error = %e, "cannot read the chain's height to follow certificate events; retrying");
                    tokio::select! {
                        () = crate::gateway::tls::stopped(&mut stop) => return,
                        () = tokio::time::sleep(Duration::from_secs(2)) => {}
                    }
                }
            }
        },
    };
    let mut blocks = chain.events(from);
    loop {
        let block = tokio::select! {
            () = crate::gateway::tls::stopped(&mut stop) => return,
            block = blocks.next() => block,
        };
        match block {
            Some(Ok(block)) => {
                for event in &block.events {
                    match event {
                        AkashEvent::CertificateRevoked { owner } => {
                            tracing::info!(%owner, height = block.height, "a certificate was revoked on chain: its owner's certificates are checked again");
                            on_change(CertificateChange::Revoked(owner));
                        }
                        AkashEvent::CertificateCreated { owner } => {
                            on_change(CertificateChange::Published(owner));
                        }
                        _ => {}
                    }
                }
            }
            // The block was passed over: its events are lost.
            Some(Err(e @ ChainError::Decode(_))) => {
                tracing::warn!(error = %e, "a block's events could not be read: every cached certificate is checked again");
                on_change(CertificateChange::Missed);
            }
            // The same block is asked for again.
            Some(Err(_)) => {}
            None => return,
        }
    }
}
