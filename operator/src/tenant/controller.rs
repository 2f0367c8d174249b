//! The `Manifest` controller: dereference (the key Secret, the chain client, the certificate) →
//! validate (`plan`) → drive (`flow::step`, its status saved after every step) → report (status,
//! conditions, events). A finalizer closes the deployment on chain before the resource goes.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use chain_client::Chain;
use chain_client::keys::{Key, Mnemonic};
use crds::resources::{
    ConditionStatus, ConditionType, Manifest, ManifestPhase, ManifestReason, ManifestStatus,
};
use futures::StreamExt;
use k8s_openapi::api::core::v1::Secret;
use kube::runtime::controller::Action;
use kube::runtime::events::{EventType, Recorder};
use kube::runtime::finalizer::Event as FinalizerEvent;
use kube::runtime::{Controller, watcher};
use kube::{Api, Client, ResourceExt};
use tokio::sync::Mutex;

use super::config::TenantArgs;
use super::delivery::MtlsGateway;
use super::flow::{self, Ctx, FlowError, Next, Progress};
use super::identity::{self, SecretCertStore};
use super::plan::plan;
use crate::controller::finalizer::{FinalizerFailure, reconcile_with_finalizer};
use crate::controller::status::Precondition;
use crate::controller::{conditions, events, short_version};
use crate::metrics::Metrics;
use crate::reconcile_metrics::{self, MetricLabel};

/// The finalizer that closes the deployment on chain.
pub const FINALIZER: &str = "akash.network/deployment";
const FIELD_MANAGER: &str = "akash-provider-tenant";
/// Steps one reconcile takes before it lets others run.
const MAX_STEPS: usize = 16;

/// A tenant key's chain client and gateway client, shared by every `Manifest` using that key
/// (one signer per key keeps the account sequence straight).
struct Tenant {
    chain: Arc<dyn Chain>,
    gateway: Option<Arc<MtlsGateway>>,
}

/// What every reconcile needs.
pub struct Context {
    pub client: Client,
    pub recorder: Recorder,
    pub args: TenantArgs,
    tenants: Mutex<HashMap<String, Arc<Mutex<Tenant>>>>,
    dseqs: flow::DseqAllocator,
    /// Where reconcile runs, failures and durations are counted (served on `/metrics`).
    pub metrics: Arc<Metrics>,
}

impl Context {
    pub fn new(client: Client, args: TenantArgs) -> Self {
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
    pub fn with_metrics(mut self, metrics: Arc<Metrics>) -> Self {
        self.metrics = metrics;
        self
    }
}

/// Errors of one reconcile; retried with a backoff.
#[derive(Debug, thiserror::Error)]
pub enum ReconcileError {
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
}

impl FinalizerFailure for ReconcileError {
    fn finalizer_failure(message: String) -> Self {
        Self::Finalizer(message)
    }
}

impl ReconcileError {
    pub fn metric_label(&self) -> &'static str {
        match self {
            Self::Kube(_) => "kube",
            Self::Key(_) | Self::Mnemonic { .. } => "key",
            Self::Connect(_) => "chain_connect",
            Self::Flow(e) => e.reason(),
            Self::Certificate(_) => "certificate",
            Self::Finalizer(_) => "finalizer",
        }
    }
}

impl MetricLabel for ReconcileError {
    fn metric_label(&self) -> &'static str {
        ReconcileError::metric_label(self)
    }
}

