//! The objects built for each kind of service, from SDL fixtures in
//! `operator/tests/fixtures/workload/`. Expected values are written out by hand from the SDL (and
//! the Go provider's rules), never copied from what the code printed.

use std::collections::BTreeMap;

use crds::resources::LeaseRef;
use crds::sdl::names::{LeaseId, ingress_host, lease_namespace};
use crds::sdl::{ManifestGroup, Sdl};
use k8s_openapi::api::core::v1::{Container, PodSpec, Service};
use k8s_openapi::api::networking::v1::NetworkPolicy;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use kube::ResourceExt;

use super::*;

const MI: u64 = 1 << 20;
const GI: u64 = 1 << 30;

pub(super) fn lease() -> LeaseRef {
    LeaseRef {
        owner: "akash1qqzwc5d7hynl67nsmn9jukvwqp3vzdl6j2t7lk".into(),
        dseq: 1234567,
        gseq: 1,
        oseq: 1,
        provider: "akash1q7spv2cw06yszgfp4f9ed59lkka6ytn8g4tkjf".into(),
    }
}

pub(super) fn lease_id() -> LeaseId {
    let l = lease();
    LeaseId {
        owner: l.owner,
        dseq: l.dseq,
        gseq: l.gseq,
        oseq: l.oseq,
        provider: l.provider,
    }
}

/// The API server's endpoints in the test config (an HA pair, one of them IPv6).
pub(super) const API_SERVER: [&str; 3] = [
    "203.0.113.10:6443",
    "203.0.113.11:6443",
    "[2001:db8::10]:8443",
];

pub(super) fn config() -> WorkloadConfig {
    WorkloadConfig {
        ingress_domain: "ingress.example.com".into(),
        cluster_public_hostname: "provider.example.com".into(),
        api_server_endpoints: API_SERVER
            .iter()
            .map(|a| a.parse().expect("address"))
            .collect(),
        // As the provider adds them at start (`infrastructure_addresses`).
        egress_deny: vec!["203.0.113.10/32".into(), "203.0.113.11/32".into()],
        ip_pool: Some("leased".into()),
        ..WorkloadConfig::default()
    }
}

fn sdl(fixture: &str) -> Sdl {
    let path = format!(
        "{}/tests/fixtures/workload/{fixture}.yaml",
        env!("CARGO_MANIFEST_DIR")
    );
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    Sdl::parse(&text).unwrap_or_else(|e| panic!("{path}: {e}"))
}

pub(super) fn group(fixture: &str) -> ManifestGroup {
    sdl(fixture).manifest()[0].clone()
}

/// The fixture's group as the gateway records it: with the units of its group on chain.
pub(super) fn fixture_manifest(fixture: &str) -> LeaseManifest {
    let sdl = sdl(fixture);
    LeaseManifest {
        version: sdl.manifest_version_hex(),
        group: sdl.manifest()[0].clone(),
        leased: sdl.groups()[0]
            .resources
            .iter()
            .map(|u| crds::resources::LeasedUnit {
                count: u.count,
                resources: u.resource.clone(),
            })
            .collect(),
        hostnames: None,
        ip_endpoints: None,
        ip_addresses: Default::default(),
        secret_name: None,
    }
}

/// `group` as a lease manifest whose lease holds exactly what the group asks: one unit per
/// service, of its resources and count.
pub(super) fn leased(group: &ManifestGroup) -> LeaseManifest {
    use crds::resources::LeasedUnit;
    use crds::sdl::groups as g;
    let attrs = |a: &Option<Vec<g::Attribute>>| a.clone().unwrap_or_default();
    LeaseManifest {
        version: "0".repeat(64),
        group: group.clone(),
        leased: group
            .services
            .iter()
            .map(|svc| {
                let r = &svc.resources;
                LeasedUnit {
                    count: svc.count,
                    resources: g::Resources {
                        id: r.id,
                        cpu: g::CpuUnits {
                            units: r.cpu.units.clone(),
                            attributes: attrs(&r.cpu.attributes),
                        },
                        memory: g::MemoryQuantity {
                            quantity: r.memory.size.clone(),
                            attributes: attrs(&r.memory.attributes),
                        },
                        storage: r
                            .storage
                            .iter()
                            .map(|s| g::StorageQuantity {
                                name: s.name.clone(),
                                quantity: s.size.clone(),
                                attributes: attrs(&s.attributes),
                            })
                            .collect(),
                        gpu: g::GpuUnits {
                            units: r.gpu.units.clone(),
                            attributes: attrs(&r.gpu.attributes),
                        },
                        endpoints: r
                            .endpoints
                            .iter()
                            .map(|e| g::Endpoint {
                                kind: e.kind.unwrap_or(0),
                                sequence_number: e.sequence_number,
                            })
                            .collect(),
                    },
                }
            })
            .collect(),
        hostnames: None,
        ip_endpoints: None,
        ip_addresses: Default::default(),
        secret_name: None,
    }
}

fn build_fixture(fixture: &str) -> LeaseObjects {
    let objects = build(&lease(), &fixture_manifest(fixture), &config())
        .unwrap_or_else(|e| panic!("{fixture}: {e}"));
    invariants(fixture, &objects);
    objects
}

const FIXTURES: [&str; 8] = [
    "http",
    "leased-ip",
    "random-port",
    "gpu",
    "persistent",
    "ram",
    "multi",
    "permissions",
];

/// (name, replicas, pod spec, pod labels) of every workload.
fn pods(o: &LeaseObjects) -> Vec<(String, i32, &PodSpec, &BTreeMap<String, String>)> {
    let mut out = Vec::new();
    for d in &o.deployments {
        let t = &d.spec.template;
        out.push((
            d.name_any(),
            d.spec.replicas.unwrap_or(1),
            t.spec.as_ref().expect("pod spec"),
            t.metadata
                .as_ref()
                .and_then(|m| m.labels.as_ref())
                .expect("labels"),
        ));
    }
    for s in &o.stateful_sets {
        let t = &s.spec.template;
        out.push((
            s.name_any(),
            s.spec.replicas.unwrap_or(1),
            t.spec.as_ref().expect("pod spec"),
            t.metadata
                .as_ref()
                .and_then(|m| m.labels.as_ref())
                .expect("labels"),
        ));
    }
    out
}

fn container<'a>(o: &'a LeaseObjects, name: &str) -> &'a Container {
    let (_, _, spec, _) = pods(o)
        .into_iter()
        .find(|(n, ..)| n == name)
        .unwrap_or_else(|| panic!("no workload {name}"));
    &spec.containers[0]
}

fn pod_spec<'a>(o: &'a LeaseObjects, name: &str) -> &'a PodSpec {
    pods(o)
        .into_iter()
        .find(|(n, ..)| n == name)
        .map(|(_, _, s, _)| s)
        .unwrap_or_else(|| panic!("no workload {name}"))
}

fn quantity(list: Option<&BTreeMap<String, Quantity>>, key: &str) -> Option<String> {
    list.and_then(|m| m.get(key)).map(|q| q.0.clone())
}

fn limit(c: &Container, key: &str) -> Option<String> {
    quantity(c.resources.as_ref().and_then(|r| r.limits.as_ref()), key)
}

fn request(c: &Container, key: &str) -> Option<String> {
    quantity(c.resources.as_ref().and_then(|r| r.requests.as_ref()), key)
}

/// `500m` → 500, `2` → 2000 (millis) for cpu; bytes and counts as written.
fn amount(text: &str, millis: bool) -> u64 {
    match text.strip_suffix('m') {
        Some(m) => m.parse().expect("millis"),
        None => text.parse::<u64>().expect("number") * if millis { 1000 } else { 1 },
    }
}

fn env(c: &Container) -> BTreeMap<String, Vec<String>> {
    let mut out: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for e in c.env.iter().flatten() {
        out.entry(e.name.clone())
            .or_default()
            .push(e.value.clone().unwrap_or_default());
    }
    out
}

fn service<'a>(o: &'a LeaseObjects, name: &str) -> &'a Service {
    o.services
        .iter()
        .find(|s| s.name_any() == name)
        .unwrap_or_else(|| panic!("no Service {name}"))
}

