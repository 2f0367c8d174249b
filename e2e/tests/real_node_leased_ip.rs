//! Leased IPs on the real node (MetalLB in L2 mode, `deploy/node-up.sh`): an SDL asking for one IP
//! on two ports is bid on and deployed, and a machine beside the node (a network namespace on the
//! node's LAN bridge) reaches both ports at that address; the address shows in the lease's status
//! on the `Lease` resource, REST and gRPC. Another deployment of the owner naming the same
//! endpoint gets no address until the owner moves the endpoint there (`POST /endpoint/migrate`),
//! and then the same address answers with the new deployment's container. A lease asking for more
//! IPs than the pool has left gets no bid; closing a lease gives its address back for the next one.
//!
//! The test brings its own two-address pool, so what it counts is its own.

use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

use chain_client::Chain;
use crds::resources::Lease;
use e2e::market::{self, object_name, send_manifest, unique_dseq};
use e2e::netns::LanClient;
use e2e::real_node::{self, LeaseNamespaceGuard, RealNode, real_scenario, wait_active};
use e2e::wait::{Poll, until};
use k8s_openapi::api::core::v1::Service;
use kube::Api;
use kube::api::{ApiResource, DynamicObject, GroupVersionKind, Patch, PatchParams};

/// The node's LAN bridge and a client address on it (deploy/cluster.env: `akash-lan`,
/// 10.87.0.1/24).
const LAN_BRIDGE: &str = "akash-lan";
const CLIENT_IP: Ipv4Addr = Ipv4Addr::new(10, 87, 0, 60);
/// The test's own pool: two addresses outside the deploy's `default` pool.
const POOL_FIRST: Ipv4Addr = Ipv4Addr::new(10, 87, 0, 220);
const POOL_LAST: Ipv4Addr = Ipv4Addr::new(10, 87, 0, 221);
const METALLB_NAMESPACE: &str = "metallb-system";

fn pool_resource() -> ApiResource {
    ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("metallb.io", "v1beta1", "IPAddressPool"),
        "ipaddresspools",
    )
}

/// A MetalLB `IPAddressPool`, deleted on drop.
struct PoolGuard {
    cluster: e2e::Cluster,
    name: String,
}

impl PoolGuard {
    async fn create(cluster: &e2e::Cluster, name: &str) -> anyhow::Result<Self> {
        let api = Api::<DynamicObject>::namespaced_with(
            cluster.client(),
            METALLB_NAMESPACE,
            &pool_resource(),
        );
        let pool = serde_json::json!({
            "apiVersion": "metallb.io/v1beta1",
            "kind": "IPAddressPool",
            "metadata": {"name": name, "namespace": METALLB_NAMESPACE},
            // Only Services that name it get its addresses.
            "spec": {"addresses": [format!("{POOL_FIRST}-{POOL_LAST}")], "autoAssign": false},
        });
        api.patch(name, &PatchParams::apply("e2e").force(), &Patch::Apply(&pool))
            .await
            .map_err(|e| {
                anyhow::anyhow!(
                    "creating IPAddressPool {name} (is MetalLB running? deploy/node-up.sh installs it): {e}"
                )
            })?;
        Ok(Self {
            cluster: cluster.clone(),
            name: name.to_owned(),
        })
    }
}

impl Drop for PoolGuard {
    fn drop(&mut self) {
        let _ = self
            .cluster
            .kubectl()
            .args([
                "delete",
                "ipaddresspools.metallb.io",
                "-n",
                METALLB_NAMESPACE,
                &self.name,
                "--ignore-not-found",
                "--wait=false",
            ])
            .output();
    }
}

