//! Tenants' containers on the real node (kubelet, containerd, runc; `deploy/node-up.sh`): a lease's
//! manifest becomes running containers that answer HTTP through the ingress controller (Traefik) by
//! their hostnames and on their node ports, reach each other by cluster DNS name, keep files on
//! `beta2` volumes across pod restarts, and report real readiness, up to the `unstable` close of a
//! lease whose container keeps crashing. The provider runs as a host process here; `real_node_chart`
//! runs it as a pod.

use std::time::Duration;

use chain_client::Chain;

use crds::resources::LeasePhase;
use e2e::market::{self, leased_sdl, object_name, send_manifest, unique_dseq};
use e2e::real_node::{
    self, LeaseNamespaceGuard, RealNode, pod_name, real_scenario, running_pod, wait_active,
};
use e2e::wait::{Poll, until};
use k8s_openapi::api::core::v1::{Pod, Service};
use kube::Api;
use kube::api::{DeleteParams, ListParams, PostParams};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tenants_container_answers_on_its_hostnames_its_node_port_and_by_cluster_dns()
-> anyhow::Result<()> {
    let cluster = e2e::Cluster::shared().await?;
    let node = RealNode::get(&cluster).await?;
    let s = real_scenario("realweb", &[]).await?;
    let dseq = unique_dseq(1);
    let host = format!("web-{dseq}.tenant.test");
    let sdl = real_node::web_and_api_sdl("hello from the real node", &host)?;
    let namespace = leased_sdl(&s, dseq, &sdl).await?;
    let _cleanup_namespace = LeaseNamespaceGuard::new(&cluster, &namespace);
    send_manifest(&s, dseq, &sdl).await?;
    let lease = wait_active(&s, dseq).await?;
    let status = lease.status.unwrap_or_default();
    assert_eq!(status.ready.as_deref(), Some("2/2"), "{status:?}");
    let web = status
        .services
        .iter()
        .find(|svc| svc.name == "web")
        .expect("web in the status");
    let automatic = web
        .uris
        .iter()
        .find(|u| u.ends_with(".ingress.localhost"))
        .unwrap_or_else(|| panic!("no automatic host in {:?}", web.uris))
        .clone();
    assert!(web.uris.contains(&host), "{:?}", web.uris);

    // Both hostnames reach the container through Traefik on the node's port 80. The ingress may
    // need a moment after the pod is ready to pick up the route.
    for name in [automatic.as_str(), host.as_str()] {
        let body = until(
            &format!("HTTP 200 from {name} through the ingress"),
            Duration::from_secs(60),
            || async {
                let (code, body) = node.http_via_ingress(name, "/").await?;
                Ok(if code == 200 {
                    Poll::Ready(body)
                } else {
                    Poll::Pending(format!("{code}: {body}"))
                })
            },
        )
        .await?;
        assert!(body.starts_with("hello from the real node\n"), "{body}");
        assert!(body.contains("service=web"), "{body}");
    }
    // A host no lease claims is not routed to it.
    let (code, _) = node.http_via_ingress("nobody.tenant.test", "/").await?;
    assert_eq!(code, 404);

    // The global port 9000 answers on the node's address at its node port.
    let services = Api::<Service>::namespaced(cluster.client(), &namespace);
    let node_port = services
        .list(&ListParams::default())
        .await?
        .items
        .iter()
        .filter(|svc| svc.spec.as_ref().and_then(|s| s.type_.as_deref()) == Some("NodePort"))
        .flat_map(|svc| {
            svc.spec
                .clone()
                .unwrap_or_default()
                .ports
                .unwrap_or_default()
        })
        .find(|p| p.port == 9000)
        .and_then(|p| p.node_port)
        .expect("a node port for 9000");
    assert!(
        web.forwarded_ports
            .iter()
            .any(|f| f.starts_with(&format!("{node_port}:"))),
        "{:?}",
        web.forwarded_ports
    );
    // kube-proxy programs the node port a moment after the Service exists.
    let client = reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(10))
        .build()?;
    let url = format!("http://{}:{node_port}/", node.ip);
    let body = until(
        &format!("an answer on {url}"),
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

    // web reaches api by its name, through cluster DNS and kube-proxy.
    let web_pod = running_pod(&cluster, &namespace, "web").await?;
    let answer = until(
        "web's answer from api by name",
        Duration::from_secs(60),
        || async {
            let out = node.exec(
                &namespace,
                &pod_name(&web_pod),
                // (busybox's wget crashes with -q or -T here; `timeout` bounds it instead.)
                &["timeout", "10", "wget", "-O", "-", "http://api:8080/"],
            )?;
            let answer = String::from_utf8_lossy(&out.stdout).into_owned();
            Ok(if answer.contains("service=api") {
                Poll::Ready(answer)
            } else {
                Poll::Pending(format!("{answer} {}", String::from_utf8_lossy(&out.stderr)))
            })
        },
    )
    .await?;
    assert!(answer.contains("service=api"), "{answer}");

    // Closing the deployment removes everything.
    market::close_deployment(&s.tenant, dseq).await?;
    market::wait_namespace_gone(&cluster.client(), &namespace).await?;
    Ok(())
}