/// (name, port, targetPort, protocol) of a Service's ports.
fn ports(s: &Service) -> Vec<(String, i32, i32, String)> {
    s.spec
        .as_ref()
        .and_then(|s| s.ports.as_ref())
        .into_iter()
        .flatten()
        .map(|p| {
            let target = match p.target_port {
                Some(IntOrString::Int(n)) => n,
                ref other => panic!("target port {other:?}"),
            };
            (
                p.name.clone().unwrap_or_default(),
                p.port,
                target,
                p.protocol.clone().unwrap_or_default(),
            )
        })
        .collect()
}

fn policy<'a>(o: &'a LeaseObjects, name: &str) -> &'a NetworkPolicy {
    o.network_policies
        .iter()
        .find(|p| p.name_any() == name)
        .unwrap_or_else(|| panic!("no NetworkPolicy {name}"))
}

/// What holds for every lease: names, labels, namespaces, pod hardening, the quota.
pub(super) fn invariants(fixture: &str, o: &LeaseObjects) {
    let ns = lease_namespace(&lease_id());
    let ns_labels = o.namespace.labels();
    assert_eq!(o.namespace.name_any(), ns, "{fixture}");
    assert_eq!(o.namespace.metadata.namespace, None, "{fixture}");
    assert_eq!(
        ns_labels
            .get("pod-security.kubernetes.io/enforce")
            .map(String::as_str),
        Some("baseline"),
        "{fixture}"
    );
    let lease_labels = [
        ("akash.network", "true".to_owned()),
        ("akash.network/namespace", ns.clone()),
        ("akash.network/lease.id.owner", lease().owner),
        ("akash.network/lease.id.dseq", "1234567".to_owned()),
        ("akash.network/lease.id.gseq", "1".to_owned()),
        ("akash.network/lease.id.oseq", "1".to_owned()),
        ("akash.network/lease.id.provider", lease().provider),
    ];
    let check = |what: &str, meta: &ObjectMeta, namespaced: bool| {
        let labels = meta.labels.clone().unwrap_or_default();
        for (k, v) in &lease_labels {
            assert_eq!(labels.get(*k), Some(v), "{fixture}: {what} label {k}");
        }
        if namespaced {
            assert_eq!(
                meta.namespace.as_deref(),
                Some(ns.as_str()),
                "{fixture}: {what}"
            );
        }
        assert!(meta.owner_references.is_none(), "{fixture}: {what}");
    };
    check("namespace", &o.namespace.metadata, false);
    check("quota", &o.resource_quota.metadata, true);
    for x in &o.secrets {
        check("secret", &x.metadata, true);
    }
    for x in &o.deployments {
        check("deployment", &x.metadata, true);
    }
    for x in &o.stateful_sets {
        check("statefulset", &x.metadata, true);
    }
    for x in &o.services {
        check("service", &x.metadata, true);
    }
    for x in &o.ingresses {
        check("ingress", &x.metadata, true);
    }
    for x in &o.network_policies {
        check("networkpolicy", &x.metadata, true);
    }
    for x in &o.service_accounts {
        check("serviceaccount", &x.metadata, true);
    }
    for x in &o.roles {
        check("role", &x.metadata, true);
    }
    for x in &o.role_bindings {
        check("rolebinding", &x.metadata, true);
    }
    permission_invariants(fixture, o);

    // Pods: labelled for the inventory, no token, not privileged, requests and limits set.
    let mut sum = BTreeMap::<String, u64>::new();
    for (name, replicas, spec, labels) in pods(o) {
        for (k, v) in &lease_labels {
            assert_eq!(labels.get(*k), Some(v), "{fixture}: pods of {name}: {k}");
        }
        assert_eq!(
            labels.get("akash.network/manifest-service"),
            Some(&name),
            "{fixture}"
        );
        // A token only for a service with permissions, and then its own account's.
        let permitted = o.service_accounts.iter().any(|a| a.name_any() == name);
        assert_eq!(
            spec.automount_service_account_token,
            Some(permitted),
            "{fixture}: {name}"
        );
        assert_eq!(
            spec.service_account_name.as_deref(),
            Some(if permitted { name.as_str() } else { "default" }),
            "{fixture}: {name}"
        );
        assert!(spec.service_account.is_none(), "{fixture}: {name}");
        assert_eq!(spec.containers.len(), 1, "{fixture}: {name}");
        let c = &spec.containers[0];
        let sc = c.security_context.as_ref().expect("security context");
        assert_eq!(
            sc.allow_privilege_escalation,
            Some(false),
            "{fixture}: {name}"
        );
        assert_ne!(sc.privileged, Some(true), "{fixture}: {name}");
        assert!(
            sc.capabilities
                .as_ref()
                .and_then(|c| c.add.as_ref())
                .is_none(),
            "{fixture}: {name}"
        );
        // No raw sockets (no forged packets, no ARP/ICMP tricks on the pod network), and the
        // runtime's default seccomp filter rather than none.
        let dropped = sc.capabilities.as_ref().and_then(|c| c.drop.clone());
        assert!(
            dropped.iter().flatten().any(|c| c == "NET_RAW"),
            "{fixture}: {name}: NET_RAW not dropped ({dropped:?})"
        );
        let seccomp = spec
            .security_context
            .as_ref()
            .and_then(|s| s.seccomp_profile.as_ref())
            .map(|p| p.type_.as_str());
        assert_eq!(seccomp, Some("RuntimeDefault"), "{fixture}: {name}");
        // An image pulled with registry credentials is pulled again for every pod, so a node's
        // cached copy never reaches a pod whose tenant could not pull it.
        let policy = c.image_pull_policy.as_deref();
        if spec.image_pull_secrets.is_some() {
            assert_eq!(policy, Some("Always"), "{fixture}: {name}");
        } else {
            assert_eq!(policy, Some("IfNotPresent"), "{fixture}: {name}");
        }
        assert!(
            spec.host_network.is_none() && spec.host_pid.is_none(),
            "{fixture}"
        );
        let env = env(c);
        for var in [
            "AKASH_OWNER",
            "AKASH_PROVIDER",
            "AKASH_DEPLOYMENT_SEQUENCE",
            "AKASH_GROUP_SEQUENCE",
            "AKASH_ORDER_SEQUENCE",
            "AKASH_CLUSTER_PUBLIC_HOSTNAME",
        ] {
            assert_eq!(
                env.get(var).map(Vec::len),
                Some(1),
                "{fixture}: {name}: {var}"
            );
        }
        let n = u64::try_from(replicas).expect("replicas");
        let res = c.resources.as_ref().expect("resources");
        for (kind, list) in [("limits", &res.limits), ("requests", &res.requests)] {
            for (key, q) in list.iter().flatten() {
                let v = amount(&q.0, key == "cpu");
                *sum.entry(format!("{kind}.{key}")).or_default() += v * n;
            }
        }
        for claim in o
            .stateful_sets
            .iter()
            .filter(|s| s.name_any() == name)
            .flat_map(|s| s.spec.volume_claim_templates.iter().flatten())
        {
            let q = quantity(
                claim
                    .spec
                    .as_ref()
                    .and_then(|s| s.resources.as_ref())
                    .and_then(|r| r.requests.as_ref()),
                "storage",
            )
            .expect("claim size");
            *sum.entry("requests.storage".into()).or_default() += amount(&q, false) * n;
        }
    }
    let hard = o
        .resource_quota
        .spec
        .as_ref()
        .and_then(|s| s.hard.clone())
        .expect("quota");
    assert_eq!(o.resource_quota.name_any(), "akash-quota");
    for (key, total) in &sum {
        // Extended resources are quota'd by their requests only.
        if key.starts_with("limits.") && key.contains('/') {
            continue;
        }
        let q = hard
            .get(key)
            .unwrap_or_else(|| panic!("{fixture}: quota has no {key}"));
        assert_eq!(
            amount(&q.0, key.ends_with(".cpu")),
            *total,
            "{fixture}: quota {key}"
        );
    }
    let storage = hard.get("requests.storage").map(|q| q.0.as_str());
    if !sum.contains_key("requests.storage") {
        assert_eq!(storage, Some("0"), "{fixture}");
    }
    let node_ports: usize = o
        .services
        .iter()
        .filter(|s| s.spec.as_ref().and_then(|s| s.type_.as_deref()) == Some("NodePort"))
        .map(|s| ports(s).len())
        .sum();
    assert_eq!(
        hard.get("services.nodeports").map(|q| q.0.clone()),
        Some(node_ports.to_string()),
        "{fixture}"
    );
    // One leased-IP Service per port, each counted by the quota and holding no node port.
    let load_balancers: Vec<&Service> = o
        .services
        .iter()
        .filter(|s| s.spec.as_ref().and_then(|s| s.type_.as_deref()) == Some("LoadBalancer"))
        .collect();
    assert_eq!(
        hard.get("services.loadbalancers").map(|q| q.0.clone()),
        Some(load_balancers.len().to_string()),
        "{fixture}"
    );
    for s in load_balancers {
        let spec = s.spec.as_ref().expect("spec");
        assert_eq!(
            spec.allocate_load_balancer_node_ports,
            Some(false),
            "{fixture}"
        );
        assert_eq!(ports(s).len(), 1, "{fixture}: {}", s.name_any());
    }
}

