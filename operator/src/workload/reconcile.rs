//! The workload reconciler: a `Lease` with a verified manifest becomes its namespace and objects.
//! `reconcile` only orchestrates: build (pure, `workload::build`) → apply (`apply`) → status
//! (`status`). A finalizer on the `Lease` removes the lease's namespace before the resource goes,
//! since objects in another namespace cannot be owned by it; a lease closed on chain is torn down
//! the same way.

use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use crate::controller::events::Recorder;
use crate::controller::triggers::settled;
use crds::resources::{
    ConditionStatus, ConditionType, Lease, LeaseManifest, LeasePhase, LeaseReason, LeaseStatus,
};
use futures::{FutureExt, StreamExt};
use k8s_openapi::api::apps::v1::{Deployment, StatefulSet};
use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::networking::v1::Ingress;
use kube::api::ListParams;
use kube::runtime::WatchStreamExt;
use kube::runtime::controller::Action;
use kube::runtime::events::EventType;
use kube::runtime::finalizer::Event as FinalizerEvent;
use kube::runtime::reflector::{self, ObjectRef, Store};
use kube::runtime::{Controller, watcher};
use kube::{Api, Client, ResourceExt};
use tokio::sync::watch;

use super::applied::AppliedLeases;
use super::apply;
use super::build::{LEASE_LABEL_PREFIX, LeaseObjects, MANAGED_LABEL, WorkloadConfig, build};
use super::status::{self, Observed};
use crate::controller::finalizer::{finalizer_failure_is, reconcile_with_finalizer};
use crate::controller::status::Precondition;
use crate::controller::{conditions, events, short_version};
use crate::lease_secret;
use crate::metrics::Metrics;
use crate::provider::store::FIELD_MANAGER;
use crate::reconcile_metrics::{self, MetricLabel};

/// The finalizer that removes a lease's namespace.
pub(crate) const FINALIZER: &str = "akash.network/workloads";

/// The leases' workloads, Services and Ingresses as the reconciler's watches last saw them (cut
/// down to what `observe` and the status read).
pub(crate) struct WorkloadStores {
    deployments: Store<Deployment>,
    stateful_sets: Store<StatefulSet>,
    services: Store<Service>,
    ingresses: Store<Ingress>,
}

impl WorkloadStores {
    /// Whether every watch has listed every object once.
    fn ready(&self) -> bool {
        fn listed<K: kube::Resource<DynamicType = ()> + Clone>(store: &Store<K>) -> bool {
            store.wait_until_ready().now_or_never().is_some()
        }
        listed(&self.deployments)
            && listed(&self.stateful_sets)
            && listed(&self.services)
            && listed(&self.ingresses)
    }
}

/// The objects of `store` in namespace `ns`.
fn in_namespace<K>(store: &Store<K>, ns: &str) -> Vec<K>
where
    K: kube::Resource<DynamicType = ()> + Clone,
{
    store
        .state()
        .iter()
        .filter(|o| o.meta().namespace.as_deref() == Some(ns))
        .map(|o| K::clone(o))
        .collect()
}

/// What every reconcile needs.
pub(crate) struct Context {
    pub client: Client,
    /// Where the `Lease` resources live.
    pub namespace: String,
    pub config: WorkloadConfig,
    pub recorder: Recorder,
    /// Where the Secrets with manifests' registry credentials are (see [`lease_secret`]).
    pub secrets_namespace: String,
    /// Where reconcile runs, failures and durations are counted.
    pub metrics: Arc<Metrics>,
    /// What was last applied per lease, to skip applying the same objects again.
    pub applied: AppliedLeases,
    /// Set when the reconciler runs.
    workloads: OnceLock<WorkloadStores>,
}

impl Context {
    pub(crate) fn new(
        client: Client,
        namespace: &str,
        config: WorkloadConfig,
        identity: &str,
    ) -> Self {
        Self {
            recorder: events::recorder(&client, "akash-provider", Some(identity.to_owned())),
            client,
            namespace: namespace.to_owned(),
            config,
            secrets_namespace: namespace.to_owned(),
            metrics: Arc::new(Metrics::new()),
            applied: AppliedLeases::default(),
            workloads: OnceLock::new(),
        }
    }