/// `web` serves `message` on 8080 and 9000; both are global on the leased IPs named `endpoints`,
/// 8080 as port 80 and 9000 as 9000 on the first, and 9000 on each other one.
fn leased_ip_sdl(endpoints: &[&str], message: &str) -> anyhow::Result<crds::sdl::Sdl> {
    let image = real_node::workload_image();
    let mut declared = String::new();
    let mut exposes = String::new();
    for (i, name) in endpoints.iter().enumerate() {
        declared.push_str(&format!("  {name}: {{kind: ip}}\n"));
        if i == 0 {
            exposes.push_str(&format!(
                "      - port: 8080\n        as: 80\n        to: [{{global: true, ip: {name}}}]\n"
            ));
            exposes.push_str(&format!(
                "      - port: 9000\n        as: 9000\n        to: [{{global: true, ip: {name}}}]\n"
            ));
        } else {
            exposes.push_str(&format!(
                "      - port: 9000\n        as: {}\n        to: [{{global: true, ip: {name}}}]\n",
                9000 + i
            ));
        }
    }
    let text = format!(
        r#"
version: "2.0"
endpoints:
{declared}services:
  web:
    image: {image}
    env: ["MESSAGE={message}", "PORTS=8080 9000", "SERVICE_NAME=web"]
    expose:
{exposes}profiles:
  compute:
    small:
      resources: {{cpu: {{units: 0.1}}, memory: {{size: 64Mi}}, storage: {{size: 64Mi}}}}
  placement:
    dc:
      attributes: {{host: akash}}
      pricing:
        small: {{denom: uact, amount: 1000}}
deployment:
  web: {{dc: {{profile: small, count: 1}}}}
"#
    );
    crds::sdl::Sdl::parse(&text).map_err(|e| anyhow::anyhow!("test SDL: {e}"))
}