/// Every rule a lease Role may hold: the Go provider's registry (`logs`, `events`), and what the
/// provider's own ClusterRole holds (the API server refuses a Role granting more than its maker
/// holds; `e2e/tests/helm_chart.rs` checks the chart's side).
const GRANTABLE: [(&str, &str, &[&str]); 4] = [
    ("", "pods", &["get", "list", "watch"]),
    ("", "pods/log", &["get"]),
    ("apps", "deployments", &["get", "list", "watch"]),
    ("", "events", &["get", "list", "watch"]),
];

/// Accounts, Roles and bindings exist for the services with permissions only, one each, bound
/// to each other and nothing else; only those services' pods may reach the API server.
fn permission_invariants(fixture: &str, o: &LeaseObjects) {
    let accounts: Vec<String> = o
        .service_accounts
        .iter()
        .map(ResourceExt::name_any)
        .collect();
    let roles: Vec<String> = o.roles.iter().map(ResourceExt::name_any).collect();
    let bindings: Vec<String> = o.role_bindings.iter().map(ResourceExt::name_any).collect();
    assert_eq!(accounts, roles, "{fixture}");
    assert_eq!(accounts, bindings, "{fixture}");
    let workloads: Vec<String> = pods(o).into_iter().map(|(n, ..)| n).collect();
    for name in &accounts {
        assert!(
            workloads.contains(name),
            "{fixture}: account {name} of no service"
        );
    }
    for role in &o.roles {
        for rule in role.rules.iter().flatten() {
            assert!(rule.resource_names.is_none() && rule.non_resource_urls.is_none());
            for group in rule.api_groups.iter().flatten() {
                for resource in rule.resources.iter().flatten() {
                    for verb in &rule.verbs {
                        assert!(
                            GRANTABLE.iter().any(|(g, r, verbs)| g == group
                                && r == resource
                                && verbs.contains(&verb.as_str())),
                            "{fixture}: role {} grants {verb} {group}/{resource}",
                            role.name_any()
                        );
                    }
                }
            }
        }
    }
    let ns = lease_namespace(&lease_id());
    for binding in &o.role_bindings {
        let name = binding.name_any();
        assert_eq!(binding.role_ref.kind, "Role", "{fixture}");
        assert_eq!(binding.role_ref.name, name, "{fixture}");
        let subjects = binding.subjects.clone().unwrap_or_default();
        assert_eq!(subjects.len(), 1, "{fixture}: {name}");
        assert_eq!(subjects[0].kind, "ServiceAccount", "{fixture}");
        assert_eq!(subjects[0].name, name, "{fixture}");
        assert_eq!(subjects[0].namespace.as_deref(), Some(ns.as_str()));
    }
    // The API server is denied to every pod by the restrictions policy; each account's service
    // (and no other) has its own policy opening it.
    let api: Vec<std::net::SocketAddr> = API_SERVER
        .iter()
        .map(|a| a.parse().expect("address"))
        .collect();
    let opens_api = |p: &NetworkPolicy| {
        p.spec
            .iter()
            .flat_map(|s| s.egress.iter().flatten())
            .any(|rule| {
                rule.to.iter().flatten().any(|peer| {
                    peer.ip_block.as_ref().is_some_and(|b| {
                        api.iter()
                            .any(|a| b.cidr.starts_with(&format!("{}/", a.ip())))
                    })
                })
            })
    };
    let mut opened: Vec<String> = Vec::new();
    for p in &o.network_policies {
        if !opens_api(p) {
            continue;
        }
        let spec = p.spec.as_ref().expect("spec");
        let service = spec
            .pod_selector
            .as_ref()
            .and_then(|s| s.match_labels.as_ref())
            .and_then(|l| l.get("akash.network/manifest-service"))
            .cloned()
            .unwrap_or_else(|| {
                panic!(
                    "{fixture}: {} opens the API server to every pod",
                    p.name_any()
                )
            });
        assert_eq!(
            p.name_any(),
            format!("akash-apiserver-{service}"),
            "{fixture}"
        );
        assert_eq!(
            spec.policy_types.as_deref(),
            Some(&["Egress".to_owned()][..])
        );
        opened.push(service);
    }
    assert_eq!(
        opened, accounts,
        "{fixture}: services that may reach the API server"
    );
    let restrictions = policy(o, RESTRICTIONS_POLICY);
    let except: Vec<String> = restrictions
        .spec
        .iter()
        .flat_map(|s| s.egress.iter().flatten())
        .flat_map(|r| r.to.iter().flatten())
        .filter_map(|peer| peer.ip_block.as_ref())
        .flat_map(|b| b.except.iter().flatten().cloned())
        .collect();
    for a in api.iter().filter(|a| a.is_ipv4()) {
        assert!(
            except.contains(&format!("{}/32", a.ip())),
            "{fixture}: {a} not denied"
        );
    }
}

/// The reconciler's stores keep Services and Ingresses cut down (`slim_service`,
/// `slim_ingress`): for every fixture, the status read from the cut-down objects is the one read
/// from the whole objects, with the node ports and load-balancer addresses the API server adds.
#[test]
fn the_status_reads_the_same_from_slim_services_and_ingresses() {
    use crate::workload::reconcile::{slim_ingress, slim_service};
    use crate::workload::status::{Observed, services};
    use k8s_openapi::api::core::v1::{LoadBalancerIngress, LoadBalancerStatus, ServiceStatus};
    let mut compared = 0;
    for fixture in FIXTURES {
        let objects = build_fixture(fixture);
        let mut whole = Observed {
            services: objects.services.clone(),
            ingresses: objects.ingresses.clone(),
            ..Default::default()
        };
        for (i, svc) in whole.services.iter_mut().enumerate() {
            svc.metadata.managed_fields = Some(vec![Default::default()]);
            let spec = svc.spec.as_mut().expect("a Service has a spec");
            for (j, port) in spec.ports.iter_mut().flatten().enumerate() {
                port.node_port = Some(30000 + (i * 10 + j) as i32);
            }
            svc.status = Some(ServiceStatus {
                load_balancer: Some(LoadBalancerStatus {
                    ingress: Some(vec![LoadBalancerIngress {
                        ip: Some(format!("192.0.2.{}", i + 1)),
                        ..Default::default()
                    }]),
                }),
                ..Default::default()
            });
        }
        let mut slim = Observed {
            services: whole.services.clone(),
            ingresses: whole.ingresses.clone(),
            ..Default::default()
        };
        slim.services.iter_mut().for_each(slim_service);
        slim.ingresses.iter_mut().for_each(slim_ingress);
        let group = fixture_manifest(fixture).group;
        let read = services(&group, &whole);
        assert_eq!(services(&group, &slim), read, "{fixture}");
        compared += read
            .iter()
            .map(|s| s.uris.len() + s.forwarded_ports.len() + s.ips.len())
            .sum::<usize>();
    }
    // Hosts, node ports and leased IPs were there to compare.
    assert!(compared > 0);
}

#[test]
fn every_fixture_builds_and_keeps_the_invariants() {
    for fixture in FIXTURES {
        let first = build_fixture(fixture);
        // Pure: the same input gives the same objects.
        assert_eq!(first, build_fixture(fixture), "{fixture}");
        // Every network policy is there by default, one per namespace at least.
        assert!(
            first
                .network_policies
                .iter()
                .any(|p| p.name_any() == "akash-deployment-restrictions"),
            "{fixture}"
        );
    }
}

