//! The build step of the workload reconciler: a lease and its manifest group become the exact
//! Kubernetes objects to server-side apply. Pure: no client, no clock, no randomness; the same
//! input always gives the same objects (in the same order), so re-applying is a no-op.
//!
//! What is built follows the Go provider (`cluster/kube/builder/*`):
//! - a Namespace named after the lease (`names::lease_namespace`), with the lease labels and
//!   PodSecurity `baseline` enforced;
//! - per service a Deployment (or a StatefulSet with claim templates when a volume is persistent),
//!   a ClusterIP Service `<svc>` (internal and port-80 exposes), a NodePort Service `<svc>-np`
//!   (other global exposes), an Ingress `<svc>` (port-80 global exposes: the automatic host and
//!   the manifest's hosts that the lease holds) and a registry Secret
//!   `docker-creds-<svc>` (when the manifest has credentials);
//! - per service with `params.permissions` a ServiceAccount, Role and RoleBinding `<svc>`
//!   (`rbac.rs`), its pods running with that account's token;
//! - per leased-IP port a `LoadBalancer` Service `<svc>-ip-<port>-<proto>` (`leased_ip.rs`);
//! - NetworkPolicies `akash-deployment-restrictions`, `akash-<svc>-np`, `akash-<svc>-ip` and, for
//!   services with permissions, `akash-apiserver-<svc>`;
//! - a ResourceQuota `akash-quota` equal to the lease's group on chain (the manifest's resources
//!   are what the pods ask; the quota is what the lease pays for).
//!
//! [`validate`] runs first and refuses a manifest that would fail half-way through an apply;
//! then [`check_fits`] refuses one that asks for more than the lease holds.

mod http_options;
mod lease;
pub(crate) mod leased_ip;
mod network;
pub(crate) use network::NON_PUBLIC_RANGES;
mod pod;
mod rbac;
mod validate;

#[cfg(test)]
mod tests;

use std::collections::BTreeMap;

use crds::resources::{LeaseManifest, LeaseRef};
use crds::sdl::manifest::{ManifestCredentials, ManifestService};
use crds::sdl::names::{LeaseId, lease_namespace};
use k8s_openapi::ByteString;
use k8s_openapi::api::apps::v1::{Deployment, StatefulSet};
use k8s_openapi::api::core::v1::ServiceAccount;
use k8s_openapi::api::core::v1::{Namespace, ResourceQuota, ResourceQuotaSpec, Secret, Service};
use k8s_openapi::api::networking::v1::{Ingress, NetworkPolicy};
use k8s_openapi::api::rbac::v1::{Role, RoleBinding};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

pub(crate) use lease::check_fits;
pub(crate) use validate::BuildError;
pub use validate::validate;

use crate::inventory::Overcommit;

/// The label every object of a lease carries, and every pod template: the inventory skips pods
/// with it (their lease's reservation already counts them).
pub(crate) const MANAGED_LABEL: &str = "akash.network";
/// The lease namespace's name, on every object.
pub(crate) const NAMESPACE_LABEL: &str = "akash.network/namespace";
/// The manifest service an object belongs to.
pub(crate) const SERVICE_LABEL: &str = "akash.network/manifest-service";
/// Prefix of the lease-id labels (`owner`, `dseq`, `gseq`, `oseq`, `provider`).
pub(crate) const LEASE_LABEL_PREFIX: &str = "akash.network/lease.id.";
/// The name of the namespace-wide policy.
pub(crate) const RESTRICTIONS_POLICY: &str = "akash-deployment-restrictions";
/// The name of the lease's quota.
pub(crate) const QUOTA_NAME: &str = "akash-quota";

