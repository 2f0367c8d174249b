//! The provider's public status (`GET /status`, gRPC `GetStatus`) against what the API server
//! and the chain say, read independently: each node's allocatable and available CPU and memory
//! from the nodes and the requests of the pods bound to them, the active leases and what they
//! hold from the chain, the orders in hand. Other tests' pods come and go on the shared cluster,
//! so the comparison is repeated until one reading of the provider matches one of the cluster.

use std::collections::BTreeMap;
use std::time::Duration;

use chain_client::Chain;
use e2e::market::{leased_sdl, object_name, send_manifest, unique_dseq};
use e2e::scenario::scenario;
use e2e::wait::{Poll, until};
use k8s_openapi::api::core::v1::{Node, Pod};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use kube::Api;
use kube::api::ListParams;
use serde_json::Value;

/// Millicores or bytes of a quantity (`500m`, `2`, `1Gi`, `128974848`, `1k`).
fn amount(q: &Quantity, millis: bool) -> u64 {
    let text = q.0.as_str();
    let (number, suffix) = text
        .find(|c: char| c.is_ascii_alphabetic())
        .map_or((text, ""), |i| text.split_at(i));
    let n: f64 = number.parse().unwrap_or(0.0);
    let factor = match suffix {
        "m" => 0.001,
        "" => 1.0,
        "k" => 1e3,
        "M" => 1e6,
        "G" => 1e9,
        "T" => 1e12,
        "Ki" => 1024.0,
        "Mi" => 1024.0 * 1024.0,
        "Gi" => 1024.0 * 1024.0 * 1024.0,
        "Ti" => 1024.0f64.powi(4),
        other => panic!("unexpected quantity suffix {other:?} in {text}"),
    };
    let value = n * factor * if millis { 1000.0 } else { 1.0 };
    value.round() as u64
}

/// (cpu millicores, memory bytes) a pod asks of its node, as the scheduler counts it: its
/// containers (and sidecars), or its largest init container if more, plus its overhead.
fn requests(pod: &Pod) -> (u64, u64) {
    let Some(spec) = &pod.spec else {
        return (0, 0);
    };
    let of = |r: Option<&k8s_openapi::api::core::v1::ResourceRequirements>| {
        let req = r.and_then(|r| r.requests.as_ref());
        (
            req.and_then(|m| m.get("cpu"))
                .map_or(0, |q| amount(q, true)),
            req.and_then(|m| m.get("memory"))
                .map_or(0, |q| amount(q, false)),
        )
    };
    let mut sum = spec.containers.iter().fold((0, 0), |acc, c| {
        let (cpu, mem) = of(c.resources.as_ref());
        (acc.0 + cpu, acc.1 + mem)
    });
    let mut init_max = (0, 0);
    for c in spec.init_containers.iter().flatten() {
        let (cpu, mem) = of(c.resources.as_ref());
        if c.restart_policy.as_deref() == Some("Always") {
            sum = (sum.0 + cpu, sum.1 + mem);
        } else {
            init_max = (init_max.0.max(cpu), init_max.1.max(mem));
        }
    }
    sum = (sum.0.max(init_max.0), sum.1.max(init_max.1));
    if let Some(overhead) = &spec.overhead {
        sum.0 += overhead.get("cpu").map_or(0, |q| amount(q, true));
        sum.1 += overhead.get("memory").map_or(0, |q| amount(q, false));
    }
    sum
}

/// Per node: (allocatable cpu, allocatable memory, available cpu, available memory), from the
/// API server alone.
async fn from_cluster(client: &kube::Client) -> anyhow::Result<BTreeMap<String, [u64; 4]>> {
    let nodes = Api::<Node>::all(client.clone())
        .list(&ListParams::default())
        .await?;
    let pods = Api::<Pod>::all(client.clone())
        .list(&ListParams::default())
        .await?;
    let mut out = BTreeMap::new();
    for node in nodes.items {
        let name = node.metadata.name.clone().unwrap_or_default();
        let alloc = node
            .status
            .as_ref()
            .and_then(|s| s.allocatable.clone())
            .unwrap_or_default();
        let cpu = alloc.get("cpu").map_or(0, |q| amount(q, true));
        let memory = alloc.get("memory").map_or(0, |q| amount(q, false));
        let (used_cpu, used_memory) = pods
            .items
            .iter()
            .filter(|p| p.spec.as_ref().and_then(|s| s.node_name.as_deref()) == Some(&name))
            .filter(|p| {
                !matches!(
                    p.status.as_ref().and_then(|s| s.phase.as_deref()),
                    Some("Succeeded" | "Failed")
                )
            })
            .map(requests)
            .fold((0, 0), |a, r| (a.0 + r.0, a.1 + r.1));
        out.insert(
            name,
            [
                cpu,
                memory,
                cpu.saturating_sub(used_cpu),
                memory.saturating_sub(used_memory),
            ],
        );
    }
    Ok(out)
}