#[test]
fn http_service_gets_an_ingress_a_cluster_ip_service_and_its_annotations() {
    let o = build_fixture("http");
    assert_eq!(o.deployments.len(), 1);
    assert!(o.stateful_sets.is_empty());
    let d = &o.deployments[0];
    assert_eq!(d.name_any(), "web");
    assert_eq!(d.spec.replicas, Some(2));
    let rolling = d
        .spec
        .strategy
        .as_ref()
        .and_then(|s| s.rolling_update.as_ref())
        .expect("rolling update");
    assert_eq!(rolling.max_surge, Some(IntOrString::Int(0)));
    assert_eq!(rolling.max_unavailable, Some(IntOrString::Int(1)));

    let c = container(&o, "web");
    assert_eq!(c.image.as_deref(), Some("nginx:1.27"));
    assert_eq!(limit(c, "cpu").as_deref(), Some("500m"));
    assert_eq!(limit(c, "memory"), Some((512 * MI).to_string()));
    assert_eq!(limit(c, "ephemeral-storage"), Some(GI.to_string()));
    assert_eq!(request(c, "cpu").as_deref(), Some("500m"));
    assert_eq!(request(c, "memory"), Some((512 * MI).to_string()));
    let env = env(c);
    assert_eq!(env["GREETING"], ["hello=world"]);
    // The manifest's own value wins over the provider's.
    assert_eq!(env["AKASH_OWNER"], ["overridden"]);
    assert_eq!(env["AKASH_PROVIDER"], [lease().provider]);
    assert_eq!(env["AKASH_DEPLOYMENT_SEQUENCE"], ["1234567"]);
    assert_eq!(env["AKASH_GROUP_SEQUENCE"], ["1"]);
    assert_eq!(env["AKASH_ORDER_SEQUENCE"], ["1"]);
    assert_eq!(
        env["AKASH_CLUSTER_PUBLIC_HOSTNAME"],
        ["provider.example.com"]
    );
    let ports: Vec<i32> = c.ports.iter().flatten().map(|p| p.container_port).collect();
    assert_eq!(ports, [8080]);

    assert_eq!(o.services.len(), 1, "no NodePort service for HTTP only");
    let s = service(&o, "web");
    let spec = s.spec.as_ref().expect("spec");
    assert_eq!(spec.type_.as_deref(), Some("ClusterIP"));
    assert_eq!(
        spec.selector
            .as_ref()
            .and_then(|m| m.get("akash.network/manifest-service")),
        Some(&"web".to_owned())
    );
    assert_eq!(
        ports_of(s),
        [("0-80".to_owned(), 80, 8080, "TCP".to_owned())]
    );

    assert_eq!(o.ingresses.len(), 1);
    let ing = &o.ingresses[0];
    assert_eq!(ing.name_any(), "web");
    assert_eq!(
        ing.labels()
            .get("akash.network/manifest-service")
            .map(String::as_str),
        Some("web")
    );
    let spec = ing.spec.as_ref().expect("ingress spec");
    assert_eq!(
        spec.ingress_class_name.as_deref(),
        Some("akash-ingress-class")
    );
    let rules = spec.rules.as_ref().expect("rules");
    let hosts: Vec<&str> = rules.iter().filter_map(|r| r.host.as_deref()).collect();
    let auto = ingress_host(&lease_id(), "web", "ingress.example.com");
    assert_eq!(
        hosts,
        [auto.as_str(), "www.example.com", "shop.example.com"]
    );
    for rule in rules {
        let path = &rule.http.as_ref().expect("http").paths[0];
        assert_eq!(path.path.as_deref(), Some("/"));
        assert_eq!(path.path_type, "Prefix");
        let backend = path.backend.service.as_ref().expect("backend");
        assert_eq!(backend.name, "web");
        assert_eq!(backend.port.as_ref().and_then(|p| p.number), Some(80));
    }
    let a = ing.annotations();
    let get = |k: &str| {
        a.get(&format!("nginx.ingress.kubernetes.io/{k}"))
            .map(String::as_str)
    };
    assert_eq!(get("proxy-body-size"), Some("10485760"));
    assert_eq!(
        get("proxy-read-timeout"),
        Some("31"),
        "30500 ms, rounded up"
    );
    assert_eq!(get("proxy-send-timeout"), Some("2"));
    assert_eq!(get("proxy-next-upstream-tries"), Some("5"));
    assert_eq!(get("proxy-next-upstream-timeout"), Some("2"));
    assert_eq!(get("proxy-next-upstream"), Some("error http_502 http_503"));

    // Only the namespace-wide policy: port 80 comes in through the ingress controller.
    assert_eq!(o.network_policies.len(), 1);
}

fn ports_of(s: &Service) -> Vec<(String, i32, i32, String)> {
    ports(s)
}

#[test]
fn random_ports_get_a_node_port_service_and_a_policy_opening_them() {
    let o = build_fixture("random-port");
    assert!(o.ingresses.is_empty());
    assert_eq!(
        o.services.len(),
        1,
        "no ClusterIP service without internal exposes"
    );
    let s = service(&o, "game-np");
    assert_eq!(
        s.spec.as_ref().and_then(|s| s.type_.as_deref()),
        Some("NodePort")
    );
    // The manifest sorts exposes by port: 22 (as 2222) is index 0, 7777/udp index 1.
    assert_eq!(
        ports(s),
        [
            ("0-2222".to_owned(), 2222, 22, "TCP".to_owned()),
            ("1-7777".to_owned(), 7777, 7777, "UDP".to_owned()),
        ]
    );
    let c = container(&o, "game");
    assert_eq!(c.command.as_deref(), Some(&["/bin/server".to_owned()][..]));
    assert_eq!(
        c.args.as_deref(),
        Some(&["--port".to_owned(), "7777".to_owned()][..])
    );
    assert_eq!(limit(c, "cpu").as_deref(), Some("2000m"));

    let np = policy(&o, "akash-game-np");
    let spec = np.spec.as_ref().expect("spec");
    assert_eq!(
        spec.pod_selector
            .as_ref()
            .and_then(|s| s.match_labels.as_ref())
            .and_then(|m| m.get("akash.network/manifest-service"))
            .map(String::as_str),
        Some("game")
    );
    assert_eq!(
        spec.policy_types.as_deref(),
        Some(&["Ingress".to_owned()][..])
    );
    let rule = &spec.ingress.as_ref().expect("ingress")[0];
    let from = rule.from.as_ref().expect("from");
    assert_eq!(
        from[0].ip_block.as_ref().map(|b| b.cidr.as_str()),
        Some("0.0.0.0/0")
    );
    let opened: Vec<(i32, &str)> = rule
        .ports
        .iter()
        .flatten()
        .map(|p| {
            let Some(IntOrString::Int(n)) = p.port else {
                panic!("port")
            };
            (n, p.protocol.as_deref().unwrap_or_default())
        })
        .collect();
    // Policies see the container port, after the node port is translated.
    assert_eq!(opened, [(22, "TCP"), (7777, "UDP")]);
    let hard = o
        .resource_quota
        .spec
        .as_ref()
        .and_then(|s| s.hard.as_ref())
        .expect("hard");
    assert_eq!(hard["services.nodeports"].0, "2");
}

#[test]
fn gpus_are_extended_resources_with_an_affinity_on_one_of_the_models() {
    let o = build_fixture("gpu");
    let c = container(&o, "llm");
    assert_eq!(limit(c, "nvidia.com/gpu").as_deref(), Some("2"));
    assert_eq!(request(c, "nvidia.com/gpu").as_deref(), Some("2"));
    assert_eq!(limit(c, "amd.com/gpu"), None);
    assert_eq!(limit(c, "cpu").as_deref(), Some("8000m"));
    assert_eq!(limit(c, "memory"), Some((64 * GI).to_string()));

    let terms = &pod_spec(&o, "llm")
        .affinity
        .as_ref()
        .and_then(|a| a.node_affinity.as_ref())
        .and_then(|n| {
            n.required_during_scheduling_ignored_during_execution
                .as_ref()
        })
        .expect("node affinity")
        .node_selector_terms;
    let keys = |i: usize| -> Vec<(String, String, Vec<String>)> {
        terms[i]
            .match_expressions
            .iter()
            .flatten()
            .map(|r| {
                (
                    r.key.clone(),
                    r.operator.clone(),
                    r.values.clone().unwrap_or_default(),
                )
            })
            .collect()
    };
    let p = "akash.network/capabilities.gpu.vendor.nvidia.model";
    let gt = |k: String| (k, "Gt".to_owned(), vec!["0".to_owned()]);
    // Terms are alternatives: an A100 80Gi SXM node, or an H100 node.
    assert_eq!(terms.len(), 2);
    assert_eq!(
        keys(0),
        [
            gt(format!("{p}.a100")),
            gt(format!("{p}.a100.ram.80Gi")),
            // The interface, not the memory size (the Go provider's bug).
            gt(format!("{p}.a100.interface.sxm")),
        ]
    );
    assert_eq!(keys(1), [gt(format!("{p}.h100"))]);

    let hard = o
        .resource_quota
        .spec
        .as_ref()
        .and_then(|s| s.hard.as_ref())
        .expect("hard");
    assert_eq!(hard["requests.nvidia.com/gpu"].0, "2");
}

