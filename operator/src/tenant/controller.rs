//! The `Manifest` controller. `apply` only orchestrates, one module per stage:
//! validate (`validate`: the spec's plan, pure) → dereference (`dereference`: the key Secret,
//! the chain client, the certificate) → drive (`drive`: one `flow::step`) → report (`report`:
//! status, conditions and events computed purely, then written), the status saved after every
//! step. A finalizer closes the deployment on chain before the resource goes.

mod dereference;
mod drive;
mod report;
mod validate;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use crate::controller::events::Recorder;
use crds::resources::{Manifest, ManifestPhase};
use futures::StreamExt;
use kube::runtime::controller::Action;
use kube::runtime::events::EventType;
use kube::runtime::finalizer::Event as FinalizerEvent;
use kube::runtime::{Controller, WatchStreamExt, reflector, watcher};
use kube::{Api, Client, ResourceExt};
use tokio::sync::Mutex;

use super::config::TenantArgs;
use super::flow::{self, FlowError, Next};
use crate::controller::events;
use crate::controller::finalizer::{finalizer_failure_is, reconcile_with_finalizer};
use crate::controller::triggers::settled;
use crate::metrics::Metrics;
use crate::reconcile_metrics::{self, MetricLabel};
use dereference::Tenant;

/// The finalizer that closes the deployment on chain.
pub(crate) const FINALIZER: &str = "akash.network/deployment";
const FIELD_MANAGER: &str = "akash-provider-tenant";
/// Steps one reconcile takes before it lets others run.
const MAX_STEPS: usize = 16;
/// How soon a `Manifest` whose key is unavailable is tried again.
const KEY_RETRY: Duration = Duration::from_secs(30);

/// What every reconcile needs.
pub(crate) struct Context {
    pub client: Client,
    pub recorder: Recorder,
    pub args: TenantArgs,
    /// By key address.
    tenants: Mutex<HashMap<String, Arc<Mutex<Tenant>>>>,
    dseqs: flow::DseqAllocator,
    /// Where reconcile runs, failures and durations are counted (served on `/metrics`).
    pub metrics: Arc<Metrics>,
}

impl Context {
    pub(crate) fn new(client: Client, args: TenantArgs) -> Self {
        Self {
            recorder: events::recorder(
                &client,
                "akash-provider-tenant",
                std::env::var("POD_NAME").ok(),
            ),
            client,
            args,
            tenants: Mutex::new(HashMap::new()),
            dseqs: flow::DseqAllocator::default(),
            metrics: Arc::new(Metrics::reconcile_only()),
        }
    }

    /// Counts reconciles in `metrics` (by default a registry nobody serves).
    pub(crate) fn with_metrics(mut self, metrics: Arc<Metrics>) -> Self {
        self.metrics = metrics;
        self
    }
}

/// Errors of one reconcile; retried with a backoff.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ReconcileError {
    #[error("kubernetes: {0}")]
    Kube(#[from] kube::Error),
    #[error("{0}")]
    Key(String),
    #[error("spec.keySecret: the {key:?} of Secret {secret} is not a usable mnemonic: {source}")]
    Mnemonic {
        key: String,
        /// `namespace/name`.
        secret: String,
        #[source]
        source: chain_client::keys::KeyError,
    },
    #[error("connecting to the chain: {0:#}")]
    Connect(#[source] anyhow::Error),
    #[error(transparent)]
    Flow(#[from] FlowError),
    #[error("certificate: {0:#}")]
    Certificate(#[source] anyhow::Error),
    #[error("finalizer: {0}")]
    Finalizer(String),
    /// Closing the deployment needs the tenant's key and chain: what stopped getting them.
    #[error(
        "{0}; the deployment stays open on chain until the key is back (or remove the finalizer \
         {finalizer} to give up on closing it)",
        finalizer = FINALIZER
    )]
    CloseBlocked(#[source] Box<ReconcileError>),
}

impl ReconcileError {
    pub(crate) fn metric_label(&self) -> &'static str {
        match self {
            Self::Kube(_) => "kube",
            Self::Key(_) | Self::Mnemonic { .. } => "key",
            Self::Connect(_) => "chain_connect",
            Self::Flow(e) => e.reason(),
            Self::Certificate(_) => "certificate",
            Self::Finalizer(_) => "finalizer",
            Self::CloseBlocked(e) => e.metric_label(),
        }
    }
}

finalizer_failure_is!(ReconcileError::Finalizer);

impl MetricLabel for ReconcileError {
    fn metric_label(&self) -> &'static str {
        ReconcileError::metric_label(self)
    }
}

