//! The official Akash TypeScript SDK (`@akashnetwork/chain-sdk`, installed unmodified in
//! `sdk-ref/`) as the tenant, against the devnet and the real provider on the real control plane:
//! `tests/sdk/tenant.mjs` publishes a certificate made with the SDK's certificate manager, deploys
//! openspeedtest, leases the provider's bid, sends the manifest with the SDK's provider client
//! (gRPC over mTLS, the certificate as client identity) and reads the lease status with it until
//! the service is ready; then, with a token (JWT) the SDK makes instead of the certificate, the
//! lease status over REST and its events over the websocket. This side checks what the provider
//! made of it.
//!
//! Needs `node` (Node 20+) on PATH and `sdk-ref/node_modules` (`npm ci` in `sdk-ref/`).

use std::path::Path;
use std::time::Duration;

use anyhow::Context;
use chain_client::Chain;
use crds::resources::LeasePhase;
use e2e::market::{self, OPENSPEEDTEST_PRICE, object_name};
use e2e::scenario::{TENANT_KEY, scenario};
use e2e::wait::{Poll, until};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{Node, Pod};
use kube::Api;
use kube::api::ListParams;
use serde_json::Value;

fn workspace_root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace root")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_typescript_sdk_as_tenant_sends_the_manifest_over_mtls_and_reads_the_lease_status()
-> anyhow::Result<()> {
    let s = scenario("sdk-tenant", &[("host", "akash")], vec![]).await?;
    let me = s.provider_address();
    let owner = s.tenant.address().to_owned();
    // Lease namespaces are cluster-wide and named after the lease id; every scenario's tenant and
    // provider keys are the same: a dseq no other test of any run uses at the same time.
    let dseq = u64::from(std::process::id()) * 100 + 50;
    let sdl = workspace_root().join("testdata/sdl/awesome-akash/openspeedtest.yaml");
    let cluster = e2e::Cluster::shared().await?;

    let out = tokio::time::timeout(
        Duration::from_secs(420),
        tokio::process::Command::new("node")
            .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/sdk/tenant.mjs"))
            .arg(workspace_root())
            .arg(&s.devnet.rpc_url)
            .arg(&s.devnet.grpc_url)
            .arg(e2e::devnet::TEST_MNEMONICS[TENANT_KEY])
            .arg(&sdl)
            .arg(dseq.to_string())
            .arg(&me)
            .arg(format!("https://{}", s.provider.gateway_grpc_addr))
            .arg(format!("https://{}", s.provider.gateway_rest_addr))
            .kill_on_drop(true)
            .output(),
    )
    .await
    .context("the SDK tenant did not finish within 420 s")?
    .context("run node (Node 20+ on PATH, with sdk-ref/node_modules installed)")?;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "the SDK tenant failed:\n{stderr}");
    eprintln!("{stderr}");
    let read: Value = serde_json::from_slice(&out.stdout)
        .with_context(|| format!("one JSON line from tenant.mjs, got: {out:?}"))?;
    assert_eq!(read["owner"], owner.as_str());
    assert_eq!(read["dseq"], dseq.to_string());
    assert_eq!(read["bid"]["price"], OPENSPEEDTEST_PRICE);

    // The certificate the SDK made is the one the chain holds for the tenant.
    let certs = s
        .tenant
        .certificates(
            chain_client::akash::cert::v1::CertificateFilter {
                owner: owner.clone(),
                serial: read["serial"].as_str().unwrap_or_default().to_owned(),
                state: String::new(),
            },
            chain_client::chain::PageRequest::first(10),
        )
        .await?;
    assert_eq!(certs.items.len(), 1, "the SDK's certificate on chain");

    // The provider recorded the manifest the SDK sent, under the version the SDK computed.
    let lease_name = object_name(&owner, dseq);
    let lease = s.leases().get(&lease_name).await?;
    let manifest = lease
        .spec
        .manifest
        .as_ref()
        .context("the Lease has no manifest")?;
    assert_eq!(
        manifest.version,
        read["version"].as_str().unwrap_or_default()
    );
    assert_eq!(manifest.group.services.len(), 1);
    assert_eq!(manifest.group.services[0].name, "openspeedtest");
    assert_eq!(manifest.group.services[0].image, "openspeedtest/latest");

    // The workloads run: the Lease is Active, the Deployment exists, its pod Running on kwok.
    let lease = until("the lease Active", Duration::from_secs(60), || async {
        let lease = s.leases().get(&lease_name).await?;
        let st = lease.status.clone().unwrap_or_default();
        Ok(if st.phase == Some(LeasePhase::Active) {
            Poll::Ready(lease)
        } else {
            Poll::Pending(format!("phase {:?}, ready {:?}", st.phase, st.ready))
        })
    })
    .await?;
    let st = lease.status.unwrap_or_default();
    assert_eq!(st.ready.as_deref(), Some("1/1"));
    let namespace = crds::sdl::names::lease_namespace(&crds::sdl::names::LeaseId {
        owner: owner.clone(),
        dseq,
        gseq: 1,
        oseq: 1,
        provider: me.clone(),
    });
    assert!(
        Api::<Deployment>::namespaced(cluster.client(), &namespace)
            .get_opt("openspeedtest")
            .await?
            .is_some()
    );
    let pods = Api::<Pod>::namespaced(cluster.client(), &namespace)
        .list(&ListParams::default())
        .await?;
    assert_eq!(pods.items.len(), 1);
    let pod = &pods.items[0];
    assert_eq!(
        pod.status.as_ref().and_then(|p| p.phase.as_deref()),
        Some("Running")
    );
    let kwok_nodes: Vec<String> = Api::<Node>::all(cluster.client())
        .list(&ListParams::default().labels("type=kwok"))
        .await?
        .into_iter()
        .filter_map(|n| n.metadata.name)
        .collect();
    let node = pod
        .spec
        .as_ref()
        .and_then(|p| p.node_name.clone())
        .unwrap_or_default();
    assert!(
        kwok_nodes.contains(&node),
        "the pod runs on {node:?}, not a kwok node ({kwok_nodes:?})"
    );

    // What the SDK read from the gateway names the service, ready, with the URI the Lease reports.
    let services = read["services"].as_array().context("services")?;
    assert_eq!(services.len(), 1, "{read}");
    let service = &services[0];
    assert_eq!(service["name"], "openspeedtest", "{read}");
    assert_eq!(service["readyReplicas"], 1, "{read}");
    assert_eq!(service["total"], 1, "{read}");
    let lease_uris = &st.services[0].uris;
    assert_eq!(service["uris"], serde_json::json!(lease_uris), "{read}");
    assert!(
        lease_uris.len() == 1 && lease_uris[0].ends_with(".ingress.localhost"),
        "{lease_uris:?}"
    );

    // With the SDK's token instead of a certificate: the same status over REST, the lease's
    // events over the websocket; a token scoped to `status` reads the status, not the events.
    let jwt = &read["jwt"];
    assert_eq!(jwt["algorithm"], "ES256KADR36", "{jwt}");
    assert_eq!(jwt["restStatus"], 200, "{jwt}");
    let rest: Value = serde_json::from_str(jwt["restBody"].as_str().unwrap_or_default())?;
    assert_eq!(
        rest["services"]["openspeedtest"]["ready_replicas"], 1,
        "{rest}"
    );
    assert_eq!(jwt["restScopedStatus"], 200, "{jwt}");
    assert_eq!(jwt["events"]["close"], 1000, "{jwt}");
    let events = jwt["events"]["events"].as_array().context("events")?;
    assert!(
        events
            .iter()
            .any(|e| e["object"]["kind"] == "Pod" && e["object"]["namespace"] == namespace.as_str()),
        "{jwt}"
    );
    assert_eq!(jwt["eventsScoped"]["refused"], 403, "{jwt}");

    // The lease is active on chain too.
    let leases = s
        .tenant
        .leases(
            chain_client::akash::market::v1::LeaseFilters {
                owner: owner.clone(),
                dseq,
                ..Default::default()
            },
            chain_client::chain::PageRequest::first(10),
        )
        .await?;
    let on_chain = leases.items[0].lease.clone().context("lease")?;
    assert_eq!(
        on_chain.state,
        chain_client::akash::market::v1::lease::State::Active as i32
    );

    // Clean up: the tenant closes the deployment, the provider tears the namespace down.
    market::close_deployment(&s.tenant, dseq).await?;
    market::wait_namespace_gone(&cluster.client(), &namespace).await?;
    Ok(())
}
