//! What the end-to-end benchmarks (`e2e/benches/`) share: the `main` that only runs under
//! `cargo bench`, release builds of the binaries under test, fast-polling chain clients, and
//! percentiles.

use std::future::Future;
use std::process::ExitCode;
use std::time::Duration;

use chain_client::keys::{Key, Mnemonic};
use chain_client::node::{NodeChain, NodeConfig};
use chain_client::signer::SignerConfig;
use chain_client::tx::{FeePolicy, GasPrice};

use crate::devnet::Devnet;

/// Runs `run` on a two-thread runtime when invoked by `cargo bench` (which passes `--bench`; `cargo
/// test --benches` does not, and then the bench only builds), stopping on Ctrl-C; then `cleanup`,
/// whatever happened.
pub fn main<R, C>(name: &str, run: impl FnOnce() -> R, cleanup: impl FnOnce() -> C) -> ExitCode
where
    R: Future<Output = anyhow::Result<()>>,
    C: Future<Output = ()>,
{
    if !std::env::args().any(|a| a == "--bench") {
        println!("{name}: run it with `cargo bench -p e2e --bench {name}`");
        return ExitCode::SUCCESS;
    }
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "warn,kube=error".into()),
        )
        .with_writer(std::io::stderr)
        .try_init();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("{name}: no tokio runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let outcome = runtime.block_on(async {
        tokio::select! {
            result = run() => result,
            // Dropping `run` deletes what it created and kills the processes (their `Drop`s).
            _ = tokio::signal::ctrl_c() => Err(anyhow::anyhow!("interrupted")),
        }
    });
    runtime.block_on(cleanup());
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("{name} failed: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// Builds `akash-provider` and `akash-devnet` with the bench's profile (`crate::binaries` takes
/// them from the directory the bench binary runs from, `<target>/release/` under `cargo bench`).
/// Returns the profile's name.
pub fn build_binaries() -> anyhow::Result<String> {
    crate::binaries::akash_provider()?;
    crate::binaries::akash_devnet()?;
    crate::binaries::profile()
}

/// A chain client for a test mnemonic that notices its transaction's block within 20 ms.
pub fn client(
    devnet: &Devnet,
    mnemonic: &str,
    request_timeout: Duration,
) -> anyhow::Result<NodeChain> {
    let key = Key::from_mnemonic(&Mnemonic::from_phrase(mnemonic)?)?;
    let mut signer = SignerConfig::new(
        devnet.chain_id.clone(),
        FeePolicy::new(GasPrice::parse("0.025uakt")?),
    );
    signer.poll_interval = Duration::from_millis(20);
    signer.inclusion_timeout = Duration::from_secs(60);
    Ok(NodeChain::new(
        key,
        NodeConfig {
            grpc_url: devnet.grpc_url.clone(),
            rpc_url: devnet.rpc_url.clone(),
            request_timeout,
            signer,
            follow: Default::default(),
        },
    )?)
}

/// Nearest-rank percentile (`p` in 0..=1); 0 for no samples.
pub fn percentile(samples: &[f64], p: f64) -> f64 {
    if samples.is_empty() {
        return 0.0;
    }
    let mut sorted = samples.to_vec();
    sorted.sort_by(f64::total_cmp);
    let rank = ((p * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1]
}

/// Pods a kwok node of [`add_kwok_nodes`] (and each CPU node of deploy/nodes.yaml) holds.
pub const PODS_PER_KWOK_NODE: usize = 110;

/// Adds kwok nodes like deploy/nodes.yaml's CPU nodes (16 CPU, 64 GiB, 110 pods, named
/// `kwok-bench-<i>`) until the nodes hold `pods` pods (the three of nodes.yaml hold 330); returns
/// the names of those it created, for the bench's cleanup to delete.
pub async fn add_kwok_nodes(client: &kube::Client, pods: usize) -> anyhow::Result<Vec<String>> {
    use anyhow::Context;
    use k8s_openapi::api::core::v1::Node;
    use kube::api::{Api, PostParams};
    let needed = pods.div_ceil(PODS_PER_KWOK_NODE).saturating_sub(3);
    let api: Api<Node> = Api::all(client.clone());
    let mut created = Vec::new();
    for i in 0..needed {
        let name = format!("kwok-bench-{i}");
        let node: Node = serde_json::from_value(serde_json::json!({
            "apiVersion": "v1",
            "kind": "Node",
            "metadata": {
                "name": name,
                "annotations": {
                    "node.alpha.kubernetes.io/ttl": "0",
                    "kwok.x-k8s.io/node": "fake",
                },
                "labels": {
                    "kubernetes.io/arch": "amd64",
                    "kubernetes.io/os": "linux",
                    "kubernetes.io/hostname": name,
                    "node-role.kubernetes.io/agent": "",
                    "type": "kwok",
                    "akash.network": "true",
                    "akash.network/capabilities.storage.class.default": "1",
                    "akash.network/capabilities.storage.class.beta2": "1",
                },
            },
            "status": {
                "capacity": {"cpu": "16", "memory": "64Gi", "pods": "110", "ephemeral-storage": "500Gi"},
                "allocatable": {"cpu": "16", "memory": "64Gi", "pods": "110", "ephemeral-storage": "500Gi"},
                "nodeInfo": {
                    "architecture": "amd64", "operatingSystem": "linux", "kubeletVersion": "fake",
                    "kernelVersion": "fake", "osImage": "kwok",
                },
            },
        }))?;
        match api.create(&PostParams::default(), &node).await {
            Ok(_) => {}
            Err(kube::Error::Api(e)) if e.code == 409 => {}
            Err(e) => return Err(e).with_context(|| format!("creating node {name}")),
        }
        created.push(name);
    }
    Ok(created)
}

/// Deletes the nodes [`add_kwok_nodes`] created (errors ignored: cleanup).
pub async fn delete_nodes(client: &kube::Client, names: &[String]) {
    let api: kube::Api<k8s_openapi::api::core::v1::Node> = kube::Api::all(client.clone());
    for n in names {
        let _ = api.delete(n, &Default::default()).await;
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn nearest_rank_percentiles() {
        let samples = [5.0, 1.0, 4.0, 2.0, 3.0];
        assert_eq!(super::percentile(&samples, 0.5), 3.0);
        assert_eq!(super::percentile(&samples, 0.99), 5.0);
        assert_eq!(super::percentile(&samples, 0.0), 1.0);
        assert_eq!(super::percentile(&[], 0.5), 0.0);
    }
}
