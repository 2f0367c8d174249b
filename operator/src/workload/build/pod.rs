//! Per service: the Deployment, or the StatefulSet when a volume is persistent.

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::{
    Deployment, DeploymentSpec, DeploymentStrategy, RollingUpdateDeployment, StatefulSet,
    StatefulSetSpec,
};
use k8s_openapi::api::core::v1::{
    Affinity, Capabilities, Container, ContainerPort, EmptyDirVolumeSource, EnvVar,
    LocalObjectReference, NodeAffinity, NodeSelector, NodeSelectorRequirement, NodeSelectorTerm,
    PersistentVolumeClaim, PersistentVolumeClaimSpec, PodSecurityContext, PodSpec, PodTemplateSpec,
    ResourceRequirements, SeccompProfile, Secret, SecurityContext, Volume, VolumeMount,
    VolumeResourceRequirements,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use kube::ResourceExt;

use super::validate::{ServicePlan, VolumeKind, gpu_label_keys};
use super::{Ctx, MANAGED_LABEL, SERVICE_LABEL};
use crate::inventory::STORAGE_CLASS_LABEL;

/// CPU, memory and ephemeral storage of pods.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Amounts {
    pub cpu_millis: u64,
    pub memory: u64,
    pub ephemeral: u64,
}

/// What the lease's pods and services add up to: the quota.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Totals {
    pub requests: Amounts,
    pub limits: Amounts,
    /// Extended resource (`nvidia.com/gpu`) → units.
    pub gpus: BTreeMap<String, u64>,
    pub persistent_bytes: u64,
    pub persistent_claims: u64,
    pub node_ports: u64,
    /// Pods that declare no ephemeral storage (then the quota cannot limit it).
    pub pods_without_ephemeral: u64,
}

pub(crate) enum Workload {
    Deployment(Box<Deployment>),
    StatefulSet(Box<StatefulSet>),
}

/// The name of a volume (and of its claim template): `<svc>-<volume>`, as the Go provider.
pub(super) fn volume_name(service: &str, volume: &str) -> String {
    format!("{service}-{volume}")
}

/// Labels that select the pods of a service (never change: selectors are immutable).
pub(super) fn selector(service: &str) -> BTreeMap<String, String> {
    BTreeMap::from([
        (MANAGED_LABEL.to_owned(), "true".to_owned()),
        (SERVICE_LABEL.to_owned(), service.to_owned()),
    ])
}

/// The [`selector`] of a service's pods as a `LabelSelector` (workloads, policies).
pub(super) fn pods_of(service: &str) -> LabelSelector {
    LabelSelector {
        match_labels: Some(selector(service)),
        ..LabelSelector::default()
    }
}

/// `value` scaled down by an overcommit percentage: `value × 100 / (100 + pct)`, rounded, at
/// least 1 (a request of 0 would mean "none").
pub(crate) fn committed(value: u64, pct: u32) -> u64 {
    if pct == 0 || value == 0 {
        return value;
    }
    let d = 100 + u128::from(pct);
    let v = (u128::from(value) * 100 + d / 2) / d;
    u64::try_from(v).unwrap_or(u64::MAX).max(1)
}

pub(crate) fn workload(
    ctx: &Ctx,
    plan: &ServicePlan,
    secret: Option<&Secret>,
    totals: &mut Totals,
) -> Workload {
    let svc = plan.svc;
    let name = svc.name.as_str();
    let labels = ctx.service_labels(name);
    let template = PodTemplateSpec {
        metadata: Some(ObjectMeta {
            labels: Some(labels.clone()),
            ..ObjectMeta::default()
        }),
        spec: Some(pod_spec(ctx, plan, secret, totals)),
    };
    let replicas = i32::try_from(svc.count).unwrap_or(i32::MAX);
    let selector = pods_of(name);
    if plan.persistent() {
        let claims = claim_templates(ctx, plan, totals);
        Workload::StatefulSet(Box::new(StatefulSet {
            metadata: ctx.meta(name, labels),
            spec: StatefulSetSpec {
                replicas: Some(replicas),
                selector,
                template,
                volume_claim_templates: Some(claims),
                ..StatefulSetSpec::default()
            },
            ..StatefulSet::default()
        }))
    } else {
        Workload::Deployment(Box::new(Deployment {
            metadata: ctx.meta(name, labels),
            spec: DeploymentSpec {
                replicas: Some(replicas),
                selector,
                template,
                revision_history_limit: Some(10),
                strategy: Some(DeploymentStrategy {
                    type_: Some("RollingUpdate".into()),
                    rolling_update: Some(RollingUpdateDeployment {
                        max_surge: Some(IntOrString::Int(0)),
                        max_unavailable: Some(IntOrString::Int(1)),
                    }),
                }),
                ..DeploymentSpec::default()
            },
            ..Deployment::default()
        }))
    }
}