/// A pod of the test workload in `namespace`, outside any lease (no NetworkPolicy applies to it).
async fn plain_pod(cluster: &e2e::Cluster, namespace: &str, name: &str) -> anyhow::Result<Pod> {
    let pod: Pod = serde_json::from_value(serde_json::json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "labels": {"app": name}},
        "spec": {
            "nodeSelector": {"type": "real"},
            "containers": [{
                "name": "serve",
                "image": real_node::workload_image(),
                "env": [{"name": "PORTS", "value": "8443 8080"}, {"name": "SERVICE_NAME", "value": name}],
                "securityContext": {"allowPrivilegeEscalation": false, "runAsNonRoot": true,
                    "runAsUser": 65532, "capabilities": {"drop": ["ALL"]},
                    "seccompProfile": {"type": "RuntimeDefault"}},
            }],
        },
    }))?;
    let pods = Api::<Pod>::namespaced(cluster.client(), namespace);
    pods.create(&PostParams::default(), &pod).await?;
    until(
        &format!("pod {name} Running"),
        Duration::from_secs(120),
        || async {
            let pod = pods.get(name).await?;
            let phase = pod.status.as_ref().and_then(|s| s.phase.clone());
            let ip = pod.status.as_ref().and_then(|s| s.pod_ip.clone());
            Ok(match (phase.as_deref(), ip) {
                (Some("Running"), Some(_)) => Poll::Ready(pod),
                _ => Poll::Pending(format!("{phase:?}")),
            })
        },
    )
    .await
}