#[test]
fn persistent_storage_makes_a_stateful_set_with_a_claim_template_and_a_class_affinity() {
    let o = build_fixture("persistent");
    assert!(o.deployments.is_empty());
    assert_eq!(o.stateful_sets.len(), 1);
    let s = &o.stateful_sets[0];
    assert_eq!(s.name_any(), "db");
    assert_eq!(s.spec.replicas, Some(2));
    let claims = s.spec.volume_claim_templates.as_ref().expect("claims");
    assert_eq!(claims.len(), 1);
    let claim = &claims[0];
    assert_eq!(claim.name_any(), "db-data");
    let spec = claim.spec.as_ref().expect("claim spec");
    assert_eq!(
        spec.access_modes.as_deref(),
        Some(&["ReadWriteOnce".to_owned()][..])
    );
    assert_eq!(spec.storage_class_name.as_deref(), Some("beta2"));
    assert_eq!(
        quantity(
            spec.resources.as_ref().and_then(|r| r.requests.as_ref()),
            "storage"
        ),
        Some((10 * GI).to_string())
    );

    let c = container(&o, "db");
    let mounts: Vec<(&str, &str, Option<bool>)> = c
        .volume_mounts
        .iter()
        .flatten()
        .map(|m| (m.name.as_str(), m.mount_path.as_str(), m.read_only))
        .collect();
    assert_eq!(mounts, [("db-data", "/var/lib/postgresql/data", None)]);
    // Only the non-persistent volume is ephemeral storage.
    assert_eq!(limit(c, "ephemeral-storage"), Some((2 * GI).to_string()));
    assert_eq!(env(c)["POSTGRES_PASSWORD"], ["pw"]);

    let spec = pod_spec(&o, "db");
    let reqs: Vec<(&str, &str)> = spec
        .affinity
        .as_ref()
        .and_then(|a| a.node_affinity.as_ref())
        .and_then(|n| {
            n.required_during_scheduling_ignored_during_execution
                .as_ref()
        })
        .expect("affinity")
        .node_selector_terms
        .iter()
        .flat_map(|t| t.match_expressions.iter().flatten())
        .map(|r| (r.key.as_str(), r.operator.as_str()))
        .collect();
    assert_eq!(
        reqs,
        [("akash.network/capabilities.storage.class.beta2", "Gt")]
    );

    // Registry credentials: a dockerconfigjson Secret the pods pull with.
    assert_eq!(o.secrets.len(), 1);
    let secret = &o.secrets[0];
    let name = secret.name_any();
    assert!(
        name.starts_with("docker-creds-db-") && name.len() == "docker-creds-db-".len() + 10,
        "{name}"
    );
    assert_eq!(
        secret.type_.as_deref(),
        Some("kubernetes.io/dockerconfigjson")
    );
    let data = &secret.data.as_ref().expect("data")[".dockerconfigjson"].0;
    let json: serde_json::Value = serde_json::from_slice(data).expect("json");
    let entry = &json["auths"]["registry.example.com"];
    assert_eq!(entry["username"], "robot");
    assert_eq!(entry["password"], "s3cret");
    // base64("robot:s3cret")
    assert_eq!(entry["auth"], "cm9ib3Q6czNjcmV0");
    let pull: Vec<&str> = spec
        .image_pull_secrets
        .iter()
        .flatten()
        .map(|r| r.name.as_str())
        .collect();
    assert_eq!(pull, [name.as_str()]);
    // Other credentials: another Secret (the provider creates pull Secrets, never changes one).
    let mut changed = group("persistent");
    for svc in changed
        .services
        .iter_mut()
        .filter(|s| s.credentials.is_some())
    {
        svc.credentials.as_mut().expect("credentials").password = "n3w".into();
    }
    let again = build(&lease(), &leased(&changed), &config()).expect("build");
    assert_ne!(again.secrets[0].name_any(), name);
    assert_eq!(
        container(&o, "db").image_pull_policy.as_deref(),
        Some("Always"),
        "a private image is pulled again for every pod"
    );

    let hard = o
        .resource_quota
        .spec
        .as_ref()
        .and_then(|s| s.hard.as_ref())
        .expect("hard");
    assert_eq!(hard["requests.storage"].0, (20 * GI).to_string());
    assert_eq!(hard["persistentvolumeclaims"].0, "2");
    // Port 5432 to the world: a node port.
    assert_eq!(
        ports(service(&o, "db-np")),
        [("0-5432".to_owned(), 5432, 5432, "TCP".to_owned())]
    );
}

#[test]
fn a_ram_volume_is_a_memory_empty_dir_counted_in_the_memory_limit() {
    let o = build_fixture("ram");
    assert_eq!(
        o.deployments.len(),
        1,
        "ram is not persistent: a Deployment"
    );
    let spec = pod_spec(&o, "cache");
    let volumes = spec.volumes.as_ref().expect("volumes");
    assert_eq!(volumes.len(), 1);
    assert_eq!(volumes[0].name, "cache-shm");
    let dir = volumes[0].empty_dir.as_ref().expect("emptyDir");
    assert_eq!(dir.medium.as_deref(), Some("Memory"));
    assert_eq!(
        dir.size_limit.as_ref().map(|q| q.0.clone()),
        Some((256 * MI).to_string())
    );
    let c = container(&o, "cache");
    assert_eq!(limit(c, "memory"), Some((GI + 256 * MI).to_string()));
    assert_eq!(limit(c, "ephemeral-storage"), Some(GI.to_string()));
    let mounts: Vec<(&str, &str)> = c
        .volume_mounts
        .iter()
        .flatten()
        .map(|m| (m.name.as_str(), m.mount_path.as_str()))
        .collect();
    assert_eq!(mounts, [("cache-shm", "/dev/shm")]);
    assert!(
        spec.affinity.is_none(),
        "no storage class, no GPU: no affinity"
    );
}

