//! How each tunnel is doing: client ends probe the whole path (and take up WireGuard when the
//! peer offers it), server ends are up while their peer's probes arrive; and who may use a
//! calling-side tunnel.

use std::collections::{BTreeMap, HashSet};
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::SystemTime;

use crds::resources::TunnelMode;
use k8s_openapi::api::core::v1::Pod;
use kube::Api;
use kube::api::ListParams;

use super::state::Overlay;
use crate::overlay::topology::Side;
use crate::overlay::wireguard::WireGuard;
use crate::overlay::{TunnelClient, WireGuardOffer, wg_data};

impl Overlay {
    /// Only the pods of a client tunnel's lease (and `--allow-source`) may use it: any lease pod
    /// may reach the sidecar, and must not reach another lease's tunnels.
    pub(super) async fn restrict_sources(&self) {
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
    pub(super) async fn probe(&mut self) {
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