/// Waits until the lease's status carries `n` leased-IP ports; returns the lease.
async fn wait_ips(leases: &Api<Lease>, name: &str, n: usize) -> anyhow::Result<Lease> {
    until(
        &format!("{n} leased-IP ports in the status of {name}"),
        Duration::from_secs(120),
        || async {
            let lease = leases.get(name).await?;
            let status = lease.status.clone().unwrap_or_default();
            let ports: usize = status.services.iter().map(|s| s.ips.len()).sum();
            Ok(if ports == n {
                Poll::Ready(lease)
            } else {
                Poll::Pending(format!("{ports} so far: {:?}", status.services))
            })
        },
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_leased_ip_answers_on_its_ports_is_counted_and_is_given_back() -> anyhow::Result<()> {
    let cluster = e2e::Cluster::shared().await?;
    RealNode::get(&cluster).await?;
    let pool_name = format!("e2e-ips-{}", std::process::id());
    let _pool = PoolGuard::create(&cluster, &pool_name).await?;
    let s = real_scenario("leasedip", &["--ip-pool", &pool_name]).await?;
    let me = s.provider_address();
    let owner = s.tenant.address().to_owned();

    // The provider sees the pool's two addresses before any order comes.
    until(
        "the provider offering the pool's 2 addresses",
        Duration::from_secs(60),
        || async {
            let metrics = s.provider.metrics().await.unwrap_or_default();
            Ok(
                if metrics
                    .lines()
                    .any(|l| l == r#"akash_provider_available{resource="ips"} 2"#)
                {
                    Poll::Ready(())
                } else {
                    Poll::Pending("not yet".into())
                },
            )
        },
    )
    .await?;

    // One IP on two ports: bid on, deployed, reachable from beside the node.
    let first = unique_dseq(1);
    let one_ip = leased_ip_sdl(&["front"], "on a leased IP")?;
    let namespace = market::leased_sdl(&s, first, &one_ip).await?;
    let _first_namespace = LeaseNamespaceGuard::new(&cluster, &namespace);
    send_manifest(&s, first, &one_ip).await?;
    wait_active(&s, first).await?;
    let lease = wait_ips(&s.leases(), &object_name(&owner, first), 2).await?;
    let status = lease.status.clone().unwrap_or_default();
    let web = &status.services[0];
    let ip: Ipv4Addr = web.ips[0].ip.parse()?;
    assert!(
        (POOL_FIRST..=POOL_LAST).contains(&ip),
        "{ip} is not the pool's"
    );
    assert!(
        web.ips.iter().all(|p| p.ip == web.ips[0].ip),
        "both ports of one endpoint share one address: {:?}",
        web.ips
    );
    let mut ports: Vec<(u32, u32, &str)> = web
        .ips
        .iter()
        .map(|p| (p.external_port, p.port, p.protocol.as_str()))
        .collect();
    ports.sort();
    assert_eq!(ports, [(80, 8080, "TCP"), (9000, 9000, "TCP")]);
    assert_eq!(status.ips.as_deref(), Some(web.ips[0].ip.as_str()));

    let client = LanClient::attach("lip", LAN_BRIDGE, CLIENT_IP, 24)?;
    for port in [80, 9000] {
        let addr = SocketAddr::from((ip, port));
        let body = until(
            &format!("an answer at {addr} from the LAN"),
            Duration::from_secs(60),
            || async {
                Ok(match client.http_get(addr, "/") {
                    Ok((200, body)) => Poll::Ready(body),
                    Ok((code, body)) => Poll::Pending(format!("{code}: {body}")),
                    Err(e) => Poll::Pending(format!("{e:#}")),
                })
            },
        )
        .await?;
        assert!(body.starts_with("on a leased IP\n"), "{body}");
        assert!(body.contains("service=web"), "{body}");
    }
    // A port the manifest does not lease is not served at that address.
    assert!(
        client.http_get(SocketAddr::from((ip, 8080)), "/").is_err(),
        "port 8080 answered at the leased IP"
    );

    // The tenant reads the same over REST and gRPC.
    let tenant = market::certificate(&s.tenant).await?;
    let http = operator::gateway::client::rest_client(&s.tenant, &me, &tenant).await?;
    let url = format!(
        "https://{}/lease/{first}/1/1/status",
        s.provider.gateway_rest_addr
    );
    let body: serde_json::Value = http.get(&url).send().await?.json().await?;
    let rest = body["ips"]["web"]
        .as_array()
        .unwrap_or_else(|| panic!("no ips.web in {body}"));
    assert_eq!(rest.len(), 2, "{body}");
    for entry in rest {
        assert_eq!(entry["IP"], ip.to_string(), "{body}");
        assert_eq!(entry["Protocol"], "TCP", "{body}");
    }
    {
        use chain_client::akash::market::v1::LeaseId;
        use chain_client::akash::provider::lease::v1::ServiceStatusRequest;
        use chain_client::akash::provider::lease::v1::lease_rpc_client::LeaseRpcClient;
        let grpc_addr: SocketAddr = s.provider.gateway_grpc_addr.parse()?;
        let mut grpc =
            LeaseRpcClient::new(e2e::attack::grpc_channel(grpc_addr, Some(&tenant)).await?);
        let answer = grpc
            .service_status(ServiceStatusRequest {
                lease_id: Some(LeaseId {
                    owner: owner.clone(),
                    dseq: first,
                    gseq: 1,
                    oseq: 1,
                    provider: me.clone(),
                    bseq: 0,
                }),
                services: vec![],
            })
            .await?
            .into_inner();
        let ips: Vec<(String, u32)> = answer.services[0]
            .ips
            .iter()
            .map(|i| (i.ip.clone(), i.external_port))
            .collect();
        assert_eq!(ips.len(), 2, "{answer:?}");
        assert!(ips.iter().all(|(a, _)| *a == ip.to_string()), "{answer:?}");
    }

    // The owner's next deployment naming "front": bid on (one address left), deployed, but the
    // endpoint stays with the first lease, so it has no address of its own.
    let moving = unique_dseq(4);
    let moved_sdl = leased_ip_sdl(&["front"], "moved here")?;
    let moving_namespace = market::leased_sdl(&s, moving, &moved_sdl).await?;
    let _moving_namespace = LeaseNamespaceGuard::new(&cluster, &moving_namespace);
    send_manifest(&s, moving, &moved_sdl).await?;
    let lease = wait_active(&s, moving).await?;
    let manifest = lease.spec.manifest.clone().expect("manifest");
    assert_eq!(manifest.ip_endpoints, Some(Vec::new()), "{manifest:?}");
    let load_balancers = Api::<Service>::namespaced(cluster.client(), &moving_namespace)
        .list(&Default::default())
        .await?
        .items
        .into_iter()
        .filter(|s| s.spec.as_ref().and_then(|s| s.type_.as_deref()) == Some("LoadBalancer"))
        .count();
    assert_eq!(
        load_balancers, 0,
        "a Service for an endpoint held elsewhere"
    );

    // Two more IPs than are left: no bid, the order skipped for its IPs.
    let second = unique_dseq(2);
    let two_ips = leased_ip_sdl(&["front", "back"], "two addresses")?;
    e2e::tenant::create_deployment(&s.tenant, &two_ips, second).await?;
    until(
        "the two-IP order skipped for its IPs",
        Duration::from_secs(60),
        || async {
            let metrics = s.provider.metrics().await.unwrap_or_default();
            Ok(
                if metrics
                    .lines()
                    .any(|l| l.starts_with(r#"akash_provider_orders_skipped_total{reason="ips"}"#))
                {
                    Poll::Ready(())
                } else {
                    Poll::Pending("not skipped yet".into())
                },
            )
        },
    )
    .await?;
    assert!(
        market::chain_bids(&s.tenant, &owner, second, &me)
            .await?
            .is_empty(),
        "a bid for more IPs than are left"
    );

    // The owner moves "front" to the new deployment: the same address now answers with its
    // container, and the first lease has none.
    let migrate = format!("https://{}/endpoint/migrate", s.provider.gateway_rest_addr);
    let response = http
        .post(&migrate)
        .json(&serde_json::json!({
            "endpoints_to_migrate": ["front"],
            "destination_dseq": moving,
            "destination_gseq": 1,
        }))
        .send()
        .await?;
    let code = response.status();
    let answer = response.text().await?;
    assert!(code.is_success(), "{code}: {answer}");
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&answer)?,
        serde_json::json!({"transferred": ["front"]})
    );
    let lease = wait_ips(&s.leases(), &object_name(&owner, moving), 2).await?;
    let moved_ips = &lease.status.unwrap_or_default().services[0].ips;
    assert!(
        moved_ips.iter().all(|p| p.ip == ip.to_string()),
        "the endpoint did not keep its address: {moved_ips:?}"
    );
    wait_ips(&s.leases(), &object_name(&owner, first), 0).await?;
    for port in [80, 9000] {
        let addr = SocketAddr::from((ip, port));
        until(
            &format!("the moved deployment's answer at {addr}"),
            Duration::from_secs(60),
            || async {
                Ok(match client.http_get(addr, "/") {
                    Ok((200, body)) if body.starts_with("moved here\n") => Poll::Ready(()),
                    Ok((code, body)) => Poll::Pending(format!("{code}: {body}")),
                    Err(e) => Poll::Pending(format!("{e:#}")),
                })
            },
        )
        .await?;
    }

    // Closing both leases gives the addresses back: the next two-IP order is bid on, deployed,
    // and one of its addresses is the one the endpoint had.
    for dseq in [first, moving] {
        market::close_deployment(&s.tenant, dseq).await?;
    }
    for ns in [&namespace, &moving_namespace] {
        market::wait_namespace_gone(&cluster.client(), ns).await?;
    }
    for dseq in [first, moving] {
        market::wait_bid_gone(&s.bids(), &object_name(&owner, dseq)).await?;
    }
    let third = unique_dseq(3);
    let namespace = market::leased_sdl(&s, third, &two_ips).await?;
    let _third_namespace = LeaseNamespaceGuard::new(&cluster, &namespace);
    send_manifest(&s, third, &two_ips).await?;
    let lease = wait_ips(&s.leases(), &object_name(&owner, third), 3).await?;
    let status = lease.status.unwrap_or_default();
    let addresses: std::collections::BTreeSet<&str> = status.services[0]
        .ips
        .iter()
        .map(|p| p.ip.as_str())
        .collect();
    assert_eq!(addresses.len(), 2, "{:?}", status.services[0].ips);
    assert!(
        addresses.contains(ip.to_string().as_str()),
        "{ip} was not given back: {addresses:?}"
    );
    assert_eq!(status.ips.as_deref().map(|s| s.split(',').count()), Some(2));
    market::close_deployment(&s.tenant, third).await?;
    market::close_deployment(&s.tenant, second).await?;
    market::wait_namespace_gone(&cluster.client(), &namespace).await?;
    Ok(())
}
