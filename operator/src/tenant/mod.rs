//! The tenant controller (`akash-provider tenant`): `Manifest` resources become deployments on
//! the marketplace. The flow ([`flow`]) is shared by the controller ([`controller`]) and the
//! command line ([`cli`]); validation ([`plan`]) and bid selection ([`select`]) are pure.

pub mod cli;
pub mod cli_shell;
pub mod cli_streams;
pub mod config;
pub(crate) mod controller;
pub mod delivery;
pub mod flow;
pub(crate) mod identity;
pub(crate) mod plan;
pub(crate) mod select;

use std::sync::Arc;

use anyhow::Context as _;

use crate::metrics::{Health, Metrics};

/// Runs the controller: `/metrics` and the health endpoints, then `Manifest` reconciles until a signal stops it.
pub async fn run(args: config::TenantArgs) -> anyhow::Result<()> {
    let client = kube::Client::try_default()
        .await
        .context("connecting to the Kubernetes API (in-cluster or KUBECONFIG)")?;
    let health = Arc::new(Health::default());
    // Its own reconciles are all it counts: the provider's counters would only show zeros.
    let metrics = Arc::new(Metrics::reconcile_only());
    crate::metrics::serve(args.metrics_addr, metrics.clone(), health.clone())
        .await
        .with_context(|| format!("--metrics-addr {}", args.metrics_addr))?;
    tracing::info!(
        chain_id = %args.chain.chain_id,
        namespace = args.watch_namespace.as_deref().unwrap_or("(all)"),
        "tenant controller started"
    );
    health.set_ready(true);
    controller::run(Arc::new(
        controller::Context::new(client, args).with_metrics(metrics),
    ))
    .await;
    Ok(())
}