/// How the provider's cluster runs workloads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkloadConfig {
    /// The domain of automatic ingress hosts (`--deployment-ingress-domain`), such as
    /// `ingress.example.com`: the host of a service is `names::ingress_host(lease, svc, domain)`.
    pub ingress_domain: String,
    /// The Ingress class of lease Ingresses.
    pub ingress_class: String,
    /// `AKASH_CLUSTER_PUBLIC_HOSTNAME` in every container.
    pub cluster_public_hostname: String,
    /// The pods' RuntimeClass (`gvisor` in production); `None` leaves the cluster default.
    pub runtime_class: Option<String>,
    /// Build the NetworkPolicies (on by default, as `--deployment-network-policies-enabled`).
    pub network_policies: bool,
    /// Where the ingress controller runs; its pods may reach lease pods.
    pub ingress_controller_namespace: String,
    /// The provider's own namespace; its pods may reach lease pods.
    pub gateway_namespace: String,
    /// Requests are the limits scaled down by `100 / (100 + pct)` (`--overcommit-pct-*`); zero
    /// keeps requests equal to limits.
    pub overcommit_pct: Overcommit,
    /// Pods need a node with every one of these labels (`--node-selector`; the Go provider uses
    /// `akash.network=true`; matches `InventoryConfig::node_selector`).
    pub node_selector: BTreeMap<String, String>,
    /// Addresses lease pods may not reach although public: the nodes' and the API server's, and
    /// `--deny-egress-cidr` (beside `network::NON_PUBLIC_RANGES`, always denied).
    pub egress_deny: Vec<String>,
    /// The API server's own addresses and ports (the `kubernetes` Service's endpoints, read at
    /// start, as the Go provider's `APIServerEndpoints`): the pods of a service with
    /// `params.permissions` may connect to these, and only they. Policies see the address after
    /// the Service's translation, so the endpoints, not the ClusterIP, are what is allowed.
    pub api_server_endpoints: Vec<std::net::SocketAddr>,
    /// Sanity limit on the replicas of all services of one lease together.
    pub max_replicas: u32,
    /// Lease pods may connect to the provider's namespace, where the overlay sidecar serves the
    /// Services of services other providers run (`--overlay`)...
    pub overlay: bool,
    /// ...on the ports of its local listeners only (`--overlay-ports`), not the gateway's or
    /// anything else listening there.
    pub overlay_ports: crate::overlay::local_ports::PortRange,
    /// The MetalLB address pool of leased IPs (`--ip-pool`); `None`: no leased IPs.
    pub ip_pool: Option<String>,
}

impl Default for WorkloadConfig {
    fn default() -> Self {
        WorkloadConfig {
            ingress_domain: "ingress.localhost".into(),
            ingress_class: "akash-ingress-class".into(),
            cluster_public_hostname: "localhost".into(),
            runtime_class: None,
            network_policies: true,
            ingress_controller_namespace: "ingress-nginx".into(),
            gateway_namespace: "akash-provider".into(),
            overcommit_pct: Overcommit::default(),
            node_selector: BTreeMap::new(),
            egress_deny: Vec::new(),
            api_server_endpoints: Vec::new(),
            max_replicas: 1000,
            overlay: false,
            overlay_ports: crate::overlay::local_ports::DEFAULT_LOCAL_PORTS
                .parse()
                .expect("the default overlay ports parse"),
            ip_pool: None,
        }
    }
}

/// Every object of a lease. Apply in this order: `namespace`, `secrets`, `resource_quota`,
/// `network_policies`, `services`, the service accounts, roles and role bindings, then the
/// workloads, then `ingresses` (the quota must exist before any pod, or pods could run outside it
/// for a moment; secrets and service accounts before the pods that use them).
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct LeaseObjects {
    pub namespace: Namespace,
    pub resource_quota: ResourceQuota,
    pub(crate) secrets: Vec<Secret>,
    pub deployments: Vec<Deployment>,
    pub stateful_sets: Vec<StatefulSet>,
    pub services: Vec<Service>,
    pub ingresses: Vec<Ingress>,
    pub network_policies: Vec<NetworkPolicy>,
    pub(crate) service_accounts: Vec<ServiceAccount>,
    pub(crate) roles: Vec<Role>,
    pub(crate) role_bindings: Vec<RoleBinding>,
}

impl LeaseObjects {
    /// How many objects there are.
    pub(crate) fn len(&self) -> usize {
        // Without `..`: a new kind does not compile until it is counted.
        let Self {
            namespace: _,
            resource_quota: _,
            secrets,
            deployments,
            stateful_sets,
            services,
            ingresses,
            network_policies,
            service_accounts,
            roles,
            role_bindings,
        } = self;
        2 + secrets.len()
            + deployments.len()
            + stateful_sets.len()
            + services.len()
            + ingresses.len()
            + network_policies.len()
            + service_accounts.len()
            + roles.len()
            + role_bindings.len()
    }
}

