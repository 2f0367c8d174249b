//! Restart safety of the provider, end to end: the provider is SIGKILLed in the middle of applying
//! a lease's workloads, and in the middle of tearing a closed lease down, then started again; the
//! end state is exactly what an uninterrupted run leaves.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use chain_client::Chain;
use crds::resources::{BidPhase, LeasePhase};
use e2e::market::{self, certificate, leased, object_name, unique_dseq};
use e2e::scenario::{Scenario, scenario};
use e2e::tenant;
use e2e::wait::{Poll, until};
use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet, StatefulSet};
use k8s_openapi::api::core::v1::{Namespace, Pod, ResourceQuota, Service};
use k8s_openapi::api::networking::v1::{Ingress, NetworkPolicy};
use kube::api::ListParams;
use kube::{Api, Resource, ResourceExt};
use operator::gateway::client::rest_client;
use operator::workload::build::{LeaseObjects, WorkloadConfig, build};

async fn send_manifest(s: &Scenario, dseq: u64) -> anyhow::Result<()> {
    let identity = certificate(&s.tenant).await?;
    let http = rest_client(&s.tenant, &s.provider_address(), &identity).await?;
    let sdl = tenant::testdata_sdl("openspeedtest.yaml")?;
    let url = format!(
        "https://{}/deployment/{dseq}/manifest",
        s.provider.gateway_rest_addr
    );
    let response = http.put(&url).body(sdl.manifest_json()).send().await?;
    let status = response.status();
    anyhow::ensure!(status.is_success(), "{status}: {}", response.text().await?);
    Ok(())
}

/// Waits until the lease is Active with every service ready.
async fn wait_active(s: &Scenario, lease_name: &str) -> anyhow::Result<crds::resources::Lease> {
    until("the lease Active", Duration::from_secs(120), || async {
        let lease = s.leases().get(lease_name).await?;
        let st = lease.status.clone().unwrap_or_default();
        Ok(if st.phase == Some(LeasePhase::Active) {
            Poll::Ready(lease)
        } else {
            Poll::Pending(format!("phase {:?}, ready {:?}", st.phase, st.ready))
        })
    })
    .await
}

