//! The provider end to end, part 2: a lease's manifest arrives over mTLS at the real gateway, the
//! workloads run on kwok nodes of the real control plane, withdrawals land on the devnet, and the
//! tenant's close tears everything down. Rejected manifests create nothing.

use std::time::Duration;

use chain_client::Chain;
use crds::resources::LeasePhase;
use e2e::market::{self, certificate, leased, object_name, unique_dseq};
use e2e::scenario::{STRANGER_KEY, scenario};
use e2e::tenant;
use e2e::wait::{Poll, until};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{Namespace, Pod};
use kube::Api;
use kube::api::{ListParams, Patch, PatchParams};
use operator::gateway::client::rest_client;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_manifest_sent_over_mtls_runs_on_kwok_is_withdrawn_from_and_torn_down_on_close()
-> anyhow::Result<()> {
    let keeper = ["--withdrawal-period", "2s", "--keeper-interval", "1s"];
    let s = scenario(
        "workloads",
        &[("host", "akash")],
        keeper.map(String::from).to_vec(),
    )
    .await?;
    let me = s.provider_address();
    let owner = s.tenant.address().to_owned();
    let dseq = unique_dseq(1);
    let namespace = leased(&s, dseq).await?;
    let cluster = e2e::Cluster::shared().await?;

    let identity = certificate(&s.tenant).await?;
    let http = rest_client(&s.tenant, &me, &identity).await?;
    let sdl = tenant::testdata_sdl("openspeedtest.yaml")?;
    let url = format!(
        "https://{}/deployment/{dseq}/manifest",
        s.provider.gateway_rest_addr
    );
    let response = http.put(&url).body(sdl.manifest_json()).send().await?;
    let status = response.status();
    assert!(status.is_success(), "{status}: {}", response.text().await?);

    // The workloads run: the namespace (PodSecurity baseline), the Deployment, a Running pod.
    let lease_name = object_name(&owner, dseq);
    let lease = until("the lease Active", Duration::from_secs(120), || async {
        let lease = s.leases().get(&lease_name).await?;
        let st = lease.status.clone().unwrap_or_default();
        Ok(if st.phase == Some(LeasePhase::Active) {
            Poll::Ready(lease)
        } else {
            Poll::Pending(format!("phase {:?}, ready {:?}", st.phase, st.ready))
        })
    })
    .await?;
    let st = lease.status.unwrap();
    assert_eq!(st.ready.as_deref(), Some("1/1"));
    let service = &st.services[0];
    assert_eq!(
        (
            service.name.as_str(),
            service.ready_replicas,
            service.replicas
        ),
        ("openspeedtest", 1, 1)
    );
    assert_eq!(service.uris.len(), 1, "{service:?}");
    assert!(
        service.uris[0].ends_with(".ingress.localhost"),
        "{service:?}"
    );
    let ns = Api::<Namespace>::all(cluster.client())
        .get(&namespace)
        .await?;
    let labels = ns.metadata.labels.unwrap_or_default();
    assert_eq!(
        labels
            .get("pod-security.kubernetes.io/enforce")
            .map(String::as_str),
        Some("baseline")
    );
    assert_eq!(labels.get("akash.network/lease.id.owner"), Some(&owner));
    let pods = Api::<Pod>::namespaced(cluster.client(), &namespace)
        .list(&ListParams::default())
        .await?;
    assert_eq!(pods.items.len(), 1);
    let pod = &pods.items[0];
    assert_eq!(
        pod.status.as_ref().and_then(|p| p.phase.as_deref()),
        Some("Running")
    );
    assert_eq!(
        pod.spec
            .as_ref()
            .and_then(|p| p.automount_service_account_token),
        Some(false)
    );
    assert!(
        Api::<Deployment>::namespaced(cluster.client(), &namespace)
            .get_opt("openspeedtest")
            .await?
            .is_some()
    );

    // A reconcile with nothing new applies nothing: a change of the Lease's metadata (which its
    // watch sees) runs the reconciler, and it sends no apply.
    let runs = r#"akash_provider_reconcile_runs_total{controller="workload"}"#;
    let applies = r#"akash_provider_kube_requests_total{verb="APPLY",resource="deployments"}"#;
    let before = s.provider.metrics().await.unwrap_or_default();
    let poke = serde_json::json!({"metadata": {"annotations": {"e2e.akash.network/poke": "1"}}});
    s.leases()
        .patch(&lease_name, &PatchParams::default(), &Patch::Merge(&poke))
        .await?;
    let after = until(
        "a reconcile after the poke",
        Duration::from_secs(30),
        || async {
            let text = s.provider.metrics().await.unwrap_or_default();
            Ok(
                if market::counter(&text, runs) > market::counter(&before, runs) {
                    Poll::Ready(text)
                } else {
                    Poll::Pending(format!("runs {}", market::counter(&text, runs)))
                },
            )
        },
    )
    .await?;
    assert!(market::counter(&before, applies) >= 1.0, "{before}");
    assert_eq!(
        market::counter(&after, applies),
        market::counter(&before, applies),
        "the same objects, all in place, were applied again"
    );

    // A Deployment someone scaled by hand is put back: its spec changed since the apply.
    let deployments = Api::<Deployment>::namespaced(cluster.client(), &namespace);
    let scale = serde_json::json!({"spec": {"replicas": 0}});
    deployments
        .patch(
            "openspeedtest",
            &PatchParams {
                field_manager: Some("e2e-by-hand".into()),
                ..Default::default()
            },
            &Patch::Merge(&scale),
        )
        .await?;
    until(
        "the Deployment's replicas put back",
        Duration::from_secs(60),
        || async {
            let replicas = deployments.get("openspeedtest").await?.spec.replicas;
            Ok(if replicas == Some(1) {
                Poll::Ready(())
            } else {
                Poll::Pending(format!("replicas {replicas:?}"))
            })
        },
    )
    .await?;

    // The tenant reads the lease status from the gateway.
    let status_url = format!(
        "https://{}/lease/{dseq}/1/1/status",
        s.provider.gateway_rest_addr
    );
    let body = http.get(&status_url).send().await?.text().await?;
    assert!(body.contains("openspeedtest"), "{body}");

    // The provider's status: the cluster's nodes with what is left on them, and the lease's
    // reservation among the active ones (the report follows the bid engine's inventory).
    let provider_status = format!("https://{}/status", s.provider.gateway_rest_addr);
    let report = until(
        "/status showing the lease",
        Duration::from_secs(30),
        || async {
            let report: serde_json::Value = http.get(&provider_status).send().await?.json().await?;
            let active = report["cluster"]["inventory"]["active"]
                .as_array()
                .map_or(0, Vec::len);
            Ok(if active >= 1 {
                Poll::Ready(report)
            } else {
                Poll::Pending(report.to_string())
            })
        },
    )
    .await?;
    let nodes = report["cluster"]["inventory"]["available"]["nodes"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert!(
        nodes.iter().any(|n| n["name"]
            .as_str()
            .is_some_and(|n| n.starts_with("kwok-node"))),
        "{report}"
    );
    for n in &nodes {
        assert!(
            n["available"]["cpu"].as_u64() <= n["allocatable"]["cpu"].as_u64(),
            "{n}"
        );
    }
    // openspeedtest asks for 1 CPU, 512 MiB memory and 512 MiB storage: what the lease holds.
    let held = &report["cluster"]["inventory"]["active"][0];
    assert_eq!(held["cpu"], 1000, "{report}");
    assert_eq!(held["memory"], 512u64 << 20, "{report}");
    assert_eq!(held["storage_ephemeral"], 512u64 << 20, "{report}");
    assert_eq!(report["bidengine"]["orders"], 0, "{report}");
    assert_eq!(report["cluster"]["leases"], 1, "{report}");

    // Withdrawals reach the chain.
    until(
        "a withdrawal recorded on the lease",
        Duration::from_secs(60),
        || async {
            let lease = s.leases().get(&lease_name).await?;
            Ok(match lease.status.and_then(|st| st.last_withdraw_height) {
                Some(h) if h > 0 => Poll::Ready(h),
                _ => Poll::Pending("no withdrawal yet".into()),
            })
        },
    )
    .await?;
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
    let payment = leases.items[0].escrow_payment.clone().unwrap_or_default();
    let withdrawn = payment
        .state
        .and_then(|p| p.withdrawn)
        .map(|c| c.amount)
        .unwrap_or_default();
    assert!(
        withdrawn != "0" && !withdrawn.is_empty(),
        "withdrawn {withdrawn:?}"
    );

    // The manifest_ready bench's idle-cost measurement at a small size, so that it cannot rot
    // (printed, not asserted: other tests share the API server).
    let pid = s.provider.pid().expect("the provider runs");
    let idle =
        e2e::idle_cost::IdleCost::measure(&cluster, "akash.network", pid, Duration::from_secs(5))
            .await?;
    println!("idle cost with one lease: {}", idle.summary());

    // The tenant closes the deployment: the namespace goes, the lease is Closed.
    market::close_deployment(&s.tenant, dseq).await?;
    market::wait_namespace_gone(&cluster.client(), &namespace).await?;
    let closed = s
        .leases()
        .get(&lease_name)
        .await?
        .status
        .unwrap_or_default();
    assert_eq!(closed.phase, Some(LeasePhase::Closed));
    assert_eq!(closed.closed_reason.as_deref(), Some("owner"));
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rejected_manifests_get_precise_errors_and_create_nothing() -> anyhow::Result<()> {
    let s = scenario("reject", &[("host", "akash")], vec![]).await?;
    let me = s.provider_address();
    let owner = s.tenant.address().to_owned();
    let dseq = unique_dseq(2);
    let namespace = leased(&s, dseq).await?;
    let cluster = e2e::Cluster::shared().await?;
    let sdl = tenant::testdata_sdl("openspeedtest.yaml")?;
    let url = format!(
        "https://{}/deployment/{dseq}/manifest",
        s.provider.gateway_rest_addr
    );

    let tenant_http = rest_client(&s.tenant, &me, &certificate(&s.tenant).await?).await?;
    let d = &s.devnet_ref;
    let stranger = tenant::client_for(
        &d.chain_id,
        &d.rpc_url,
        &d.grpc_url,
        e2e::devnet::TEST_MNEMONICS[STRANGER_KEY],
    )?;
    let stranger_http = rest_client(&s.tenant, &me, &certificate(&stranger).await?).await?;

    let mut bigger = sdl.manifest().to_vec();
    bigger[0].services[0].count = 3;
    let bigger = serde_json::to_string(&bigger)?;
    let mut other_image = sdl.manifest().to_vec();
    other_image[0].services[0].image = "nginx:latest".into();
    let other_image = serde_json::to_string(&other_image)?;
    let oversized = format!("[{}]", " ".repeat(5 << 20));
    let cases: Vec<(&str, &reqwest::Client, String, u16, &str)> = vec![
        (
            "a stranger",
            &stranger_http,
            sdl.manifest_json(),
            403,
            "owner",
        ),
        ("another version", &tenant_http, other_image, 400, "version"),
        (
            "a group larger than the lease",
            &tenant_http,
            bigger,
            400,
            "",
        ),
        (
            "malformed JSON",
            &tenant_http,
            "[{\"name\": ".into(),
            400,
            "",
        ),
        ("too large", &tenant_http, oversized, 413, ""),
    ];
    for (what, client, body, code, word) in cases {
        let response = client.put(&url).body(body).send().await?;
        let status = response.status().as_u16();
        let text = response.text().await?;
        // A larger group also changes the version; either refusal is precise and creates nothing.
        assert!(
            status == code
                || (what == "a group larger than the lease" && (400..500).contains(&status)),
            "{what}: {status} {text}"
        );
        assert!(text.to_lowercase().contains(word), "{what}: {text}");
    }
    let lease = s.leases().get(&object_name(&owner, dseq)).await?;
    assert!(lease.spec.manifest.is_none(), "no manifest was recorded");
    assert!(
        Api::<Namespace>::all(cluster.client())
            .get_opt(&namespace)
            .await?
            .is_none(),
        "no namespace was created"
    );
    Ok(())
}