/// Runs the controller until the process is stopped.
pub async fn run(ctx: Arc<Context>) {
    let manifests: Api<Manifest> = match &ctx.args.watch_namespace {
        Some(ns) if !ns.is_empty() => Api::namespaced(ctx.client.clone(), ns),
        _ => Api::all(ctx.client.clone()),
    };
    Controller::new(manifests, watcher::Config::default())
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

#[tracing::instrument(skip_all, fields(dseq = manifest.status.as_ref().and_then(|s| s.dseq)))]
async fn apply(manifest: &Manifest, ctx: &Context) -> Result<Action, ReconcileError> {
    let mut status = manifest.status.clone().unwrap_or_default();
    let plan = match plan(&manifest.spec) {
        Ok(plan) => plan,
        Err(issues) => {
            let message = issues
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join("; ");
            publish(
                ctx,
                manifest,
                EventType::Warning,
                ManifestReason::InvalidSpec.as_str(),
                &message,
            )
            .await;
            if status.dseq.is_none() {
                status.phase = Some(ManifestPhase::Invalid);
            }
            set_condition(
                &mut status,
                manifest,
                ConditionType::Valid,
                ConditionStatus::False,
                ManifestReason::InvalidSpec.as_str(),
                &message,
            );
            save(ctx, manifest, &status).await?;
            return Ok(Action::await_change());
        }
    };
    set_condition(
        &mut status,
        manifest,
        ConditionType::Valid,
        ConditionStatus::True,
        ManifestReason::Valid.as_str(),
        "the spec is valid",
    );
    let tenant = match tenant(ctx, manifest).await {
        Ok(t) => t,
        Err(e) => {
            let message = e.to_string();
            publish(
                ctx,
                manifest,
                EventType::Warning,
                ManifestReason::KeyUnavailable.as_str(),
                &message,
            )
            .await;
            set_condition(
                &mut status,
                manifest,
                ConditionType::Ready,
                ConditionStatus::False,
                ManifestReason::KeyUnavailable.as_str(),
                &message,
            );
            save(ctx, manifest, &status).await?;
            return Ok(Action::requeue(Duration::from_secs(30)));
        }
    };
    let (chain, gateway) = {
        let mut t = tenant.lock().await;
        let gateway = match &t.gateway {
            Some(g) => g.clone(),
            None => {
                let store = SecretCertStore {
                    api: Api::namespaced(
                        ctx.client.clone(),
                        &manifest.namespace().unwrap_or_default(),
                    ),
                    name: format!("{}-certificate", manifest.spec.key_secret.name),
                };
                let identity = identity::ensure(t.chain.as_ref(), &store)
                    .await
                    .map_err(ReconcileError::Certificate)?;
                let g = Arc::new(MtlsGateway::new(t.chain.clone(), identity));
                t.gateway = Some(g.clone());
                g
            }
        };
        (t.chain.clone(), gateway)
    };
    for _ in 0..MAX_STEPS {
        let flow_ctx = Ctx {
            chain: chain.as_ref(),
            gateway: gateway.as_ref(),
            dseqs: &ctx.dseqs,
            failure_threshold: ctx.args.failure_threshold,
            status_interval: ctx.args.status_interval,
            block_interval: ctx.args.block_interval,
            now: jiff::Timestamp::now(),
        };
        let mut progress = Vec::new();
        let outcome = flow::step(&flow_ctx, &plan, &mut status, &mut progress).await;
        for p in &progress {
            report(ctx, manifest, p).await;
        }
        match outcome {
            Ok(next) => {
                set_ready(&mut status, manifest);
                save(ctx, manifest, &status).await?;
                if let Next::Wait(d) = next {
                    return Ok(Action::requeue(d));
                }
            }
            Err(e) => {
                let message = e.to_string();
                publish(ctx, manifest, EventType::Warning, e.reason(), &message).await;
                set_condition(
                    &mut status,
                    manifest,
                    ConditionType::Ready,
                    ConditionStatus::False,
                    e.reason(),
                    &message,
                );
                save(ctx, manifest, &status).await?;
                return match e {
                    // Waits for a spec the chain can take.
                    FlowError::GroupsChanged(_) => Ok(Action::await_change()),
                    e => Err(e.into()),
                };
            }
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
    let tenant = tenant(ctx, manifest).await.map_err(|e| {
        ReconcileError::Key(format!(
            "{e}; the deployment stays open on chain until the key is back (or remove the \
             finalizer {FINALIZER} to give up on closing it)"
        ))
    })?;
    let chain = tenant.lock().await.chain.clone();
    if status.phase != Some(ManifestPhase::Closing) {
        status.phase = Some(ManifestPhase::Closing);
        save(ctx, manifest, &status).await?;
    }
    let closed = flow::close(chain.as_ref(), &status)
        .await
        .map_err(|e| ReconcileError::Flow(e.into()))?;
    if closed {
        let dseq = status.dseq.unwrap_or_default();
        publish(
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

/// The chain client for the resource's key, read from its Secret.
async fn tenant(ctx: &Context, manifest: &Manifest) -> Result<Arc<Mutex<Tenant>>, ReconcileError> {
    let ns = manifest.namespace().unwrap_or_default();
    let key_ref = &manifest.spec.key_secret;
    let secret = Api::<Secret>::namespaced(ctx.client.clone(), &ns)
        .get_opt(&key_ref.name)
        .await?
        .ok_or_else(|| {
            ReconcileError::Key(format!(
                "spec.keySecret: Secret {ns}/{} does not exist",
                key_ref.name
            ))
        })?;
    let phrase = secret
        .data
        .as_ref()
        .and_then(|d| d.get(&key_ref.key))
        .and_then(|b| String::from_utf8(b.0.clone()).ok())
        .ok_or_else(|| {
            ReconcileError::Key(format!(
                "spec.keySecret: Secret {ns}/{} has no key {:?}",
                key_ref.name, key_ref.key
            ))
        })?;
    let key = Mnemonic::from_phrase(phrase.trim())
        .and_then(|m| Key::from_mnemonic(&m))
        .map_err(|source| ReconcileError::Mnemonic {
            key: key_ref.key.clone(),
            secret: format!("{ns}/{}", key_ref.name),
            source,
        })?;
    let address = key.address().to_string();
    let mut tenants = ctx.tenants.lock().await;
    if let Some(t) = tenants.get(&address) {
        return Ok(t.clone());
    }
    let chain = ctx
        .args
        .chain
        .connect(key)
        .map_err(ReconcileError::Connect)?;
    let t = Arc::new(Mutex::new(Tenant {
        chain: Arc::new(chain),
        gateway: None,
    }));
    tenants.insert(address, t.clone());
    Ok(t)
}

fn set_ready(status: &mut ManifestStatus, manifest: &Manifest) {
    let running = status.phase == Some(ManifestPhase::Running);
    let why = match status.phase {
        Some(ManifestPhase::Running) => ManifestReason::Running,
        Some(ManifestPhase::Degraded) => ManifestReason::Degraded,
        Some(ManifestPhase::Bidding) => ManifestReason::Bidding,
        Some(ManifestPhase::Deploying) => ManifestReason::Deploying,
        Some(ManifestPhase::Closed) => ManifestReason::ClosedOnChain,
        _ => ManifestReason::Creating,
    };
    let message = match (&status.dseq, &status.ready) {
        (Some(dseq), Some(ready)) => format!("deployment {dseq}: {ready} services ready"),
        (Some(dseq), None) => format!("deployment {dseq}"),
        _ => "not posted yet".into(),
    };
    set_condition(
        status,
        manifest,
        ConditionType::Ready,
        ConditionStatus::from(running),
        why.as_str(),
        &message,
    );
}

/// Sets a condition, keeping its transition time when its status did not change.
fn set_condition(
    status: &mut ManifestStatus,
    manifest: &Manifest,
    type_: ConditionType,
    value: ConditionStatus,
    reason: &str,
    message: &str,
) {
    let generation = manifest.metadata.generation;
    conditions::set_condition(
        &mut status.conditions,
        generation,
        type_,
        value,
        reason,
        message,
    );
}

/// Writes the status if it changed. Not guarded by the version read: one reconcile saves the
/// status after every step, each save making that version stale, and this controller is the
/// only writer of a `Manifest`'s status.
async fn save(
    ctx: &Context,
    manifest: &Manifest,
    status: &ManifestStatus,
) -> Result<(), ReconcileError> {
    let mut status = status.clone();
    status.observed_generation = manifest.metadata.generation;
    let api = Api::<Manifest>::namespaced(
        ctx.client.clone(),
        &manifest.namespace().unwrap_or_default(),
    );
    crate::controller::status::write_status(
        &api,
        manifest,
        FIELD_MANAGER,
        Precondition::LastWriteWins,
        manifest.status.as_ref(),
        &status,
    )
    .await?;
    Ok(())
}

async fn report(ctx: &Context, manifest: &Manifest, progress: &Progress) {
    let (type_, reason, note) = match progress {
        Progress::DeploymentCreated { dseq, version } => (
            EventType::Normal,
            "DeploymentCreated",
            format!("deployment {dseq} posted on chain (version {})", short_version(version)),
        ),
        Progress::DeploymentUpdated { version } => (
            EventType::Normal,
            "DeploymentUpdated",
            format!("new manifest version {} posted on chain", short_version(version)),
        ),
        // Every step while waiting: not worth an event each time.
        Progress::WaitingForBids { .. } => return,
        Progress::BidsReceived { gseq, bids } => (
            EventType::Normal,
            "BidsReceived",
            format!(
                "group {gseq}: {} bids: {}",
                bids.len(),
                bids.iter()
                    .map(|(p, price)| format!("{p} at {price}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        ),
        Progress::NoEligibleBid { gseq, bids } => (
            EventType::Warning,
            "NoEligibleBid",
            format!("group {gseq}: {bids} bids, none passes the bid filter; still waiting"),
        ),
        Progress::LeaseCreated {
            gseq,
            provider,
            price,
        } => (
            EventType::Normal,
            "LeaseCreated",
            format!("group {gseq} leased to {provider} at {price} per block"),
        ),
        Progress::ManifestSent { provider, version } => (
            EventType::Normal,
            "ManifestSent",
            format!("manifest {} sent to {provider}", short_version(version)),
        ),
        Progress::DeliveryFailed { provider, error } => (
            EventType::Warning,
            "DeliveryFailed",
            format!("sending the manifest to {provider}: {error}; retrying"),
        ),
        Progress::ServicesReady { ready } => (
            EventType::Normal,
            "Running",
            format!("{ready} services ready"),
        ),
        Progress::ProviderDropped {
            gseq,
            provider,
            reason,
        } => (
            EventType::Warning,
            "ProviderDropped",
            format!("group {gseq}: dropped provider {provider}: {reason}; choosing another bid"),
        ),
        Progress::GroupStarted { gseq } => (
            EventType::Normal,
            "GroupStarted",
            format!("group {gseq} reopened for bids"),
        ),
        Progress::DeploymentClosedOnChain => (
            EventType::Warning,
            "ClosedOnChain",
            "the deployment was closed on chain; nothing runs (delete this Manifest and apply it again to redeploy)".into(),
        ),
    };
    tracing::info!(manifest = %manifest.name_any(), namespace = ?manifest.namespace(), reason, "{note}");
    publish(ctx, manifest, type_, reason, &note).await;
}

async fn publish(ctx: &Context, manifest: &Manifest, type_: EventType, reason: &str, note: &str) {
    events::publish(&ctx.recorder, manifest, type_, reason, note).await;
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
    }
}
