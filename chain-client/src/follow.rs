//! Following the chain block by block without ever skipping a height.
//!
//! [`HeightCursor`] is the pure part: given the last delivered height and the chain's latest
//! height, which heights come next. [`follow`] drives it over a [`BlockSource`] (the CometBFT RPC
//! client, or a fake): a failed request (the node restarted, the connection dropped, we were
//! switched to a node that lags behind) is reported as an `Err` item and retried from the same
//! height, so the stream carries every block exactly once, in order.

use std::collections::VecDeque;
use std::ops::RangeInclusive;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use futures::stream::{self, BoxStream};

use crate::error::{ChainError, Result};
use crate::events::{BlockEvents, BlockResults, decode_block_results};

/// Where the event stream stands: the next height to deliver.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HeightCursor {
    next: u64,
    max_batch: u64,
}

impl HeightCursor {
    /// At most this many heights are planned at once, so a consumer that was far behind catches
    /// up in bounded steps.
    pub const DEFAULT_BATCH: u64 = 100;

    /// Starts with `from_height` (the first block to deliver; heights start at 1).
    pub fn starting_at(from_height: u64) -> Self {
        Self {
            next: from_height.max(1),
            max_batch: Self::DEFAULT_BATCH,
        }
    }

    /// Resumes after a block that was already delivered (e.g. persisted before a restart).
    pub fn after(last_delivered: u64) -> Self {
        Self::starting_at(last_delivered.saturating_add(1))
    }

    /// Sets the largest number of heights per plan (at least 1).
    pub fn with_batch(mut self, max_batch: u64) -> Self {
        self.max_batch = max_batch.max(1);
        self
    }

    /// The next height to deliver.
    pub fn next_height(&self) -> u64 {
        self.next
    }

    /// The last height delivered, if any.
    pub fn last_delivered(&self) -> Option<u64> {
        self.next.checked_sub(1).filter(|h| *h > 0)
    }

    /// The heights to fetch now, given the chain's latest height: empty while the chain (or the
    /// node we talk to) is not past the last delivered block.
    pub fn plan(&self, latest: u64) -> Option<RangeInclusive<u64>> {
        if latest < self.next {
            return None;
        }
        let end = latest.min(self.next.saturating_add(self.max_batch - 1));
        Some(self.next..=end)
    }

    /// Marks `height` delivered. Only the next height may be delivered: anything else would
    /// skip or repeat a block, and is refused.
    pub fn delivered(&mut self, height: u64) -> Result<()> {
        if height != self.next {
            return Err(ChainError::Invalid(format!(
                "block {height} delivered while {} was next",
                self.next
            )));
        }
        self.next += 1;
        Ok(())
    }
}

/// What [`follow`] needs from a node.
#[async_trait]
pub trait BlockSource: Send + Sync {
    /// The latest committed height.
    async fn latest_height(&self) -> Result<u64>;
    /// CometBFT `block_results` at `height`.
    async fn block_results(&self, height: u64) -> Result<BlockResults>;
}

/// How [`follow`] waits.
#[derive(Debug, Clone, Copy)]
pub struct FollowOptions {
    /// Between polls when there is no new block.
    pub poll_interval: Duration,
    /// After a failed request, before trying again.
    pub retry_delay: Duration,
    /// Heights fetched per plan.
    pub max_batch: u64,
}

impl Default for FollowOptions {
    fn default() -> Self {
        Self {
            poll_interval: Duration::from_secs(1),
            retry_delay: Duration::from_secs(2),
            max_batch: HeightCursor::DEFAULT_BATCH,
        }
    }
}

struct FollowState<S> {
    source: Arc<S>,
    cursor: HeightCursor,
    queue: VecDeque<u64>,
    opts: FollowOptions,
    backoff: bool,
}

/// Every block from `from_height` on, in order, as [`BlockEvents`] (blocks without Akash events
/// included, so a consumer can persist its position). Request failures appear as `Err` items and
/// are retried from the same height. A block whose Akash events cannot be decoded is reported as
/// an `Err` naming its height and then passed, since asking again would give the same answer.
pub fn follow<S: BlockSource + 'static>(
    source: Arc<S>,
    from_height: u64,
    opts: FollowOptions,
) -> BoxStream<'static, Result<BlockEvents>> {
    let state = FollowState {
        source,
        cursor: HeightCursor::starting_at(from_height).with_batch(opts.max_batch),
        queue: VecDeque::new(),
        opts,
        backoff: false,
    };
    Box::pin(stream::unfold(state, |mut st| async move {
        let item = next_item(&mut st).await;
        Some((item, st))
    }))
}

