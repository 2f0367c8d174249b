//! Installing this project's CRDs into the test control plane.

use std::time::Duration;

use anyhow::Context;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::Api;
use kube::api::{Patch, PatchParams};

use crate::Cluster;
use crate::wait::{self, Poll};

/// Applies every CRD of `akash.network/v1` (server-side apply, idempotent) and waits until the API
/// server serves them.
pub async fn install(cluster: &Cluster) -> anyhow::Result<()> {
    let api: Api<CustomResourceDefinition> = Api::all(cluster.client());
    let params = PatchParams::apply("akash-provider-e2e").force();
    for crd in crds::resources::all() {
        let name = crd.metadata.name.clone().context("a CRD without a name")?;
        api.patch(&name, &params, &Patch::Apply(&crd))
            .await
            .with_context(|| format!("applying CRD {name}"))?;
        wait::until(
            &format!("CRD {name} established"),
            Duration::from_secs(60),
            || {
                let api = api.clone();
                let name = name.clone();
                async move {
                    let crd = api.get(&name).await?;
                    let established = crd
                        .status
                        .and_then(|s| s.conditions)
                        .unwrap_or_default()
                        .iter()
                        .any(|c| c.type_ == "Established" && c.status == "True");
                    Ok(if established {
                        Poll::Ready(())
                    } else {
                        Poll::Pending("not established".into())
                    })
                }
            },
        )
        .await?;
    }
    Ok(())
}

/// Removes the finalizer of every `Lease` `leases` lists, so that their namespace can go once
/// the provider that would have removed it has stopped. Errors are ignored: this is clean-up.
pub async fn release_leases(leases: &kube::Api<crds::resources::Lease>) {
    let Ok(list) = leases.list(&Default::default()).await else {
        return;
    };
    let patch = serde_json::json!({ "metadata": { "finalizers": null } });
    for lease in list.items {
        let name = kube::ResourceExt::name_any(&lease);
        let _ = leases
            .patch(
                &name,
                &kube::api::PatchParams::default(),
                &kube::api::Patch::Merge(&patch),
            )
            .await;
    }
}
