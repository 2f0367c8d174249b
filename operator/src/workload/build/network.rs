//! Per service: the ClusterIP and NodePort Services and the Ingress; per lease: the
//! NetworkPolicies.

use std::collections::BTreeMap;

use crds::sdl::ManifestGroup;
use crds::sdl::manifest::{ManifestExpose, ManifestService};
use crds::sdl::names::ingress_host;
use k8s_openapi::api::core::v1::{Service, ServicePort, ServiceSpec};
use k8s_openapi::api::networking::v1::{
    HTTPIngressPath, HTTPIngressRuleValue, IPBlock, Ingress, IngressBackend, IngressRule,
    IngressServiceBackend, IngressSpec, NetworkPolicy, NetworkPolicyEgressRule,
    NetworkPolicyIngressRule, NetworkPolicyPeer, NetworkPolicyPort, NetworkPolicySpec,
    ServiceBackendPort,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use super::pod::{Totals, pods_of, selector};
use super::{BuildError, Ctx, RESTRICTIONS_POLICY};

const NGINX: &str = "nginx.ingress.kubernetes.io";

/// The port the world (or the other services) connect to: `as`, or the container port.
pub(super) fn external_port(expose: &ManifestExpose) -> u16 {
    if expose.external_port == 0 {
        expose.port
    } else {
        expose.external_port
    }
}

/// Served by the shared HTTP ingress: global, TCP, external port 80.
pub(super) fn is_ingress(expose: &ManifestExpose) -> bool {
    expose.global && expose.proto.eq_ignore_ascii_case("TCP") && external_port(expose) == 80
}

/// Global but not HTTP: a node port.
fn is_node_port(expose: &ManifestExpose) -> bool {
    expose.global && !is_ingress(expose)
}

/// The NodePort Service of a service.
pub(super) fn node_port_service_name(service: &str) -> String {
    format!("{service}-np")
}

fn ports(svc: &ManifestService, wanted: impl Fn(&ManifestExpose) -> bool) -> Vec<ServicePort> {
    let mut ports: Vec<ServicePort> = Vec::new();
    for (i, expose) in svc.expose.iter().enumerate() {
        if !wanted(expose) {
            continue;
        }
        let external = i32::from(external_port(expose));
        let protocol = expose.proto.to_uppercase();
        if ports
            .iter()
            .any(|p| p.port == external && p.protocol.as_deref() == Some(&protocol))
        {
            continue;
        }
        ports.push(ServicePort {
            name: Some(format!("{i}-{external}")),
            port: external,
            target_port: Some(IntOrString::Int(i32::from(expose.port))),
            protocol: Some(protocol),
            ..ServicePort::default()
        });
    }
    ports
}

/// `<svc>` (ClusterIP: internal exposes and the target of the Ingress) and `<svc>-np`
/// (NodePort: other global exposes), each only when it has ports.
pub(crate) fn services(ctx: &Ctx, svc: &ManifestService, totals: &mut Totals) -> Vec<Service> {
    let mut out = Vec::new();
    let cluster = ports(svc, |e| !e.global || is_ingress(e));
    let node = ports(svc, is_node_port);
    for (name, type_, ports) in [
        (svc.name.clone(), "ClusterIP", cluster),
        (node_port_service_name(&svc.name), "NodePort", node),
    ] {
        if ports.is_empty() {
            continue;
        }
        if type_ == "NodePort" {
            totals.node_ports += ports.len() as u64;
        }
        out.push(Service {
            metadata: ctx.meta(&name, ctx.service_labels(&svc.name)),
            spec: Some(ServiceSpec {
                type_: Some(type_.into()),
                selector: Some(selector(&svc.name)),
                ports: Some(ports),
                ..ServiceSpec::default()
            }),
            ..Service::default()
        });
    }
    out
}

/// Seconds from milliseconds, rounded up.
fn seconds(ms: u64) -> u64 {
    ms.div_ceil(1000)
}

/// ingress-nginx annotations from the expose's `http_options`, as the Go provider writes them.
fn annotations(expose: &ManifestExpose) -> BTreeMap<String, String> {
    let o = &expose.http_options;
    let cases: Vec<String> = o
        .next_cases
        .iter()
        .map(|c| {
            if c.starts_with(['1', '2', '3', '4', '5']) {
                format!("http_{c}")
            } else {
                c.clone()
            }
        })
        .collect();
    [
        ("proxy-read-timeout", seconds(o.read_timeout).to_string()),
        ("proxy-send-timeout", seconds(o.send_timeout).to_string()),
        ("proxy-next-upstream-tries", o.next_tries.to_string()),
        ("proxy-body-size", o.max_body_size.to_string()),
        (
            "proxy-next-upstream-timeout",
            seconds(o.next_timeout).to_string(),
        ),
        ("proxy-next-upstream", cases.join(" ")),
    ]
    .into_iter()
    .map(|(k, v)| (format!("{NGINX}/{k}"), v))
    .collect()
}

/// No host under the ingress domain but the lease's own automatic hosts: the others are other
/// leases' (the gateway refuses them too; this keeps a hand-edited `Lease` from taking one).
pub(crate) fn check_hosts(ctx: &Ctx, group: &ManifestGroup) -> Result<(), BuildError> {
    let domain = ctx.config.ingress_domain.to_lowercase();
    let own: Vec<String> = group
        .services
        .iter()
        .map(|s| ingress_host(&ctx.lease, &s.name, &domain))
        .collect();
    for svc in &group.services {
        for (i, expose) in svc.expose.iter().enumerate() {
            for (j, host) in expose.hosts.iter().flatten().enumerate() {
                let host = host.to_lowercase();
                let under = host == domain || host.ends_with(&format!(".{domain}"));
                if under && !own.contains(&host) {
                    return Err(BuildError::new(
                        format!("services[{}].expose[{i}].hosts[{j}]", svc.name),
                        format!(
                            "\"{host}\" is under the ingress domain \"{domain}\" and is not one of this lease's own hosts"
                        ),
                    ));
                }
            }
        }
    }
    Ok(())
}

/// The Ingress `<svc>` for the service's port-80 global exposes: the automatic host first, then
/// the hosts the manifest accepts that the lease holds, each routing `/` to the ClusterIP Service
/// on port 80.
pub(crate) fn ingress(ctx: &Ctx, svc: &ManifestService) -> Option<Ingress> {
    let exposes: Vec<&ManifestExpose> = svc.expose.iter().filter(|e| is_ingress(e)).collect();
    let first = exposes.first()?;
    let mut hosts = vec![ingress_host(
        &ctx.lease,
        &svc.name,
        &ctx.config.ingress_domain,
    )];
    for host in exposes.iter().flat_map(|e| e.hosts.iter().flatten()) {
        let host = host.to_lowercase();
        // A host another deployment of the owner took over is that deployment's now.
        let held = ctx
            .hostnames
            .is_none_or(|held| held.iter().any(|h| h.eq_ignore_ascii_case(&host)));
        if held && !hosts.contains(&host) {
            hosts.push(host);
        }
    }
    let rules = hosts
        .into_iter()
        .map(|host| IngressRule {
            host: Some(host),
            http: Some(HTTPIngressRuleValue {
                paths: vec![HTTPIngressPath {
                    path: Some("/".into()),
                    path_type: "Prefix".into(),
                    backend: IngressBackend {
                        service: Some(IngressServiceBackend {
                            name: svc.name.clone(),
                            port: Some(ServiceBackendPort {
                                number: Some(80),
                                ..ServiceBackendPort::default()
                            }),
                        }),
                        ..IngressBackend::default()
                    },
                }],
            }),
        })
        .collect();
    let mut metadata = ctx.meta(&svc.name, ctx.service_labels(&svc.name));
    metadata.annotations = Some(annotations(first));
    Some(Ingress {
        metadata,
        spec: Some(IngressSpec {
            ingress_class_name: Some(ctx.config.ingress_class.clone()),
            rules: Some(rules),
            ..IngressSpec::default()
        }),
        ..Ingress::default()
    })
}

fn namespace_named(name: &str) -> NetworkPolicyPeer {
    NetworkPolicyPeer {
        namespace_selector: Some(LabelSelector {
            match_labels: Some(BTreeMap::from([(
                "kubernetes.io/metadata.name".to_owned(),
                name.to_owned(),
            )])),
            ..LabelSelector::default()
        }),
        ..NetworkPolicyPeer::default()
    }
}

/// Every pod of the policy's own namespace.
fn same_namespace() -> NetworkPolicyPeer {
    NetworkPolicyPeer {
        pod_selector: Some(LabelSelector::default()),
        ..NetworkPolicyPeer::default()
    }
}

fn port(number: u16, protocol: &str) -> NetworkPolicyPort {
    NetworkPolicyPort {
        port: Some(IntOrString::Int(i32::from(number))),
        protocol: Some(protocol.to_owned()),
        ..NetworkPolicyPort::default()
    }
}

/// `akash-deployment-restrictions` for the whole namespace, `akash-<svc>-np` per service
/// with global non-HTTP ports, and `akash-apiserver-<svc>` per service with permissions.
pub(crate) fn policies(ctx: &Ctx, group: &ManifestGroup) -> Vec<NetworkPolicy> {
    let from = |peer| NetworkPolicyIngressRule {
        from: Some(vec![peer]),
        ..NetworkPolicyIngressRule::default()
    };
    let mut out = vec![NetworkPolicy {
        metadata: ctx.meta(RESTRICTIONS_POLICY, ctx.labels()),
        spec: Some(NetworkPolicySpec {
            pod_selector: Some(LabelSelector::default()),
            policy_types: Some(vec!["Ingress".into(), "Egress".into()]),
            ingress: Some(vec![
                from(same_namespace()),
                from(namespace_named(&ctx.config.ingress_controller_namespace)),
                from(namespace_named(&ctx.config.gateway_namespace)),
            ]),
            egress: Some(egress(ctx)),
        }),
    }];
    for svc in &group.services {
        if let Some(policy) = api_server_policy(ctx, svc) {
            out.push(policy);
        }
        out.extend(open_to_everyone(
            ctx,
            svc,
            &format!("akash-{}-np", svc.name),
            is_node_port,
        ));
    }
    out
}

/// The NetworkPolicy `name` that opens the service's `wanted` exposes to every address: None
/// when there are none. Policies see the pod's own port (after a node port or a load balancer
/// translated it), so the container port is what they open.
pub(super) fn open_to_everyone(
    ctx: &Ctx,
    svc: &ManifestService,
    name: &str,
    wanted: impl Fn(&ManifestExpose) -> bool,
) -> Option<NetworkPolicy> {
    let mut ports: Vec<NetworkPolicyPort> = Vec::new();
    for expose in svc.expose.iter().filter(|e| wanted(e)) {
        let p = port(expose.port, &expose.proto.to_uppercase());
        if !ports.contains(&p) {
            ports.push(p);
        }
    }
    if ports.is_empty() {
        return None;
    }
    Some(NetworkPolicy {
        metadata: ctx.meta(name, ctx.service_labels(&svc.name)),
        spec: Some(NetworkPolicySpec {
            pod_selector: Some(pods_of(&svc.name)),
            policy_types: Some(vec!["Ingress".into()]),
            ingress: Some(vec![NetworkPolicyIngressRule {
                from: Some(vec![NetworkPolicyPeer {
                    ip_block: Some(IPBlock {
                        cidr: "0.0.0.0/0".into(),
                        except: None,
                    }),
                    ..NetworkPolicyPeer::default()
                }]),
                ports: Some(ports),
            }]),
            ..NetworkPolicySpec::default()
        }),
    })
}

/// `akash-apiserver-<svc>`: the pods of a service with `params.permissions` may connect to the
/// API server's endpoints (each address alone, on the endpoints' ports), as the Go provider
/// allows them. The restrictions policy denies these addresses to every pod; policies add up, so
/// this opens them to this service's pods only. None when the endpoints are unknown.
fn api_server_policy(ctx: &Ctx, svc: &ManifestService) -> Option<NetworkPolicy> {
    let endpoints = &ctx.config.api_server_endpoints;
    if endpoints.is_empty() || !super::rbac::has_permissions(svc) {
        return None;
    }
    let mut peers: Vec<NetworkPolicyPeer> = Vec::new();
    let mut ports: Vec<NetworkPolicyPort> = Vec::new();
    for endpoint in endpoints {
        let cidr = match endpoint.ip() {
            std::net::IpAddr::V4(ip) => format!("{ip}/32"),
            std::net::IpAddr::V6(ip) => format!("{ip}/128"),
        };
        let peer = NetworkPolicyPeer {
            ip_block: Some(IPBlock { cidr, except: None }),
            ..NetworkPolicyPeer::default()
        };
        if !peers.contains(&peer) {
            peers.push(peer);
        }
        let p = port(endpoint.port(), "TCP");
        if !ports.contains(&p) {
            ports.push(p);
        }
    }
    Some(NetworkPolicy {
        metadata: ctx.meta(&api_server_policy_name(&svc.name), ctx.labels()),
        spec: Some(NetworkPolicySpec {
            pod_selector: Some(pods_of(&svc.name)),
            policy_types: Some(vec!["Egress".into()]),
            egress: Some(vec![NetworkPolicyEgressRule {
                to: Some(peers),
                ports: Some(ports),
            }]),
            ..NetworkPolicySpec::default()
        }),
    })
}

/// The policy that lets a service with permissions reach the API server.
pub(super) fn api_server_policy_name(service: &str) -> String {
    format!("akash-apiserver-{service}")
}

/// What "the internet" of a lease pod leaves out: private networks, and the ranges that reach the
/// provider's own infrastructure rather than the internet (cloud metadata at 169.254.169.254,
/// carrier-grade NAT space, loopback, "this network", multicast and reserved space).
pub(crate) const NON_PUBLIC_RANGES: [&str; 10] = [
    "0.0.0.0/8",
    "10.0.0.0/8",
    "100.64.0.0/10",
    "127.0.0.0/8",
    "169.254.0.0/16",
    "172.16.0.0/12",
    "192.168.0.0/16",
    "198.18.0.0/15",
    "224.0.0.0/4",
    "240.0.0.0/4",
];

/// The egress rules of every lease pod: its own namespace, DNS, the public internet, and with
/// the overlay the sidecar's local listeners in the provider's namespace (behind the Services of
/// remote services), on their port range only.
fn egress(ctx: &Ctx) -> Vec<NetworkPolicyEgressRule> {
    let mut rules = vec![
        NetworkPolicyEgressRule {
            to: Some(vec![same_namespace()]),
            ..NetworkPolicyEgressRule::default()
        },
        NetworkPolicyEgressRule {
            to: Some(vec![namespace_named("kube-system")]),
            ports: Some(vec![port(53, "UDP"), port(53, "TCP")]),
        },
        NetworkPolicyEgressRule {
            to: Some(vec![NetworkPolicyPeer {
                ip_block: Some(IPBlock {
                    cidr: "0.0.0.0/0".into(),
                    except: Some(
                        NON_PUBLIC_RANGES
                            .iter()
                            .map(|r| (*r).to_owned())
                            .chain(ctx.config.egress_deny.iter().cloned())
                            .collect(),
                    ),
                }),
                ..NetworkPolicyPeer::default()
            }]),
            ..NetworkPolicyEgressRule::default()
        },
    ];
    if ctx.config.overlay {
        let range = ctx.config.overlay_ports;
        rules.push(NetworkPolicyEgressRule {
            to: Some(vec![namespace_named(&ctx.config.gateway_namespace)]),
            ports: Some(vec![NetworkPolicyPort {
                end_port: (range.last > range.first).then_some(i32::from(range.last)),
                ..port(range.first, "TCP")
            }]),
        });
    }
    rules
}

#[cfg(test)]
mod tests;
