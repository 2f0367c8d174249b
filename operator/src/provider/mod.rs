//! `akash-provider run`: the provider. Start-up order: operations endpoints; the key and the chain
//! client; leader election (only the leader talks to the chain's write side and writes resources);
//! the provider's registration and certificate; then the bid engine, which also keeps the leases.

pub(crate) mod cluster;
pub mod config;
pub(crate) mod identity;
pub(crate) mod leader;
mod probe;
pub(crate) mod store;

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use chain_client::Chain;
use chain_client::keys::Key;
use chain_client::node::NodeChain;
use cosmos_sdk_proto::cosmos::base::v1beta1::Coin;
use tokio::sync::watch;

use crate::bidding::engine::{BidSettings, Engine, EngineConfig};
use crate::inventory::InventoryConfig;
use crate::metrics::{Health, Metrics};
use config::RunArgs;
use identity::IdentityConfig;

/// Runs the provider until SIGTERM/SIGINT, or until leadership is lost (then it exits so that
/// Kubernetes restarts it as a standby).
pub async fn run(args: RunArgs) -> anyhow::Result<()> {
    let metrics = Arc::new(Metrics::new());
    let health = Arc::new(Health::default());
    crate::metrics::serve(args.metrics_addr, metrics.clone(), health.clone()).await?;

    let key = Key::from_mnemonic_file(&args.key_file)
        .with_context(|| format!("reading the provider key from {}", args.key_file.display()))?;
    let chain: Arc<dyn Chain> = Arc::new(node_chain(key, &args)?);
    let address = chain.address().to_owned();
    tracing::info!(provider = %address, chain_id = %args.chain.chain_id, rpc = %args.chain.rpc_url, grpc = %args.chain.grpc_url, "provider key loaded");
    let deposit = parse_coin(&args.bid_deposit).context("--bid-deposit")?;

    let client = crate::kube_requests::counted_client(metrics.kube_requests.clone())
        .await
        .context("connecting to Kubernetes (KUBECONFIG or the in-cluster service account)")?;
    tokio::spawn(probe::run(
        chain.clone(),
        client.clone(),
        health.clone(),
        metrics.clone(),
    ));
    let identity = args
        .identity
        .clone()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| format!("akash-provider-{}", std::process::id()));
    let elector = leader::LeaderElector::new(
        client.clone(),
        &args.objects.namespace,
        &args.leader_lease,
        &identity,
        args.leader_lease_duration,
    );
    // Ready (in the gateway Service's endpoints) only once leading and serving.
    tokio::select! {
        () = elector.acquire() => {}
        () = shutdown_signal() => return Ok(()),
    }
    let releaser = elector.clone();
    // Leading and not shutting down: the bid engine, the keeper and the workload controller stop
    // when it turns false.
    let leading_now = elector.keep_renewing();
    let (running_tx, leading) = watch::channel(true);
    tokio::spawn({
        let mut leading_now = leading_now;
        let running_tx = running_tx.clone();
        async move {
            while leading_now.changed().await.is_ok() {
                if !*leading_now.borrow() {
                    let _ = running_tx.send(false);
                    return;
                }
            }
        }
    });

    let id_config = IdentityConfig {
        namespace: args.objects.namespace.clone(),
        provider_resource: args.provider_resource.clone(),
        certificate_secret: args.objects.certificate_secret.clone(),
        allow_owners: args.allow_owners.clone(),
        deny_owners: args.deny_owners.clone(),
        pricing_script_concurrency: args.pricing_script_concurrency,
    };
    let (settings_tx, settings_rx) = watch::channel(None);
    let settings_rx_for_gateway = settings_rx.clone();
    tokio::spawn(keep_identity(
        client.clone(),
        chain.clone(),
        id_config,
        settings_tx,
    ));

    let ip_pool = args.ip_pool.clone().map(|name| cluster::IpPoolRef {
        namespace: args.ip_pool_namespace.clone(),
        name,
    });
    let cluster = Arc::new(cluster::WatchedCluster::start(client.clone(), ip_pool).await?);
    let store: Arc<dyn store::ProviderStore> = Arc::new(store::KubeStore::new(
        client.clone(),
        &args.objects.namespace,
    ));
    tokio::spawn(crate::keeper::run(
        chain.clone(),
        store.clone(),
        crate::keeper::KeeperConfig {
            withdrawal_period: args.withdrawal_period,
            manifest_timeout: args.manifest_timeout,
            unstable_after: args.unstable_after,
            interval: args.keeper_interval,
            batch_size: args.bid_batch_size,
        },
        metrics.clone(),
        leading.clone(),
    ));
    let engine = Engine::new(
        chain.clone(),
        store,
        cluster,
        settings_rx,
        EngineConfig {
            provider: address,
            deposit,
            bid_timeout: args.bid_timeout,
            batch_size: args.bid_batch_size,
            inventory: inventory_config(&args),
            page_size: 1000,
        },
        metrics.clone(),
    );
    let mut workload_config = workload_config(&args);
    let api_server = api_server_endpoints(&client).await;
    workload_config
        .egress_deny
        .extend(infrastructure_addresses(&client, &api_server).await);
    workload_config.api_server_endpoints = api_server;
    let secrets_namespace = args
        .manifest_secrets_namespace
        .clone()
        .unwrap_or_else(|| args.objects.namespace.clone());
    let workloads = Arc::new(
        crate::workload::reconcile::Context::new(
            client.clone(),
            &args.objects.namespace,
            workload_config,
            &identity,
        )
        .with_secrets_namespace(&secrets_namespace)
        .with_metrics(metrics),
    );
    let workload_task = tokio::spawn(crate::workload::reconcile::run(workloads, leading.clone()));

    let (status_tx, status_rx) = watch::channel(None);
    let engine_task = tokio::spawn(engine.with_status(status_tx).run(leading.clone()));
    // The gateway serves with the provider's certificate, which exists once registration passed.
    let mut registered = settings_rx_for_gateway;
    tokio::select! {
        r = registered.wait_for(Option::is_some) => { r.context("waiting for registration")?; }
        () = shutdown_signal() => return Ok(()),
    }
    let tls = server_identity(&client, &args).await?;
    let mut gateway = crate::gateway::serve_with(
        crate::gateway::GatewayConfig {
            rest_addr: args.gateway_rest_addr,
            grpc_addr: args.gateway_grpc_addr,
            max_manifest_bytes: args.max_manifest_bytes,
            provider_address: chain.address().to_owned(),
            namespace: args.objects.namespace.clone(),
            peer_serve_limit: args.peer_serve_limit,
            peer_fetch: args
                .peer_fetch
                .then_some(crate::gateway::peer::FetchConfig {
                    interval: args.peer_fetch_interval,
                    // A newer version on chain is fetched when its `EventDeploymentUpdated` is seen;
                    // asking the chain about every deployment is only the safety net.
                    update_check: crate::gateway::peer::UPDATE_SAFETY_CHECK,
                }),
            hostnames: crate::gateway::hostnames::HostnamePolicy {
                ingress_domain: args.ingress_domain.clone(),
                blocked: args.blocked_hostnames.clone(),
            },
            limits: args.gateway_limits.clone(),
            cluster_public_hostname: args.cluster_public_hostname.clone(),
        },
        tls,
        chain.clone(),
        Arc::new(
            crate::gateway::KubeLeaseSource::new(client.clone(), &args.objects.namespace)
                .with_secrets_namespace(&secrets_namespace),
        ),
        crate::gateway::GatewayExtras {
            pod_logs: Some(Arc::new(crate::gateway::logs::KubePodLogs::new(
                client.clone(),
            ))),
            lease_events: Some(Arc::new(crate::gateway::events::KubeLeaseEvents::new(
                client.clone(),
            ))),
            pod_exec: Some(Arc::new(crate::gateway::shell::KubePodExec::new(
                client.clone(),
            ))),
            status: Some(status_rx),
        },
    )
    .await?;
    health.set_ready(true);
    let result = tokio::select! {
        result = engine_task => result.context("the bid engine panicked").and_then(|r| r),
        () = gateway.stopped() => Err(anyhow::anyhow!("the gateway stopped")),
        () = shutdown_signal() => {
            tracing::info!("shutting down: draining the gateway, finishing applies, giving up leadership");
            Ok(())
        }
    };
    shut_down(&health, gateway, &running_tx, workload_task, &releaser).await;
    result
}

