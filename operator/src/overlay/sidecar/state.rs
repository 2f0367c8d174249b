//! The sidecar's running tunnels and one reconcile pass over them.

use std::collections::HashSet;
use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Instant, SystemTime};

use crds::resources::{Condition, Lease, Tunnel, TunnelMode, TunnelStatus};
use k8s_openapi::api::core::v1::{Pod, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::api::{DeleteParams, ListParams, Patch, PatchParams};
use kube::{Api, ResourceExt};

use super::config::{OverlayArgs, target_of};
use super::desired::{self, DesiredTunnel};
use super::objects::{self, FIELD_MANAGER, ForwardedPort, OVERLAY_LABEL};
use crate::gateway::ServerIdentity;
use crate::metrics::Metrics;
use crate::overlay::admission::{Admitted, ChainAuthorizer};
use crate::overlay::peers::{ChainServerVerifier, Peers};
use crate::overlay::topology::Side;
use crate::overlay::wireguard::WireGuard;
use crate::overlay::{
    ClientHandle, Counters, IssuingServerCerts, TunnelClient, TunnelClientConfig, tunnel_cert,
};
use crate::overlay::{WireGuardOffer, wg_data};

pub(super) struct Overlay {
    pub client: kube::Client,
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
    desired: DesiredTunnel,
    client: Option<ClientSide>,
    /// Since when the tunnel is up (none while it is down).
    up_since: Option<SystemTime>,
    peer_sha256: Option<String>,
    problem: Option<String>,
    /// Bytes already reported to the metrics.
    reported: (u64, u64),
    status_written: Option<TunnelStatus>,
    /// How its connections travel now, and what the `Tunnel` spec says.
    mode: TunnelMode,
    spec_written: Option<TunnelMode>,
}

struct ClientSide {
    tunnel: TunnelClient,
    handle: ClientHandle,
    endpoint: String,
    cert_issued: Instant,
}

impl Overlay {
    /// One pass: desired tunnels from the leases and the chain, then start, stop, objects, status.
    pub async fn reconcile(&mut self) {
        let Some((desired, lease_namespaces)) = self.desired().await else {
            return;
        };
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
        if let Err(e) = self.apply_services().await {
            tracing::warn!(error = %e, "updating the overlay Services failed");
        }
        if let Err(e) = self.apply_tunnels().await {
            tracing::warn!(error = %e, "updating the Tunnel resources failed");
        }
        self.report_metrics();
    }

    /// The tunnels that should run, by name; `None` when the leases cannot be read (then
    /// nothing is changed). A deployment whose chain state cannot be read keeps its tunnels.
    async fn desired(&self) -> Option<(BTreeMap<String, DesiredTunnel>, BTreeSet<String>)> {
        let leases: Api<Lease> = Api::namespaced(self.client.clone(), &self.args.namespace);
        let leases = match leases.list(&ListParams::default()).await {
            Ok(list) => list.items,
            Err(e) => {
                tracing::warn!(error = %e, "listing Lease resources failed");
                return None;
            }
        };
        let mut out = BTreeMap::new();
        let mut namespaces = BTreeSet::new();
        for ((owner, dseq), held) in desired::deployments(&self.me, &leases) {
            namespaces.extend(held.iter().map(|l| desired::namespace_of(&l.spec.lease_id)));
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
        Some((out, namespaces))
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
        let handle = tunnel.listen(SocketAddr::new(self.args.pod_ip, 0)).await?;
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
        let tunnels: Api<Tunnel> = Api::namespaced(self.client.clone(), &self.args.namespace);
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
    pub async fn stop_all(&mut self) {
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

    /// Only the pods of a client tunnel's lease (and `--allow-source`) may use it: any lease pod
    /// may reach the sidecar, and must not reach another lease's tunnels.
    async fn restrict_sources(&self) {
        let mut by_namespace: BTreeMap<&str, Option<Arc<HashSet<IpAddr>>>> = BTreeMap::new();
        for r in self.running.values().filter(|r| r.client.is_some()) {
            by_namespace.insert(&r.desired.lease_namespace, None);
        }
        for (ns, sources) in by_namespace.iter_mut() {
            let pods: Api<Pod> = Api::namespaced(self.client.clone(), ns);
            let mut set: HashSet<IpAddr> = self.args.allow_sources.iter().copied().collect();
            match pods.list(&ListParams::default()).await {
                Ok(list) => {
                    for pod in list.items {
                        for ip in pod.status.and_then(|s| s.pod_ips).unwrap_or_default() {
                            if let Ok(ip) = ip.ip.parse() {
                                set.insert(ip);
                            }
                        }
                    }
                }
                // Unknown pods: keep the previous set (a failed read must not open the door).
                Err(e) => {
                    tracing::warn!(namespace = %ns, error = %e, "listing the lease's pods failed");
                    continue;
                }
            }
            *sources = Some(Arc::new(set));
        }
        for r in self.running.values() {
            if let (Some(side), Some(Some(set))) = (
                &r.client,
                by_namespace.get(r.desired.lease_namespace.as_str()),
            ) {
                side.tunnel.set_allowed_sources(Some(set.clone()));
            }
        }
    }

    /// Client ends probe the whole path; server ends are up while their peer's probes arrive.
    async fn probe(&mut self) {
        let offer = self.wireguard.as_ref().map(|wg| wg.offer());
        let probes = self.running.iter().filter_map(|(name, r)| {
            r.client.as_ref().map(|side| {
                (
                    name.clone(),
                    r.desired.peer_provider.clone(),
                    side.tunnel.clone(),
                )
            })
        });
        let wireguard = self.wireguard.clone();
        let results = futures::future::join_all(probes.map(|(name, provider, tunnel)| {
            let (offer, wireguard) = (offer.clone(), wireguard.clone());
            async move {
                let result = tunnel.probe(offer).await;
                let mode = match (&result, wireguard) {
                    (Ok((_, Some(theirs))), Some(wg)) => {
                        Some(wireguard_path(&wg, &tunnel, &provider, theirs.clone()).await)
                    }
                    _ => {
                        tunnel.set_wireguard_route(None);
                        None
                    }
                };
                (name, result.map(|(peer, _)| peer), mode)
            }
        }))
        .await;
        let now = SystemTime::now();
        for (name, result, wireguard) in results {
            let Some(r) = self.running.get_mut(&name) else {
                continue;
            };
            r.mode = match &wireguard {
                Some(Ok(())) => TunnelMode::WireGuard,
                _ => TunnelMode::Mtls,
            };
            let result = match (result, wireguard) {
                (Ok(_), Some(Err(e))) => {
                    Err(format!("over mTLS: the WireGuard path does not work: {e}"))
                }
                (Ok(peer), _) => Ok(peer),
                (Err(e), _) => Err(e.to_string()),
            };
            match result {
                Ok(peer) => {
                    if r.up_since.is_none() {
                        tracing::info!(tunnel = %name, peer = %r.desired.peer_provider, "tunnel established");
                    }
                    r.up_since.get_or_insert(now);
                    r.peer_sha256 = Some(peer.leaf_sha256_hex);
                    r.problem = None;
                }
                Err(e) => {
                    if r.up_since.is_some() || r.problem.as_deref() != Some(e.as_str()) {
                        tracing::info!(tunnel = %name, peer = %r.desired.peer_provider, error = %e, "tunnel not established");
                    }
                    r.up_since = None;
                    r.problem = Some(e);
                }
            }
        }
        // A peer probes every interval; three missed ones mean it is gone.
        let window = self.args.interval * 3 + std::time::Duration::from_secs(1);
        for r in self
            .running
            .values_mut()
            .filter(|r| r.desired.side == Side::Server)
        {
            let seen = self.authorizer.seen(&r.desired.request);
            r.mode = match &self.wireguard {
                Some(wg) if wg.peer_providers().contains(&r.desired.peer_provider) => {
                    TunnelMode::WireGuard
                }
                _ => TunnelMode::Mtls,
            };
            let fresh = seen
                .last_ok
                .is_some_and(|t| now.duration_since(t).unwrap_or_default() < window);
            if fresh {
                r.up_since.get_or_insert(now);
                r.peer_sha256 = seen.peer_sha256;
                r.problem = None;
            } else {
                r.up_since = None;
                r.problem = Some(seen.last_refusal.unwrap_or_else(|| {
                    format!("waiting for {} to connect", r.desired.peer_provider)
                }));
            }
        }
    }

    /// The calling side's Services and EndpointSlices: one Service per remote service and lease
    /// namespace, a port per forwarded port; stale ones in our lease namespaces are deleted.
    async fn apply_services(&mut self) -> kube::Result<()> {
        let mut wanted: BTreeMap<(String, String), Vec<ForwardedPort>> = BTreeMap::new();
        for r in self.running.values() {
            let Some(side) = &r.client else { continue };
            let d = &r.desired;
            let ports = wanted
                .entry((
                    d.lease_namespace.clone(),
                    d.connection.server_service.clone(),
                ))
                .or_default();
            // Two callers of one remote port share its Service port: the first tunnel serves it.
            if !ports.iter().any(|p| p.port == d.connection.port) {
                ports.push(ForwardedPort {
                    port: d.connection.port,
                    local_port: side.handle.local_addr().port(),
                });
            }
        }
        let params = PatchParams::apply(FIELD_MANAGER).force();
        for ((ns, name), ports) in &wanted {
            let services: Api<Service> = Api::namespaced(self.client.clone(), ns);
            match services.get_opt(name).await {
                Ok(Some(existing)) if !existing.labels().contains_key(OVERLAY_LABEL) => {
                    tracing::warn!(namespace = %ns, service = %name, "a Service of that name that the overlay did not make exists; not replacing it");
                    continue;
                }
                // The lease namespace is not there yet (the workloads are being made).
                Err(e) if not_found(&e) => continue,
                _ => {}
            }
            let result = async {
                services
                    .patch(
                        name,
                        &params,
                        &Patch::Apply(objects::service(ns, name, ports)),
                    )
                    .await?;
                let slices: Api<EndpointSlice> = Api::namespaced(self.client.clone(), ns);
                slices
                    .patch(
                        &objects::slice_name(name),
                        &params,
                        &Patch::Apply(objects::endpoint_slice(ns, name, self.args.pod_ip, ports)),
                    )
                    .await
            }
            .await;
            match result {
                Ok(_) => {}
                Err(e) if not_found(&e) => {}
                Err(e) => return Err(e),
            }
        }
        self.service_namespaces
            .extend(wanted.keys().map(|(ns, _)| ns.clone()));
        let selector = ListParams::default().labels(&format!("{OVERLAY_LABEL}=true"));
        let mut emptied = Vec::new();
        for ns in &self.service_namespaces {
            let services: Api<Service> = Api::namespaced(self.client.clone(), ns);
            let list = match services.list(&selector).await {
                Ok(list) => list,
                Err(e) if not_found(&e) => {
                    emptied.push(ns.clone());
                    continue;
                }
                Err(_) => continue,
            };
            if !wanted.keys().any(|(n, _)| n == ns) {
                emptied.push(ns.clone());
            }
            for s in list.items {
                let name = s.name_any();
                if !wanted.contains_key(&(ns.clone(), name.clone())) {
                    let _ = services.delete(&name, &DeleteParams::background()).await;
                    let slices: Api<EndpointSlice> = Api::namespaced(self.client.clone(), ns);
                    let _ = slices
                        .delete(&objects::slice_name(&name), &DeleteParams::background())
                        .await;
                }
            }
        }
        // Looked at again only while a lease or a tunnel names them.
        for ns in emptied {
            self.service_namespaces.remove(&ns);
        }
        Ok(())
    }

    /// `Tunnel` resources: one per running end with its status; others of ours are deleted.
    async fn apply_tunnels(&mut self) -> kube::Result<()> {
        let api: Api<Tunnel> = Api::namespaced(self.client.clone(), &self.args.namespace);
        let params = PatchParams::apply(FIELD_MANAGER).force();
        for (name, r) in self.running.iter_mut() {
            let endpoint = r.client.as_ref().map(|s| s.endpoint.as_str());
            if r.spec_written != Some(r.mode) {
                let tunnel = objects::tunnel(&r.desired, &self.args.namespace, endpoint, r.mode);
                api.patch(name, &params, &Patch::Apply(&tunnel)).await?;
                r.spec_written = Some(r.mode);
            }
            let stats = self.counters.get(name).unwrap_or_default();
            let status = TunnelStatus {
                established: r.up_since.is_some(),
                since: r.up_since.map(rfc3339),
                peer_certificate_sha256: r.peer_sha256.clone(),
                bytes_sent: stats.sent,
                bytes_received: stats.received,
                conditions: vec![condition(r, &r.status_written)],
                observed_generation: None,
            };
            if r.status_written.as_ref() != Some(&status) {
                api.patch_status(
                    name,
                    &PatchParams::default(),
                    &Patch::Merge(serde_json::json!({ "status": status })),
                )
                .await?;
                r.status_written = Some(status);
            }
        }
        let ours = api
            .list(&ListParams::default().labels(&format!("{OVERLAY_LABEL}=true")))
            .await?;
        for t in ours.items {
            let name = t.name_any();
            if !self.running.contains_key(&name) {
                tracing::info!(tunnel = %name, "deleting a Tunnel that no longer runs");
                let _ = api.delete(&name, &DeleteParams::background()).await;
            }
        }
        Ok(())
    }

    fn report_metrics(&mut self) {
        use crate::metrics::{TunnelLabel, TunnelState};
        self.metrics.tunnels.clear();
        for r in self.running.values_mut() {
            let role = match r.desired.side {
                Side::Client => "client",
                Side::Server => "server",
            };
            self.metrics
                .tunnels
                .get_or_create(&TunnelState {
                    role: role.into(),
                    established: r.up_since.is_some().to_string(),
                })
                .inc();
            let stats = self.counters.get(&r.desired.name).unwrap_or_default();
            let label = TunnelLabel {
                tunnel: r.desired.name.clone(),
                role: role.into(),
            };
            let (sent, received) = r.reported;
            self.metrics
                .tunnel_bytes_sent
                .get_or_create(&label)
                .inc_by(stats.sent.saturating_sub(sent));
            self.metrics
                .tunnel_bytes_received
                .get_or_create(&label)
                .inc_by(stats.received.saturating_sub(received));
            r.reported = (stats.sent.max(sent), stats.received.max(received));
        }
    }
}

fn rfc3339(t: SystemTime) -> String {
    jiff::Timestamp::try_from(t)
        .map(|t| t.to_string())
        .unwrap_or_default()
}

/// The `Established` condition, its transition time kept while the status does not change.
fn condition(r: &Running, before: &Option<TunnelStatus>) -> Condition {
    let up = r.up_since.is_some();
    let status = if up { "True" } else { "False" };
    let previous = before
        .as_ref()
        .and_then(|s| s.conditions.first())
        .filter(|c| c.status == status);
    Condition {
        type_: "Established".into(),
        status: status.into(),
        reason: if up {
            "Connected".into()
        } else {
            "NotConnected".into()
        },
        message: r.problem.clone().unwrap_or_default(),
        last_transition_time: previous
            .and_then(|c| c.last_transition_time.clone())
            .or_else(|| Some(rfc3339(SystemTime::now()))),
        observed_generation: None,
    }
}

fn not_found(e: &kube::Error) -> bool {
    matches!(e, kube::Error::Api(status) if status.code == 404)
}

/// Takes the server's WireGuard offer: makes it a peer and checks the path with a probe through
/// it. On success new connections go through WireGuard; otherwise they stay on mTLS.
async fn wireguard_path(
    wg: &Arc<WireGuard>,
    tunnel: &TunnelClient,
    provider: &str,
    theirs: WireGuardOffer,
) -> Result<(), String> {
    let route = SocketAddr::new(theirs.address.into(), wg_data::DATA_PORT);
    let wg2 = wg.clone();
    let provider = provider.to_owned();
    tokio::task::spawn_blocking(move || wg2.add_peer(&provider, &theirs, true))
        .await
        .map_err(|e| e.to_string())?
        .map_err(|e| e.to_string())?;
    match tunnel.probe_wireguard(route).await {
        Ok(()) => {
            tunnel.set_wireguard_route(Some(route));
            Ok(())
        }
        Err(e) => {
            tunnel.set_wireguard_route(None);
            Err(e.to_string())
        }
    }
}
