//! Probes of what the provider depends on, so that an outage shows in `/readyz` and
//! `akash_provider_dependency_up` while it lasts, not only in retried errors in the log.

use std::sync::Arc;
use std::time::Duration;

use chain_client::Chain;

use crate::metrics::{DependencyLabel, Health, Metrics};

/// How often each dependency is probed, and how long one probe may take.
const EVERY: Duration = Duration::from_secs(2);
const TIMEOUT: Duration = Duration::from_secs(5);

/// Probes the chain (its RPC for the height, its gRPC for a balance) and the API
/// server (its version) every two seconds, until the process ends.
pub(super) async fn run(
    chain: Arc<dyn Chain>,
    client: kube::Client,
    health: Arc<Health>,
    metrics: Arc<Metrics>,
) {
    let mut ticker = tokio::time::interval(EVERY);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticker.tick().await;
        let address = chain.address().to_owned();
        let (chain_result, kube_result) = tokio::join!(
            probe(async {
                chain.latest_height().await.map_err(|e| e.to_string())?;
                // A bank balance answers (0) for an account not yet on chain too: what is
                // probed is that gRPC answers, not that the account exists.
                chain
                    .balance(&address, "uakt")
                    .await
                    .map_err(|e| e.to_string())?;
                Ok(())
            }),
            probe(async {
                client
                    .apiserver_version()
                    .await
                    .map(|_| ())
                    .map_err(|e| e.to_string())
            }),
        );
        record(&health, &metrics, "chain", chain_result);
        record(&health, &metrics, "kube", kube_result);
    }
}

async fn probe(call: impl Future<Output = Result<(), String>>) -> Result<(), String> {
    match tokio::time::timeout(TIMEOUT, call).await {
        Ok(result) => result,
        Err(_) => Err(format!("no answer within {TIMEOUT:?}")),
    }
}

fn record(health: &Health, metrics: &Metrics, name: &'static str, result: Result<(), String>) {
    let up = metrics.dependency_up.get_or_create(&DependencyLabel {
        dependency: name.to_owned(),
    });
    match result {
        Ok(()) => {
            health.reached(name);
            up.set(1);
        }
        Err(error) => {
            health.unreachable(name, error);
            up.set(0);
        }
    }
}
