//! The apply step: server-side apply of a lease's objects with one field manager, in dependency
//! order, then pruning what an earlier manifest version created and this one no longer has.
//! The namespace and the pull Secrets are only ever created: the provider may not change other
//! namespaces or read any Secret outside its own namespace (a patch answers with the object), so
//! it holds no right to. Pull Secrets are named by their content and go with the namespace.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Debug;

use k8s_openapi::NamespaceResourceScope;
use k8s_openapi::api::apps::v1::{Deployment, StatefulSet};
use k8s_openapi::api::core::v1::{Namespace, Secret, Service, ServiceAccount};
use k8s_openapi::api::networking::v1::{Ingress, NetworkPolicy};
use k8s_openapi::api::rbac::v1::{Role, RoleBinding};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::{DeleteParams, ListParams, Patch, PatchParams};
use kube::{Api, Client, Resource, ResourceExt};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::provider::store::FIELD_MANAGER;
use crate::workload::build::LeaseObjects;

use crate::workload::build::MANAGED_LABEL;

/// What one apply of a lease did.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct ApplyOutcome {
    /// How many objects were applied (or found already created, for create-only kinds).
    pub count: usize,
    /// `Kind/name` → `metadata.generation` of each Deployment and StatefulSet as the API server
    /// answered the apply.
    pub workload_generations: BTreeMap<String, i64>,
    /// The Services and Ingresses as the API server answered the apply (node ports assigned).
    pub services: Vec<Service>,
    pub ingresses: Vec<Ingress>,
}

/// Applies every object of the lease, then prunes what an earlier version left.
pub(crate) async fn apply_all(
    client: &Client,
    objects: &LeaseObjects,
) -> kube::Result<ApplyOutcome> {
    // Every kind is named here, without `..`: a kind added to `LeaseObjects` does not compile
    // until this function applies it and says how it is removed.
    let LeaseObjects {
        namespace,
        resource_quota,
        secrets,
        deployments,
        stateful_sets,
        services,
        ingresses,
        network_policies,
        service_accounts,
        roles,
        role_bindings,
    } = objects;
    let ns = namespace.name_any();
    // Created only, and removed with the lease (`delete_namespace`).
    let fresh = create_unless_present(&Api::<Namespace>::all(client.clone()), namespace).await?;
    let mut count = 1;
    // Created only (named by their content), removed with the namespace.
    let secrets_api = Api::<Secret>::namespaced(client.clone(), &ns);
    for secret in secrets {
        create_unless_present(&secrets_api, secret).await?;
        count += 1;
    }
    // One per lease under a fixed name: applying replaces it, so there is never one to prune.
    count += apply_each(client, &ns, std::slice::from_ref(resource_quota))
        .await?
        .len();
    count += apply_each(client, &ns, network_policies).await?.len();
    let applied_services = apply_each(client, &ns, services).await?;
    count += applied_services.len();
    // A service's account, its Role and the binding exist before its pods ask for the account.
    // (The API server lets the provider write a Role only with rules it holds itself.)
    count += apply_each(client, &ns, service_accounts).await?.len();
    count += apply_each(client, &ns, roles).await?.len();
    count += apply_each(client, &ns, role_bindings).await?.len();
    let mut workload_generations = BTreeMap::new();
    for applied in apply_each(client, &ns, deployments).await? {
        workload_generations.insert(
            workload_key("Deployment", &applied.metadata),
            generation(&applied.metadata),
        );
        count += 1;
    }
    for applied in apply_each(client, &ns, stateful_sets).await? {
        workload_generations.insert(
            workload_key("StatefulSet", &applied.metadata),
            generation(&applied.metadata),
        );
        count += 1;
    }
    let applied_ingresses = apply_each(client, &ns, ingresses).await?;
    count += applied_ingresses.len();
    // A namespace made by this call holds nothing of an earlier version: a new lease's turn-up
    // costs one request per object, without a LIST per kind.
    let outcome = ApplyOutcome {
        count,
        workload_generations,
        services: applied_services,
        ingresses: applied_ingresses,
    };
    if fresh {
        return Ok(outcome);
    }
    prune::<Deployment>(client, &ns, deployments).await?;
    prune::<StatefulSet>(client, &ns, stateful_sets).await?;
    prune::<Service>(client, &ns, services).await?;
    prune::<Ingress>(client, &ns, ingresses).await?;
    prune::<NetworkPolicy>(client, &ns, network_policies).await?;
    // After the workloads: a pod no longer running as a dropped account loses its token with it.
    prune::<RoleBinding>(client, &ns, role_bindings).await?;
    prune::<Role>(client, &ns, roles).await?;
    prune::<ServiceAccount>(client, &ns, service_accounts).await?;
    Ok(outcome)
}

