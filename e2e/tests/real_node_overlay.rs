//! The overlay with real pods: two providers installed from the chart with `overlay.enabled`, each
//! with its overlay sidecar in its own pod on the real node. A deployment puts `web` with the
//! first and `db` (a TCP echo server) with the second; `db` lets `web` in on 5432. The web pod
//! connects to `db:5432` as any workload would: cluster DNS gives the Service the calling sidecar
//! made, kube-proxy carries the connection to that sidecar, which admits it by the pod's real IP
//! (no `--allow-source`) and tunnels it over mTLS to the serving sidecar, which connects the db
//! pod. A pod outside the lease that connects to the same Service gets nothing through.

use std::time::Duration;

use crds::resources::{Distribution, Manifest, ManifestPhase, Tunnel};
use e2e::chart::{self, ChartProvider, ChartRelease};
use e2e::devnet::{Devnet, TEST_MNEMONICS};
use e2e::market;
use e2e::marketplace::{create_key_secret, manifest_of};
use e2e::real_node::{self, LeaseNamespaceGuard, RealNode};
use e2e::scenario::{COMPETITOR_KEY, PROVIDER_KEY, TENANT_KEY};
use e2e::wait::{Poll, until};
use k8s_openapi::api::core::v1::{Pod, Service};
use kube::Api;
use kube::api::{ListParams, PostParams};
use serde_json::json;

/// `web` in placement `dc0` (provider with site p0), `db` in `dc1` (site p1), on the test workload:
/// `db` echoes every byte on 5432 (busybox `nc -ll -e cat`), for `web` only.
fn overlay_sdl() -> anyhow::Result<crds::sdl::Sdl> {
    let image = real_node::workload_image();
    let text = format!(
        r#"
version: "2.0"
services:
  web:
    image: {image}
    env: ["PORTS=8080", "SERVICE_NAME=web"]
    expose:
      - port: 8080
        as: 80
        to: [{{global: true}}]
  db:
    image: {image}
    args: ["nc", "-ll", "-p", "5432", "-e", "cat"]
    expose:
      - port: 5432
        to: [{{service: web}}]
profiles:
  compute:
    small:
      resources: {{cpu: {{units: 0.1}}, memory: {{size: 64Mi}}, storage: {{size: 64Mi}}}}
  placement:
    dc0:
      attributes: {{site: p0}}
      pricing:
        small: {{denom: uact, amount: 10000}}
    dc1:
      attributes: {{site: p1}}
      pricing:
        small: {{denom: uact, amount: 10000}}
deployment:
  web: {{dc0: {{profile: small, count: 1}}}}
  db: {{dc1: {{profile: small, count: 1}}}}
"#
    );
    crds::sdl::Sdl::parse(&text).map_err(|e| anyhow::anyhow!("overlay SDL: {e}"))
}