fn pod_ip(pod: &Pod) -> String {
    pod.status
        .as_ref()
        .and_then(|s| s.pod_ip.clone())
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lease_pod_reaches_only_what_its_manifest_allows() -> anyhow::Result<()> {
    use e2e::outside::{INTERNET, METADATA, Outside, SHARED_SPACE};
    let cluster = e2e::Cluster::shared().await?;
    let node = RealNode::get(&cluster).await?;
    let outside = Outside::shared()?;
    let s = real_scenario("realiso", &[]).await?;
    let (mine, theirs) = (unique_dseq(2), unique_dseq(3));
    let sdl_mine = real_node::web_and_api_sdl("mine", &format!("web-{mine}.tenant.test"))?;
    let sdl_theirs = real_node::web_and_api_sdl("theirs", &format!("web-{theirs}.tenant.test"))?;
    let ns_mine = leased_sdl(&s, mine, &sdl_mine).await?;
    let _cleanup_ns_mine = LeaseNamespaceGuard::new(&cluster, &ns_mine);
    let ns_theirs = leased_sdl(&s, theirs, &sdl_theirs).await?;
    let _cleanup_ns_theirs = LeaseNamespaceGuard::new(&cluster, &ns_theirs);
    send_manifest(&s, mine, &sdl_mine).await?;
    send_manifest(&s, theirs, &sdl_theirs).await?;
    wait_active(&s, mine).await?;
    wait_active(&s, theirs).await?;
    let web = pod_name(&running_pod(&cluster, &ns_mine, "web").await?);
    let their_web = running_pod(&cluster, &ns_theirs, "web").await?;

    // Stand-ins for the provider's own pods (gateway 8443, metrics 8080) in its namespace, and a
    // control pod there: without a policy of its own, it reaches every target below, so a refusal
    // from the lease pod is the policy's doing, not a missing route.
    let provider_ns = s.ns.name().to_owned();
    let gateway = plain_pod(&cluster, &provider_ns, "gateway-standin").await?;
    let control = pod_name(&gateway);
    let reach = |ns: &str, pod: &str, host: &str, port: u16| node.can_connect(ns, pod, host, port);

    let apiserver_port = e2e::overlay::apiserver_port(cluster.kubeconfig())?;
    let node_ip = node.ip.to_string();
    let metadata = METADATA.to_string();
    let shared_space = SHARED_SPACE.to_string();
    let internet = INTERNET.to_string();
    let their_service = format!("web.{ns_theirs}.svc.cluster.local");
    let their_ip = pod_ip(&their_web);
    let gateway_ip = pod_ip(&gateway);
    let targets: Vec<(&str, &str, u16)> = vec![
        ("another lease's pod", &their_ip, 8080),
        ("another lease's Service", &their_service, 80),
        ("the provider's gateway", &gateway_ip, 8443),
        ("the provider's metrics", &gateway_ip, 8080),
        (
            "the API server's Service",
            "kubernetes.default.svc.cluster.local",
            443,
        ),
        ("the API server on the node", &node_ip, apiserver_port),
        ("the kubelet", &node_ip, 10250),
        ("cloud metadata (stand-in)", &metadata, 80),
        ("100.64.0.0/10 (stand-in)", &shared_space, 80),
    ];
    let mut leaks = Vec::new();
    for (what, host, port) in &targets {
        assert!(
            reach(&provider_ns, &control, host, *port)?,
            "the control pod cannot reach {what} at {host}:{port}: the probe proves nothing"
        );
        if reach(&ns_mine, &web, host, *port)? {
            leaks.push(format!("{what} at {host}:{port}"));
        }
    }
    assert!(leaks.is_empty(), "a lease pod reached: {leaks:?}");
    assert_eq!(
        outside.accepted(METADATA),
        1,
        "only the control pod's probe"
    );
    assert_eq!(
        outside.accepted(SHARED_SPACE),
        1,
        "only the control pod's probe"
    );

    // What the manifest allows still works: its own service by name, and the internet.
    assert!(
        reach(&ns_mine, &web, "api", 8080)?,
        "web cannot reach its own api"
    );
    assert!(
        reach(&ns_mine, &web, &internet, 80)?,
        "web cannot reach the internet (stand-in)"
    );

    // Nor forge packets: no raw sockets (arping opens a packet socket to send its ARP request),
    // and the runtime's seccomp filter is on. A root pod without those settings, in the
    // provider's namespace, shows the probes can tell.
    let root = root_pod(&cluster, &provider_ns, "raw-socket-control").await?;
    let root = pod_name(&root);
    let (raw, seccomp) = raw_socket_and_seccomp(&node, &provider_ns, &root, &gateway_ip)?;
    assert!(
        raw && !seccomp,
        "the control pod: raw socket {raw}, seccomp filter {seccomp}: the probe proves nothing"
    );
    let (raw, seccomp) = raw_socket_and_seccomp(&node, &ns_mine, &web, &gateway_ip)?;
    assert!(
        !raw,
        "a lease pod opened a raw socket (NET_RAW not dropped)"
    );
    assert!(seccomp, "a lease pod runs without a seccomp filter");

    for pod in [&control, &root] {
        Api::<Pod>::namespaced(cluster.client(), &provider_ns)
            .delete(pod, &DeleteParams::default())
            .await?;
    }
    Ok(())
}

/// A pod of the test workload running as root with the runtime's default capabilities and no
/// seccomp profile: what a lease pod would be without the builder's settings.
async fn root_pod(cluster: &e2e::Cluster, namespace: &str, name: &str) -> anyhow::Result<Pod> {
    let pod: Pod = serde_json::from_value(serde_json::json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name},
        "spec": {
            "nodeSelector": {"type": "real"},
            "containers": [{
                "name": "serve",
                "image": real_node::workload_image(),
                "env": [{"name": "PORTS", "value": "8080"}, {"name": "SERVICE_NAME", "value": name}],
            }],
        },
    }))?;
    let pods = Api::<Pod>::namespaced(cluster.client(), namespace);
    pods.create(&PostParams::default(), &pod).await?;
    until(
        &format!("pod {name} Running"),
        Duration::from_secs(120),
        || async {
            let pod = pods.get(name).await?;
            let phase = pod.status.as_ref().and_then(|s| s.phase.clone());
            Ok(match phase.as_deref() {
                Some("Running") => Poll::Ready(pod),
                _ => Poll::Pending(format!("{phase:?}")),
            })
        },
    )
    .await
}