    /// Counts reconciles in `metrics` (by default a registry nobody serves).
    pub(crate) fn with_metrics(mut self, metrics: Arc<Metrics>) -> Self {
        self.metrics = metrics;
        self
    }

    /// Reads registry credentials from Secrets of `namespace` (by default the Leases' own).
    pub(crate) fn with_secrets_namespace(mut self, namespace: &str) -> Self {
        namespace.clone_into(&mut self.secrets_namespace);
        self
    }
}

/// Errors of one reconcile; retried with a backoff.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ReconcileError {
    #[error("kubernetes: {0}")]
    Kube(#[from] kube::Error),
    #[error("finalizer: {0}")]
    Finalizer(String),
    #[error("registry credentials: {0}")]
    Credentials(#[from] lease_secret::SecretError),
    /// The Lease was closed, but this controller's copy (from its watch) does not show it yet.
    #[error("lease {0} is closed; waiting for its watch to show it")]
    StaleLease(String),
}

impl ReconcileError {
    pub(crate) fn metric_label(&self) -> &'static str {
        match self {
            Self::Kube(_) => "kube",
            Self::Finalizer(_) => "finalizer",
            Self::Credentials(_) => "credentials",
            Self::StaleLease(_) => "stale_lease",
        }
    }
}

finalizer_failure_is!(ReconcileError::Finalizer);

impl MetricLabel for ReconcileError {
    fn metric_label(&self) -> &'static str {
        ReconcileError::metric_label(self)
    }
}

/// Runs the reconciler until `stop` turns false.
pub(crate) async fn run(ctx: Arc<Context>, mut stop: watch::Receiver<bool>) {
    match sweep_secrets(&ctx).await {
        Ok(0) => {}
        Ok(n) => tracing::info!(
            deleted = n,
            "deleted the registry credentials of Leases that are gone"
        ),
        Err(e) => {
            tracing::warn!(error = %e, "sweeping credential Secrets failed; the next start tries again")
        }
    }
    let leases = Api::<Lease>::namespaced(ctx.client.clone(), &ctx.namespace);
    let provider_ns = ctx.namespace.clone();
    let labelled = watcher::Config::default().labels(&format!("{MANAGED_LABEL}=true"));
    let to_lease = move |labels: &std::collections::BTreeMap<String, String>| {
        let get = |k: &str| labels.get(&format!("{LEASE_LABEL_PREFIX}{k}")).cloned();
        let name = format!(
            "{}-{}-{}-{}",
            get("owner")?,
            get("dseq")?,
            get("gseq")?,
            get("oseq")?
        );
        Some(ObjectRef::<Lease>::new(&name).within(&provider_ns))
    };
    let (to_lease_a, to_lease_b, to_lease_c, to_lease_d) = (
        to_lease.clone(),
        to_lease.clone(),
        to_lease.clone(),
        to_lease,
    );
    let shutdown = async move {
        while stop.changed().await.is_ok() {
            if !*stop.borrow() {
                break;
            }
        }
    };
    // The watches fill the stores `observe` reads, then wake the reconciler: a reconcile woken
    // by a workload's change (or a leased-IP Service getting its address) sees that change in
    // the store, after a relist too (`settled`).
    let (deployments, deployments_writer) = reflector::store();
    let (stateful_sets, stateful_sets_writer) = reflector::store();
    let (services, services_writer) = reflector::store();
    let (ingresses, ingresses_writer) = reflector::store();
    let _ = ctx.workloads.set(WorkloadStores {
        deployments,
        stateful_sets,
        services,
        ingresses,
    });
    let deployment_changes = changes(&ctx.client, &labelled, slim_deployment, deployments_writer);
    let stateful_set_changes = changes(
        &ctx.client,
        &labelled,
        slim_stateful_set,
        stateful_sets_writer,
    );
    let service_changes = changes(&ctx.client, &labelled, slim_service, services_writer);
    let ingress_changes = changes(&ctx.client, &labelled, slim_ingress, ingresses_writer);
    // The controller's own store of Leases, without what no reconcile reads.
    let (lease_store, lease_writer) = reflector::store();
    let lease_changes = settled(
        watcher(leases, watcher::Config::default())
            .default_backoff()
            .modify(slim_lease)
            .reflect(lease_writer),
        false,
    );
    Controller::for_stream(lease_changes, lease_store)
        .watches_stream(deployment_changes, move |d| to_lease_a(d.labels()))
        .watches_stream(stateful_set_changes, move |s| to_lease_b(s.labels()))
        .watches_stream(service_changes, move |s| to_lease_c(s.labels()))
        .watches_stream(ingress_changes, move |i| to_lease_d(i.labels()))
        .graceful_shutdown_on(shutdown)
        .run(reconcile, error_policy, ctx)
        .for_each(|result| async move {
            if let Err(e) = result {
                tracing::debug!(error = %e, "reconcile failed");
            }
        })
        .await;
}

