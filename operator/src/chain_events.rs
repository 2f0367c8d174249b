//! Following the chain's blocks for what their events say, for caches and pollers that would
//! otherwise ask the chain again and again (certificates, deployments' versions).

use std::sync::Arc;
use std::time::Duration;

use chain_client::events::AkashEvent;
use chain_client::{Chain, ChainError};
use futures::StreamExt;
use tokio::sync::watch;

/// One block, as a follower sees it.
#[derive(Debug, Clone, Copy)]
pub(crate) enum FollowedBlock<'a> {
    /// The Akash events of block `height`.
    Events {
        height: u64,
        events: &'a [AkashEvent],
    },
    /// A block's events could not be read and it was passed over: anything may have changed.
    Missed,
}

/// Follows the chain from block `from` (the next one when `None`) until `stop`, handing every
/// block to `on_block`. A block that cannot be fetched is asked for again; one whose events cannot
/// be decoded is passed over as [`FollowedBlock::Missed`].
pub(crate) async fn follow(
    chain: Arc<dyn Chain>,
    from: Option<u64>,
    mut stop: watch::Receiver<bool>,
    mut on_block: impl FnMut(FollowedBlock<'_>) + Send,
) {
    let from = match from {
        Some(height) => height,
        None => loop {
            match chain.latest_height().await {
                Ok(height) => break height + 1,
                Err(e) => {
                    tracing::warn!(error = %e, "cannot read the chain's height to follow its events; retrying");
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
            Some(Ok(block)) => on_block(FollowedBlock::Events {
                height: block.height,
                events: &block.events,
            }),
            Some(Err(e @ ChainError::Decode(_))) => {
                tracing::warn!(error = %e, "a block's events could not be read");
                on_block(FollowedBlock::Missed);
            }
            // The same block is asked for again.
            Some(Err(_)) => {}
            None => return,
        }
    }
}
