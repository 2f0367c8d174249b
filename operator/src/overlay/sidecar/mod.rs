//! `akash-provider overlay`: the sidecar that runs this provider's ends of the cross-provider
//! tunnels. Every `--interval` it reads our `Lease` resources and the chain's leases, works out
//! which tunnels should exist ([`desired`]), starts and stops them, keeps the calling side's
//! Services and the `Tunnel` resources in step ([`objects`]), and probes each tunnel for its
//! status. It holds no state of its own: after a restart the same tunnels come back.

pub(crate) mod config;
pub(crate) mod desired;
mod health;
pub(crate) mod objects;
mod publish;
mod state;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use chain_client::Chain;
use tokio::sync::watch;

pub use config::OverlayArgs;
// The metrics tests fail a pass with one.
#[cfg(test)]
pub(crate) use state::PassError;

use crate::metrics::{Health, Metrics};
use crate::overlay::admission::ChainAuthorizer;
use crate::overlay::peers::Peers;
use crate::overlay::wireguard::WireGuard;
use crate::overlay::{Counters, IssuingServerCerts, TunnelServer};

/// Runs the overlay sidecar until SIGTERM or Ctrl-C.
pub async fn run(args: OverlayArgs) -> anyhow::Result<()> {
    let metrics = Arc::new(Metrics::new());
    let health = Arc::new(Health::default());
    crate::metrics::serve(args.metrics_addr, metrics.clone(), health.clone()).await?;

    let client = kube::Client::try_default()
        .await
        .context("connecting to Kubernetes (KUBECONFIG or the in-cluster service account)")?;
    tracing::info!(listen = %args.listen, pod_ip = %args.pod_ip, "overlay starting");

    let identity = tokio::select! {
        identity = wait_for_certificate(&client, &args) => identity,
        () = crate::provider::shutdown_signal() => return Ok(()),
    };
    // Who this provider is: the address its certificate names. The wallet key stays with `run`.
    let me = chain_client::cert::owner_of_pem(&identity.cert_pem).with_context(|| {
        format!(
            "Secret {}/{}: tls.crt names no provider",
            args.objects.namespace, args.objects.certificate_secret
        )
    })?;
    let chain: Arc<dyn Chain> = Arc::new(args.chain.connect_read_only(&me)?);
    tracing::info!(provider = %me, "overlay identity from the certificate");
    let peers = Arc::new(Peers::new(chain.clone(), args.default_port));
    let refusals = metrics.clone();
    let mut authorizer = ChainAuthorizer::new(peers.clone(), move |reason| {
        Metrics::count(&refusals.tunnel_refusals, reason);
    });
    let wireguard = if args.wireguard {
        let endpoint = args
            .wireguard_endpoint
            .unwrap_or_else(|| SocketAddr::new(args.pod_ip, args.wireguard_port));
        let (interface, backend, me) = (
            args.wireguard_interface.clone(),
            args.wireguard_backend,
            me.clone(),
        );
        let wg = tokio::task::spawn_blocking(move || {
            WireGuard::start(&interface, backend, endpoint, &me)
        })
        .await??;
        let wg = Arc::new(wg);
        authorizer = authorizer.with_wireguard(wg.clone());
        Some(wg)
    } else {
        None
    };
    let authorizer = Arc::new(authorizer);
    let certs = Arc::new(IssuingServerCerts::new(
        &identity.cert_pem,
        &identity.key_pem,
        args.cert_lifetime,
    ));
    let counters = Counters::new();
    let server = TunnelServer::bind(args.listen, certs.clone(), authorizer.clone())
        .await
        .with_context(|| format!("binding the overlay listener {}", args.listen))?
        .with_counters(counters.clone());
    tracing::info!(addr = %server.local_addr()?, "serving tunnels");
    let (stop, stopped) = watch::channel(false);
    tokio::spawn(crate::overlay::peers::follow_revocations(
        chain.clone(),
        peers.clone(),
        wireguard.clone(),
        None,
        stopped.clone(),
    ));
    let server_task = tokio::spawn(server.run(stopped.clone()));
    if let Some(wg) = &wireguard {
        let addr = SocketAddr::new(wg.address().into(), crate::overlay::wg_data::DATA_PORT);
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .with_context(|| format!("binding the WireGuard data address {addr}"))?;
        tracing::info!(%addr, "serving connections inside WireGuard");
        tokio::spawn(crate::overlay::wg_data::serve(
            listener,
            wg.clone(),
            authorizer.clone(),
            counters.clone(),
            stopped,
        ));
    }

    // Our Leases from a watch (managed fields dropped), not a LIST of every Lease each pass.
    let leases = crate::provider::cluster::watch(
        kube::Api::<crds::resources::Lease>::namespaced(client.clone(), &args.objects.namespace),
        crate::provider::cluster::ManagedFields::Strip,
    );
    if leases.wait_until_ready().await.is_err() {
        anyhow::bail!("the Lease watch stopped before it listed the Leases");
    }
    let mut overlay = state::Overlay {
        client,
        leases,
        me,
        args: args.clone(),
        identity,
        peers,
        authorizer,
        certs,
        counters,
        metrics,
        wireguard,
        running: Default::default(),
        service_namespaces: Default::default(),
    };
    health.set_ready(true);
    let pass_metrics = overlay.metrics.clone();
    let mut ticker = tokio::time::interval(args.interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = ticker.tick() => {
                let pass = overlay.reconcile();
                if let Err(e) = pass_metrics.reconcile.observe(crate::reconcile_metrics::OVERLAY, pass).await {
                    tracing::debug!(error = %e, "overlay reconcile pass failed");
                }
            }
            () = crate::provider::shutdown_signal() => break,
        }
    }
    tracing::info!("overlay shutting down; its Services and Tunnels stay for the next start");
    overlay.stop_all().await;
    let _ = stop.send(true);
    let _ = server_task.await;
    Ok(())
}

/// The provider's certificate and key, once the provider has made them.
async fn wait_for_certificate(
    client: &kube::Client,
    args: &OverlayArgs,
) -> crate::gateway::ServerIdentity {
    let secrets: kube::Api<k8s_openapi::api::core::v1::Secret> =
        kube::Api::namespaced(client.clone(), &args.objects.namespace);
    let mut said = String::new();
    loop {
        let problem = match secrets.get_opt(&args.objects.certificate_secret).await {
            Ok(Some(secret)) => {
                let data = secret.data.unwrap_or_default();
                let text = |k: &str| {
                    data.get(k)
                        .and_then(|b| String::from_utf8(b.0.clone()).ok())
                };
                match (text("tls.crt"), text("tls.key")) {
                    (Some(cert_pem), Some(key_pem)) => {
                        return crate::gateway::ServerIdentity { cert_pem, key_pem };
                    }
                    _ => format!(
                        "Secret {} has no tls.crt and tls.key yet",
                        args.objects.certificate_secret
                    ),
                }
            }
            Ok(None) => format!(
                "Secret {}/{} does not exist yet: the provider makes it when it registers",
                args.objects.namespace, args.objects.certificate_secret
            ),
            Err(e) => format!("reading Secret {}: {e}", args.objects.certificate_secret),
        };
        if problem != said {
            tracing::info!(problem = %problem, "waiting for the provider's certificate");
            said = problem;
        }
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
}