/// Polls `check` every few milliseconds (much faster than `until`) until it returns `Some`.
async fn fast_until<T, F, Fut>(what: &str, limit: Duration, mut check: F) -> anyhow::Result<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<Option<T>>>,
{
    let start = Instant::now();
    loop {
        if let Some(v) = check().await? {
            return Ok(v);
        }
        anyhow::ensure!(
            start.elapsed() < limit,
            "timed out after {limit:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// The names of the objects of a kind in a namespace that are not being deleted, sorted.
macro_rules! names_in {
    ($kind:ty, $client:expr, $ns:expr) => {{
        let mut names: Vec<String> = Api::<$kind>::namespaced($client.clone(), $ns)
            .list(&ListParams::default())
            .await?
            .items
            .iter()
            .filter(|o| o.meta().deletion_timestamp.is_none())
            .map(ResourceExt::name_any)
            .collect();
        names.sort();
        names
    }};
}

fn sorted_names<K: Resource>(objects: &[K]) -> Vec<String> {
    let mut names: Vec<String> = objects.iter().map(ResourceExt::name_any).collect();
    names.sort();
    names
}

/// What the provider builds for the lease (its manifest as recorded on the `Lease`), with the
/// provider's configuration in the scenarios (the defaults; the gateway in the test namespace).
fn expected_objects(s: &Scenario, lease: &crds::resources::Lease) -> anyhow::Result<LeaseObjects> {
    let manifest = lease
        .spec
        .manifest
        .as_ref()
        .ok_or_else(|| anyhow::anyhow!("the Lease has no manifest"))?;
    let config = WorkloadConfig {
        gateway_namespace: s.ns.name().to_owned(),
        ..Default::default()
    };
    Ok(build(&lease.spec.lease_id, manifest, &config)?)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_during_apply_then_restart_leaves_exactly_the_lease_objects() -> anyhow::Result<()>
{
    let mut s = scenario("restart-apply", &[("host", "akash")], vec![]).await?;
    let me = s.provider_address();
    let owner = s.tenant.address().to_owned();
    let dseq = unique_dseq(60);
    let namespace = leased(&s, dseq).await?;
    let lease_name = object_name(&owner, dseq);
    let cluster = e2e::Cluster::shared().await?;
    let client = cluster.client();

    send_manifest(&s, dseq).await?;
    // Kill the provider the moment the lease namespace appears: the apply has begun, and the
    // workloads are at most partly there.
    let namespaces = Api::<Namespace>::all(client.clone());
    fast_until("the lease namespace", Duration::from_secs(60), || async {
        Ok(namespaces.get_opt(&namespace).await?.map(|_| ()))
    })
    .await?;
    s.provider.kill();
    let deployment_at_kill = Api::<Deployment>::namespaced(client.clone(), &namespace)
        .get_opt("openspeedtest")
        .await?;
    let phase_at_kill = s
        .leases()
        .get(&lease_name)
        .await?
        .status
        .and_then(|st| st.phase);
    tracing::info!(
        deployment = deployment_at_kill.is_some(),
        ready = ?deployment_at_kill.and_then(|d| d.status).and_then(|st| st.ready_replicas),
        phase = ?phase_at_kill,
        "provider killed during apply"
    );
    assert_ne!(
        phase_at_kill,
        Some(LeasePhase::Active),
        "the kill came after the apply had finished"
    );

    s.provider.restart()?;
    let lease = wait_active(&s, &lease_name).await?;
    let st = lease.status.clone().unwrap_or_default();
    assert_eq!(st.ready.as_deref(), Some("1/1"));
    assert_eq!(
        st.services
            .iter()
            .map(|svc| (svc.name.as_str(), svc.ready_replicas, svc.replicas))
            .collect::<Vec<_>>(),
        [("openspeedtest", 1, 1)]
    );

    // Exactly the objects the build step makes for this lease: no more, none twice.
    let expected = expected_objects(&s, &lease)?;
    assert_eq!(expected.namespace.name_any(), namespace);
    assert_eq!(
        names_in!(Deployment, client, &namespace),
        sorted_names(&expected.deployments)
    );
    assert_eq!(
        names_in!(StatefulSet, client, &namespace),
        sorted_names(&expected.stateful_sets)
    );
    assert_eq!(
        names_in!(Service, client, &namespace),
        sorted_names(&expected.services)
    );
    assert_eq!(
        names_in!(Ingress, client, &namespace),
        sorted_names(&expected.ingresses)
    );
    assert_eq!(
        names_in!(NetworkPolicy, client, &namespace),
        sorted_names(&expected.network_policies)
    );
    assert_eq!(
        names_in!(ResourceQuota, client, &namespace),
        vec![expected.resource_quota.name_any()]
    );
    assert_eq!(sorted_names(&expected.deployments), ["openspeedtest"]);
    let deployment = Api::<Deployment>::namespaced(client.clone(), &namespace)
        .get("openspeedtest")
        .await?;
    let wanted_replicas = expected.deployments[0].spec.replicas;
    assert_eq!(deployment.spec.replicas, wanted_replicas);
    assert_eq!(wanted_replicas, Some(1));
    // One rollout only: re-applying the same objects after the restart changed nothing.
    assert_eq!(
        names_in!(ReplicaSet, client, &namespace).len(),
        1,
        "one ReplicaSet"
    );
    let pods = until("exactly one pod", Duration::from_secs(60), || async {
        let pods: Vec<Pod> = Api::<Pod>::namespaced(client.clone(), &namespace)
            .list(&ListParams::default())
            .await?
            .items;
        Ok(if pods.len() == 1 {
            Poll::Ready(pods)
        } else {
            Poll::Pending(format!("{} pods", pods.len()))
        })
    })
    .await?;
    assert_eq!(
        pods[0].status.as_ref().and_then(|p| p.phase.as_deref()),
        Some("Running")
    );

    // The reservation is still the won bid, and the provider did not bid again.
    market::wait_bid_phase(&s.bids(), &lease_name, BidPhase::Won).await?;
    assert_eq!(market::bid_names(&s.bids()).await?, [lease_name.as_str()]);
    let chain_bids = market::chain_bids(&s.tenant, &owner, dseq, &me).await?;
    assert_eq!(chain_bids.len(), 1, "{chain_bids:?}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_during_teardown_then_restart_finishes_the_teardown() -> anyhow::Result<()> {
    let mut s = scenario("restart-teardown", &[("host", "akash")], vec![]).await?;
    let owner = s.tenant.address().to_owned();
    let dseq = unique_dseq(61);
    let namespace = leased(&s, dseq).await?;
    let lease_name = object_name(&owner, dseq);
    let cluster = e2e::Cluster::shared().await?;
    let client = cluster.client();
    send_manifest(&s, dseq).await?;
    wait_active(&s, &lease_name).await?;
    until("active_leases 1", Duration::from_secs(30), || async {
        let text = s.provider.metrics().await.unwrap_or_default();
        let n = market::counter(&text, "akash_provider_active_leases ");
        Ok(if n == 1.0 {
            Poll::Ready(())
        } else {
            Poll::Pending(format!("active_leases {n}"))
        })
    })
    .await?;

    // The tenant closes the deployment; the provider is killed the moment the close is in a
    // block, before (or while) it tears the lease down: the restarted provider must learn of the
    // close from the chain.
    market::close_deployment(&s.tenant, dseq).await?;
    s.provider.kill();
    let namespace_at_kill = Api::<Namespace>::all(client.clone())
        .get_opt(&namespace)
        .await?;
    let bid_at_kill = s.bids().get_opt(&lease_name).await?;
    let phase_at_kill = s
        .leases()
        .get(&lease_name)
        .await?
        .status
        .and_then(|st| st.phase);
    tracing::info!(
        phase = ?phase_at_kill,
        namespace = ?namespace_at_kill.map(|ns| ns.metadata.deletion_timestamp.is_some()),
        bid = bid_at_kill.is_some(),
        "provider killed during teardown (namespace: Some(terminating?))"
    );

    s.provider.restart()?;
    // Once more, later in the teardown: kill the restarted provider as soon as the Lease leaves
    // Active (Closing, or already Closed with the namespace terminating), and restart again.
    let leases = s.leases();
    let phase_at_second_kill = fast_until("the Lease Closing", Duration::from_secs(60), || async {
        let phase = leases
            .get(&lease_name)
            .await?
            .status
            .and_then(|st| st.phase);
        Ok(matches!(phase, Some(LeasePhase::Closing | LeasePhase::Closed)).then_some(phase))
    })
    .await?;
    s.provider.kill();
    let namespace_at_kill = Api::<Namespace>::all(client.clone())
        .get_opt(&namespace)
        .await?;
    tracing::info!(
        phase = ?phase_at_second_kill,
        namespace = ?namespace_at_kill.map(|ns| ns.metadata.deletion_timestamp.is_some()),
        "provider killed again during teardown (namespace: Some(terminating?))"
    );
    s.provider.restart()?;
    market::wait_namespace_gone(&client, &namespace).await?;
    let closed = until("the Lease Closed", Duration::from_secs(60), || async {
        let st = s
            .leases()
            .get(&lease_name)
            .await?
            .status
            .unwrap_or_default();
        Ok(if st.phase == Some(LeasePhase::Closed) {
            Poll::Ready(st)
        } else {
            Poll::Pending(format!("phase {:?}", st.phase))
        })
    })
    .await?;
    assert_eq!(closed.closed_reason.as_deref(), Some("owner"));
    market::wait_bid_gone(&s.bids(), &lease_name).await?;
    assert!(market::bid_names(&s.bids()).await?.is_empty());

    // The restarted provider counts no active lease, and keeps counting none.
    let active = |text: &str| market::counter(text, "akash_provider_active_leases ");
    until("active_leases 0", Duration::from_secs(30), || async {
        Ok(match s.provider.metrics().await {
            Some(text)
                if active(&text) == 0.0 && text.contains("akash_provider_active_leases ") =>
            {
                Poll::Ready(())
            }
            Some(text) => Poll::Pending(format!("active_leases {}", active(&text))),
            None => Poll::Pending("metrics not answering".into()),
        })
    })
    .await?;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let text = s.provider.metrics().await.unwrap_or_default();
    assert_eq!(active(&text), 0.0, "{text}");
    // Nothing came back.
    assert!(
        Api::<Namespace>::all(client.clone())
            .get_opt(&namespace)
            .await?
            .is_none()
    );
    let names: BTreeSet<String> = market::bid_names(&s.bids()).await?.into_iter().collect();
    assert!(names.is_empty(), "{names:?}");
    Ok(())
}