/// The objects of kind `K` that `config` selects, each cut down by `slim` into `writer`'s store,
/// as they change (deleted ones too): what wakes the reconcile of the lease they belong to.
fn changes<K>(
    client: &kube::Client,
    config: &watcher::Config,
    slim: fn(&mut K),
    writer: reflector::store::Writer<K>,
) -> impl futures::Stream<Item = Result<K, watcher::Error>> + Send + use<K>
where
    K: kube::Resource<DynamicType = ()>
        + Clone
        + std::fmt::Debug
        + serde::de::DeserializeOwned
        + Send
        + Sync
        + 'static,
{
    settled(
        watcher(Api::<K>::all(client.clone()), config.clone())
            .default_backoff()
            .modify(slim)
            .reflect(writer),
        true,
    )
}

/// A Deployment as the workloads' store keeps it: `observe` reads its name, labels, generation,
/// wanted replicas and replica counts; the pod template (the largest part) and the status
/// conditions are built or reported elsewhere, and the managed fields nothing reads.
pub(crate) fn slim_deployment(d: &mut Deployment) {
    d.managed_fields_mut().clear();
    d.spec.template = Default::default();
    if let Some(status) = d.status.as_mut() {
        status.conditions = None;
    }
}

/// A StatefulSet as the workloads' store keeps it, for the same reads as [`slim_deployment`].
pub(crate) fn slim_stateful_set(s: &mut StatefulSet) {
    s.managed_fields_mut().clear();
    s.spec.template = Default::default();
    s.spec.volume_claim_templates = None;
    if let Some(status) = s.status.as_mut() {
        status.conditions = None;
    }
}

/// A Service as the reconciler's store keeps it: the status reads its labels, the leased-IP
/// endpoint annotation, type, ports (node ports included) and load-balancer address; the managed
/// fields nothing reads.
pub(crate) fn slim_service(s: &mut Service) {
    s.managed_fields_mut().clear();
}

/// An Ingress as the reconciler's store keeps it: the status reads its labels and hosts; its
/// routes and the ingress controller's annotations are built, not read.
pub(crate) fn slim_ingress(i: &mut Ingress) {
    i.managed_fields_mut().clear();
    i.annotations_mut().clear();
    if let Some(spec) = i.spec.as_mut() {
        for rule in spec.rules.iter_mut().flatten() {
            rule.http = None;
        }
    }
}

/// A `Lease` as the controller keeps it: without its managed fields, and without the deployment's
/// whole manifest (`spec.deploymentManifest`, every group of the deployment as JSON, for the
/// gateway's peers and the overlay), which the workloads are not built from. It was the largest
/// part of each cached Lease.
pub(crate) fn slim_lease(lease: &mut Lease) {
    lease.managed_fields_mut().clear();
    lease.spec.deployment_manifest = None;
}

fn error_policy(lease: Arc<Lease>, error: &ReconcileError, _ctx: Arc<Context>) -> Action {
    match error {
        // Mostly a reconcile of a stale copy (the finalizer patch's test failed, or the namespace
        // is still terminating): the next copy is a moment away.
        ReconcileError::Finalizer(_) => {
            tracing::debug!(lease = %lease.spec.lease_id, error = %error, "reconcile deferred");
            Action::requeue(Duration::from_millis(500))
        }
        ReconcileError::StaleLease(_) => {
            tracing::info!(lease = %lease.spec.lease_id, error = %error, "reconcile deferred");
            Action::requeue(Duration::from_secs(2))
        }
        ReconcileError::Kube(_) | ReconcileError::Credentials(_) => {
            tracing::warn!(lease = %lease.spec.lease_id, error = %error, kind = error.metric_label(), "reconcile failed; retrying");
            Action::requeue(Duration::from_secs(5))
        }
    }
}