#[test]
fn services_that_talk_to_each_other_get_cluster_ip_services_and_namespace_policies() {
    let o = build_fixture("multi");
    let mut names: Vec<String> = o.deployments.iter().map(ResourceExt::name_any).collect();
    names.sort();
    assert_eq!(names, ["api", "db", "web"]);
    let mut svc_names: Vec<String> = o.services.iter().map(ResourceExt::name_any).collect();
    svc_names.sort();
    assert_eq!(svc_names, ["api", "db", "web"], "no node ports");
    for s in &o.services {
        assert_eq!(
            s.spec.as_ref().and_then(|s| s.type_.as_deref()),
            Some("ClusterIP")
        );
    }
    assert_eq!(
        ports(service(&o, "api")),
        [("0-3000".to_owned(), 3000, 3000, "TCP".to_owned())]
    );
    assert_eq!(
        ports(service(&o, "db")),
        [("0-5433".to_owned(), 5433, 5432, "TCP".to_owned())]
    );
    assert_eq!(
        ports(service(&o, "web")),
        [("0-80".to_owned(), 80, 80, "TCP".to_owned())]
    );
    assert_eq!(o.ingresses.len(), 1);
    assert_eq!(o.ingresses[0].name_any(), "web");

    assert_eq!(o.network_policies.len(), 1);
    let p = policy(&o, "akash-deployment-restrictions");
    let spec = p.spec.as_ref().expect("spec");
    assert_eq!(
        spec.pod_selector,
        Some(LabelSelector::default()),
        "every pod"
    );
    assert_eq!(
        spec.policy_types.as_deref(),
        Some(&["Ingress".to_owned(), "Egress".to_owned()][..])
    );
    let ns_name = |peer: &k8s_openapi::api::networking::v1::NetworkPolicyPeer| {
        peer.namespace_selector
            .as_ref()
            .and_then(|s| s.match_labels.as_ref())
            .and_then(|m| m.get("kubernetes.io/metadata.name").cloned())
    };
    let ingress = spec.ingress.as_ref().expect("ingress");
    assert_eq!(ingress.len(), 3);
    let same = &ingress[0].from.as_ref().expect("from")[0];
    assert_eq!(same.pod_selector, Some(LabelSelector::default()));
    assert!(
        same.namespace_selector.is_none(),
        "the policy's own namespace"
    );
    assert_eq!(
        ns_name(&ingress[1].from.as_ref().expect("from")[0]).as_deref(),
        Some("ingress-nginx")
    );
    assert_eq!(
        ns_name(&ingress[2].from.as_ref().expect("from")[0]).as_deref(),
        Some("akash-provider")
    );
    assert!(ingress.iter().all(|r| r.ports.is_none()));

    let egress = spec.egress.as_ref().expect("egress");
    assert_eq!(egress.len(), 3);
    assert_eq!(
        egress[0].to.as_ref().expect("to")[0].pod_selector,
        Some(LabelSelector::default())
    );
    assert_eq!(
        ns_name(&egress[1].to.as_ref().expect("to")[0]).as_deref(),
        Some("kube-system")
    );
    let dns: Vec<(Option<IntOrString>, Option<String>)> = egress[1]
        .ports
        .iter()
        .flatten()
        .map(|p| (p.port.clone(), p.protocol.clone()))
        .collect();
    assert_eq!(
        dns,
        [
            (Some(IntOrString::Int(53)), Some("UDP".to_owned())),
            (Some(IntOrString::Int(53)), Some("TCP".to_owned())),
        ]
    );
    let block = egress[2].to.as_ref().expect("to")[0]
        .ip_block
        .as_ref()
        .expect("ipBlock");
    assert_eq!(block.cidr, "0.0.0.0/0");
    let except = block.except.clone().unwrap_or_default();
    for range in [
        "10.0.0.0/8",
        "172.16.0.0/12",
        "192.168.0.0/16",
        "169.254.0.0/16",
        "100.64.0.0/10",
        "127.0.0.0/8",
    ] {
        assert!(
            except.iter().any(|e| e == range),
            "{range} not in {except:?}"
        );
    }
    // Public addresses of the provider's own machines are denied when configured.
    let guarded = WorkloadConfig {
        egress_deny: vec!["203.0.113.7/32".into()],
        ..config()
    };
    let o2 = build(&lease(), &leased(&group("ram")), &guarded).expect("build");
    let except2 = o2.network_policies[0]
        .spec
        .as_ref()
        .and_then(|s| s.egress.as_ref())
        .and_then(|e| e[2].to.as_ref())
        .and_then(|t| t[0].ip_block.as_ref())
        .and_then(|b| b.except.clone())
        .unwrap_or_default();
    assert!(except2.iter().any(|e| e == "203.0.113.7/32"), "{except2:?}");

    // 3 × 500m + 2 × 250m + 1 × 1000m; 3 × 512Mi + 2 × 256Mi + 1Gi.
    let hard = o
        .resource_quota
        .spec
        .as_ref()
        .and_then(|s| s.hard.as_ref())
        .expect("hard");
    assert_eq!(hard["limits.cpu"].0, "3000m");
    assert_eq!(hard["requests.cpu"].0, "3000m");
    assert_eq!(
        hard["limits.memory"].0,
        (3 * 512 * MI + 2 * 256 * MI + GI).to_string()
    );
    assert_eq!(
        hard["limits.ephemeral-storage"].0,
        (3 * GI + 2 * 512 * MI + 4 * GI).to_string()
    );
    assert_eq!(hard["services.nodeports"].0, "0");
}

#[test]
fn overcommit_scales_requests_and_the_quota_follows() {
    let config = WorkloadConfig {
        overcommit_pct: Overcommit {
            cpu: 100,
            memory: 25,
            storage: 0,
        },
        ..config()
    };
    let o = build(&lease(), &leased(&group("http")), &config).expect("build");
    let c = &o.deployments[0]
        .spec
        .template
        .spec
        .as_ref()
        .expect("spec")
        .containers[0];
    assert_eq!(limit(c, "cpu").as_deref(), Some("500m"));
    assert_eq!(request(c, "cpu").as_deref(), Some("250m"));
    // 536870912 × 100 / 125 = 429496729.6, rounded as the Go provider rounds.
    assert_eq!(request(c, "memory").as_deref(), Some("429496730"));
    assert_eq!(request(c, "ephemeral-storage"), Some(GI.to_string()));
    invariants("http (overcommit)", &o);
    let hard = o
        .resource_quota
        .spec
        .as_ref()
        .and_then(|s| s.hard.as_ref())
        .expect("hard");
    assert_eq!(hard["requests.cpu"].0, "500m");
    assert_eq!(hard["limits.cpu"].0, "1000m");
}

#[test]
fn runtime_class_node_label_and_policies_follow_the_config() {
    let configured = WorkloadConfig {
        runtime_class: Some("gvisor".into()),
        network_policies: false,
        node_selector: [("akash.network".to_owned(), "true".to_owned())].into(),
        ..config()
    };
    let o = build(&lease(), &leased(&group("ram")), &configured).expect("build");
    assert!(o.network_policies.is_empty());
    let spec = o.deployments[0].spec.template.spec.as_ref().expect("spec");
    assert_eq!(spec.runtime_class_name.as_deref(), Some("gvisor"));
    let req = &spec
        .affinity
        .as_ref()
        .and_then(|a| a.node_affinity.as_ref())
        .and_then(|n| {
            n.required_during_scheduling_ignored_during_execution
                .as_ref()
        })
        .expect("affinity")
        .node_selector_terms[0]
        .match_expressions
        .as_ref()
        .expect("requirements")[0];
    assert_eq!(
        (
            req.key.as_str(),
            req.operator.as_str(),
            req.values.as_deref()
        ),
        ("akash.network", "In", Some(&["true".to_owned()][..]))
    );
    let default = build(&lease(), &leased(&group("ram")), &config()).expect("build");
    assert_eq!(
        default.deployments[0]
            .spec
            .template
            .spec
            .as_ref()
            .expect("spec")
            .runtime_class_name,
        None
    );
}

/// Builds `fixture` after `change`, expecting a refusal at `field`.
fn refused(fixture: &str, field: &str, change: impl FnOnce(&mut ManifestGroup)) -> BuildError {
    let mut g = group(fixture);
    change(&mut g);
    let err = build(&lease(), &leased(&g), &config()).expect_err("refused");
    assert_eq!(err.field, field, "{err}");
    err
}

#[test]
fn bad_manifests_are_refused_with_the_field_at_fault() {
    refused("http", "services[web].image", |g| {
        g.services[0].image = " ".into()
    });
    let e = refused("multi", "services[db].expose[0].service", |g| {
        let db = g.services.iter_mut().find(|s| s.name == "db").expect("db");
        db.expose[0].service = "Not_A_Service".into();
    });
    assert!(e.reason.contains("Not_A_Service"), "{e}");
    refused("http", "services[web].expose[0].port", |g| {
        g.services[0].expose[0].port = 0
    });
    refused("http", "services[web].expose[0].proto", |g| {
        g.services[0].expose[0].proto = "SCTP".into();
    });
    refused("multi", "services[1].name", |g| {
        g.services[1].name = g.services[0].name.clone()
    });
    let e = refused("http", "services[*].count", |g| g.services[0].count = 1001);
    assert!(e.reason.contains("1001"), "{e}");
    refused("http", "services[Web_1].name", |g| {
        g.services[0].name = "Web_1".into()
    });
    refused("http", &format!("services[{}].name", "a".repeat(61)), |g| {
        g.services[0].name = "a".repeat(61);
    });
    let e = refused("gpu", "services[llm].resources.gpu.attributes", |g| {
        g.services[0].resources.gpu.attributes = None;
    });
    assert!(e.reason.contains("vendor"), "{e}");
    refused("gpu", "services[llm].resources.gpu.attributes", |g| {
        for a in g.services[0].resources.gpu.attributes.iter_mut().flatten() {
            a.key = a.key.replace("nvidia", "intel");
        }
    });
    refused("http", "services[web].resources.cpu.units", |g| {
        g.services[0].resources.cpu.units.val = "0.5".into();
    });
    refused("http", "services[web].expose[0].hosts[0]", |g| {
        g.services[0].expose[0].hosts = Some(vec!["not a host".into()]);
    });
    refused("ram", "services[cache].params.storage[0].name", |g| {
        let p = g.services[0].params.as_mut().expect("params");
        p.storage.as_mut().expect("storage")[0].name = "nope".into();
    });
    refused("http", "services", |g| g.services.clear());
    let e = refused("multi", "services[db].expose[0].hosts[0]", |g| {
        for svc in &mut g.services {
            svc.expose[0].hosts = Some(vec!["app.example.com".into()]);
        }
    });
    assert!(e.reason.contains("also accepted"), "{e}");
    // The same manifest unchanged builds.
    assert!(build(&lease(), &leased(&group("http")), &config()).is_ok());
}