/// Runs the controller until the process is stopped.
pub(crate) async fn run(ctx: Arc<Context>) {
    let manifests: Api<Manifest> = match &ctx.args.watch_namespace {
        Some(ns) if !ns.is_empty() => Api::namespaced(ctx.client.clone(), ns),
        _ => Api::all(ctx.client.clone()),
    };
    // As `Controller::new` does, but woken only once the store holds what woke it (`settled`).
    let (store, writer) = reflector::store();
    let changes = settled(
        watcher(manifests, watcher::Config::default())
            .default_backoff()
            .reflect(writer),
        false,
    );
    Controller::for_stream(changes, store)
        .shutdown_on_signal()
        .run(reconcile, error_policy, ctx)
        .for_each(|result| async move {
            if let Err(e) = result {
                tracing::debug!(error = %e, "reconcile failed");
            }
        })
        .await;
}

fn error_policy(manifest: Arc<Manifest>, error: &ReconcileError, _ctx: Arc<Context>) -> Action {
    tracing::warn!(manifest = %manifest.name_any(), namespace = ?manifest.namespace(), error = %error, kind = error.metric_label(), "reconcile failed; retrying");
    Action::requeue(match error {
        ReconcileError::Finalizer(_) => Duration::from_millis(500),
        _ => Duration::from_secs(5),
    })
}

#[tracing::instrument(skip_all, fields(manifest = %manifest.name_any(), namespace = manifest.namespace().unwrap_or_default()))]
async fn reconcile(manifest: Arc<Manifest>, ctx: Arc<Context>) -> Result<Action, ReconcileError> {
    let metrics = ctx.metrics.clone();
    metrics
        .reconcile
        .observe(reconcile_metrics::TENANT, reconcile_manifest(manifest, ctx))
        .await
}

async fn reconcile_manifest(
    manifest: Arc<Manifest>,
    ctx: Arc<Context>,
) -> Result<Action, ReconcileError> {
    let ns = manifest.namespace().unwrap_or_default();
    let api = Api::<Manifest>::namespaced(ctx.client.clone(), &ns);
    reconcile_with_finalizer(&api, FINALIZER, manifest, |event| async {
        match event {
            FinalizerEvent::Apply(m) => apply(&m, &ctx).await,
            FinalizerEvent::Cleanup(m) => cleanup(&m, &ctx).await,
        }
    })
    .await
}

/// Validate → dereference → drive → report, one step after another until the flow waits.
/// Validation comes first so that an invalid spec is reported as such even when its key is
/// missing too, and costs no chain connection.
#[tracing::instrument(skip_all, fields(dseq = manifest.status.as_ref().and_then(|s| s.dseq)))]
async fn apply(manifest: &Manifest, ctx: &Context) -> Result<Action, ReconcileError> {
    let generation = manifest.metadata.generation;
    let mut status = manifest.status.clone().unwrap_or_default();
    let plan = match validate::validate(&manifest.spec) {
        Ok(plan) => plan,
        Err(invalid) => {
            let notes = report::invalid_spec(&mut status, generation, &invalid);
            report::write(ctx, manifest, &status, &notes).await?;
            return Ok(Action::await_change());
        }
    };
    report::valid_spec(&mut status, generation);
    let tenant = match dereference::tenant(ctx, manifest).await {
        Ok(tenant) => tenant,
        Err(e) => {
            let notes = report::key_unavailable(&mut status, generation, &e);
            report::write(ctx, manifest, &status, &notes).await?;
            return Ok(Action::requeue(KEY_RETRY));
        }
    };
    let counterparts = dereference::counterparts(ctx, manifest, &tenant).await?;
    for _ in 0..MAX_STEPS {
        let stepped = drive::step(ctx, &counterparts, &plan, &mut status).await;
        let notes = report::stepped(&mut status, generation, &stepped);
        report::write(ctx, manifest, &status, &notes).await?;
        match stepped.outcome {
            Ok(Next::Again) => {}
            Ok(Next::Wait(d)) => return Ok(Action::requeue(d)),
            // Waits for a spec the chain can take.
            Err(FlowError::GroupsChanged(_)) => return Ok(Action::await_change()),
            Err(e) => return Err(e.into()),
        }
    }
    Ok(Action::requeue(Duration::from_millis(100)))
}