/// What `echo <payload> | nc db 5432` prints in the pod (at most 5 s).
fn echo_through(
    node: &RealNode,
    namespace: &str,
    pod: &str,
    host: &str,
    payload: &str,
) -> anyhow::Result<String> {
    let script = format!("echo {payload} | timeout 8 nc -w 5 {host} 5432");
    let out = node.exec(namespace, pod, &["sh", "-c", &script])?;
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pod_reaches_a_service_of_another_provider_by_its_name_through_the_overlay()
-> anyhow::Result<()> {
    let cluster = e2e::Cluster::shared().await?;
    let node = RealNode::get(&cluster).await?;
    e2e::crds::install(&cluster).await?;
    let devnet = Devnet::start_on("e2e-overlay-pods", "200ms", node.ip)?;
    let tenant_ns = cluster.namespace("ovtenant").await?;
    create_key_secret(
        &cluster.client(),
        tenant_ns.name(),
        TEST_MNEMONICS[TENANT_KEY],
    )
    .await?;

    // Two providers, each with its sidecar; peers connect to the sidecar's node port.
    let mut releases = Vec::new();
    let mut namespaces = Vec::new();
    for (i, key) in [PROVIDER_KEY, COMPETITOR_KEY].into_iter().enumerate() {
        let ns = cluster.namespace(&format!("ovp{i}")).await?;
        let gateway = chart::node_port(30000 + 1200 * i as u16);
        let overlay = chart::node_port(30600 + 1200 * i as u16);
        let mut extra = json!({ "overlay": {
            "enabled": true,
            "interval": "1s",
            "service": { "type": "NodePort", "nodePort": overlay },
        } });
        if i == 0 {
            extra["tenant"] = json!({
                "enabled": true,
                "watchNamespace": tenant_ns.name(),
                "statusInterval": "2s",
                "blockInterval": "200ms",
            });
        }
        let release = ChartRelease::install(
            &cluster,
            &node,
            &devnet,
            ChartProvider {
                release: &format!("ov{i}"),
                namespace: ns.name(),
                mnemonic: TEST_MNEMONICS[key],
                gateway_node_port: gateway,
                attributes: vec![
                    ("site".into(), format!("p{i}")),
                    ("overlay-endpoint".into(), format!("{}:{overlay}", node.ip)),
                ],
                extra_values: extra,
            },
        )
        .await?;
        releases.push(release);
        namespaces.push(ns);
    }

    // The tenant deploys; its controller leases web from p0 and db from p1.
    let dseq = market::unique_dseq(60);
    let sdl = overlay_sdl()?;
    let manifests = Api::<Manifest>::namespaced(cluster.client(), tenant_ns.name());
    manifests
        .create(
            &PostParams::default(),
            &manifest_of("ov", &sdl, dseq, 2, Distribution::SendToAll),
        )
        .await?;
    let running = until("the Manifest Running", Duration::from_secs(240), || async {
        let m = manifests.get("ov").await?;
        let st = m.status.clone().unwrap_or_default();
        Ok(if st.phase == Some(ManifestPhase::Running) {
            Poll::Ready(st)
        } else {
            Poll::Pending(format!("{:?} ready {:?}", st.phase, st.ready))
        })
    })
    .await?;
    let owner = devnet::genesis::test_accounts()?[TENANT_KEY]
        .address
        .clone();
    let lease_ns = |group: &str| -> anyhow::Result<String> {
        let g = running
            .groups
            .iter()
            .find(|g| g.name == group)
            .ok_or_else(|| anyhow::anyhow!("no group {group} in {:?}", running.groups))?;
        Ok(crds::sdl::names::lease_namespace(
            &crds::sdl::names::LeaseId {
                owner: owner.clone(),
                dseq,
                gseq: g.gseq,
                oseq: g.oseq.unwrap_or(1),
                provider: g.provider.clone().unwrap_or_default(),
            },
        ))
    };
    let (web_ns, db_ns) = (lease_ns("dc0")?, lease_ns("dc1")?);
    let _cleanup = [
        LeaseNamespaceGuard::new(&cluster, &web_ns),
        LeaseNamespaceGuard::new(&cluster, &db_ns),
    ];

    // Both ends of the tunnel are up.
    for ns in &namespaces {
        let tunnels = Api::<Tunnel>::namespaced(cluster.client(), ns.name());
        until(
            "the Tunnel established",
            Duration::from_secs(120),
            || async {
                let list = tunnels.list(&ListParams::default()).await?;
                let up = list
                    .items
                    .iter()
                    .any(|t| t.status.as_ref().is_some_and(|s| s.established));
                Ok(if up {
                    Poll::Ready(())
                } else {
                    Poll::Pending(format!("{} tunnels, none established", list.items.len()))
                })
            },
        )
        .await?;
    }

    // web's pod: cluster DNS names db, kube-proxy leads to the calling sidecar, the tunnel to db.
    let web_pods = Api::<Pod>::namespaced(cluster.client(), &web_ns)
        .list(&ListParams::default().labels("akash.network/manifest-service=web"))
        .await?;
    let web_pod = web_pods.items[0].metadata.name.clone().unwrap_or_default();
    let answer = until(
        "db's echo through the overlay",
        Duration::from_secs(60),
        || async {
            let got = echo_through(&node, &web_ns, &web_pod, "db", "through-the-overlay")?;
            Ok(if got == "through-the-overlay" {
                Poll::Ready(got)
            } else {
                Poll::Pending(format!("got {got:?}"))
            })
        },
    )
    .await?;
    assert_eq!(answer, "through-the-overlay");
    let db_service = Api::<Service>::namespaced(cluster.client(), &web_ns)
        .get("db")
        .await?;
    assert!(
        db_service
            .spec
            .as_ref()
            .and_then(|s| s.selector.as_ref())
            .is_none_or(|s| s.is_empty()),
        "db in web's namespace is the sidecar's Service, not a local workload"
    );

    // A pod that is not one of the lease's, connecting to the same Service, gets nothing back:
    // the calling sidecar admits sources by the lease's pod IPs.
    let outsider_ns = cluster.namespace("ovoutsider").await?;
    let outsider: Pod = serde_json::from_value(json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "outsider"},
        "spec": {
            "nodeSelector": {"type": "real"},
            "containers": [{"name": "c", "image": real_node::workload_image()}],
        },
    }))?;
    let pods = Api::<Pod>::namespaced(cluster.client(), outsider_ns.name());
    pods.create(&PostParams::default(), &outsider).await?;
    until("the outsider Running", Duration::from_secs(120), || async {
        let p = pods.get("outsider").await?;
        let phase = p.status.and_then(|s| s.phase);
        Ok(if phase.as_deref() == Some("Running") {
            Poll::Ready(())
        } else {
            Poll::Pending(format!("{phase:?}"))
        })
    })
    .await?;
    let target = format!("db.{web_ns}.svc.cluster.local");
    let stolen = echo_through(&node, outsider_ns.name(), "outsider", &target, "stolen")?;
    assert_ne!(stolen, "stolen", "a pod outside the lease used its tunnel");

    // The lease's pod reaches the provider's pod on the sidecar's local ports only: not its
    // gateway (8443, 8444), metrics (8080) or the sidecar's own tunnel and metrics ports.
    let provider_pods = Api::<Pod>::namespaced(cluster.client(), namespaces[0].name())
        .list(&ListParams::default())
        .await?;
    let provider_ip = provider_pods
        .items
        .iter()
        .find(|p| {
            p.metadata
                .name
                .as_deref()
                .is_some_and(|n| !n.contains("tenant"))
        })
        .and_then(|p| p.status.as_ref()?.pod_ip.clone())
        .ok_or_else(|| anyhow::anyhow!("no provider pod IP in {}", namespaces[0].name()))?;
    // The outsider (no policy of ours) shows the ports are open, so a refusal below is the policy.
    for port in [8443, 8444, 8080, 8445, 8082] {
        assert!(
            node.can_connect(outsider_ns.name(), "outsider", &provider_ip, port)?,
            "the provider pod does not listen on {port}: the probe below would prove nothing"
        );
        assert!(
            !node.can_connect(&web_ns, &web_pod, &provider_ip, port)?,
            "a lease pod reached the provider pod {provider_ip}:{port}"
        );
    }
    Ok(())
}