/// The key of a Deployment or StatefulSet in [`ApplyOutcome::workload_generations`].
pub(crate) fn workload_key(kind: &str, meta: &ObjectMeta) -> String {
    format!("{kind}/{}", meta.name.as_deref().unwrap_or_default())
}

fn generation(meta: &ObjectMeta) -> i64 {
    meta.generation.unwrap_or_default()
}

/// Creates `object`; one of that name already there is taken as it (see the module's comment).
/// `true` when this call created it.
async fn create_unless_present<K>(api: &Api<K>, object: &K) -> kube::Result<bool>
where
    K: Resource + Clone + Debug + Serialize + DeserializeOwned,
{
    let params = kube::api::PostParams {
        field_manager: Some(FIELD_MANAGER.to_owned()),
        ..kube::api::PostParams::default()
    };
    match api.create(&params, object).await {
        Ok(_) => Ok(true),
        Err(kube::Error::Api(e)) if e.code == 409 => Ok(false),
        Err(e) => Err(e),
    }
}

/// The kinds of a lease's namespace that are applied and pruned: namespaced objects the API
/// server reads and writes as JSON.
trait LeaseKind:
    Resource<Scope = NamespaceResourceScope, DynamicType = ()>
    + Clone
    + Debug
    + Serialize
    + DeserializeOwned
{
}

impl<K> LeaseKind for K where
    K: Resource<Scope = NamespaceResourceScope, DynamicType = ()>
        + Clone
        + Debug
        + Serialize
        + DeserializeOwned
{
}

/// Applies each object; returns them as the API server answered.
async fn apply_each<K: LeaseKind>(
    client: &Client,
    ns: &str,
    objects: &[K],
) -> kube::Result<Vec<K>> {
    let api: Api<K> = Api::namespaced(client.clone(), ns);
    let params = PatchParams::apply(FIELD_MANAGER).force();
    let mut applied = Vec::with_capacity(objects.len());
    for object in objects {
        applied.push(
            api.patch(&object.name_any(), &params, &Patch::Apply(object))
                .await?,
        );
    }
    Ok(applied)
}

/// Deletes objects of kind `K` that carry the lease label but are not in `keep`.
async fn prune<K: LeaseKind>(client: &Client, ns: &str, keep: &[K]) -> kube::Result<()> {
    let api: Api<K> = Api::namespaced(client.clone(), ns);
    let wanted: BTreeSet<String> = keep.iter().map(ResourceExt::name_any).collect();
    let listed = api
        .list(&ListParams::default().labels(&format!("{MANAGED_LABEL}=true")))
        .await?;
    for object in listed.items {
        let name = object.name_any();
        if !wanted.contains(&name) {
            tracing::info!(namespace = ns, object = %name, kind = %K::kind(&()), "removing what the new manifest no longer has");
            match api.delete(&name, &DeleteParams::background()).await {
                Ok(_) => {}
                Err(kube::Error::Api(e)) if e.code == 404 => {}
                Err(e) => return Err(e),
            }
        }
    }
    Ok(())
}

/// Deletes the lease's namespace (and so everything in it). `true` once it is gone.
pub(crate) async fn delete_namespace(client: &Client, ns: &str) -> kube::Result<bool> {
    let api = Api::<Namespace>::all(client.clone());
    match api.get_opt(ns).await? {
        None => Ok(true),
        Some(existing) => {
            if existing.metadata.deletion_timestamp.is_none() {
                tracing::info!(namespace = ns, "deleting the lease's namespace");
                match api.delete(ns, &DeleteParams::background()).await {
                    Ok(_) => {}
                    Err(kube::Error::Api(e)) if e.code == 404 => return Ok(true),
                    Err(e) => return Err(e),
                }
            }
            Ok(false)
        }
    }
}