#[tracing::instrument(skip_all, fields(lease = %lease.spec.lease_id))]
async fn reconcile(lease: Arc<Lease>, ctx: Arc<Context>) -> Result<Action, ReconcileError> {
    let metrics = ctx.metrics.clone();
    metrics
        .reconcile
        .observe(reconcile_metrics::WORKLOAD, reconcile_lease(lease, ctx))
        .await
}

async fn reconcile_lease(lease: Arc<Lease>, ctx: Arc<Context>) -> Result<Action, ReconcileError> {
    let api = Api::<Lease>::namespaced(ctx.client.clone(), &ctx.namespace);
    reconcile_with_finalizer(&api, FINALIZER, lease, |event| async {
        match event {
            FinalizerEvent::Apply(lease) => apply_lease(&lease, &ctx).await,
            FinalizerEvent::Cleanup(lease) => cleanup(&lease, &ctx).await,
        }
    })
    .await
}

fn namespace_of(lease: &Lease) -> String {
    lease.spec.lease_id.namespace()
}

/// The `Lease` is being deleted: its namespace goes first.
#[tracing::instrument(skip_all, fields(namespace = %namespace_of(lease)))]
async fn cleanup(lease: &Lease, ctx: &Context) -> Result<Action, ReconcileError> {
    ctx.applied.forget(&lease.name_any());
    let ns = namespace_of(lease);
    if apply::delete_namespace(&ctx.client, &ns).await? {
        delete_secrets(lease, ctx).await?;
        tracing::info!(lease = %lease.spec.lease_id, namespace = %ns, "workloads removed");
        Ok(Action::await_change())
    } else {
        // Not gone yet: the finalizer stays until it is.
        Err(ReconcileError::Finalizer(format!(
            "namespace {ns} is still terminating"
        )))
    }
}

/// The Secrets holding the lease's registry credentials: not needed once it is closed.
async fn delete_secrets(lease: &Lease, ctx: &Context) -> Result<(), ReconcileError> {
    let Some(uid) = lease.uid() else {
        return Ok(());
    };
    let deleted = lease_secret::delete_of_lease(&ctx.client, &ctx.secrets_namespace, &uid).await?;
    if deleted > 0 {
        tracing::info!(lease = %lease.spec.lease_id, deleted, "registry credentials deleted");
    }
    Ok(())
}

/// Deletes the credential Secrets of Leases that are gone (see [`lease_secret::sweep`]).
async fn sweep_secrets(ctx: &Context) -> Result<usize, kube::Error> {
    let leases = Api::<Lease>::namespaced(ctx.client.clone(), &ctx.namespace)
        .list_metadata(&ListParams::default())
        .await?;
    let uids = leases.items.iter().filter_map(|l| l.uid()).collect();
    lease_secret::sweep(&ctx.client, &ctx.secrets_namespace, &uids).await
}