/// How long the workload controller may take to finish the applies in flight (the chart gives
/// the pod 30 s between SIGTERM and SIGKILL).
const APPLY_DRAIN: Duration = Duration::from_secs(20);

/// Out of the Service's endpoints, the gateway's requests in flight answered, the workload
/// controller's applies finished, then the leader lease given up for a standby to take at once.
async fn shut_down(
    health: &Health,
    gateway: crate::gateway::GatewayHandle,
    running: &watch::Sender<bool>,
    workloads: tokio::task::JoinHandle<()>,
    elector: &leader::LeaderElector,
) {
    health.set_ready(false);
    gateway.shutdown().await;
    let _ = running.send(false);
    if tokio::time::timeout(APPLY_DRAIN, workloads).await.is_err() {
        tracing::warn!(
            "applies still in flight after {APPLY_DRAIN:?}; leaving them to the next leader"
        );
    }
    match elector.release().await {
        Ok(true) => tracing::info!("leadership given up"),
        Ok(false) => tracing::info!("not leading: nothing to give up"),
        Err(e) => {
            tracing::warn!(error = %e, "giving up leadership failed; a standby takes over when it expires")
        }
    }
}

/// The provider's certificate and key from the Secret identity wrote.
async fn server_identity(
    client: &kube::Client,
    args: &RunArgs,
) -> anyhow::Result<crate::gateway::ServerIdentity> {
    let secrets: kube::Api<k8s_openapi::api::core::v1::Secret> =
        kube::Api::namespaced(client.clone(), &args.objects.namespace);
    let secret = secrets
        .get(&args.objects.certificate_secret)
        .await
        .with_context(|| format!("reading Secret {}", args.objects.certificate_secret))?;
    let data = secret.data.unwrap_or_default();
    let text = |key: &str| -> anyhow::Result<String> {
        let bytes = data
            .get(key)
            .with_context(|| format!("Secret {} has no {key}", args.objects.certificate_secret))?;
        String::from_utf8(bytes.0.clone()).with_context(|| format!("{key} is not PEM text"))
    };
    Ok(crate::gateway::ServerIdentity {
        cert_pem: text("tls.crt")?,
        key_pem: text("tls.key")?,
    })
}