/// In the pod: (whether busybox `arping` could open its packet socket toward `target`, whether
/// the process runs under a seccomp filter, `Seccomp: 2` in /proc/self/status).
fn raw_socket_and_seccomp(
    node: &RealNode,
    namespace: &str,
    pod: &str,
    target: &str,
) -> anyhow::Result<(bool, bool)> {
    let out = node.exec(
        namespace,
        pod,
        &["sh", "-c", &format!("arping -c 1 -w 1 {target}")],
    )?;
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    anyhow::ensure!(
        !said.contains("Error from server") && !said.contains("not found"),
        "arping in {namespace}/{pod}: {said}"
    );
    let raw = !said.contains("not permitted");
    let out = node.exec(namespace, pod, &["grep", "^Seccomp:", "/proc/self/status"])?;
    let status = String::from_utf8_lossy(&out.stdout);
    let seccomp = status.split_whitespace().nth(1) == Some("2");
    Ok((raw, seccomp))
}

/// One service with a `beta2` volume at /data and a `ram` volume at /cache.
fn storage_sdl() -> anyhow::Result<crds::sdl::Sdl> {
    let image = real_node::workload_image();
    let text = format!(
        r#"
version: "2.0"
services:
  db:
    image: {image}
    env: ["PORTS=8080", "SERVICE_NAME=db"]
    expose:
      - port: 8080
        as: 8080
        to: [{{global: true}}]
    params:
      storage:
        data: {{mount: /data}}
        cache: {{mount: /cache}}
profiles:
  compute:
    db:
      resources:
        cpu: {{units: 0.1}}
        memory: {{size: 64Mi}}
        storage:
          - size: 64Mi
          - name: data
            size: 128Mi
            attributes: {{persistent: true, class: beta2}}
          - name: cache
            size: 32Mi
            attributes: {{class: ram}}
  placement:
    dc:
      attributes: {{host: akash}}
      pricing:
        db: {{denom: uact, amount: 1000}}
deployment:
  db: {{dc: {{profile: db, count: 1}}}}
"#
    );
    crds::sdl::Sdl::parse(&text).map_err(|e| anyhow::anyhow!("test SDL: {e}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_beta2_volume_outlives_its_pod_ram_is_memory_and_the_quota_holds() -> anyhow::Result<()> {
    let cluster = e2e::Cluster::shared().await?;
    let node = RealNode::get(&cluster).await?;
    let s = real_scenario("realvol", &["--storage-class", "beta2=10Gi"]).await?;
    let dseq = unique_dseq(4);
    let sdl = storage_sdl()?;
    let namespace = leased_sdl(&s, dseq, &sdl).await?;
    let _cleanup_namespace = LeaseNamespaceGuard::new(&cluster, &namespace);
    send_manifest(&s, dseq, &sdl).await?;
    wait_active(&s, dseq).await?;

    // A file written to the persistent volume is there after the pod is deleted and recreated.
    let first_pod = running_pod(&cluster, &namespace, "db").await?;
    let first = pod_name(&first_pod);
    let first_uid = first_pod.metadata.uid.clone();
    let proof = format!("written by {first} ({first_uid:?})");
    let out = node.exec(
        &namespace,
        &first,
        &["sh", "-c", &format!("echo '{proof}' > /data/proof && sync")],
    )?;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    Api::<Pod>::namespaced(cluster.client(), &namespace)
        .delete(&first, &DeleteParams::default())
        .await?;
    // A StatefulSet's new pod has the old one's name: it is told apart by its uid.
    let second = until("a new db pod", Duration::from_secs(120), || async {
        let pod = running_pod(&cluster, &namespace, "db").await?;
        Ok(if pod.metadata.uid == first_uid {
            Poll::Pending("the old pod still runs".into())
        } else {
            Poll::Ready(pod_name(&pod))
        })
    })
    .await?;
    let out = node.exec(&namespace, &second, &["cat", "/data/proof"])?;
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), proof);

    // The ram volume is memory (tmpfs), the persistent one is not.
    let out = node.exec(&namespace, &second, &["cat", "/proc/mounts"])?;
    let mounts = String::from_utf8_lossy(&out.stdout);
    let fs_of = |dir: &str| {
        mounts
            .lines()
            .find(|l| l.split_whitespace().nth(1) == Some(dir))
            .and_then(|l| l.split_whitespace().nth(2))
            .map(str::to_owned)
    };
    assert_eq!(fs_of("/cache").as_deref(), Some("tmpfs"), "{mounts}");
    assert_ne!(fs_of("/data").as_deref(), Some("tmpfs"), "{mounts}");
    assert!(fs_of("/data").is_some(), "{mounts}");

    // The lease's ResourceQuota refuses a pod asking more than the lease holds.
    let greedy: Pod = serde_json::from_value(serde_json::json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "greedy"},
        "spec": {
            "nodeSelector": {"type": "real"},
            "containers": [{
                "name": "greedy", "image": real_node::workload_image(),
                "resources": {"requests": {"cpu": "1", "memory": "64Mi"},
                              "limits": {"cpu": "1", "memory": "64Mi"}},
            }],
        },
    }))?;
    let refused = Api::<Pod>::namespaced(cluster.client(), &namespace)
        .create(&PostParams::default(), &greedy)
        .await
        .expect_err("a pod above the lease's quota was admitted");
    assert!(refused.to_string().contains("exceeded quota"), "{refused}");

    market::close_deployment(&s.tenant, dseq).await?;
    market::wait_namespace_gone(&cluster.client(), &namespace).await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crashing_container_is_not_ready_and_its_lease_is_closed_as_unstable()
