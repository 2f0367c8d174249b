//! The status step: what runs, per service, read from the objects in the lease's namespace.
//! Pure: the reconciler lists the objects and passes them in.

use k8s_openapi::api::apps::v1::{Deployment, StatefulSet};
use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::networking::v1::Ingress;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use kube::ResourceExt;

use crds::resources::{LeasePhase, LeasedIpStatus, ServiceStatus};
use crds::sdl::ManifestGroup;

use super::build::SERVICE_LABEL;

/// What the lease's namespace holds now.
#[derive(Debug, Default)]
pub(crate) struct Observed {
    pub deployments: Vec<Deployment>,
    pub stateful_sets: Vec<StatefulSet>,
    pub services: Vec<Service>,
    pub ingresses: Vec<Ingress>,
}

impl Observed {
    /// Takes `services` and `ingresses` (as an apply just answered) in place of what was observed
    /// of the same names.
    pub(crate) fn take_answers(&mut self, services: Vec<Service>, ingresses: Vec<Ingress>) {
        replace_by_name(&mut self.services, services);
        replace_by_name(&mut self.ingresses, ingresses);
    }
}

fn replace_by_name<K: kube::Resource>(observed: &mut Vec<K>, answers: Vec<K>) {
    for answer in answers {
        let name = answer.name_any();
        match observed.iter_mut().find(|o| o.name_any() == name) {
            Some(held) => *held = answer,
            None => observed.push(answer),
        }
    }
}

/// Per service of the manifest: replicas ready and wanted, HTTP hosts, forwarded ports.
pub(crate) fn services(group: &ManifestGroup, observed: &Observed) -> Vec<ServiceStatus> {
    group
        .services
        .iter()
        .map(|svc| {
            let counts = replicas(&svc.name, observed).unwrap_or(Replicas {
                wanted: svc.count as i32,
                ..Replicas::default()
            });
            let mut uris: Vec<String> = observed
                .ingresses
                .iter()
                .filter(|i| labelled(i.labels(), &svc.name))
                .flat_map(|i| i.spec.iter().flat_map(|s| s.rules.iter().flatten()))
                .filter_map(|r| r.host.clone())
                .collect();
            uris.sort();
            uris.dedup();
            let mut forwarded_ports: Vec<String> = observed
                .services
                .iter()
                .filter(|s| labelled(s.labels(), &svc.name))
                .filter_map(|s| s.spec.as_ref())
                .filter(|s| s.type_.as_deref() == Some("NodePort"))
                .flat_map(|s| s.ports.iter().flatten())
                .filter_map(|p| {
                    p.node_port.map(|np| {
                        format!(
                            "{np}:{}/{}",
                            p.port,
                            p.protocol.as_deref().unwrap_or("TCP").to_lowercase()
                        )
                    })
                })
                .collect();
            forwarded_ports.sort();
            ServiceStatus {
                ips: leased_ips(&svc.name, observed),
                name: svc.name.clone(),
                ready_replicas: counts.ready,
                replicas: counts.wanted,
                available_replicas: counts.available,
                updated_replicas: counts.updated,
                uris,
                forwarded_ports,
            }
        })
        .collect()
}

/// The service's ports on leased IPs whose `LoadBalancer` Service has an address.
fn leased_ips(service: &str, observed: &Observed) -> Vec<LeasedIpStatus> {
    let mut out: Vec<LeasedIpStatus> = observed
        .services
        .iter()
        .filter(|s| labelled(s.labels(), service))
        .filter(|s| s.spec.as_ref().and_then(|s| s.type_.as_deref()) == Some("LoadBalancer"))
        .flat_map(|s| {
            let ip = s
                .status
                .as_ref()
                .and_then(|st| st.load_balancer.as_ref())
                .and_then(|lb| lb.ingress.as_ref())
                .and_then(|ingress| ingress.iter().find_map(|i| i.ip.clone()));
            let ports = s.spec.as_ref().and_then(|s| s.ports.clone());
            let endpoint = s
                .annotations()
                .get(crate::workload::build::leased_ip::ENDPOINT_ANNOTATION)
                .cloned()
                .unwrap_or_default();
            ip.into_iter().flat_map(move |ip| {
                let endpoint = endpoint.clone();
                ports
                    .clone()
                    .into_iter()
                    .flatten()
                    .map(move |p| LeasedIpStatus {
                        endpoint: endpoint.clone(),
                        ip: ip.clone(),
                        external_port: u32::try_from(p.port).unwrap_or_default(),
                        port: match p.target_port {
                            Some(IntOrString::Int(n)) => u32::try_from(n).unwrap_or_default(),
                            _ => u32::try_from(p.port).unwrap_or_default(),
                        },
                        protocol: p.protocol.unwrap_or_else(|| "TCP".into()),
                    })
            })
        })
        .collect();
    out.sort_by(|a, b| (a.external_port, &a.protocol).cmp(&(b.external_port, &b.protocol)));
    out
}