#[tracing::instrument(skip_all, fields(namespace = %namespace_of(lease)))]
async fn apply_lease(lease: &Lease, ctx: &Context) -> Result<Action, ReconcileError> {
    let phase = lease.status.as_ref().and_then(|s| s.phase);
    let ns = namespace_of(lease);
    tracing::debug!(?phase, version = ?lease.resource_version(), "reconciling");
    if matches!(phase, Some(LeasePhase::Closing | LeasePhase::Closed)) {
        ctx.applied.forget(&lease.name_any());
        if !apply::delete_namespace(&ctx.client, &ns).await? {
            return Ok(Action::requeue(Duration::from_secs(2)));
        }
        delete_secrets(lease, ctx).await?;
        return Ok(Action::await_change());
    }
    let Some(stored) = lease.spec.manifest.as_ref() else {
        return Ok(Action::await_change());
    };
    // Registry credentials are kept in a Secret, not in the Lease: put them back to build.
    let manifest =
        &match lease_secret::complete_group(&ctx.client, &ctx.secrets_namespace, stored).await {
            Ok(group) => LeaseManifest {
                group,
                ..stored.clone()
            },
            Err(e) => {
                let message = e.to_string();
                publish(
                    ctx,
                    lease,
                    EventType::Warning,
                    "CredentialsUnavailable",
                    &message,
                )
                .await;
                return Err(e.into());
            }
        };
    let objects = match build(&lease.spec.lease_id, manifest, &ctx.config) {
        Ok(objects) => objects,
        Err(e) => {
            let message = e.to_string();
            publish(ctx, lease, EventType::Warning, "ManifestInvalid", &message).await;
            write_status(ctx, lease, |status| {
                set_condition(
                    status,
                    lease,
                    ConditionType::Deployed,
                    ConditionStatus::False,
                    LeaseReason::ManifestInvalid.as_str(),
                    &message,
                );
            })
            .await?;
            return Ok(Action::await_change());
        }
    };
    let (applied, observed) = apply_unless_in_place(lease, ctx, &objects).await?;
    let services = status::services(&manifest.group, &observed);
    let new_phase = status::phase(&services, phase);
    if phase != Some(new_phase) {
        let note = format!(
            "{applied} objects applied in namespace {ns}; {}",
            match new_phase {
                LeasePhase::Active => "every service is ready",
                LeasePhase::Degraded => "some services are not ready",
                _ => "waiting for services to become ready",
            }
        );
        publish(
            ctx,
            lease,
            EventType::Normal,
            phase_reason(new_phase).as_str(),
            &note,
        )
        .await;
    }
    let ready = status::ready_text(&services);
    let ips = status::ips_text(&services);
    // MetalLB gives leased-IP Services their address a moment after they are applied: the
    // Services' watch wakes the lease then; looking again soon as well covers a missed event.
    let load_balancers = objects
        .services
        .iter()
        .filter(|s| s.spec.as_ref().and_then(|s| s.type_.as_deref()) == Some("LoadBalancer"))
        .count();
    let ips_pending = status::ips_pending(load_balancers, &services);
    write_status(ctx, lease, |status| {
        status.phase = Some(new_phase);
        status.ready = Some(ready.clone());
        status.ips = ips.clone();
        status.services = services.clone();
        set_condition(
            status,
            lease,
            ConditionType::Deployed,
            ConditionStatus::True,
            LeaseReason::Applied.as_str(),
            &format!("manifest {} applied", short_version(&manifest.version)),
        );
        let ready_now = new_phase == LeasePhase::Active;
        set_condition(
            status,
            lease,
            ConditionType::Ready,
            ConditionStatus::from(ready_now),
            phase_reason(new_phase).as_str(),
            &format!("{ready} services ready"),
        );
    })
    .await?;
    Ok(if new_phase == LeasePhase::Active && !ips_pending {
        // A running lease changes when its workloads do (watched) or its Lease does; this pass
        // only puts back what someone changed by hand, and every pass costs the API server a
        // server-side apply per object: rarely.
        Action::requeue(ACTIVE_RECHECK)
    } else {
        Action::requeue(Duration::from_secs(5))
    })
}

/// How often an Active lease's objects are applied again with nothing having changed.
const ACTIVE_RECHECK: Duration = Duration::from_secs(600);