/// Validates the lease's manifest group and checks it against the lease, then builds every
/// object of the lease.
pub fn build(
    lease: &LeaseRef,
    manifest: &LeaseManifest,
    config: &WorkloadConfig,
) -> Result<LeaseObjects, BuildError> {
    let group = &manifest.group;
    let plans = validate::plan(group, config)?;
    leased_ip::check(group, config)?;
    // A manifest an older provider accepted does not carry its lease's units: it was checked
    // against them then, and its quota stays what its services add up to.
    let leased = if manifest.leased.is_empty() {
        None
    } else {
        check_fits(group, &manifest.leased)?;
        Some(lease::totals(&manifest.leased, config.overcommit_pct)?)
    };
    let ctx = Ctx::new(lease, config, manifest);
    network::check_hosts(&ctx, group)?;
    let mut out = LeaseObjects {
        namespace: ctx.namespace_object(),
        resource_quota: ResourceQuota::default(),
        secrets: Vec::new(),
        deployments: Vec::new(),
        stateful_sets: Vec::new(),
        services: Vec::new(),
        ingresses: Vec::new(),
        network_policies: Vec::new(),
        service_accounts: Vec::new(),
        roles: Vec::new(),
        role_bindings: Vec::new(),
    };
    let mut totals = pod::Totals::default();
    for plan in &plans {
        let svc = plan.svc;
        let secret = svc
            .credentials
            .as_ref()
            .map(|c| ctx.registry_secret(svc, c));
        let workload = pod::workload(&ctx, plan, secret.as_ref(), &mut totals);
        if let Some(secret) = secret {
            out.secrets.push(secret);
        }
        match workload {
            pod::Workload::Deployment(d) => out.deployments.push(*d),
            pod::Workload::StatefulSet(s) => out.stateful_sets.push(*s),
        }
        out.services
            .extend(network::services(&ctx, svc, &mut totals));
        out.services.extend(leased_ip::services(&ctx, svc));
        out.ingresses.extend(network::ingress(&ctx, svc));
        if let Some((account, role, binding)) = rbac::objects(&ctx, svc) {
            out.service_accounts.push(account);
            out.roles.push(role);
            out.role_bindings.push(binding);
        }
    }
    if config.network_policies {
        out.network_policies = network::policies(&ctx, group);
        out.network_policies.extend(
            group
                .services
                .iter()
                .filter_map(|s| leased_ip::policy(&ctx, s)),
        );
    }
    let load_balancers = out
        .services
        .iter()
        .filter(|s| s.spec.as_ref().and_then(|s| s.type_.as_deref()) == Some("LoadBalancer"))
        .count();
    out.resource_quota = ctx.quota(leased.as_ref().unwrap_or(&totals), load_balancers);
    Ok(out)
}

/// What every builder needs: the lease, its namespace, the config, and the hosts it holds.
pub(crate) struct Ctx<'a> {
    pub(crate) lease: LeaseId,
    pub(crate) namespace: String,
    pub(crate) config: &'a WorkloadConfig,
    /// The manifest's hosts this lease holds (`None`: all of them; see
    /// [`LeaseManifest::hostnames`]).
    pub(crate) hostnames: Option<&'a [String]>,
    /// The leased-IP endpoints this lease holds (`None`: all; [`LeaseManifest::ip_endpoints`]).
    pub(crate) ip_endpoints: Option<&'a [String]>,
    /// Addresses to ask the load balancer for, by endpoint ([`LeaseManifest::ip_addresses`]).
    pub(crate) ip_addresses: &'a BTreeMap<String, String>,
}

impl<'a> Ctx<'a> {
    fn new(lease: &LeaseRef, config: &'a WorkloadConfig, manifest: &'a LeaseManifest) -> Self {
        let lease = LeaseId {
            owner: lease.owner.clone(),
            dseq: lease.dseq,
            gseq: lease.gseq,
            oseq: lease.oseq,
            provider: lease.provider.clone(),
        };
        Ctx {
            namespace: lease_namespace(&lease),
            lease,
            config,
            hostnames: manifest.hostnames.as_deref(),
            ip_endpoints: manifest.ip_endpoints.as_deref(),
            ip_addresses: &manifest.ip_addresses,
        }
    }

    /// `akash.network=true`, the namespace and the lease-id labels.
    pub(crate) fn labels(&self) -> BTreeMap<String, String> {
        let l = &self.lease;
        let mut labels = BTreeMap::from([
            (MANAGED_LABEL.to_owned(), "true".to_owned()),
            (NAMESPACE_LABEL.to_owned(), self.namespace.clone()),
        ]);
        for (key, value) in [
            ("owner", l.owner.clone()),
            ("dseq", l.dseq.to_string()),
            ("gseq", l.gseq.to_string()),
            ("oseq", l.oseq.to_string()),
            ("provider", l.provider.clone()),
        ] {
            labels.insert(format!("{LEASE_LABEL_PREFIX}{key}"), value);
        }
        labels
    }

