//! The chart installed as an operator would, for tests on the real node: `helm install` of
//! `helm/akash-provider` with the image of this run's binary, its key in a Secret, the devnet
//! reachable from pods, the gateway (and the overlay) on node ports of the node's address, lease
//! workloads on the real node; `helm uninstall` when dropped.

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use crds::resources::Provider;
use k8s_openapi::ByteString;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::Secret;
use kube::Api;
use kube::api::{ObjectMeta, PostParams};
use serde_json::{Value, json};

use crate::devnet::Devnet;
use crate::real_node::{self, RealNode};
use crate::wait::{Poll, until};

fn helm() -> Command {
    Command::new(crate::tool_path("helm"))
}

/// A node port for this test process: `base` (30000, 30600, 31200 or 31800: test binaries run one
/// after another, so a few bases are enough for the tests of one binary) + the process id folded
/// into 600 ports. The API server refuses a port already taken.
pub fn node_port(base: u16) -> u16 {
    base + (std::process::id() % 600) as u16
}

/// An installed release; uninstalled when dropped.
pub struct ChartRelease {
    pub name: String,
    pub namespace: String,
    kubeconfig: PathBuf,
}

/// What differs between the providers a test installs.
pub struct ChartProvider<'a> {
    pub release: &'a str,
    pub namespace: &'a str,
    pub mnemonic: &'a str,
    pub gateway_node_port: u16,
    /// Provider attributes beside `host=akash`.
    pub attributes: Vec<(String, String)>,
    /// Merged into the values last (objects key by key).
    pub extra_values: Value,
}

impl ChartRelease {
    /// Installs the chart and waits until the provider is registered on chain (and, with the
    /// tenant controller enabled in `extra_values`, until that runs too).
    pub async fn install(
        cluster: &crate::Cluster,
        node: &RealNode,
        devnet: &Devnet,
        p: ChartProvider<'_>,
    ) -> anyhow::Result<Self> {
        let secrets = Api::<Secret>::namespaced(cluster.client(), p.namespace);
        let key = Secret {
            metadata: ObjectMeta {
                name: Some("provider-key".into()),
                ..Default::default()
            },
            data: Some(
                [(
                    "mnemonic".to_owned(),
                    ByteString(p.mnemonic.as_bytes().to_vec()),
                )]
                .into(),
            ),
            ..Default::default()
        };
        secrets.create(&PostParams::default(), &key).await?;
        let (repository, tag) = real_node::provider_image()?;
        let scale = crate::market::scale_rates();
        let mut attributes = vec![json!({ "key": "host", "value": "akash" })];
        attributes.extend(
            p.attributes
                .iter()
                .map(|(k, v)| json!({ "key": k, "value": v })),
        );
        let mut values = json!({
            "image": { "repository": repository, "tag": tag },
            "key": { "existingSecret": "provider-key" },
            "chain": { "id": devnet.chain_id, "rpcUrl": devnet.rpc_url, "grpcUrl": devnet.grpc_url },
            "provider": {
                "name": p.namespace,
                "hostUri": format!("https://{}:{}", node.ip, p.gateway_node_port),
                "attributes": attributes,
                "pricing": { "strategy": "scale", "scale": {
                    "cpu": scale.cpu, "memory": scale.memory, "storage": scale.storage,
                    "endpoint": 0, "ip": 0,
                } },
            },
            "inventory": { "nodeSelector": { "type": "real" } },
            "workloads": { "ingress": { "namespace": "traefik" } },
            "gateway": { "service": { "type": "NodePort", "restNodePort": p.gateway_node_port } },
            "nodeSelector": { "type": "real" },
            "extraEnv": [{ "name": "AKASH_POLL_INTERVAL", "value": "200ms" }],
        });
        merge(&mut values, &p.extra_values);
        let dir = tempfile::tempdir()?;
        let file = dir.path().join("values.json");
        std::fs::write(&file, serde_json::to_vec_pretty(&values)?)?;
        let out = helm()
            .args(["install", p.release])
            .arg(crate::repo_dir().join("helm/akash-provider"))
            .args(["--namespace", p.namespace, "-f"])
            .arg(&file)
            .arg("--kubeconfig")
            .arg(cluster.kubeconfig())
            .output()?;
        let release = Self {
            name: p.release.to_owned(),
            namespace: p.namespace.to_owned(),
            kubeconfig: cluster.kubeconfig().to_path_buf(),
        };
        anyhow::ensure!(
            out.status.success(),
            "helm install {}: {}",
            p.release,
            String::from_utf8_lossy(&out.stderr)
        );
        let tenant = values["tenant"]["enabled"].as_bool() == Some(true);
        let full = if p.release.contains("akash-provider") {
            p.release.to_owned()
        } else {
            format!("{}-akash-provider", p.release)
        };
        let mut names = vec![full.clone()];
        if tenant {
            names.push(format!("{full}-tenant"));
        }
        let deployments = Api::<Deployment>::namespaced(cluster.client(), p.namespace);
        for name in names {
            until(
                &format!("Deployment {name} ready"),
                Duration::from_secs(180),
                || async {
                    let d = deployments.get(&name).await?;
                    let ready = d
                        .status
                        .as_ref()
                        .and_then(|s| s.ready_replicas)
                        .unwrap_or(0);
                    Ok(if ready >= 1 {
                        Poll::Ready(())
                    } else {
                        Poll::Pending(format!("{ready} ready"))
                    })
                },
            )
            .await?;
        }
        let providers = Api::<Provider>::all(cluster.client());
        until(
            &format!("provider {} registered", p.namespace),
            Duration::from_secs(120),
            || async {
                let provider = providers.get(p.namespace).await?;
                Ok(match provider.status.as_ref().map(|s| s.registered) {
                    Some(true) => Poll::Ready(()),
                    other => Poll::Pending(format!("registered {other:?}")),
                })
            },
        )
        .await?;
        Ok(release)
    }
}

/// Merges `patch` into `base`: objects key by key, anything else replaced.
fn merge(base: &mut Value, patch: &Value) {
    match (base, patch) {
        (Value::Object(a), Value::Object(b)) => {
            for (k, v) in b {
                merge(a.entry(k.clone()).or_insert(Value::Null), v);
            }
        }
        (a, b) => *a = b.clone(),
    }
}

impl Drop for ChartRelease {
    fn drop(&mut self) {
        let _ = helm()
            .args(["uninstall", &self.name, "--namespace", &self.namespace])
            .arg("--kubeconfig")
            .arg(&self.kubeconfig)
            .output();
    }
}