fn workload_config(args: &RunArgs) -> crate::workload::build::WorkloadConfig {
    crate::workload::build::WorkloadConfig {
        ingress_domain: args.ingress_domain.clone(),
        ingress_class: args.ingress_class.clone(),
        cluster_public_hostname: args.cluster_public_hostname.clone(),
        runtime_class: (!args.runtime_class.is_empty()).then(|| args.runtime_class.clone()),
        network_policies: args.network_policies,
        ingress_controller_namespace: args.ingress_namespace.clone(),
        gateway_namespace: args.objects.namespace.clone(),
        overlay: args.overlay,
        overlay_ports: args.overlay_ports,
        node_selector: args.node_selector.iter().cloned().collect(),
        egress_deny: args.deny_egress_cidrs.clone(),
        ip_pool: args.ip_pool.clone(),
        ..Default::default()
    }
}

/// The nodes' and the API server's public IPv4 addresses, as /32: lease pods must not reach the
/// provider's machines even where they are public (private ones are denied anyway). Read once at
/// start; a node added later is covered after a restart. What cannot be read is logged and left
/// out.
async fn infrastructure_addresses(
    client: &kube::Client,
    api_server: &[std::net::SocketAddr],
) -> Vec<String> {
    use k8s_openapi::api::core::v1::Node;
    let mut found = std::collections::BTreeSet::new();
    match kube::Api::<Node>::all(client.clone())
        .list(&Default::default())
        .await
    {
        Ok(nodes) => found.extend(
            nodes
                .items
                .into_iter()
                .flat_map(|n| n.status.and_then(|s| s.addresses).unwrap_or_default())
                .map(|a| a.address),
        ),
        Err(e) => {
            tracing::warn!(error = %e, "cannot list nodes: their addresses are not denied to lease pods")
        }
    }
    found.extend(api_server.iter().map(|a| a.ip().to_string()));
    found
        .into_iter()
        .filter_map(|a| a.parse::<std::net::Ipv4Addr>().ok())
        .filter(|a| !is_non_public(*a))
        .map(|a| format!("{a}/32"))
        .collect()
}