#[tracing::instrument(skip_all, fields(dseq = manifest.status.as_ref().and_then(|s| s.dseq)))]
async fn cleanup(manifest: &Manifest, ctx: &Context) -> Result<Action, ReconcileError> {
    let mut status = manifest.status.clone().unwrap_or_default();
    if status.dseq.is_none() {
        return Ok(Action::await_change());
    }
    let tenant = dereference::tenant(ctx, manifest)
        .await
        .map_err(|e| ReconcileError::CloseBlocked(Box::new(e)))?;
    let chain = tenant.lock().await.chain.clone();
    if status.phase != Some(ManifestPhase::Closing) {
        status.phase = Some(ManifestPhase::Closing);
        report::save(ctx, manifest, &status).await?;
    }
    let closed = flow::close(chain.as_ref(), &status)
        .await
        .map_err(|e| ReconcileError::Flow(e.into()))?;
    if closed {
        let dseq = status.dseq.unwrap_or_default();
        report::publish(
            ctx,
            manifest,
            EventType::Normal,
            "DeploymentClosed",
            &format!("deployment {dseq} closed on chain; the escrow's remainder is refunded"),
        )
        .await;
        tracing::info!(manifest = %manifest.name_any(), dseq, "deployment closed");
    }
    Ok(Action::await_change())
}

#[cfg(test)]
mod error_tests {
    use std::error::Error as _;

    use super::ReconcileError;

    #[test]
    fn key_and_chain_errors_keep_their_message_and_carry_their_source() {
        let bad = chain_client::keys::Mnemonic::from_phrase("not a mnemonic")
            .expect_err("not a mnemonic");
        let expected = bad.to_string();
        let error = ReconcileError::Mnemonic {
            key: "mnemonic".into(),
            secret: "team-a/akash-tenant-key".into(),
            source: bad,
        };
        assert_eq!(
            error.to_string(),
            format!(
                "spec.keySecret: the \"mnemonic\" of Secret team-a/akash-tenant-key is not a usable mnemonic: {expected}"
            )
        );
        assert_eq!(error.source().map(ToString::to_string), Some(expected));
        assert_eq!(error.metric_label(), "key");

        let connect = ReconcileError::Connect(anyhow::anyhow!("bad URL").context("--rpc-url"));
        assert_eq!(
            connect.to_string(),
            "connecting to the chain: --rpc-url: bad URL"
        );
        assert!(connect.source().is_some());
        assert_eq!(connect.metric_label(), "chain_connect");

        // A close held up by the chain's connection is counted as that, not as the key.
        let blocked = ReconcileError::CloseBlocked(Box::new(connect));
        assert_eq!(
            blocked.to_string(),
            format!(
                "connecting to the chain: --rpc-url: bad URL; the deployment stays open on chain \
                 until the key is back (or remove the finalizer {} to give up on closing it)",
                super::FINALIZER
            )
        );
        assert_eq!(
            blocked.source().map(ToString::to_string),
            Some("connecting to the chain: --rpc-url: bad URL".to_string())
        );
        assert_eq!(blocked.metric_label(), "chain_connect");
    }
}