-> anyhow::Result<()> {
    let cluster = e2e::Cluster::shared().await?;
    RealNode::get(&cluster).await?;
    let s = real_scenario(
        "realcrash",
        &["--unstable-after", "20s", "--keeper-interval", "1s"],
    )
    .await?;
    let dseq = unique_dseq(5);
    let image = real_node::workload_image();
    let text = format!(
        r#"
version: "2.0"
services:
  flaky:
    image: {image}
    env: ["CRASH_AFTER=1", "PORTS=8080"]
    expose:
      - port: 8080
        as: 80
        to: [{{global: true}}]
profiles:
  compute:
    flaky:
      resources: {{cpu: {{units: 0.1}}, memory: {{size: 64Mi}}, storage: {{size: 64Mi}}}}
  placement:
    dc:
      attributes: {{host: akash}}
      pricing:
        flaky: {{denom: uact, amount: 1000}}
deployment:
  flaky: {{dc: {{profile: flaky, count: 1}}}}
"#
    );
    let sdl = crds::sdl::Sdl::parse(&text).map_err(|e| anyhow::anyhow!("{e}"))?;
    let namespace = leased_sdl(&s, dseq, &sdl).await?;
    let _cleanup_namespace = LeaseNamespaceGuard::new(&cluster, &namespace);
    send_manifest(&s, dseq, &sdl).await?;

    // The container really starts and crashes: kubelet counts its restarts.
    let pods = Api::<Pod>::namespaced(cluster.client(), &namespace);
    until(
        "the container restarted",
        Duration::from_secs(120),
        || async {
            let list = pods.list(&ListParams::default()).await?;
            let restarts: i32 = list
                .items
                .iter()
                .flat_map(|p| {
                    p.status
                        .clone()
                        .unwrap_or_default()
                        .container_statuses
                        .unwrap_or_default()
                })
                .map(|c| c.restart_count)
                .sum();
            Ok(if restarts > 0 {
                Poll::Ready(())
            } else {
                Poll::Pending(format!("{restarts} restarts"))
            })
        },
    )
    .await?;
    // The tenant sees why through the gateway's lease events (`lease-events`): the kubelet's
    // warning that it backs off restarting the container.
    let me = s.provider_address();
    let tenant = e2e::market::certificate(&s.tenant).await?;
    let events_path = format!("/lease/{dseq}/1/1/kubeevents");
    until(
        "a back-off warning among the lease's events",
        Duration::from_secs(90),
        || async {
            use futures::StreamExt;
            let mut socket = operator::gateway::client::open_websocket(
                &s.tenant,
                &me,
                &tenant,
                &s.provider.gateway_rest_addr,
                &events_path,
            )
            .await?;
            let mut seen = Vec::new();
            while let Some(Ok(message)) = socket.next().await {
                if let tokio_tungstenite::tungstenite::Message::Text(text) = message {
                    let e: operator::gateway::events::LeaseEvent = serde_json::from_str(&text)?;
                    if e.type_ == "Warning" && e.reason == "BackOff" && e.object.kind == "Pod" {
                        return Ok(Poll::Ready(()));
                    }
                    seen.push(format!("{} {}", e.type_, e.reason));
                }
            }
            Ok(Poll::Pending(format!("{seen:?}")))
        },
    )
    .await?;
    // The lease says so (between crashes the container waits in back-off, not ready), and the
    // provider closes it as unstable after --unstable-after.
    let name = object_name(s.tenant.address(), dseq);
    until(
        "the lease showing 0/1 ready",
        Duration::from_secs(90),
        || async {
            let lease = s.leases().get(&name).await?;
            let st = lease.status.unwrap_or_default();
            let flaky = st.services.iter().find(|svc| svc.name == "flaky").cloned();
            Ok(match (st.ready.as_deref(), flaky) {
                (Some("0/1"), Some(svc)) if svc.ready_replicas == 0 && svc.replicas == 1 => {
                    Poll::Ready(())
                }
                (ready, svc) => Poll::Pending(format!("ready {ready:?}, {svc:?}")),
            })
        },
    )
    .await?;
    let closed = until("the lease closed", Duration::from_secs(120), || async {
        let lease = s.leases().get(&name).await?;
        let st = lease.status.clone().unwrap_or_default();
        Ok(if st.phase == Some(LeasePhase::Closed) {
            Poll::Ready(st)
        } else {
            Poll::Pending(format!("phase {:?}, ready {:?}", st.phase, st.ready))
        })
    })
    .await?;
    assert_eq!(
        closed.closed_reason.as_deref(),
        Some("unstable"),
        "{closed:?}"
    );
    market::wait_namespace_gone(&cluster.client(), &namespace).await?;
    Ok(())
}

/// The `real_node_turnup` bench's measurement at a small size, so that it cannot rot: every lease
/// is applied on both kinds of node and answers through the ingress on the real one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_turnup_bench_runs_at_a_small_size() -> anyhow::Result<()> {
    let report = e2e::turnup::measure(2).await?;
    assert_eq!(report.real.len(), 2);
    assert_eq!(report.kwok.len(), 2);
    assert!(report.real.iter().all(|s| s.answered.is_some()));
    assert!(report.kwok.iter().all(|s| s.answered.is_none()));
    let table = e2e::turnup::table(&report);
    eprintln!("{table}");
    assert_eq!(table.lines().count(), 5, "{table}");
    // The provider's request counter sees its own applies of the leases' objects.
    assert!(
        report
            .kwok_requests
            .get("APPLY deployments")
            .copied()
            .unwrap_or(0.0)
            >= 2.0,
        "{:?}",
        report.kwok_requests
    );
    Ok(())
}