fn claim_templates(
    ctx: &Ctx,
    plan: &ServicePlan,
    totals: &mut Totals,
) -> Vec<PersistentVolumeClaim> {
    let count = u64::from(plan.svc.count);
    plan.volumes
        .iter()
        .filter_map(|v| match &v.kind {
            VolumeKind::Persistent { class } => Some((v, class)),
            _ => None,
        })
        .map(|(v, class)| {
            totals.persistent_bytes += v.bytes * count;
            totals.persistent_claims += count;
            PersistentVolumeClaim {
                metadata: ObjectMeta {
                    name: Some(volume_name(&plan.svc.name, &v.name)),
                    labels: Some(ctx.service_labels(&plan.svc.name)),
                    ..ObjectMeta::default()
                },
                spec: Some(PersistentVolumeClaimSpec {
                    access_modes: Some(vec!["ReadWriteOnce".into()]),
                    volume_mode: Some("Filesystem".into()),
                    storage_class_name: (class != "default").then(|| class.clone()),
                    resources: Some(VolumeResourceRequirements {
                        requests: Some(BTreeMap::from([(
                            "storage".to_owned(),
                            Quantity(v.bytes.to_string()),
                        )])),
                        ..VolumeResourceRequirements::default()
                    }),
                    ..PersistentVolumeClaimSpec::default()
                }),
                ..PersistentVolumeClaim::default()
            }
        })
        .collect()
}

fn pod_spec(
    ctx: &Ctx,
    plan: &ServicePlan,
    secret: Option<&Secret>,
    totals: &mut Totals,
) -> PodSpec {
    let svc = plan.svc;
    let volumes: Vec<Volume> = plan
        .volumes
        .iter()
        .filter(|v| v.kind == VolumeKind::Ram)
        .map(|v| Volume {
            name: volume_name(&svc.name, &v.name),
            empty_dir: Some(EmptyDirVolumeSource {
                medium: Some("Memory".into()),
                size_limit: Some(Quantity(v.bytes.to_string())),
                ..EmptyDirVolumeSource::default()
            }),
            ..Volume::default()
        })
        .collect();
    // A service with permissions runs as its own ServiceAccount with the token mounted (what its
    // Role grants, in its namespace: `rbac.rs`); any other has no token at all.
    let permitted = super::rbac::has_permissions(svc);
    PodSpec {
        containers: vec![container(ctx, plan, secret.is_some(), totals)],
        automount_service_account_token: Some(permitted),
        // Always named: server-side apply dropping the field would leave the API server's copy
        // in the deprecated `serviceAccount`, which names the old account again, so a service
        // whose permissions a new version drops would keep asking for its deleted account.
        service_account_name: Some(if permitted {
            svc.name.clone()
        } else {
            "default".to_owned()
        }),
        // The container runtime's default syscall filter, not none (Kubernetes' default).
        security_context: Some(PodSecurityContext {
            seccomp_profile: Some(SeccompProfile {
                type_: "RuntimeDefault".into(),
                localhost_profile: None,
            }),
            ..PodSecurityContext::default()
        }),
        runtime_class_name: ctx.config.runtime_class.clone(),
        affinity: affinity(ctx, plan),
        image_pull_secrets: secret.map(|s| vec![LocalObjectReference { name: s.name_any() }]),
        volumes: (!volumes.is_empty()).then_some(volumes),
        ..PodSpec::default()
    }
}