/// Every leased address of the lease's services, once each, comma-separated (`None`: none).
pub(crate) fn ips_text(services: &[ServiceStatus]) -> Option<String> {
    let ips: std::collections::BTreeSet<&str> = services
        .iter()
        .flat_map(|s| s.ips.iter().map(|i| i.ip.as_str()))
        .collect();
    (!ips.is_empty()).then(|| ips.into_iter().collect::<Vec<_>>().join(","))
}

/// Some of the lease's leased-IP Services (`wanted`) have no address yet.
pub(crate) fn ips_pending(wanted: usize, services: &[ServiceStatus]) -> bool {
    services.iter().map(|s| s.ips.len()).sum::<usize>() < wanted
}

fn labelled(labels: &std::collections::BTreeMap<String, String>, service: &str) -> bool {
    labels.get(SERVICE_LABEL).is_some_and(|v| v == service)
}

/// A workload's replica counts, as its controller reports them.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
struct Replicas {
    wanted: i32,
    ready: i32,
    available: i32,
    updated: i32,
}

/// The replica counts of the service's Deployment or StatefulSet.
fn replicas(service: &str, observed: &Observed) -> Option<Replicas> {
    if let Some(d) = observed
        .deployments
        .iter()
        .find(|d| d.name_any() == service)
    {
        let status = d.status.clone().unwrap_or_default();
        return Some(Replicas {
            wanted: d.spec.replicas.unwrap_or(1),
            ready: status.ready_replicas.unwrap_or(0),
            available: status.available_replicas.unwrap_or(0),
            updated: status.updated_replicas.unwrap_or(0),
        });
    }
    observed
        .stateful_sets
        .iter()
        .find(|s| s.name_any() == service)
        .map(|s| {
            let status = s.status.clone().unwrap_or_default();
            Replicas {
                wanted: s.spec.replicas.unwrap_or(1),
                ready: status.ready_replicas.unwrap_or(0),
                available: status.available_replicas.unwrap_or(0),
                updated: status.updated_replicas.unwrap_or(0),
            }
        })
}

/// `Active` when every service has all its replicas ready, else `Deploying` (never ready yet) or
/// `Degraded` (was active before).
pub(crate) fn phase(services: &[ServiceStatus], previous: Option<LeasePhase>) -> LeasePhase {
    let all_ready = services
        .iter()
        .all(|s| s.replicas > 0 && s.ready_replicas >= s.replicas);
    match (all_ready, previous) {
        (true, _) => LeasePhase::Active,
        (false, Some(LeasePhase::Active | LeasePhase::Degraded)) => LeasePhase::Degraded,
        (false, _) => LeasePhase::Deploying,
    }
}