/// The same, as `/status` reports it.
fn from_status(status: &Value) -> BTreeMap<String, [u64; 4]> {
    status["cluster"]["inventory"]["available"]["nodes"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|n| {
            let get = |k: &str, f: &str| n[k][f].as_u64().unwrap_or(u64::MAX);
            (
                n["name"].as_str().unwrap_or_default().to_owned(),
                [
                    get("allocatable", "cpu"),
                    get("allocatable", "memory"),
                    get("available", "cpu"),
                    get("available", "memory"),
                ],
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_numbers_are_what_the_cluster_and_the_chain_say() -> anyhow::Result<()> {
    let s = scenario("status", &[("host", "akash")], vec![]).await?;
    let me = s.provider_address();
    let cluster = e2e::Cluster::shared().await?;
    let dseq = unique_dseq(3);
    let sdl = e2e::tenant::testdata_sdl("openspeedtest.yaml")?;
    let namespace = leased_sdl(&s, dseq, &sdl).await?;
    send_manifest(&s, dseq, &sdl).await?;
    let lease_name = object_name(s.tenant.address(), dseq);
    until("the lease Active", Duration::from_secs(120), || async {
        let lease = s.leases().get(&lease_name).await?;
        let phase = lease.status.and_then(|st| st.phase);
        Ok(if phase == Some(crds::resources::LeasePhase::Active) {
            Poll::Ready(())
        } else {
            Poll::Pending(format!("{phase:?}"))
        })
    })
    .await?;

    // The chain: this provider's active leases, and what the deployment's group asks.
    let on_chain = s
        .tenant
        .leases(
            chain_client::akash::market::v1::LeaseFilters {
                provider: me.clone(),
                state: "active".into(),
                ..Default::default()
            },
            chain_client::chain::PageRequest::first(100),
        )
        .await?;
    let lease_count = on_chain.items.len() as u64;
    assert_eq!(lease_count, 1);
    let group = &sdl.groups()[0];
    let cpu_units: u64 = group
        .resources
        .iter()
        .map(|r| r.resource.cpu.units.val.parse::<u64>().unwrap_or(0) * u64::from(r.count))
        .sum();
    let memory_bytes: u64 = group
        .resources
        .iter()
        .map(|r| r.resource.memory.quantity.val.parse::<u64>().unwrap_or(0) * u64::from(r.count))
        .sum();

    let http = reqwest::Client::builder()
        .danger_accept_invalid_certs(true)
        .build()?;
    let url = format!("https://{}/status", s.provider.gateway_rest_addr);
    let client = cluster.client();
    let (status, nodes) = until(
        "the provider's node figures equal the API server's",
        Duration::from_secs(90),
        || async {
            let status: Value = http.get(&url).send().await?.json().await?;
            let reported = from_status(&status);
            let actual = from_cluster(&client).await?;
            let differing: Vec<String> = reported
                .iter()
                .filter(|(name, figures)| actual.get(*name) != Some(figures))
                .map(|(name, figures)| format!("{name}: {figures:?} vs {:?}", actual.get(name)))
                .collect();
            Ok(if !reported.is_empty() && differing.is_empty() {
                Poll::Ready((status, reported))
            } else {
                Poll::Pending(format!("{differing:?}"))
            })
        },
    )
    .await?;
    // Every node the lease's pods run on is among those reported.
    let pods = Api::<Pod>::namespaced(client.clone(), &namespace)
        .list(&ListParams::default())
        .await?;
    for pod in &pods.items {
        let node = pod
            .spec
            .as_ref()
            .and_then(|s| s.node_name.clone())
            .unwrap_or_default();
        assert!(nodes.contains_key(&node), "{node} not in {nodes:?}");
    }
    // Leases and what they hold, as the chain has them; no order in hand after the lease.
    assert_eq!(
        status["cluster"]["leases"].as_u64(),
        Some(lease_count),
        "{status}"
    );
    let active = status["cluster"]["inventory"]["active"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert_eq!(active.len() as u64, lease_count, "{status}");
    assert_eq!(active[0]["cpu"], cpu_units, "{status}");
    assert_eq!(active[0]["memory"], memory_bytes, "{status}");
    assert_eq!(status["bidengine"]["orders"], 0, "{status}");
    assert_eq!(status["manifest"]["deployments"], 1, "{status}");

    // gRPC GetStatus says the same.
    {
        use chain_client::akash::provider::v1::provider_rpc_client::ProviderRpcClient;
        let grpc_addr: std::net::SocketAddr = s.provider.gateway_grpc_addr.parse()?;
        let mut grpc = ProviderRpcClient::new(e2e::attack::grpc_channel(grpc_addr, None).await?);
        let answer = grpc.get_status(()).await?.into_inner();
        let cluster_status = answer.cluster.expect("cluster");
        let inventory = cluster_status.inventory.expect("inventory");
        let grpc_nodes = inventory.cluster.expect("cluster inventory").nodes;
        assert_eq!(grpc_nodes.len(), nodes.len());
        let active = inventory
            .reservations
            .and_then(|r| r.active)
            .expect("active reservations");
        assert_eq!(u64::from(active.count), lease_count);
        assert_eq!(
            cluster_status.leases.map(|l| u64::from(l.active)),
            Some(lease_count)
        );
    }
    Ok(())
}
