//! Outages: the chain (RPC and gRPC) away for 60 s, then the API server for 30 s, while leases
//! are created and closed. The provider reaches both through proxies the test cuts; the tenant
//! and the test reach them directly. Nothing is torn down for want of a dependency, every event is
//! handled once it is back, and `/readyz` and `akash_provider_dependency_up` say what is away.

use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use chain_client::Chain;
use crds::resources::{BidPhase, LeasePhase};
use e2e::market::{
    close_deployment, lease, leased_sdl, object_name, send_manifest, unique_dseq, wait_bid_phase,
    wait_lease, wait_namespace_gone,
};
use e2e::outage::{CuttableProxy, kube_server, kubeconfig_through};
use e2e::real_node::LeaseNamespaceGuard;
use e2e::scenario::{Scenario, scenario};
use e2e::tenant;
use k8s_openapi::api::core::v1::Namespace;
use kube::Api;

const CHAIN_OUTAGE: Duration = Duration::from_secs(60);
const API_OUTAGE: Duration = Duration::from_secs(30);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chain_and_api_server_outages_lose_nothing_and_show_in_readiness() -> anyhow::Result<()> {
    let mut s = scenario("outage", &[("host", "akash")], vec![]).await?;
    let cluster = e2e::Cluster::shared().await?;
    let result = run(&mut s, &cluster).await;
    if result.is_err() {
        eprintln!("--- provider logs ---\n{}", s.provider.logs());
    }
    result
}