#[test]
fn wildcard_gpu_models_need_no_model_label() {
    let mut g = group("gpu");
    g.services[0].resources.gpu.attributes = Some(vec![crds::sdl::groups::Attribute {
        key: "vendor/nvidia/model/*".into(),
        value: "true".into(),
    }]);
    let o = build(&lease(), &leased(&g), &config()).expect("build");
    let spec = o.deployments[0].spec.template.spec.as_ref().expect("spec");
    assert!(spec.affinity.is_none());
    assert_eq!(
        limit(&spec.containers[0], "nvidia.com/gpu").as_deref(),
        Some("2")
    );
}

#[test]
fn base64_matches_the_standard_alphabet_and_padding() {
    assert_eq!(super::base64(b""), "");
    assert_eq!(super::base64(b"f"), "Zg==");
    assert_eq!(super::base64(b"fo"), "Zm8=");
    assert_eq!(super::base64(b"foo"), "Zm9v");
    assert_eq!(super::base64(b"foobar"), "Zm9vYmFy");
}

#[test]
fn with_the_overlay_lease_pods_may_reach_the_provider_namespace_and_only_then() {
    let to_provider = |o: &LeaseObjects| {
        policy(o, "akash-deployment-restrictions")
            .spec
            .as_ref()
            .and_then(|s| s.egress.as_ref())
            .expect("egress")
            .iter()
            .any(|r| {
                r.to.iter().flatten().any(|peer| {
                    peer.namespace_selector
                        .as_ref()
                        .and_then(|s| s.match_labels.as_ref())
                        .is_some_and(|l| {
                            l.get("kubernetes.io/metadata.name").map(String::as_str)
                                == Some("akash-provider")
                        })
                })
            })
    };
    let plain = build(&lease(), &leased(&group("http")), &config()).expect("build");
    assert!(!to_provider(&plain));
    let overlay = WorkloadConfig {
        overlay: true,
        ..config()
    };
    let with = build(&lease(), &leased(&group("http")), &overlay).expect("build");
    assert!(to_provider(&with));
}

#[test]
fn with_the_overlay_lease_pods_reach_the_provider_namespace_on_the_sidecar_ports_only() {
    let overlay = WorkloadConfig {
        overlay: true,
        overlay_ports: "41000-41099".parse().expect("range"),
        ..config()
    };
    let built = build(&lease(), &leased(&group("http")), &overlay).expect("build");
    let egress = policy(&built, "akash-deployment-restrictions")
        .spec
        .as_ref()
        .and_then(|s| s.egress.clone())
        .expect("egress");
    // Every rule that names the provider's namespace: TCP 41000..=41099 and nothing else.
    let to_provider: Vec<_> = egress
        .iter()
        .filter(|r| {
            r.to.iter().flatten().any(|p| {
                p.namespace_selector
                    .as_ref()
                    .and_then(|s| s.match_labels.as_ref())
                    .is_some_and(|l| {
                        l.get("kubernetes.io/metadata.name").map(String::as_str)
                            == Some("akash-provider")
                    })
            })
        })
        .collect();
    assert_eq!(to_provider.len(), 1, "{to_provider:?}");
    let ports = to_provider[0].ports.as_ref().expect("a rule with ports");
    assert_eq!(ports.len(), 1);
    assert_eq!(ports[0].protocol.as_deref(), Some("TCP"));
    assert_eq!(ports[0].port, Some(IntOrString::Int(41000)));
    assert_eq!(ports[0].end_port, Some(41099));

    // One port: no end port.
    let one = WorkloadConfig {
        overlay_ports: "41000".parse().expect("one port"),
        ..overlay
    };
    let built = build(&lease(), &leased(&group("http")), &one).expect("build");
    let rules = policy(&built, "akash-deployment-restrictions")
        .spec
        .clone()
        .and_then(|s| s.egress)
        .expect("egress");
    let last = rules.last().and_then(|r| r.ports.clone()).expect("ports");
    assert_eq!(
        (last[0].port.clone(), last[0].end_port),
        (Some(IntOrString::Int(41000)), None)
    );
}

#[test]
fn an_expose_to_a_service_of_another_group_is_accepted_for_the_overlay() {
    let mut g = group("multi");
    let db = g.services.iter_mut().find(|s| s.name == "db").expect("db");
    db.expose[0].service = "web-in-another-group".into();
    build(&lease(), &leased(&g), &config()).expect("a service of another group is a valid caller");
}

/// `(apiGroup, resource, verbs)` of a Role's rules, in order.
fn role_rules(o: &LeaseObjects, name: &str) -> Vec<(String, String, Vec<String>)> {
    let role = o
        .roles
        .iter()
        .find(|r| r.name_any() == name)
        .unwrap_or_else(|| panic!("no Role {name}"));
    role.rules
        .iter()
        .flatten()
        .map(|r| {
            (
                r.api_groups.clone().unwrap_or_default().join(","),
                r.resources.clone().unwrap_or_default().join(","),
                r.verbs.clone(),
            )
        })
        .collect()
}

fn rule(group: &str, resource: &str, verbs: &[&str]) -> (String, String, Vec<String>) {
    (
        group.to_owned(),
        resource.to_owned(),
        verbs.iter().map(|v| (*v).to_owned()).collect(),
    )
}

#[test]
fn a_service_with_permissions_gets_its_account_role_token_and_the_api_server() {
    let o = build_fixture("permissions");
    let ns = lease_namespace(&lease_id());
    // watcher reads logs and events (logs named twice: its rules once), as the Go provider's
    // registry has them: logs = pods, pods/log, deployments; events = core events.
    assert_eq!(
        role_rules(&o, "watcher"),
        vec![
            rule("", "pods", &["get", "list", "watch"]),
            rule("", "pods/log", &["get"]),
            rule("apps", "deployments", &["get", "list", "watch"]),
            rule("", "events", &["get", "list", "watch"]),
        ]
    );
    let account = &o.service_accounts[0];
    assert_eq!(account.name_any(), "watcher");
    assert_eq!(account.namespace().as_deref(), Some(ns.as_str()));
    assert_eq!(
        account
            .labels()
            .get("akash.network/manifest-service")
            .map(String::as_str),
        Some("watcher")
    );
    let binding = &o.role_bindings[0];
    assert_eq!(
        binding.role_ref.api_group.as_deref(),
        Some("rbac.authorization.k8s.io")
    );
    let spec = pod_spec(&o, "watcher");
    assert_eq!(spec.automount_service_account_token, Some(true));
    assert_eq!(spec.service_account_name.as_deref(), Some("watcher"));
    // The API server's endpoints, each address alone, on their two ports, TCP.
    let api = policy(&o, "akash-apiserver-watcher");
    let spec = api.spec.as_ref().expect("spec");
    assert_eq!(
        spec.pod_selector
            .as_ref()
            .and_then(|s| s.match_labels.clone()),
        Some(BTreeMap::from([
            ("akash.network".to_owned(), "true".to_owned()),
            (
                "akash.network/manifest-service".to_owned(),
                "watcher".to_owned()
            ),
        ]))
    );
    let egress = spec.egress.clone().expect("egress");
    assert_eq!(egress.len(), 1);
    let cidrs: Vec<String> = egress[0]
        .to
        .iter()
        .flatten()
        .map(|p| p.ip_block.as_ref().expect("ip block").cidr.clone())
        .collect();
    assert_eq!(
        cidrs,
        ["203.0.113.10/32", "203.0.113.11/32", "2001:db8::10/128"]
    );
    let ports: Vec<(i32, String)> = egress[0]
        .ports
        .iter()
        .flatten()
        .map(|p| match &p.port {
            Some(IntOrString::Int(n)) => (*n, p.protocol.clone().unwrap_or_default()),
            other => panic!("port {other:?}"),
        })
        .collect();
    assert_eq!(ports, [(6443, "TCP".to_owned()), (8443, "TCP".to_owned())]);
    assert!(
        egress[0]
            .ports
            .iter()
            .flatten()
            .all(|p| p.end_port.is_none())
    );

    // web asked for nothing: no account, no token, no way to the API server.
    let web = pod_spec(&o, "web");
    assert_eq!(web.automount_service_account_token, Some(false));
    assert_eq!(web.service_account_name.as_deref(), Some("default"));
    assert_eq!(o.service_accounts.len(), 1);
    assert!(
        !o.network_policies
            .iter()
            .any(|p| p.name_any() == "akash-apiserver-web")
    );
}