    /// [`Ctx::labels`] plus the manifest service.
    pub(crate) fn service_labels(&self, service: &str) -> BTreeMap<String, String> {
        let mut labels = self.labels();
        labels.insert(SERVICE_LABEL.to_owned(), service.to_owned());
        labels
    }

    /// Metadata of a namespaced object of the lease.
    pub(crate) fn meta(&self, name: &str, labels: BTreeMap<String, String>) -> ObjectMeta {
        ObjectMeta {
            name: Some(name.to_owned()),
            namespace: Some(self.namespace.clone()),
            labels: Some(labels),
            ..ObjectMeta::default()
        }
    }

    fn namespace_object(&self) -> Namespace {
        let mut labels = self.labels();
        labels.insert(
            "pod-security.kubernetes.io/enforce".into(),
            "baseline".into(),
        );
        labels.insert(
            "pod-security.kubernetes.io/enforce-version".into(),
            "latest".into(),
        );
        Namespace {
            metadata: ObjectMeta {
                name: Some(self.namespace.clone()),
                labels: Some(labels),
                ..ObjectMeta::default()
            },
            ..Namespace::default()
        }
    }

    /// `docker-creds-<svc>-<digest>`: a `kubernetes.io/dockerconfigjson` Secret, as `kubectl
    /// create secret docker-registry` writes it. Named by its content, so the provider only ever
    /// creates pull Secrets (new credentials: a new name) and needs no right to read, change or
    /// list Secrets outside its own namespace.
    fn registry_secret(&self, svc: &ManifestService, creds: &ManifestCredentials) -> Secret {
        let username = creds.username.trim();
        let password = creds.password.trim();
        let mut entry = serde_json::Map::new();
        entry.insert("username".into(), username.into());
        entry.insert("password".into(), password.into());
        if !creds.email.trim().is_empty() {
            entry.insert("email".into(), creds.email.trim().into());
        }
        entry.insert(
            "auth".into(),
            base64(format!("{username}:{password}").as_bytes()).into(),
        );
        let config = serde_json::json!({ "auths": { creds.host.trim(): entry } }).to_string();
        Secret {
            metadata: self.meta(
                &secret_name(&svc.name, config.as_bytes()),
                self.service_labels(&svc.name),
            ),
            type_: Some("kubernetes.io/dockerconfigjson".into()),
            data: Some(BTreeMap::from([(
                ".dockerconfigjson".to_owned(),
                ByteString(config.into_bytes()),
            )])),
            ..Secret::default()
        }
    }

    /// The lease's quota; `load_balancers`: its leased-IP Services, one per port.
    fn quota(&self, totals: &pod::Totals, load_balancers: usize) -> ResourceQuota {
        let mut hard = BTreeMap::new();
        let mut put = |key: &str, value: String| {
            hard.insert(key.to_owned(), Quantity(value));
        };
        put("requests.cpu", format!("{}m", totals.requests.cpu_millis));
        put("limits.cpu", format!("{}m", totals.limits.cpu_millis));
        put("requests.memory", totals.requests.memory.to_string());
        put("limits.memory", totals.limits.memory.to_string());
        // A quota on ephemeral storage makes every pod declare it: only when every pod does.
        if totals.pods_without_ephemeral == 0 {
            put(
                "requests.ephemeral-storage",
                totals.requests.ephemeral.to_string(),
            );
            put(
                "limits.ephemeral-storage",
                totals.limits.ephemeral.to_string(),
            );
        }
        for (resource, n) in &totals.gpus {
            put(&format!("requests.{resource}"), n.to_string());
        }
        put("requests.storage", totals.persistent_bytes.to_string());
        put(
            "persistentvolumeclaims",
            totals.persistent_claims.to_string(),
        );
        put("services.nodeports", totals.node_ports.to_string());
        put("services.loadbalancers", load_balancers.to_string());
        ResourceQuota {
            metadata: self.meta(QUOTA_NAME, self.labels()),
            spec: Some(ResourceQuotaSpec {
                hard: Some(hard),
                ..ResourceQuotaSpec::default()
            }),
            ..ResourceQuota::default()
        }
    }
}

/// The registry Secret of a service with this `.dockerconfigjson`: the first 40 bits of its
/// SHA-256 name it (a service name is at most 63 characters; 13 + 63 + 10 fit in 253).
pub(crate) fn secret_name(service: &str, dockerconfigjson: &[u8]) -> String {
    use sha2::{Digest, Sha256};
    let digest = Sha256::digest(dockerconfigjson);
    let hex: String = digest[..5].iter().map(|b| format!("{b:02x}")).collect();
    format!("docker-creds-{service}-{hex}")
}

/// Standard base64 with padding.
fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}