/// Applies the lease's objects unless this process applied the same ones recently and they are
/// all in place (see [`super::applied`]); returns how many objects the lease has and what the
/// API server holds of them.
async fn apply_unless_in_place(
    lease: &Lease,
    ctx: &Context,
    objects: &LeaseObjects,
) -> Result<(usize, Observed), ReconcileError> {
    let name = lease.name_any();
    let ns = namespace_of(lease);
    let mut in_place = false;
    if let Some(last) = ctx.applied.get(&name) {
        let observed = observe(ctx, &ns).await?;
        in_place = last.in_place(objects, &observed);
        if in_place && last.is_current(objects, Instant::now(), ACTIVE_RECHECK) {
            return Ok((objects.len(), observed));
        }
    }
    // A lease deployed before (Active or Degraded) whose objects are not in place may have been
    // closed while this controller's Lease watch lags: the bid engine then deleted its
    // namespace, and applying would create it again. Read the Lease itself first (not on a
    // first turn-up, nor on the periodic pass over objects in place).
    if !in_place
        && matches!(
            lease.status.as_ref().and_then(|s| s.phase),
            Some(LeasePhase::Active | LeasePhase::Degraded)
        )
        && closed_now(ctx, &name).await?
    {
        return Err(ReconcileError::StaleLease(name));
    }
    let started = Instant::now();
    let applied = match apply::apply_all(&ctx.client, objects).await {
        Ok(outcome) => outcome,
        Err(e) => {
            ctx.applied.forget(&name);
            publish(
                ctx,
                lease,
                EventType::Warning,
                "ApplyFailed",
                &e.to_string(),
            )
            .await;
            return Err(e.into());
        }
    };
    let mut observed = observe(ctx, &ns).await?;
    // The watches may not have brought what was just applied: the apply's answers are as new.
    observed.take_answers(applied.services, applied.ingresses);
    ctx.applied
        .record(&name, objects, applied.workload_generations, started);
    Ok((applied.count, observed))
}

/// Whether the Lease `name` is closing or closed as the API server has it now (not the watch).
async fn closed_now(ctx: &Context, name: &str) -> Result<bool, kube::Error> {
    let api = Api::<Lease>::namespaced(ctx.client.clone(), &ctx.namespace);
    Ok(api.get_opt(name).await?.is_none_or(|l| {
        matches!(
            l.status.and_then(|s| s.phase),
            Some(LeasePhase::Closing | LeasePhase::Closed)
        )
    }))
}

fn phase_reason(phase: LeasePhase) -> LeaseReason {
    match phase {
        LeasePhase::Active => LeaseReason::Active,
        LeasePhase::Degraded => LeaseReason::Degraded,
        LeasePhase::Deploying => LeaseReason::Deploying,
        LeasePhase::Pending => LeaseReason::Pending,
        LeasePhase::Closing => LeaseReason::Closing,
        LeasePhase::Closed => LeaseReason::Closed,
    }
}

/// The lease's workloads, Services and Ingresses as the API server holds them: from the
/// watches' stores once they have listed everything, by a LIST per kind before that.
async fn observe(ctx: &Context, ns: &str) -> kube::Result<Observed> {
    if let Some(stores) = ctx.workloads.get().filter(|w| w.ready()) {
        return Ok(Observed {
            deployments: in_namespace(&stores.deployments, ns),
            stateful_sets: in_namespace(&stores.stateful_sets, ns),
            services: in_namespace(&stores.services, ns),
            ingresses: in_namespace(&stores.ingresses, ns),
        });
    }
    let lp = ListParams::default().labels(&format!("{MANAGED_LABEL}=true"));
    Ok(Observed {
        deployments: list_in(ctx, ns, &lp).await?,
        stateful_sets: list_in(ctx, ns, &lp).await?,
        services: list_in(ctx, ns, &lp).await?,
        ingresses: list_in(ctx, ns, &lp).await?,
    })
}

/// The objects of kind `K` in namespace `ns` that `lp` selects, by a LIST.
async fn list_in<K>(ctx: &Context, ns: &str, lp: &ListParams) -> kube::Result<Vec<K>>
where
    K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope, DynamicType = ()>
        + Clone
        + serde::de::DeserializeOwned
        + std::fmt::Debug,
{
    Ok(Api::<K>::namespaced(ctx.client.clone(), ns)
        .list(lp)
        .await?
        .items)
}

/// Sets a condition, keeping its transition time when its status did not change.
fn set_condition(
    status: &mut LeaseStatus,
    lease: &Lease,
    type_: ConditionType,
    value: ConditionStatus,
    reason: &str,
    message: &str,
) {
    let generation = lease.metadata.generation;
    conditions::set_condition(
        &mut status.conditions,
        generation,
        type_,
        value,
        reason,
        message,
    );
}