#[test]
fn permissions_follow_the_go_provider_at_the_edges() {
    let built = |read: Option<Vec<&str>>, config: &WorkloadConfig| {
        let mut g = group("permissions");
        let p = g.services[0].params.as_mut().expect("params");
        p.permissions = read.map(|r| crds::sdl::model::Permissions {
            read: Some(r.into_iter().map(str::to_owned).collect()),
        });
        build(&lease(), &leased(&g), config).expect("builds")
    };
    // `deployment` alone: the Go provider's registry has no rule for it, yet the service has
    // permissions: an account with an empty Role, its token and the API server.
    let o = built(Some(vec!["deployment"]), &config());
    invariants("deployment only", &o);
    assert_eq!(role_rules(&o, "watcher"), vec![]);
    assert_eq!(
        pod_spec(&o, "watcher").automount_service_account_token,
        Some(true)
    );
    // An empty list or no permissions at all: nothing of it.
    for read in [Some(vec![]), None] {
        let o = built(read.clone(), &config());
        invariants("no permissions", &o);
        assert!(o.service_accounts.is_empty() && o.roles.is_empty() && o.role_bindings.is_empty());
        assert_eq!(
            pod_spec(&o, "watcher").automount_service_account_token,
            Some(false)
        );
    }
    // Endpoints unknown: the account and token, and no policy (the Go provider makes none).
    let mut no_api = config();
    no_api.api_server_endpoints.clear();
    let o = built(Some(vec!["logs"]), &no_api);
    assert_eq!(o.service_accounts.len(), 1);
    assert!(
        !o.network_policies
            .iter()
            .any(|p| p.name_any().starts_with("akash-apiserver-"))
    );
    // With network policies off, none at all.
    let mut off = config();
    off.network_policies = false;
    assert!(built(Some(vec!["logs"]), &off).network_policies.is_empty());
    // A resource there is no rule for, sent in a manifest directly: refused at its index.
    let e = refused(
        "permissions",
        "services[watcher].params.permissions.read[1]",
        |g| {
            let p = g.services[0].params.as_mut().expect("params");
            p.permissions = Some(crds::sdl::model::Permissions {
                read: Some(vec!["logs".into(), "secrets".into()]),
            });
        },
    );
    assert!(e.reason.contains("\"secrets\""), "{e}");
}

#[test]
fn leased_ip_ports_get_load_balancer_services_sharing_one_address_per_endpoint() {
    let o = build_fixture("leased-ip");
    let owner = lease().owner;
    let lb = |name: &str| {
        let s = service(&o, name);
        let spec = s.spec.as_ref().expect("spec");
        assert_eq!(spec.type_.as_deref(), Some("LoadBalancer"), "{name}");
        assert_eq!(
            s.labels()
                .get("akash.network/service-target")
                .map(String::as_str),
            Some("metal-lb")
        );
        assert_eq!(
            s.annotations()
                .get("metallb.io/address-pool")
                .map(String::as_str),
            Some("leased")
        );
        let key = s
            .annotations()
            .get("metallb.io/allow-shared-ip")
            .cloned()
            .expect("sharing key");
        let selected = spec
            .selector
            .as_ref()
            .and_then(|m| m.get("akash.network/manifest-service"))
            .cloned();
        (key, selected, ports(s))
    };
    let (tcp_key, tcp_svc, tcp) = lb("web-ip-80-tcp");
    let (udp_key, udp_svc, udp) = lb("web-ip-53-udp");
    let (side_key, side_svc, side) = lb("cache-ip-6380-tcp");
    // The two ports of endpoint `front` share one address; `side_b` has its own, its name
    // (not a plain label) replaced by a digest.
    assert_eq!(tcp_key, format!("{owner}-ip-front"));
    assert_eq!(udp_key, tcp_key);
    assert!(side_key.starts_with(&format!("{owner}-ip-")) && !side_key.contains("side_b"));
    assert_ne!(side_key, tcp_key);
    assert_eq!(tcp_svc.as_deref(), Some("web"));
    assert_eq!(udp_svc.as_deref(), Some("web"));
    assert_eq!(side_svc.as_deref(), Some("cache"));
    assert_eq!(tcp[0].1..=tcp[0].2, 80..=8080);
    assert_eq!((udp[0].1, udp[0].2, udp[0].3.as_str()), (53, 5353, "UDP"));
    assert_eq!((side[0].1, side[0].2), (6380, 6380));
    let load_balancers = o
        .services
        .iter()
        .filter(|s| s.spec.as_ref().and_then(|s| s.type_.as_deref()) == Some("LoadBalancer"))
        .count();
    assert_eq!(load_balancers, 3, "the internal port gets none");
    // The policy opens exactly the leased-IP ports (the container's) to everyone.
    let opened = |name: &str| -> Vec<(i32, String)> {
        let p = policy(&o, name);
        let rule = &p
            .spec
            .as_ref()
            .expect("spec")
            .ingress
            .as_ref()
            .expect("ingress")[0];
        let from = rule.from.as_ref().expect("from");
        assert_eq!(
            from[0].ip_block.as_ref().map(|b| b.cidr.as_str()),
            Some("0.0.0.0/0")
        );
        let mut ports: Vec<(i32, String)> = rule
            .ports
            .iter()
            .flatten()
            .map(|p| {
                let n = match &p.port {
                    Some(IntOrString::Int(n)) => *n,
                    other => panic!("{other:?}"),
                };
                (n, p.protocol.clone().unwrap_or_default())
            })
            .collect();
        ports.sort();
        ports
    };
    assert_eq!(
        opened("akash-web-ip"),
        [(5353, "UDP".to_owned()), (8080, "TCP".to_owned())]
    );
    assert_eq!(opened("akash-cache-ip"), [(6380, "TCP".to_owned())]);
}

#[test]
fn a_provider_without_an_ip_pool_refuses_leased_ip_exposes_by_field() {
    let no_pool = WorkloadConfig {
        ip_pool: None,
        ..config()
    };
    let err = build(&lease(), &fixture_manifest("leased-ip"), &no_pool).expect_err("no pool");
    assert!(
        err.field.starts_with("services[") && err.field.ends_with(".ip"),
        "{err}"
    );
    assert!(err.to_string().contains("--ip-pool"), "{err}");
}

#[test]
fn an_endpoint_held_elsewhere_gets_no_service_and_a_moved_one_asks_for_its_address() {
    let mut manifest = fixture_manifest("leased-ip");
    manifest.ip_endpoints = Some(vec!["front".into()]);
    manifest
        .ip_addresses
        .insert("front".into(), "192.0.2.7".into());
    let o = build(&lease(), &manifest, &config()).expect("built");
    invariants("leased-ip (front only)", &o);
    let names: Vec<String> = o
        .services
        .iter()
        .filter(|s| s.spec.as_ref().and_then(|s| s.type_.as_deref()) == Some("LoadBalancer"))
        .map(|s| s.name_any())
        .collect();
    assert_eq!(names, ["web-ip-53-udp", "web-ip-80-tcp"]);
    for name in &names {
        let a = service(&o, name).annotations();
        assert_eq!(
            a.get("metallb.io/loadBalancerIPs").map(String::as_str),
            Some("192.0.2.7")
        );
        assert_eq!(
            a.get("akash.network/ip-endpoint").map(String::as_str),
            Some("front")
        );
    }
    // Without a moved address, MetalLB picks one.
    let o = build_fixture("leased-ip");
    assert!(
        !service(&o, "cache-ip-6380-tcp")
            .annotations()
            .contains_key("metallb.io/loadBalancerIPs")
    );
}