async fn next_item<S: BlockSource>(st: &mut FollowState<S>) -> Result<BlockEvents> {
    loop {
        if st.backoff {
            tokio::time::sleep(st.opts.retry_delay).await;
            st.backoff = false;
        }
        if let Some(height) = st.queue.front().copied() {
            match st.source.block_results(height).await {
                Ok(results) => {
                    st.queue.pop_front();
                    st.cursor.delivered(height)?;
                    if results.height != height {
                        return Err(ChainError::Decode(format!(
                            "asked for block {height}, got block {}",
                            results.height
                        )));
                    }
                    return decode_block_results(&results);
                }
                Err(e) => {
                    tracing::warn!(height, error = %e, "fetching block results failed; will retry");
                    st.queue.clear();
                    st.backoff = true;
                    return Err(e);
                }
            }
        }
        match st.source.latest_height().await {
            Ok(latest) => match st.cursor.plan(latest) {
                Some(range) => st.queue.extend(range),
                None => tokio::time::sleep(st.opts.poll_interval).await,
            },
            Err(e) => {
                tracing::warn!(error = %e, "reading the latest height failed; will retry");
                st.backoff = true;
                return Err(e);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::events::{AbciAttribute, AbciEvent, AbciTxResult, AkashEvent};
    use futures::StreamExt;
    use std::sync::Mutex;

    #[test]
    fn plans_never_skip_and_respect_the_batch() {
        let c = HeightCursor::starting_at(5).with_batch(3);
        assert_eq!(c.plan(4), None);
        assert_eq!(c.plan(5), Some(5..=5));
        assert_eq!(c.plan(6), Some(5..=6));
        assert_eq!(c.plan(100), Some(5..=7));
        assert_eq!(c.last_delivered(), Some(4));
        assert_eq!(HeightCursor::starting_at(0).next_height(), 1);
        assert_eq!(HeightCursor::starting_at(1).last_delivered(), None);
    }

    #[test]
    fn resuming_after_a_delivered_height_starts_at_the_next() {
        let mut c = HeightCursor::after(41);
        assert_eq!(c.next_height(), 42);
        // A node that lags behind (latest 40) gives nothing to do, not a step back.
        assert_eq!(c.plan(40), None);
        assert_eq!(c.plan(41), None);
        c.delivered(42).unwrap();
        assert_eq!(c.last_delivered(), Some(42));
    }

    #[test]
    fn out_of_order_deliveries_are_refused() {
        let mut c = HeightCursor::starting_at(10);
        assert!(c.delivered(11).is_err(), "skipping a block");
        c.delivered(10).unwrap();
        assert!(c.delivered(10).is_err(), "repeating a block");
        assert_eq!(c.next_height(), 11);
    }

    /// A chain whose block `h` holds one EventProviderCreated with owner "p{h}".
    struct FakeSource {
        latest: Mutex<u64>,
        fail_latest_once: Mutex<bool>,
        fail_block_once: Mutex<Option<u64>>,
        fetched: Mutex<Vec<u64>>,
    }

    #[async_trait]
    impl BlockSource for FakeSource {
        async fn latest_height(&self) -> Result<u64> {
            if std::mem::take(&mut *self.fail_latest_once.lock().unwrap()) {
                return Err(ChainError::Transport("connection reset".into()));
            }
            Ok(*self.latest.lock().unwrap())
        }

        async fn block_results(&self, height: u64) -> Result<BlockResults> {
            let mut fail = self.fail_block_once.lock().unwrap();
            if *fail == Some(height) {
                *fail = None;
                return Err(ChainError::Transport("node restarting".into()));
            }
            self.fetched.lock().unwrap().push(height);
            Ok(BlockResults {
                height,
                txs_results: vec![AbciTxResult {
                    code: 0,
                    events: vec![AbciEvent {
                        kind: "akash.provider.v1beta4.EventProviderCreated".into(),
                        attributes: vec![AbciAttribute {
                            key: "owner".into(),
                            value: format!("\"p{height}\""),
                        }],
                    }],
                }],
                finalize_block_events: vec![],
            })
        }
    }

    fn owner(b: &BlockEvents) -> String {
        match &b.events[..] {
            [AkashEvent::ProviderCreated(e)] => e.owner.clone(),
            other => panic!("unexpected events {other:?}"),
        }
    }

    #[tokio::test]
    async fn the_stream_survives_failures_without_gaps_or_repeats() {
        let source = Arc::new(FakeSource {
            latest: Mutex::new(4),
            fail_latest_once: Mutex::new(true),
            fail_block_once: Mutex::new(Some(3)),
            fetched: Mutex::new(vec![]),
        });
        let opts = FollowOptions {
            poll_interval: Duration::from_millis(1),
            retry_delay: Duration::from_millis(1),
            max_batch: 2,
        };
        let mut s = follow(source.clone(), 2, opts);
        let mut heights = Vec::new();
        let mut errors = 0;
        while heights.len() < 6 {
            match s.next().await.unwrap() {
                Ok(b) => {
                    assert_eq!(owner(&b), format!("p{}", b.height));
                    heights.push(b.height);
                    // The chain grows while we follow it.
                    if b.height == 4 {
                        *source.latest.lock().unwrap() = 7;
                    }
                }
                Err(e) => {
                    assert_eq!(e.metric_label(), "transport");
                    errors += 1;
                }
            }
        }
        assert_eq!(heights, vec![2, 3, 4, 5, 6, 7]);
        assert_eq!(errors, 2);
        assert_eq!(*source.fetched.lock().unwrap(), vec![2, 3, 4, 5, 6, 7]);
    }

    #[tokio::test]
    async fn the_stream_waits_for_new_blocks() {
        let source = Arc::new(FakeSource {
            latest: Mutex::new(1),
            fail_latest_once: Mutex::new(false),
            fail_block_once: Mutex::new(None),
            fetched: Mutex::new(vec![]),
        });
        let opts = FollowOptions {
            poll_interval: Duration::from_millis(1),
            retry_delay: Duration::from_millis(1),
            max_batch: 10,
        };
        let mut s = follow(source.clone(), 1, opts);
        assert_eq!(s.next().await.unwrap().unwrap().height, 1);
        let next = tokio::time::timeout(Duration::from_millis(30), s.next()).await;
        assert!(next.is_err(), "no block 2 yet, the stream must wait");
        *source.latest.lock().unwrap() = 2;
        let b = tokio::time::timeout(Duration::from_secs(5), s.next())
            .await
            .expect("block 2 arrives")
            .unwrap()
            .unwrap();
        assert_eq!(b.height, 2);
    }
}