/// `ready/total` services, for `kubectl get`.
pub(crate) fn ready_text(services: &[ServiceStatus]) -> String {
    let ready = services
        .iter()
        .filter(|s| s.replicas > 0 && s.ready_replicas >= s.replicas)
        .count();
    format!("{ready}/{}", services.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn svc(name: &str, ready: i32, wanted: i32) -> ServiceStatus {
        ServiceStatus {
            name: name.into(),
            ready_replicas: ready,
            replicas: wanted,
            ..Default::default()
        }
    }

    #[test]
    fn a_lease_is_active_only_when_every_service_is_ready_and_degraded_after_that() {
        let all = [svc("web", 2, 2), svc("db", 1, 1)];
        let some = [svc("web", 1, 2), svc("db", 1, 1)];
        assert_eq!(phase(&all, Some(LeasePhase::Deploying)), LeasePhase::Active);
        assert_eq!(
            phase(&some, Some(LeasePhase::Deploying)),
            LeasePhase::Deploying
        );
        assert_eq!(phase(&some, Some(LeasePhase::Active)), LeasePhase::Degraded);
        assert_eq!(ready_text(&some), "1/2");
        assert_eq!(ready_text(&all), "2/2");
    }

    /// What an apply just answered replaces what the (possibly lagging) watch held of the same
    /// name, and adds what the watch has not brought yet; the rest stays.
    #[test]
    fn apply_answers_replace_or_add_to_what_was_observed() {
        let service = |name: &str, node_port: Option<i32>| {
            let mut s = Service::default();
            s.metadata.name = Some(name.into());
            s.spec = Some(k8s_openapi::api::core::v1::ServiceSpec {
                ports: Some(vec![k8s_openapi::api::core::v1::ServicePort {
                    port: 80,
                    node_port,
                    ..Default::default()
                }]),
                ..Default::default()
            });
            s
        };
        let mut observed = Observed {
            services: vec![service("web-np", None), service("kept", Some(30001))],
            ..Default::default()
        };
        let mut ingress = Ingress::default();
        ingress.metadata.name = Some("web".into());
        observed.take_answers(
            vec![service("web-np", Some(30080)), service("db", None)],
            vec![ingress],
        );
        let node_port = |name: &str| {
            let s = observed
                .services
                .iter()
                .find(|s| s.name_any() == name)
                .unwrap();
            s.spec.as_ref().unwrap().ports.as_ref().unwrap()[0].node_port
        };
        assert_eq!(observed.services.len(), 3);
        assert_eq!(node_port("web-np"), Some(30080));
        assert_eq!(node_port("kept"), Some(30001));
        assert_eq!(node_port("db"), None);
        assert_eq!(observed.ingresses.len(), 1);
    }

    #[test]
    fn replica_counts_are_the_workloads_own() {
        use k8s_openapi::api::apps::v1::{
            DeploymentSpec, DeploymentStatus, StatefulSetSpec, StatefulSetStatus,
        };
        let group = crds::sdl::Sdl::parse(
            r#"
version: "2.0"
services:
  web: {image: nginx, expose: [{port: 80, to: [{global: true}]}]}
  db: {image: postgres, expose: []}
profiles:
  compute:
    p: {resources: {cpu: {units: 1}, memory: {size: 1Gi}, storage: {size: 1Gi}}}
  placement:
    dc: {pricing: {p: {denom: uact, amount: 1}}}
deployment:
  web: {dc: {profile: p, count: 4}}
  db: {dc: {profile: p, count: 2}}
"#,
        )
        .unwrap()
        .manifest()[0]
            .clone();
        let mut web = Deployment::default();
        web.metadata.name = Some("web".into());
        web.spec = DeploymentSpec {
            replicas: Some(4),
            ..Default::default()
        };
        web.status = Some(DeploymentStatus {
            ready_replicas: Some(3),
            available_replicas: Some(2),
            updated_replicas: Some(1),
            ..Default::default()
        });
        let mut db = StatefulSet::default();
        db.metadata.name = Some("db".into());
        db.spec = StatefulSetSpec {
            replicas: Some(2),
            ..Default::default()
        };
        db.status = Some(StatefulSetStatus {
            ready_replicas: Some(2),
            available_replicas: Some(1),
            updated_replicas: Some(2),
            ..Default::default()
        });
        let observed = Observed {
            deployments: vec![web],
            stateful_sets: vec![db],
            ..Default::default()
        };
        let got = services(&group, &observed);
        let counts = |name: &str| {
            let s = got.iter().find(|s| s.name == name).unwrap();
            (
                s.replicas,
                s.ready_replicas,
                s.available_replicas,
                s.updated_replicas,
            )
        };
        assert_eq!(counts("web"), (4, 3, 2, 1));
        assert_eq!(counts("db"), (2, 2, 1, 2));
        // Nothing observed yet: the manifest's count wanted, nothing ready.
        let none = services(&group, &Observed::default());
        let web = none.iter().find(|s| s.name == "web").unwrap();
        assert_eq!((web.replicas, web.ready_replicas), (4, 0));
    }
}
