use std::path::PathBuf;
use std::sync::atomic::{AtomicU32, Ordering};

use anyhow::Context;
use k8s_openapi::api::core::v1::Namespace;
use kube::Api;
use kube::api::{DeleteParams, ObjectMeta, Patch, PatchParams, PostParams};

use crate::Cluster;
use crate::cluster::client_from;

/// Label on every namespace the harness creates, so that leftovers of a crashed run are easy to find.
pub const E2E_LABEL: &str = "akash-provider.e2e";

/// A namespace of its own for one test. Dropping it deletes the namespace (and so everything in it),
/// also when the test panics.
pub struct TestNamespace {
    name: String,
    kubeconfig: PathBuf,
    client: kube::Client,
}

impl TestNamespace {
    pub(crate) async fn create(cluster: &Cluster, prefix: &str) -> anyhow::Result<Self> {
        let name = unique_name(prefix);
        let ns = Namespace {
            metadata: ObjectMeta {
                name: Some(name.clone()),
                labels: Some([(E2E_LABEL.to_string(), "true".to_string())].into()),
                ..Default::default()
            },
            ..Default::default()
        };
        Api::<Namespace>::all(cluster.client())
            .create(&PostParams::default(), &ns)
            .await
            .with_context(|| format!("creating namespace {name}"))?;
        tracing::info!(namespace = %name, "created test namespace");
        Ok(Self {
            name,
            kubeconfig: cluster.kubeconfig().to_path_buf(),
            client: cluster.client(),
        })
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// An API for namespaced objects of kind `K` in this namespace.
    pub fn api<K>(&self) -> Api<K>
    where
        K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope>,
        <K as kube::Resource>::DynamicType: Default,
    {
        Api::namespaced(self.client.clone(), &self.name)
    }
}

impl Drop for TestNamespace {
    fn drop(&mut self) {
        // Drop cannot await, and the test's runtime may be shutting down: delete from a thread of
        // our own with a client of its own. Deletion is asynchronous in Kubernetes anyway.
        let name = self.name.clone();
        let kubeconfig = self.kubeconfig.clone();
        let deleted = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            rt.block_on(async {
                let client = client_from(&kubeconfig).await?;
                Api::<Namespace>::all(client.clone())
                    .delete(&name, &DeleteParams::background())
                    .await?;
                // The test's controllers are gone with it: their finalizers would hold the
                // namespace in Terminating for good, and the namespace controller would retry its
                // deletions for the rest of the suite (600 requests a minute were measured).
                release_finalizers::<crds::resources::Manifest>(&client, &name).await?;
                release_finalizers::<crds::resources::Lease>(&client, &name).await?;
                release_finalizers::<crds::resources::Bid>(&client, &name).await?;
                release_finalizers::<crds::resources::Tunnel>(&client, &name).await?;
                anyhow::Ok(())
            })
        })
        .join();
        match deleted {
            Ok(Ok(())) => tracing::info!(namespace = %self.name, "deleted test namespace"),
            Ok(Err(e)) => eprintln!("could not delete test namespace {}: {e:#}", self.name),
            Err(_) => eprintln!(
                "could not delete test namespace {}: thread panicked",
                self.name
            ),
        }
    }
}

/// Deletes every `K` in namespace `ns` that has finalizers, and removes its finalizers. Deleted
/// first: a controller still running puts no finalizer back on an object being deleted (the API
/// server refuses new finalizers then).
async fn release_finalizers<K>(client: &kube::Client, ns: &str) -> anyhow::Result<()>
where
    K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope, DynamicType = ()>
        + Clone
        + std::fmt::Debug
        + for<'de> k8s_openapi::serde::Deserialize<'de>,
{
    let api = Api::<K>::namespaced(client.clone(), ns);
    let patch = serde_json::json!({"metadata": {"finalizers": null}});
    let gone = |r: Result<(), kube::Error>| match r {
        Err(kube::Error::Api(e)) if e.code == 404 => Ok(()),
        other => other,
    };
    for object in api.list_metadata(&Default::default()).await?.items {
        let meta = object.metadata;
        if meta.finalizers.as_ref().is_none_or(Vec::is_empty) {
            continue;
        }
        let name = meta.name.unwrap_or_default();
        if meta.deletion_timestamp.is_none() {
            gone(
                api.delete(&name, &DeleteParams::background())
                    .await
                    .map(drop),
            )?;
        }
        gone(
            api.patch(&name, &PatchParams::default(), &Patch::Merge(&patch))
                .await
                .map(drop),
        )?;
    }
    Ok(())
}

/// `e2e-<prefix>-<pid>-<n>`, cut to a valid namespace name (a DNS label of at most 63 characters).
fn unique_name(prefix: &str) -> String {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let prefix: String = prefix
        .to_ascii_lowercase()
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .take(40)
        .collect();
    let prefix = prefix.trim_matches('-');
    format!("e2e-{prefix}-{}-{n}", std::process::id())
}

#[cfg(test)]
mod tests {
    use super::unique_name;

    #[test]
    fn unique_names_are_dns_labels_and_differ() {
        let a = unique_name("Kwok_Deployment Test");
        let b = unique_name("Kwok_Deployment Test");
        assert_ne!(a, b);
        for name in [&a, &b] {
            assert!(name.len() <= 63, "{name} is too long");
            assert!(
                name.chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-'),
                "{name} has characters a namespace name cannot have"
            );
            assert!(name.starts_with("e2e-kwok-deployment-test-"), "{name}");
        }
        let long = unique_name(&"x".repeat(200));
        assert!(long.len() <= 63, "{long} is too long");
    }
}