/// `private`: the image is pulled with the manifest's registry credentials.
fn container(ctx: &Ctx, plan: &ServicePlan, private: bool, totals: &mut Totals) -> Container {
    let svc = plan.svc;
    let pct = ctx.config.overcommit_pct;
    let ram: u64 = plan
        .volumes
        .iter()
        .filter(|v| v.kind == VolumeKind::Ram)
        .map(|v| v.bytes)
        .sum();
    let ephemeral: u64 = plan
        .volumes
        .iter()
        .filter(|v| v.kind == VolumeKind::Ephemeral)
        .map(|v| v.bytes)
        .sum();
    let has_ephemeral = plan.volumes.iter().any(|v| v.kind == VolumeKind::Ephemeral);
    let limit = Amounts {
        cpu_millis: plan.cpu_millis,
        memory: plan.memory_bytes + ram,
        ephemeral,
    };
    let request = Amounts {
        cpu_millis: committed(limit.cpu_millis, pct.cpu),
        memory: committed(limit.memory, pct.memory),
        ephemeral: committed(limit.ephemeral, pct.storage),
    };
    let count = u64::from(svc.count);
    let add = |sum: &mut Amounts, a: &Amounts| {
        sum.cpu_millis += a.cpu_millis * count;
        sum.memory += a.memory * count;
        sum.ephemeral += a.ephemeral * count;
    };
    add(&mut totals.limits, &limit);
    add(&mut totals.requests, &request);
    if !has_ephemeral {
        totals.pods_without_ephemeral += count;
    }
    let list = |a: &Amounts| {
        let mut map = BTreeMap::from([
            ("cpu".to_owned(), Quantity(format!("{}m", a.cpu_millis))),
            ("memory".to_owned(), Quantity(a.memory.to_string())),
        ]);
        if has_ephemeral {
            map.insert(
                "ephemeral-storage".to_owned(),
                Quantity(a.ephemeral.to_string()),
            );
        }
        if let Some(gpu) = &plan.gpu {
            // Extended resources cannot be overcommitted: request = limit.
            map.insert(gpu.resource.clone(), Quantity(gpu.units.to_string()));
        }
        map
    };
    if let Some(gpu) = &plan.gpu {
        *totals.gpus.entry(gpu.resource.clone()).or_default() += gpu.units * count;
    }

    let mut ports: Vec<ContainerPort> = Vec::new();
    for expose in &svc.expose {
        let protocol = expose.proto.to_uppercase();
        let port = i32::from(expose.port);
        if !ports
            .iter()
            .any(|p| p.container_port == port && p.protocol.as_deref() == Some(&protocol))
        {
            ports.push(ContainerPort {
                container_port: port,
                protocol: Some(protocol),
                ..ContainerPort::default()
            });
        }
    }

    let mounts: Vec<VolumeMount> = plan
        .volumes
        .iter()
        .filter_map(|v| {
            let (path, read_only) = v.mount.as_ref()?;
            Some(VolumeMount {
                name: volume_name(&svc.name, &v.name),
                mount_path: path.clone(),
                read_only: read_only.then_some(true),
                ..VolumeMount::default()
            })
        })
        .collect();

    Container {
        name: svc.name.clone(),
        image: Some(svc.image.trim().to_owned()),
        // A private image is pulled (and so its credentials checked) for every pod: with
        // IfNotPresent another tenant's pod naming the same image would run the node's cached copy.
        image_pull_policy: Some(if private { "Always" } else { "IfNotPresent" }.into()),
        command: svc.command.clone().filter(|c| !c.is_empty()),
        args: svc.args.clone().filter(|a| !a.is_empty()),
        env: Some(env(ctx, plan)),
        ports: (!ports.is_empty()).then_some(ports),
        resources: Some(ResourceRequirements {
            limits: Some(list(&limit)),
            requests: Some(list(&request)),
            ..ResourceRequirements::default()
        }),
        volume_mounts: (!mounts.is_empty()).then_some(mounts),
        security_context: Some(SecurityContext {
            allow_privilege_escalation: Some(false),
            privileged: Some(false),
            // No raw sockets: a tenant cannot forge packets or spoof addresses on the pod network.
            capabilities: Some(Capabilities {
                drop: Some(vec!["NET_RAW".into()]),
                add: None,
            }),
            ..SecurityContext::default()
        }),
        ..Container::default()
    }
}

