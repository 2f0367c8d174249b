//! The Kubernetes objects of the overlay, built as plain values: a `Tunnel` per tunnel end, and
//! on the calling side a Service named like the remote service (no selector) whose EndpointSlice
//! points at this sidecar, so a workload connects to `service:port` as if it ran next door.

use std::collections::BTreeMap;
use std::net::IpAddr;

use crds::resources::{Tunnel, TunnelMode, TunnelRole, TunnelSpec};
use k8s_openapi::api::core::v1::{Service, ServicePort, ServiceSpec};
use k8s_openapi::api::discovery::v1::{Endpoint, EndpointConditions, EndpointPort, EndpointSlice};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use super::desired::DesiredTunnel;
use crate::overlay::topology::Side;

/// The field manager of everything the overlay applies.
pub(crate) const FIELD_MANAGER: &str = "akash-provider-overlay";
/// Label on every `Tunnel`, Service and EndpointSlice the overlay makes.
pub(crate) const OVERLAY_LABEL: &str = "overlay.akash.network/managed";
/// The EndpointSlice `managed-by` value (the endpoint slice controller leaves these alone).
pub(crate) const MANAGED_BY: &str = "overlay.akash.network";

fn labels() -> BTreeMap<String, String> {
    BTreeMap::from([(OVERLAY_LABEL.to_owned(), "true".to_owned())])
}

/// The `Tunnel` resource of one end, owned by our `Lease` resource (so it goes with it).
pub(crate) fn tunnel(
    d: &DesiredTunnel,
    namespace: &str,
    peer_endpoint: Option<&str>,
    mode: TunnelMode,
) -> Tunnel {
    let (lease_name, lease_uid) = &d.lease_resource;
    let mut t = Tunnel::new(
        &d.name,
        TunnelSpec {
            lease_id: d.lease.clone(),
            role: match d.side {
                Side::Client => TunnelRole::Client,
                Side::Server => TunnelRole::Server,
            },
            local_service: d.local_service().to_owned(),
            port: d.connection.port,
            peer_provider: d.peer_provider.clone(),
            peer_endpoint: peer_endpoint.map(str::to_owned),
            peer_service: d.peer_service().to_owned(),
            mode,
        },
    );
    t.metadata = ObjectMeta {
        name: Some(d.name.clone()),
        namespace: Some(namespace.to_owned()),
        labels: Some(labels()),
        owner_references: lease_uid.as_ref().map(|uid| {
            vec![OwnerReference {
                api_version: "akash.network/v1".into(),
                kind: "Lease".into(),
                name: lease_name.clone(),
                uid: uid.clone(),
                ..Default::default()
            }]
        }),
        ..Default::default()
    };
    t
}

/// A port of a calling-side Service: the remote service's port, served by the sidecar's
/// listener on `local_port`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ForwardedPort {
    pub port: u16,
    pub local_port: u16,
}

fn port_name(port: u16) -> String {
    format!("tcp-{port}")
}

/// The Service `service` in the lease namespace `namespace`, without a selector.
pub(crate) fn service(namespace: &str, service: &str, ports: &[ForwardedPort]) -> Service {
    Service {
        metadata: ObjectMeta {
            name: Some(service.to_owned()),
            namespace: Some(namespace.to_owned()),
            labels: Some(labels()),
            ..Default::default()
        },
        spec: Some(ServiceSpec {
            type_: Some("ClusterIP".into()),
            ports: Some(
                ports
                    .iter()
                    .map(|p| ServicePort {
                        name: Some(port_name(p.port)),
                        port: i32::from(p.port),
                        target_port: Some(IntOrString::Int(i32::from(p.local_port))),
                        protocol: Some("TCP".into()),
                        ..Default::default()
                    })
                    .collect(),
            ),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// The name of the EndpointSlice of Service `service`.
pub(crate) fn slice_name(service: &str) -> String {
    format!("{service}-overlay")
}

/// The EndpointSlice of Service `service`: this sidecar (`pod_ip`), one port per forwarded port.
pub(crate) fn endpoint_slice(
    namespace: &str,
    service: &str,
    pod_ip: IpAddr,
    ports: &[ForwardedPort],
) -> EndpointSlice {
    let mut labels = labels();
    labels.insert("kubernetes.io/service-name".into(), service.to_owned());
    labels.insert(
        "endpointslice.kubernetes.io/managed-by".into(),
        MANAGED_BY.into(),
    );
    EndpointSlice {
        metadata: ObjectMeta {
            name: Some(slice_name(service)),
            namespace: Some(namespace.to_owned()),
            labels: Some(labels),
            ..Default::default()
        },
        address_type: match pod_ip {
            IpAddr::V4(_) => "IPv4".into(),
            IpAddr::V6(_) => "IPv6".into(),
        },
        endpoints: Some(vec![Endpoint {
            addresses: vec![pod_ip.to_string()],
            conditions: Some(EndpointConditions {
                ready: Some(true),
                serving: Some(true),
                terminating: Some(false),
            }),
            ..Default::default()
        }]),
        ports: Some(
            ports
                .iter()
                .map(|p| EndpointPort {
                    name: Some(port_name(p.port)),
                    port: Some(i32::from(p.local_port)),
                    protocol: Some("TCP".into()),
                    ..Default::default()
                })
                .collect(),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_calling_side_service_has_no_selector_and_its_slice_points_at_the_sidecar() {
        let ports = [
            ForwardedPort {
                port: 5432,
                local_port: 40001,
            },
            ForwardedPort {
                port: 6379,
                local_port: 40002,
            },
        ];
        let svc = service("ns1", "db", &ports);
        let spec = svc.spec.unwrap();
        assert!(
            spec.selector.is_none(),
            "a selector would make the endpoint controller fight us"
        );
        let sp = spec.ports.unwrap();
        assert_eq!(sp[0].port, 5432);
        assert_eq!(sp[0].target_port, Some(IntOrString::Int(40001)));
        assert_eq!(sp[1].name.as_deref(), Some("tcp-6379"));

        let slice = endpoint_slice("ns1", "db", "10.1.2.3".parse().unwrap(), &ports);
        let labels = slice.metadata.labels.unwrap();
        assert_eq!(labels["kubernetes.io/service-name"], "db");
        assert_eq!(labels["endpointslice.kubernetes.io/managed-by"], MANAGED_BY);
        assert_eq!(slice.address_type, "IPv4");
        assert_eq!(slice.endpoints.unwrap()[0].addresses, vec!["10.1.2.3"]);
        // Slice ports are matched to Service ports by name.
        let slice_ports = slice.ports.unwrap();
        assert_eq!(slice_ports[0].name, sp[0].name);
        assert_eq!(slice_ports[0].port, Some(40001));
    }
}
