//! Waiting for a condition in the cluster, with progress in the log and a clear error on timeout.
//! A timeout here bounds a hang; it is not an assertion about speed.

use std::future::Future;
use std::time::{Duration, Instant};

use anyhow::bail;

/// Calls `check` every `interval` until it returns `Some`, or fails after `limit` with the last
/// state that `check` reported through `describe`.
pub async fn until<T, F, Fut>(what: &str, limit: Duration, mut check: F) -> anyhow::Result<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = anyhow::Result<Poll<T>>>,
{
    let start = Instant::now();
    let mut last_report = Instant::now();
    let mut last_state;
    loop {
        match check().await? {
            Poll::Ready(v) => {
                tracing::info!("{what}: done after {:.1}s", start.elapsed().as_secs_f64());
                return Ok(v);
            }
            Poll::Pending(state) => last_state = state,
        }
        if start.elapsed() >= limit {
            bail!("timed out after {limit:?} waiting for {what}; last state: {last_state}");
        }
        if last_report.elapsed() >= Duration::from_secs(5) {
            tracing::info!(
                "{what}: still waiting after {:.0}s ({last_state})",
                start.elapsed().as_secs_f64()
            );
            last_report = Instant::now();
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// What a check found: done with a value, or not yet with a description of the current state.
pub enum Poll<T> {
    Ready(T),
    Pending(String),
}
