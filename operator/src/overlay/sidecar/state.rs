//! The sidecar's running tunnels and one reconcile pass over them.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::{Instant, SystemTime};

use crds::resources::{Lease, Tunnel, TunnelMode, TunnelStatus};
use kube::Api;
use kube::api::DeleteParams;

use super::config::{OverlayArgs, target_of};
use super::desired::{self, DesiredTunnel};
use crate::gateway::ServerIdentity;
use crate::metrics::Metrics;
use crate::overlay::admission::{Admitted, ChainAuthorizer};
use crate::overlay::peers::{ChainServerVerifier, Peers};
use crate::overlay::topology::Side;
use crate::overlay::wireguard::WireGuard;
use crate::overlay::{
    ClientHandle, Counters, IssuingServerCerts, TunnelClient, TunnelClientConfig, tunnel_cert,
};
use crate::reconcile_metrics::MetricLabel;

/// Why a reconcile pass failed. The pass still does what it can after a failed write; the first
/// failure is the one returned (each is logged where it happens).
#[derive(Debug, thiserror::Error)]
pub(crate) enum PassError {
    #[error("listing Lease resources: {0}")]
    Leases(#[source] kube::Error),
    #[error("updating the overlay Services: {0}")]
    Services(#[source] kube::Error),
    #[error("updating the Tunnel resources: {0}")]
    Tunnels(#[source] kube::Error),
}

impl MetricLabel for PassError {
    fn metric_label(&self) -> &'static str {
        match self {
            Self::Leases(_) => "leases",
            Self::Services(_) => "services",
            Self::Tunnels(_) => "tunnels",
        }
    }
}

pub(super) struct Overlay {
    pub client: kube::Client,
    /// Our `Lease` resources, as a watch keeps them.
    pub leases: kube::runtime::reflector::Store<Lease>,
    pub me: String,
    pub args: OverlayArgs,
    pub identity: ServerIdentity,
    pub peers: Arc<Peers>,
    pub authorizer: Arc<ChainAuthorizer>,
    pub certs: Arc<IssuingServerCerts>,
    pub counters: Arc<Counters>,
    pub metrics: Arc<Metrics>,
    pub wireguard: Option<Arc<WireGuard>>,
    pub running: BTreeMap<String, Running>,
    /// Lease namespaces that may hold Services of ours: those of our live leases and those we
    /// applied Services in (a closed lease's stay until its Services are gone).
    pub service_namespaces: BTreeSet<String>,
}

/// One tunnel end this sidecar runs.
pub(super) struct Running {
    pub(super) desired: DesiredTunnel,
    pub(super) client: Option<ClientSide>,
    /// Since when the tunnel is up (none while it is down).
    pub(super) up_since: Option<SystemTime>,
    pub(super) peer_sha256: Option<String>,
    pub(super) problem: Option<String>,
    /// Bytes already reported to the metrics.
    pub(super) reported: (u64, u64),
    pub(super) status_written: Option<TunnelStatus>,
    /// How its connections travel now, and what the `Tunnel` spec says.
    pub(super) mode: TunnelMode,
    pub(super) spec_written: Option<TunnelMode>,
}

pub(super) struct ClientSide {
    pub(super) tunnel: TunnelClient,
    pub(super) handle: ClientHandle,
    pub(super) endpoint: String,
    pub(super) cert_issued: Instant,
}

impl Overlay {
    /// One pass: desired tunnels from the leases and the chain, then start, stop, objects, status.
    #[tracing::instrument(skip_all, fields(running = self.running.len()))]
    pub(super) async fn reconcile(&mut self) -> Result<(), PassError> {
        let (desired, lease_namespaces) = self.desired().await.map_err(PassError::Leases)?;
        self.service_namespaces.extend(lease_namespaces);
        let wanted: BTreeSet<String> = desired.keys().cloned().collect();
        let gone: Vec<String> = self
            .running
            .keys()
            .filter(|n| !wanted.contains(*n))
            .cloned()
            .collect();
        for name in gone {
            if let Some(r) = self.running.remove(&name) {
                tracing::info!(tunnel = %name, peer = %r.desired.peer_provider, "taking the tunnel down");
                self.stop(r).await;
            }
        }
        for (name, d) in desired {
            let restart = self.running.get(&name).is_some_and(|r| r.desired != d);
            if restart && let Some(r) = self.running.remove(&name) {
                self.stop(r).await;
            }
            if !self.running.contains_key(&name) {
                let started = self.start(d).await;
                self.running.insert(name, started);
            }
        }
        if let Some(wg) = &self.wireguard {
            let needed: BTreeSet<&String> = self
                .running
                .values()
                .map(|r| &r.desired.peer_provider)
                .collect();
            for provider in wg.peer_providers() {
                if !needed.contains(&provider) {
                    wg.remove_peer(&provider);
                }
            }
        }
        self.renew_and_repair().await;
        self.restrict_sources().await;
        self.probe().await;
        let services = self.apply_services().await;
        if let Err(e) = &services {
            tracing::warn!(error = %e, "updating the overlay Services failed");
        }
        let tunnels = self.apply_tunnels().await;
        if let Err(e) = &tunnels {
            tracing::warn!(error = %e, "updating the Tunnel resources failed");
        }
        self.report_metrics();
        services.map_err(PassError::Services)?;
        tunnels.map_err(PassError::Tunnels)
    }

    /// The tunnels that should run, by name; an error when the leases cannot be read (then
    /// nothing is changed). A deployment whose chain state cannot be read keeps its tunnels.
    async fn desired(
        &self,
    ) -> Result<(BTreeMap<String, DesiredTunnel>, BTreeSet<String>), kube::Error> {
        let leases: Vec<Lease> = self
            .leases
            .state()
            .iter()
            .map(|l| Lease::clone(l))
            .collect();
        let mut out = BTreeMap::new();
        let mut namespaces = BTreeSet::new();
        for ((owner, dseq), held) in desired::deployments(&self.me, &leases) {
            namespaces.extend(held.iter().map(|l| l.spec.lease_id.namespace()));
            let holders = match self.peers.holders(&owner, dseq).await {
                Ok(h) => h,
                Err(e) => {
                    tracing::warn!(%owner, dseq, error = format!("{e:#}"), "reading the deployment's leases on chain failed; its tunnels stay as they are");
                    for r in self
                        .running
                        .values()
                        .filter(|r| r.desired.lease.owner == owner && r.desired.lease.dseq == dseq)
                    {
                        out.insert(r.desired.name.clone(), r.desired.clone());
                    }
                    continue;
                }
            };
            match desired::tunnels_of(&self.me, &held, &holders) {
                Ok((tunnels, udp)) => {
                    for c in udp {
                        tracing::debug!(%owner, dseq, caller = %c.caller_service, server = %c.server_service, port = c.port, "a UDP connection across providers is not tunnelled (tunnels carry TCP)");
                    }
                    for t in tunnels {
                        out.insert(t.name.clone(), t);
                    }
                }
                Err(e) => {
                    tracing::warn!(%owner, dseq, error = %e, "cannot work out the deployment's tunnels")
                }
            }
        }
        Ok((out, namespaces))
    }

    async fn start(&self, d: DesiredTunnel) -> Running {
        let mut running = Running {
            desired: d.clone(),
            client: None,
            up_since: None,
            peer_sha256: None,
            problem: None,
            reported: (0, 0),
            status_written: None,
            mode: TunnelMode::Mtls,
            spec_written: None,
        };
        match d.side {
            Side::Server => {
                self.certs.allow(&d.request);
                self.authorizer.admit(Admitted {
                    request: d.request.clone(),
                    peer_provider: d.peer_provider.clone(),
                    target: target_of(
                        &self.args.target,
                        &d.connection.server_service,
                        &d.lease_namespace,
                        d.connection.port,
                    ),
                    tunnel_key: d.name.clone(),
                });
                tracing::info!(tunnel = %d.name, peer = %d.peer_provider, service = %d.connection.server_service, port = d.connection.port, "serving a tunnel");
            }
            Side::Client => match self.start_client(&d).await {
                Ok(side) => {
                    tracing::info!(tunnel = %d.name, peer = %d.peer_provider, endpoint = %side.endpoint, local = %side.handle.local_addr(), "calling through a tunnel");
                    running.client = Some(side);
                }
                Err(e) => {
                    let text = format!("{e:#}");
                    tracing::warn!(tunnel = %d.name, error = %text, "cannot start the tunnel yet");
                    running.problem = Some(text);
                }
            },
        }
        running
    }

    async fn start_client(&self, d: &DesiredTunnel) -> anyhow::Result<ClientSide> {
        let endpoint = self.peers.endpoint(&d.peer_provider).await?;
        let cert = tunnel_cert::issue(
            &self.identity.cert_pem,
            &self.identity.key_pem,
            &d.request.client_claim(),
            self.args.cert_lifetime,
        )?;
        let tunnel = TunnelClient::new(TunnelClientConfig {
            peer: endpoint.clone(),
            request: d.request.clone(),
            cert,
            verifier: Arc::new(ChainServerVerifier {
                peers: self.peers.clone(),
                provider: d.peer_provider.clone(),
                request: d.request.clone(),
            }),
            tunnel_key: d.name.clone(),
            counters: self.counters.clone(),
        })?;
        // Nobody but `--allow-source` until the lease's pods are known.
        tunnel.set_allowed_sources(Some(Arc::new(
            self.args.allow_sources.iter().copied().collect(),
        )));
        let handle = tunnel
            .listen_in(
                self.args.pod_ip,
                self.args.local_ports,
                &d.name,
                "--local-ports",
            )
            .await?;
        Ok(ClientSide {
            tunnel,
            handle,
            endpoint,
            cert_issued: Instant::now(),
        })
    }

    async fn stop(&self, r: Running) {
        match r.desired.side {
            Side::Server => {
                self.authorizer.revoke(&r.desired.request);
                self.certs.forget(&r.desired.request);
            }
            Side::Client => {
                if let Some(side) = r.client {
                    side.handle.stop().await;
                }
            }
        }
        self.counters.close(&r.desired.name);
        let tunnels: Api<Tunnel> =
            Api::namespaced(self.client.clone(), &self.args.objects.namespace);
        match tunnels
            .delete(&r.desired.name, &DeleteParams::background())
            .await
        {
            Ok(_) => {}
            Err(e) if not_found(&e) => {}
            Err(e) => {
                tracing::warn!(tunnel = %r.desired.name, error = %e, "deleting the Tunnel failed")
            }
        }
    }

    /// Stops every tunnel without touching the Kubernetes objects (shutdown).
    pub(super) async fn stop_all(&mut self) {
        for (_, r) in std::mem::take(&mut self.running) {
            if let Some(side) = r.client {
                side.handle.stop().await;
            }
        }
    }

    /// Renews client certificates at half their life; retries client tunnels that could not start.
    async fn renew_and_repair(&mut self) {
        let names: Vec<String> = self
            .running
            .iter()
            .filter(|(_, r)| r.desired.side == Side::Client)
            .map(|(n, _)| n.clone())
            .collect();
        for name in names {
            let Some(r) = self.running.get(&name) else {
                continue;
            };
            match &r.client {
                None => {
                    let d = r.desired.clone();
                    let restarted = self.start(d).await;
                    self.running.insert(name, restarted);
                }
                Some(side) if side.cert_issued.elapsed() > self.args.cert_lifetime / 2 => {
                    match tunnel_cert::issue(
                        &self.identity.cert_pem,
                        &self.identity.key_pem,
                        &r.desired.request.client_claim(),
                        self.args.cert_lifetime,
                    )
                    .and_then(|cert| side.tunnel.set_cert(&cert))
                    {
                        Ok(()) => {
                            if let Some(side) =
                                self.running.get_mut(&name).and_then(|r| r.client.as_mut())
                            {
                                side.cert_issued = Instant::now();
                            }
                        }
                        Err(e) => {
                            tracing::warn!(tunnel = %name, error = %e, "renewing the tunnel certificate failed")
                        }
                    }
                }
                Some(_) => {}
            }
        }
    }
}

pub(super) fn not_found(e: &kube::Error) -> bool {
    matches!(e, kube::Error::Api(status) if status.code == 404)
}