/// The manifest's `NAME=VALUE` entries, then the Akash variables the manifest does not set.
fn env(ctx: &Ctx, plan: &ServicePlan) -> Vec<EnvVar> {
    let mut env: Vec<EnvVar> = Vec::new();
    for entry in plan.svc.env.iter().flatten() {
        let (name, value) = entry.split_once('=').unwrap_or((entry.as_str(), ""));
        let var = EnvVar {
            name: name.to_owned(),
            value: Some(value.to_owned()),
            ..EnvVar::default()
        };
        // A name given twice: the last one wins, as in a shell.
        match env.iter_mut().find(|e| e.name == name) {
            Some(existing) => *existing = var,
            None => env.push(var),
        }
    }
    let lease = &ctx.lease;
    for (name, value) in [
        ("AKASH_OWNER", lease.owner.clone()),
        ("AKASH_PROVIDER", lease.provider.clone()),
        ("AKASH_DEPLOYMENT_SEQUENCE", lease.dseq.to_string()),
        ("AKASH_GROUP_SEQUENCE", lease.gseq.to_string()),
        ("AKASH_ORDER_SEQUENCE", lease.oseq.to_string()),
        (
            "AKASH_CLUSTER_PUBLIC_HOSTNAME",
            ctx.config.cluster_public_hostname.clone(),
        ),
    ] {
        if !env.iter().any(|e| e.name == name) {
            env.push(EnvVar {
                name: name.to_owned(),
                value: Some(value),
                ..EnvVar::default()
            });
        }
    }
    env
}

fn gt_zero(key: String) -> NodeSelectorRequirement {
    NodeSelectorRequirement {
        key,
        operator: "Gt".into(),
        values: Some(vec!["0".into()]),
    }
}

/// Nodes that can run the service: the provider's node selector, each persistent storage class,
/// and one of the GPU models asked for (one selector term per model; terms are alternatives).
fn affinity(ctx: &Ctx, plan: &ServicePlan) -> Option<Affinity> {
    let mut base = Vec::new();
    for (label, value) in &ctx.config.node_selector {
        base.push(NodeSelectorRequirement {
            key: label.clone(),
            operator: "In".into(),
            values: Some(vec![value.clone()]),
        });
    }
    let mut classes: Vec<&str> = plan
        .volumes
        .iter()
        .filter_map(|v| match &v.kind {
            // `default` is whatever class the cluster defaults to: no node label names it.
            VolumeKind::Persistent { class } if class != "default" => Some(class.as_str()),
            _ => None,
        })
        .collect();
    classes.sort_unstable();
    classes.dedup();
    for class in classes {
        base.push(gt_zero(format!("{STORAGE_CLASS_LABEL}{class}")));
    }
    let terms: Vec<NodeSelectorTerm> = match &plan.gpu {
        Some(gpu) if !gpu.models.is_empty() => gpu
            .models
            .iter()
            .map(|model| {
                let mut reqs = base.clone();
                reqs.extend(gpu_label_keys(&gpu.vendor, model).into_iter().map(gt_zero));
                NodeSelectorTerm {
                    match_expressions: Some(reqs),
                    ..NodeSelectorTerm::default()
                }
            })
            .collect(),
        _ if base.is_empty() => return None,
        _ => vec![NodeSelectorTerm {
            match_expressions: Some(base),
            ..NodeSelectorTerm::default()
        }],
    };
    Some(Affinity {
        node_affinity: Some(NodeAffinity {
            required_during_scheduling_ignored_during_execution: Some(NodeSelector {
                node_selector_terms: terms,
            }),
            ..NodeAffinity::default()
        }),
        ..Affinity::default()
    })
}
