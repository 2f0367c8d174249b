//! `helm install akash-provider` as an operator runs it: the provider and the tenant controller
//! are pods on the real node, from the image `deploy/build-images.sh` builds here, with their
//! ServiceAccount tokens and the chart's RBAC. The provider registers and bids, the tenant
//! controller leases from it and delivers the manifest through the gateway's Service, and the
//! tenant's container answers through the ingress controller by its automatic hostname.

use std::time::Duration;

use crds::resources::{Manifest, ManifestPhase};
use e2e::chart::{self, ChartProvider, ChartRelease};
use e2e::devnet::{Devnet, TEST_MNEMONICS};
use e2e::market;
use e2e::marketplace::{create_key_secret, manifest_of};
use e2e::real_node::{self, RealNode};
use e2e::scenario::{PROVIDER_KEY, TENANT_KEY};
use e2e::wait::{Poll, until};
use k8s_openapi::api::core::v1::Pod;
use kube::Api;
use kube::api::{DeleteParams, ListParams, PostParams};
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_chart_runs_provider_and_tenant_as_pods_and_a_tenants_app_answers() -> anyhow::Result<()>
{
    let cluster = e2e::Cluster::shared().await?;
    let node = RealNode::get(&cluster).await?;
    e2e::crds::install(&cluster).await?;
    let provider_ns = cluster.namespace("chartpod").await?;
    let tenant_ns = cluster.namespace("charttenant").await?;
    let namespace = provider_ns.name().to_owned();

    // The chain, where pods reach it: the node's address.
    let devnet = Devnet::start_on("e2e-chart-pods", "200ms", node.ip)?;
    create_key_secret(
        &cluster.client(),
        tenant_ns.name(),
        TEST_MNEMONICS[TENANT_KEY],
    )
    .await?;
    // The gateway's Service is a node port: tenants (the controller's pod, or anyone) reach the
    // provider at the node's address, the host URI it registers on chain.
    let _release = ChartRelease::install(
        &cluster,
        &node,
        &devnet,
        ChartProvider {
            release: "akp",
            namespace: &namespace,
            mnemonic: TEST_MNEMONICS[PROVIDER_KEY],
            gateway_node_port: chart::node_port(30000),
            attributes: Vec::new(),
            extra_values: json!({
                "tenant": {
                    "enabled": true,
                    "watchNamespace": tenant_ns.name(),
                    "statusInterval": "2s",
                    "blockInterval": "200ms",
                },
                // Leased IPs from MetalLB's pool of the real node (deploy/node-up.sh): the
                // chart's Role lets the pod read it.
                "inventory": { "ipPool": "default" },
            }),
        },
    )
    .await?;
    let (repository, tag) = real_node::provider_image()?;

    // Both run as pods of the image built here, on the real node.
    let pods = provider_ns
        .api::<Pod>()
        .list(&ListParams::default())
        .await?;
    assert_eq!(
        pods.items.len(),
        2,
        "the provider's pod and the tenant controller's"
    );
    for pod in &pods.items {
        let spec = pod.spec.as_ref().expect("spec");
        assert_eq!(spec.node_name.as_deref(), Some(node.name.as_str()));
        assert_eq!(
            spec.containers[0].image.as_deref(),
            Some(format!("{repository}:{tag}").as_str())
        );
    }

    // The tenant applies a Manifest; everything else happens inside the cluster.
    let dseq = market::unique_dseq(40);
    let sdl = real_node::web_and_api_sdl_on(
        "hello from a chart-run provider",
        "chart.tenant.test",
        Some("web-ip"),
    )?;
    let manifests = Api::<Manifest>::namespaced(cluster.client(), tenant_ns.name());
    manifests
        .create(
            &PostParams::default(),
            &manifest_of(
                "app",
                &sdl,
                dseq,
                2,
                crds::resources::Distribution::SendToAll,
            ),
        )
        .await?;
    let running = until("the Manifest Running", Duration::from_secs(240), || async {
        let m = manifests.get("app").await?;
        let st = m.status.clone().unwrap_or_default();
        let leased_ip = st.services.iter().any(|s| !s.leased_ips.is_empty());
        Ok(if st.phase == Some(ManifestPhase::Running) && leased_ip {
            Poll::Ready(st)
        } else {
            Poll::Pending(format!("{:?} ready {:?}", st.phase, st.ready))
        })
    })
    .await?;
    let web = running
        .services
        .iter()
        .find(|s| s.name == "web")
        .expect("web in the Manifest's status");
    let host = web
        .uris
        .iter()
        .find(|u| u.ends_with(".ingress.localhost"))
        .expect("an automatic host")
        .clone();
    let body = until(
        "the app answering through the ingress",
        Duration::from_secs(60),
        || async {
            let (code, body) = node.http_via_ingress(&host, "/").await?;
            Ok(if code == 200 {
                Poll::Ready(body)
            } else {
                Poll::Pending(format!("{code}"))
            })
        },
    )
    .await?;
    assert!(
        body.starts_with("hello from a chart-run provider\n"),
        "{body}"
    );
    // Port 9000 on the leased IP the in-cluster provider got from MetalLB, as the tenant's
    // Manifest reports it (`ip:9000 -> 9000/TCP`); this machine reaches it through kube-proxy.
    let leased = web.leased_ips.first().expect("a leased IP").clone();
    let (address, rest) = leased.split_once(' ').expect("ip:port -> port/proto");
    assert_eq!(rest, "-> 9000/TCP", "{leased}");
    let url = format!("http://{address}/");
    let client = reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(10))
        .build()?;
    let body = until(
        &format!("the app answering at {url}"),
        Duration::from_secs(60),
        || async {
            Ok(match client.get(&url).send().await {
                Ok(response) => Poll::Ready(response.text().await?),
                Err(e) => Poll::Pending(format!("{e:#}")),
            })
        },
    )
    .await?;
    assert!(body.contains("service=web"), "{body}");

    // Deleting the Manifest closes the deployment; the in-cluster provider removes the workloads.
    manifests.delete("app", &DeleteParams::default()).await?;
    let group = &running.groups[0];
    let lease_ns = crds::sdl::names::lease_namespace(&crds::sdl::names::LeaseId {
        owner: devnet::genesis::test_accounts()?[TENANT_KEY]
            .address
            .clone(),
        dseq,
        gseq: group.gseq,
        oseq: group.oseq.unwrap_or(1),
        provider: group.provider.clone().unwrap_or_default(),
    });
    market::wait_namespace_gone(&cluster.client(), &lease_ns).await?;
    Ok(())
}
