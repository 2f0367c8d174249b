//! The real node (`deploy/node-up.sh`): kubelet, containerd and runc run the pods scheduled on it,
//! Traefik answers on the node's address, CoreDNS resolves cluster names, kube-router enforces
//! NetworkPolicies. Tests reach it the way clients would: HTTP to the node's address with a host
//! name, commands in a pod through the API server's exec, connection attempts from inside pods.

use std::net::{Ipv4Addr, SocketAddr};
use std::process::Output;
use std::time::Duration;

use anyhow::{Context, bail};
use crds::resources::{Lease, LeasePhase};
use k8s_openapi::api::core::v1::{Node, Pod};
use kube::Api;
use kube::api::ListParams;

use chain_client::Chain;

use crate::Cluster;
use crate::market::object_name;
use crate::scenario::{Scenario, scenario};
use crate::wait::{Poll, until};

/// The provider flags that put lease workloads on the real node and let its ingress controller
/// (Traefik, in namespace `traefik`) reach them.
pub const PROVIDER_ARGS: [&str; 4] = [
    "--node-selector",
    "type=real",
    "--ingress-namespace",
    "traefik",
];

/// The test workload's image (deploy/build-images.sh): busybox with `serve`, answering HTTP on
/// each port of `$PORTS` with `$MESSAGE`, its host name and `$SERVICE_NAME`.
pub fn workload_image() -> String {
    format!("{}/akash/workload:1", registry())
}

/// A two-service SDL on the test workload: `web` serves HTTP on 8080 as port 80 (with `accept`
/// host `host`) and on 9000 as a global node port; `api` serves 8080 to `web` only.
pub fn web_and_api_sdl(message: &str, host: &str) -> anyhow::Result<crds::sdl::Sdl> {
    web_and_api_sdl_on(message, host, None)
}

/// [`web_and_api_sdl`], with web's port 9000 also on the leased IP `endpoint` when given.
pub fn web_and_api_sdl_on(
    message: &str,
    host: &str,
    endpoint: Option<&str>,
) -> anyhow::Result<crds::sdl::Sdl> {
    let image = workload_image();
    let (endpoints, ip) = match endpoint {
        Some(name) => (
            format!("endpoints: {{{name}: {{kind: ip}}}}\n"),
            format!(", ip: {name}"),
        ),
        None => (String::new(), String::new()),
    };
    let text = format!(
        r#"
version: "2.0"
{endpoints}services:
  web:
    image: {image}
    env: ["MESSAGE={message}", "PORTS=8080 9000", "SERVICE_NAME=web"]
    expose:
      - port: 8080
        as: 80
        accept: ["{host}"]
        to: [{{global: true}}]
      - port: 9000
        as: 9000
        to: [{{global: true{ip}}}]
  api:
    image: {image}
    env: ["MESSAGE=api of {message}", "PORTS=8080", "SERVICE_NAME=api"]
    expose:
      - port: 8080
        as: 8080
        to: [{{service: web}}]
profiles:
  compute:
    small:
      resources:
        cpu: {{units: 0.1}}
        memory: {{size: 64Mi}}
        storage: {{size: 64Mi}}
  placement:
    dc:
      attributes: {{host: akash}}
      pricing:
        small: {{denom: uact, amount: 1000}}
deployment:
  web: {{dc: {{profile: small, count: 1}}}}
  api: {{dc: {{profile: small, count: 1}}}}
"#
    );
    crds::sdl::Sdl::parse(&text).map_err(|e| anyhow::anyhow!("test SDL: {e}"))
}

/// The local registry the node pulls from (`REGISTRY_PORT`, as deploy/cluster.env has it).
pub fn registry() -> String {
    let port = std::env::var("REGISTRY_PORT").unwrap_or_else(|_| "5000".into());
    format!("localhost:{port}")
}

/// The running real node.
#[derive(Clone)]
pub struct RealNode {
    pub name: String,
    pub ip: Ipv4Addr,
    cluster: Cluster,
}

impl RealNode {
    /// The node `deploy/node-up.sh` started (`NODE_NAME`, default `akash-node-0`), once Ready.
    pub async fn get(cluster: &Cluster) -> anyhow::Result<Self> {
        let name = std::env::var("NODE_NAME").unwrap_or_else(|_| "akash-node-0".into());
        let node = Api::<Node>::all(cluster.client())
            .get_opt(&name)
            .await?
            .with_context(|| {
                format!(
                    "the real node {name} is not in the cluster: deploy/cluster-up.sh starts it when run as root \
                     (AKASH_REAL_NODE=0 turns it off, and these tests then cannot run)"
                )
            })?;
        let status = node.status.unwrap_or_default();
        let ready = status
            .conditions
            .unwrap_or_default()
            .iter()
            .any(|c| c.type_ == "Ready" && c.status == "True");
        if !ready {
            bail!("the real node {name} is not Ready");
        }
        let ip = status
            .addresses
            .unwrap_or_default()
            .iter()
            .find(|a| a.type_ == "InternalIP")
            .map(|a| a.address.parse::<Ipv4Addr>())
            .transpose()?
            .with_context(|| format!("the real node {name} has no InternalIP"))?;
        Ok(Self {
            name,
            ip,
            cluster: cluster.clone(),
        })
    }

    /// The ingress controller's address: port 80 of the node.
    pub fn ingress(&self) -> SocketAddr {
        SocketAddr::from((self.ip, 80))
    }

    /// GET `http://<host><path>` through the ingress controller: status and body.
    pub async fn http_via_ingress(&self, host: &str, path: &str) -> anyhow::Result<(u16, String)> {
        let client = reqwest::Client::builder()
            .resolve(host, self.ingress())
            .timeout(Duration::from_secs(10))
            .no_proxy()
            .build()?;
        let response = client
            .get(format!("http://{host}{path}"))
            .send()
            .await
            .with_context(|| format!("GET http://{host}{path} through {}", self.ingress()))?;
        let status = response.status().as_u16();
        Ok((status, response.text().await?))
    }