/// The API server's endpoints (every address of the `kubernetes` Service's EndpointSlices, on
/// each of their ports), as the Go provider reads them for services with `params.permissions`.
/// Read once at start; none when they cannot be read (logged: such services then get their token
/// but no way through the NetworkPolicies to the API server).
async fn api_server_endpoints(client: &kube::Client) -> Vec<std::net::SocketAddr> {
    use k8s_openapi::api::discovery::v1::EndpointSlice;
    let slices = kube::Api::<EndpointSlice>::namespaced(client.clone(), "default")
        .list(&kube::api::ListParams::default().labels("kubernetes.io/service-name=kubernetes"))
        .await;
    let slices = match slices {
        Ok(slices) => slices.items,
        Err(e) => {
            tracing::warn!(error = %e, "cannot read the API server's endpoints: services with permissions will not reach it");
            return Vec::new();
        }
    };
    let mut found = std::collections::BTreeSet::new();
    for slice in slices {
        let ports: Vec<u16> = slice
            .ports
            .iter()
            .flatten()
            .filter(|p| p.protocol.as_deref().unwrap_or("TCP") == "TCP")
            .filter_map(|p| p.port.and_then(|n| u16::try_from(n).ok()))
            .collect();
        for endpoint in slice.endpoints.into_iter().flatten() {
            for address in endpoint.addresses {
                let Ok(ip) = address.parse::<std::net::IpAddr>() else {
                    continue;
                };
                for port in &ports {
                    found.insert(std::net::SocketAddr::new(ip, *port));
                }
            }
        }
    }
    if found.is_empty() {
        tracing::warn!(
            "the API server has no endpoints: services with permissions will not reach it"
        );
    }
    found.into_iter().collect()
}

/// Whether the address is in one of the ranges lease pods are always denied.
fn is_non_public(addr: std::net::Ipv4Addr) -> bool {
    crate::workload::build::NON_PUBLIC_RANGES
        .iter()
        .any(|range| {
            let (net, prefix) = range.split_once('/').expect("a CIDR");
            let (net, prefix): (std::net::Ipv4Addr, u32) = (
                net.parse().expect("an address"),
                prefix.parse().expect("a prefix"),
            );
            let mask = u32::MAX.checked_shl(32 - prefix).unwrap_or(0);
            u32::from(addr) & mask == u32::from(net)
        })
}

/// Registers the provider, then re-checks every minute (and publishes settings changes of the
/// `Provider` resource to the engine).
async fn keep_identity(
    client: kube::Client,
    chain: Arc<dyn Chain>,
    config: IdentityConfig,
    settings: watch::Sender<Option<Arc<BidSettings>>>,
) {
    let mut last_error = String::new();
    loop {
        let delay = match identity::ensure(&client, &chain, &config).await {
            Ok(new) => {
                last_error.clear();
                let _ = settings.send(Some(new));
                Duration::from_secs(60)
            }
            Err(e) => {
                let text = e.to_string();
                if text != last_error {
                    tracing::error!(error = %text, "the provider is not registered; not bidding");
                    last_error = text;
                }
                Duration::from_secs(5)
            }
        };
        tokio::time::sleep(delay).await;
    }
}

fn node_chain(key: Key, args: &RunArgs) -> anyhow::Result<NodeChain> {
    args.chain.connect(key)
}

fn inventory_config(args: &RunArgs) -> InventoryConfig {
    InventoryConfig {
        storage_classes: args.storage_classes.iter().cloned().collect(),
        node_ports: args.node_ports,
        node_selector: args.node_selector.iter().cloned().collect(),
        overcommit_pct: crate::inventory::Overcommit {
            cpu: args.overcommit_cpu_pct,
            memory: args.overcommit_memory_pct,
            storage: args.overcommit_storage_pct,
        },
        ..Default::default()
    }
}

/// `500000uact` → Coin.
pub(crate) fn parse_coin(text: &str) -> anyhow::Result<Coin> {
    let digits = text.chars().take_while(char::is_ascii_digit).count();
    let (amount, denom) = text.split_at(digits);
    if amount.is_empty()
        || denom.is_empty()
        || !denom.starts_with(|c: char| c.is_ascii_alphabetic())
        || !denom.chars().all(|c| c.is_ascii_alphanumeric() || c == '/')
    {
        anyhow::bail!("{text:?} is not an amount with a denom, such as 500000uact");
    }
    let amount: u128 = amount
        .parse()
        .with_context(|| format!("{text:?}: the amount is too large"))?;
    Ok(Coin {
        denom: denom.to_owned(),
        amount: amount.to_string(),
    })
}

pub(crate) async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(term) => term,
                Err(_) => {
                    let _ = ctrl_c.await;
                    return;
                }
            };
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = ctrl_c.await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn coins_parse_with_their_denom() {
        let coin = parse_coin("500000uact").unwrap();
        assert_eq!(
            (coin.amount.as_str(), coin.denom.as_str()),
            ("500000", "uact")
        );
        assert!(parse_coin("uact").is_err());
        assert!(parse_coin("500000").is_err());
        assert!(parse_coin("5.5uakt").is_err());
    }
}