/// Writes the status computed by `change` from the current one, only if it changed, guarded by
/// the resource version read (so a concurrent `Closing` from the lease tracker is never undone).
async fn write_status(
    ctx: &Context,
    lease: &Lease,
    change: impl FnOnce(&mut LeaseStatus),
) -> Result<(), ReconcileError> {
    let before = lease.status.clone().unwrap_or_default();
    let mut status = before.clone();
    change(&mut status);
    status.observed_generation = lease.metadata.generation;
    let api = Api::<Lease>::namespaced(ctx.client.clone(), &ctx.namespace);
    // A requeue (changed meanwhile) needs nothing more: the change that caused it is watched,
    // and the next reconcile starts from the new version.
    crate::controller::status::write_status(
        &api,
        lease,
        FIELD_MANAGER,
        Precondition::ReadVersion,
        Some(&before),
        &status,
    )
    .await?;
    Ok(())
}

async fn publish(ctx: &Context, lease: &Lease, type_: EventType, reason: &str, note: &str) {
    events::publish(&ctx.recorder, lease, type_, reason, note).await;
}

#[cfg(test)]
mod slim_tests {
    use crds::resources::LeaseRef;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::ManagedFieldsEntry;

    use super::*;

    /// What `observe` and the status read of a workload survives the slimming; the pod template
    /// does not.
    #[test]
    fn a_slim_deployment_keeps_what_the_status_reads() {
        let mut d: Deployment = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "web", "namespace": "ns", "generation": 3,
                "labels": {MANAGED_LABEL: "true"},
                "managedFields": [{"manager": "akash-provider", "operation": "Apply"}]},
            "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "web"}},
                "template": {"metadata": {"labels": {"app": "web"}},
                    "spec": {"containers": [{"name": "web", "image": "nginx:1.27"}]}}},
            "status": {"replicas": 2, "readyReplicas": 1, "availableReplicas": 1,
                "updatedReplicas": 2,
                "conditions": [{"type": "Available", "status": "True"}]}
        }))
        .unwrap();
        slim_deployment(&mut d);
        assert_eq!(d.labels()[MANAGED_LABEL], "true");
        assert_eq!(d.metadata.generation, Some(3));
        assert_eq!(d.metadata.managed_fields, Some(Vec::new()));
        let spec = &d.spec;
        assert_eq!(spec.replicas, Some(2));
        assert_eq!(spec.template.spec, None);
        let status = d.status.as_ref().unwrap();
        assert_eq!(
            (
                status.ready_replicas,
                status.available_replicas,
                status.updated_replicas
            ),
            (Some(1), Some(1), Some(2))
        );
        assert_eq!(status.conditions, None);
    }

    /// The controller's copy of a Lease loses its managed fields and the deployment's manifest,
    /// and nothing else: the manifest group the workloads are built from, the id, the status and
    /// the finalizers stay as they were.
    #[test]
    fn a_slim_lease_keeps_everything_but_managed_fields_and_the_deployment_manifest() {
        let sdl = crate::test_support::sdl();
        let groups = sdl.manifest().to_vec();
        let mut lease = crate::test_support::lease(
            "lease-1",
            LeaseRef {
                owner: "akash1owner".into(),
                dseq: 7,
                gseq: 1,
                oseq: 1,
                provider: "akash1provider".into(),
            },
        );
        lease.spec.created_at = Some(12);
        let mut manifest = crate::test_support::empty_manifest(&sdl.manifest_version_hex());
        manifest.group = groups[0].clone();
        lease.spec.manifest = Some(manifest);
        lease.spec.deployment_manifest = Some(serde_json::to_string(&groups).unwrap());
        lease.metadata.finalizers = Some(vec![FINALIZER.to_owned()]);
        lease.metadata.managed_fields = Some(vec![ManagedFieldsEntry {
            manager: Some("akash-provider".into()),
            ..Default::default()
        }]);
        lease.status = Some(LeaseStatus {
            phase: Some(LeasePhase::Active),
            ..Default::default()
        });
        let mut expected = lease.clone();
        expected.spec.deployment_manifest = None;
        expected.metadata.managed_fields = Some(Vec::new());

        slim_lease(&mut lease);
        assert_eq!(
            serde_json::to_value(&lease).unwrap(),
            serde_json::to_value(&expected).unwrap()
        );
        assert!(lease.spec.manifest.is_some());
    }
}