    /// `kubectl exec` of `command` in the pod's first container: its output, whatever the exit code.
    pub fn exec(&self, namespace: &str, pod: &str, command: &[&str]) -> anyhow::Result<Output> {
        self.cluster
            .kubectl()
            .args(["exec", "-n", namespace, pod, "--"])
            .args(command)
            .output()
            .with_context(|| format!("kubectl exec in {namespace}/{pod}"))
    }

    /// Whether a TCP connection from inside the pod to `host:port` succeeds within 3 seconds
    /// (busybox `nc`, which exits 0 once connected and its empty input is sent, 1 when refused or
    /// timed out). `host` may be a name the pod resolves through cluster DNS.
    pub fn can_connect(
        &self,
        namespace: &str,
        pod: &str,
        host: &str,
        port: u16,
    ) -> anyhow::Result<bool> {
        let probe = format!("timeout 8 nc -w 3 {host} {port} </dev/null");
        let out = self.exec(namespace, pod, &["sh", "-c", &probe])?;
        // kubectl itself failing (no such pod, no exec) is an error, not "blocked".
        let stderr = String::from_utf8_lossy(&out.stderr);
        if stderr.contains("Error from server") || stderr.contains("error:") {
            bail!("exec in {namespace}/{pod} failed: {stderr}");
        }
        Ok(out.status.success())
    }
}

/// Deletes a lease namespace when dropped, so that a failing test leaves no containers running on
/// the real node (its provider, which would remove them, is gone by then).
pub struct LeaseNamespaceGuard {
    cluster: Cluster,
    namespace: String,
}

impl LeaseNamespaceGuard {
    pub fn new(cluster: &Cluster, namespace: &str) -> Self {
        Self {
            cluster: cluster.clone(),
            namespace: namespace.to_owned(),
        }
    }
}

impl Drop for LeaseNamespaceGuard {
    fn drop(&mut self) {
        let _ = self
            .cluster
            .kubectl()
            .args([
                "delete",
                "namespace",
                &self.namespace,
                "--ignore-not-found",
                "--wait=false",
            ])
            .output();
    }
}

/// The `akash-provider` image of this test run's binary, built and pushed to the local registry
/// by `deploy/build-images.sh` once per test process: (repository, tag). The tag follows the
/// binary's content, so the node never runs a stale image.
pub fn provider_image() -> anyhow::Result<(String, String)> {
    static BUILT: std::sync::OnceLock<Result<(String, String), String>> =
        std::sync::OnceLock::new();
    BUILT
        .get_or_init(|| build_provider_image().map_err(|e| format!("{e:#}")))
        .clone()
        .map_err(anyhow::Error::msg)
}

fn build_provider_image() -> anyhow::Result<(String, String)> {
    let binary = crate::binaries::akash_provider()?;
    let script = crate::repo_dir().join("deploy/build-images.sh");
    let out = std::process::Command::new("bash")
        .arg(&script)
        .arg("--provider")
        .arg(&binary)
        .args(["--provider-tag", "auto", "akash-provider"])
        .stderr(std::process::Stdio::inherit())
        .output()
        .with_context(|| format!("running {}", script.display()))?;
    if !out.status.success() {
        bail!("{} failed ({})", script.display(), out.status);
    }
    let reference = String::from_utf8(out.stdout)?
        .lines()
        .last()
        .map(str::to_owned)
        .context("build-images.sh printed no image")?;
    let (repository, tag) = reference
        .rsplit_once(':')
        .with_context(|| format!("{reference} has no tag"))?;
    Ok((repository.to_owned(), tag.to_owned()))
}

/// A real-node scenario: the provider puts lease workloads on the real node only.
pub async fn real_scenario(name: &str, extra: &[&str]) -> anyhow::Result<Scenario> {
    let mut args: Vec<String> = PROVIDER_ARGS.map(String::from).to_vec();
    args.extend(extra.iter().map(|a| (*a).to_owned()));
    scenario(name, &[("host", "akash")], args).await
}

/// Waits until the lease is Active with every service ready.
pub async fn wait_active(s: &Scenario, dseq: u64) -> anyhow::Result<Lease> {
    let name = object_name(s.tenant.address(), dseq);
    until("the lease Active", Duration::from_secs(180), || async {
        let lease = s.leases().get(&name).await?;
        let st = lease.status.clone().unwrap_or_default();
        Ok(if st.phase == Some(LeasePhase::Active) {
            Poll::Ready(lease)
        } else {
            Poll::Pending(format!("phase {:?}, ready {:?}", st.phase, st.ready))
        })
    })
    .await
}

/// The Running pod of `service` in the lease namespace.
pub async fn running_pod(cluster: &Cluster, namespace: &str, service: &str) -> anyhow::Result<Pod> {
    let pods = Api::<Pod>::namespaced(cluster.client(), namespace);
    let selector = format!("akash.network/manifest-service={service}");
    until(
        &format!("a Running pod of {service}"),
        Duration::from_secs(120),
        || async {
            let list = pods.list(&ListParams::default().labels(&selector)).await?;
            let running = list.items.into_iter().find(|p| {
                p.metadata.deletion_timestamp.is_none()
                    && p.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Running")
            });
            Ok(match running {
                Some(p) => Poll::Ready(p),
                None => Poll::Pending("none yet".into()),
            })
        },
    )
    .await
}

pub fn pod_name(pod: &Pod) -> String {
    pod.metadata.name.clone().unwrap_or_default()
}