async fn run(s: &mut Scenario, cluster: &e2e::Cluster) -> anyhow::Result<()> {
    let owner = s.tenant.address().to_owned();
    let me = s.provider_address();
    let rpc = CuttableProxy::to_url(&s.devnet.rpc_url).await?;
    let grpc = CuttableProxy::to_url(&s.devnet.grpc_url).await?;
    let kube = CuttableProxy::to_url(&kube_server(cluster.kubeconfig())?).await?;
    let dir = tempfile::tempdir()?;
    let proxied = dir.path().join("kubeconfig");
    kubeconfig_through(cluster.kubeconfig(), &kube, &proxied)?;
    let (rpc_url, grpc_url) = (
        rpc.url_for(&s.devnet.rpc_url),
        grpc.url_for(&s.devnet.grpc_url),
    );
    s.provider.restart_via(&rpc_url, &grpc_url, &proxied)?;
    wait_readiness(s, "ready", Duration::from_secs(60), |code, _| code == 200).await?;

    // Two running leases: `kept` stays through both outages, `closed` is closed in the first.
    let sdl = tenant::testdata_sdl("openspeedtest.yaml")?;
    let (kept, closed, ordered) = (unique_dseq(1), unique_dseq(2), unique_dseq(3));
    let kept_ns = leased_sdl(s, kept, &sdl).await?;
    send_manifest(s, kept, &sdl).await?;
    let closed_ns = leased_sdl(s, closed, &sdl).await?;
    send_manifest(s, closed, &sdl).await?;
    for dseq in [kept, closed] {
        wait_active(s, &object_name(&owner, dseq)).await?;
    }
    let namespaces = Api::<Namespace>::all(cluster.client());
    let ordered_ns = crds::sdl::names::lease_namespace(&crds::sdl::names::LeaseId {
        owner: owner.clone(),
        dseq: ordered,
        gseq: 1,
        oseq: 1,
        provider: me.clone(),
    });
    // Whatever happens, no lease's pods are left on the kwok nodes for later tests.
    let _cleanup =
        [&kept_ns, &closed_ns, &ordered_ns].map(|ns| LeaseNamespaceGuard::new(cluster, ns));

    // The chain goes away for the provider. Meanwhile the tenant closes one deployment and
    // creates another.
    rpc.cut();
    grpc.cut();
    let cut_at = Instant::now();
    close_deployment(&s.tenant, closed).await?;
    tenant::create_deployment(&s.tenant, &sdl, ordered).await?;
    wait_readiness(
        s,
        "/readyz naming the chain",
        Duration::from_secs(30),
        |code, body| code == 503 && body.contains("chain unreachable"),
    )
    .await?;
    let metrics = s.provider.metrics().await.context("no metrics")?;
    assert!(
        metrics.contains("dependency_up{dependency=\"chain\"} 0")
            && metrics.contains("dependency_up{dependency=\"kube\"} 1"),
        "{metrics}"
    );
    // Nothing is torn down for want of the chain: both leases keep their namespaces.
    while cut_at.elapsed() < CHAIN_OUTAGE {
        for ns in [&kept_ns, &closed_ns] {
            anyhow::ensure!(
                namespaces.get_opt(ns).await?.is_some(),
                "{ns} was removed while the chain was away"
            );
        }
        s.provider.restart_if_exited()?;
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
    rpc.restore();
    grpc.restore();

    // Back: the close is seen and the closed lease's workloads go; the new order gets a bid.
    wait_namespace_gone(&cluster.client(), &closed_ns).await?;
    wait_bid_phase(&s.bids(), &object_name(&owner, ordered), BidPhase::Open).await?;
    wait_readiness(s, "ready again", Duration::from_secs(60), |code, _| {
        code == 200
    })
    .await?;
    wait_active(s, &object_name(&owner, kept)).await?;

    // The API server goes away for the provider; the tenant takes the new bid meanwhile.
    kube.cut();
    let cut_at = Instant::now();
    lease(&s.tenant, ordered, &me).await?;
    wait_readiness(
        s,
        "/readyz naming the API server",
        API_OUTAGE,
        |code, body| code == 503 && body.contains("kube unreachable"),
    )
    .await?;
    while cut_at.elapsed() < API_OUTAGE {
        // With the default 15 s leader lease it steps down and exits; restarted, it waits for
        // the API server.
        s.provider.restart_if_exited()?;
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    kube.restore();
    s.provider.restart_if_exited()?;
    wait_readiness(s, "ready again", Duration::from_secs(90), |code, _| {
        code == 200
    })
    .await?;
    wait_lease(&s.leases(), &object_name(&owner, ordered)).await?;
    wait_active(s, &object_name(&owner, kept)).await?;
    anyhow::ensure!(
        namespaces.get_opt(&kept_ns).await?.is_some(),
        "the kept lease lost its namespace"
    );
    // And it tears down as usual afterwards.
    for dseq in [kept, ordered] {
        close_deployment(&s.tenant, dseq).await?;
    }
    for ns in [&kept_ns, &ordered_ns] {
        wait_namespace_gone(&cluster.client(), ns).await?;
    }
    Ok(())
}

/// Polls `/readyz` (restarting the provider if it exited) until `done(code, body)`.
async fn wait_readiness(
    s: &mut Scenario,
    what: &str,
    limit: Duration,
    done: impl Fn(u16, &str) -> bool,
) -> anyhow::Result<()> {
    let start = Instant::now();
    let mut last = None;
    while start.elapsed() < limit {
        s.provider.restart_if_exited()?;
        if let Some((code, body)) = s.provider.readyz().await {
            if done(code, &body) {
                tracing::info!("{what}: done after {:.1}s", start.elapsed().as_secs_f64());
                return Ok(());
            }
            last = Some((code, body));
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    bail!("{what}: not within {limit:?}; last /readyz {last:?}")
}

/// Until the lease `name` is Active (its workloads ready).
async fn wait_active(s: &Scenario, name: &str) -> anyhow::Result<()> {
    let leases = s.leases();
    let start = Instant::now();
    loop {
        let phase = leases
            .get_opt(name)
            .await?
            .and_then(|l| l.status)
            .and_then(|st| st.phase);
        if phase == Some(LeasePhase::Active) {
            return Ok(());
        }
        if start.elapsed() > Duration::from_secs(120) {
            bail!("lease {name} not Active within 120 s: {phase:?}");
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}
