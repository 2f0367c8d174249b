//! What the sidecar writes to Kubernetes: the calling side's Services and EndpointSlices, the
//! `Tunnel` resources with their status, and the metrics.

use std::collections::BTreeMap;
use std::time::SystemTime;

use crds::resources::{Condition, ConditionType, Tunnel, TunnelReason, TunnelStatus};
use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::api::{DeleteParams, ListParams, Patch, PatchParams};
use kube::{Api, ResourceExt};

use super::objects::{self, FIELD_MANAGER, ForwardedPort, OVERLAY_LABEL};
use super::state::{Overlay, Running, not_found};
use crate::controller::conditions::set_condition;
use crate::controller::status::apply_status;
use crate::overlay::topology::Side;

impl Overlay {
    /// The calling side's Services and EndpointSlices: one Service per remote service and lease
    /// namespace, a port per forwarded port; stale ones in our lease namespaces are deleted.
    pub(super) async fn apply_services(&mut self) -> kube::Result<()> {
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
    pub(super) async fn apply_tunnels(&mut self) -> kube::Result<()> {
        let api: Api<Tunnel> = Api::namespaced(self.client.clone(), &self.args.objects.namespace);
        let params = PatchParams::apply(FIELD_MANAGER).force();
        for (name, r) in self.running.iter_mut() {
            let endpoint = r.client.as_ref().map(|s| s.endpoint.as_str());
            if r.spec_written != Some(r.mode) {
                let tunnel =
                    objects::tunnel(&r.desired, &self.args.objects.namespace, endpoint, r.mode);
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
                conditions: conditions(r, &r.status_written),
                observed_generation: None,
            };
            if r.status_written.as_ref() != Some(&status) {
                // The sidecar reports its own tunnel's state, computed from no read object: no
                // version to guard on. The status is this field manager's alone, so a field it
                // stops reporting (`since` once the tunnel is down) is removed.
                apply_status(&api, name, FIELD_MANAGER, None, &status).await?;
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

    pub(super) fn report_metrics(&mut self) {
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

/// The `Established` condition (the only one), its transition time kept while the status does
/// not change.
fn conditions(r: &Running, before: &Option<TunnelStatus>) -> Vec<Condition> {
    let up = r.up_since.is_some();
    let mut conditions: Vec<Condition> = before
        .as_ref()
        .map(|s| s.conditions.clone())
        .unwrap_or_default();
    let reason = if up {
        TunnelReason::Connected
    } else {
        TunnelReason::NotConnected
    };
    set_condition(
        &mut conditions,
        None,
        ConditionType::Established,
        up.into(),
        reason.as_str(),
        r.problem.as_deref().unwrap_or_default(),
    );
    conditions
}
