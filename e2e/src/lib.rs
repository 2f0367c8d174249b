//! The end-to-end harness: a real control plane (kube-apiserver, etcd, controller-manager,
//! scheduler and kwok nodes, started by `deploy/cluster-up.sh`) and a temporary namespace per test.
//!
//! Set `AKASH_E2E_KUBECONFIG` to run against a control plane that is already up (CI does this);
//! otherwise the first test starts one with `deploy/cluster-up.sh`, which reuses a running one, and
//! leaves it running for the next test run (`deploy/cluster-down.sh` stops it).

pub mod attack;
pub mod bench;
pub mod binaries;
pub mod chaos;
pub mod chart;
mod cluster;
pub mod crds;
pub mod devnet;
pub mod idle_cost;
pub mod market;
pub mod marketplace;
mod namespace;
pub mod netns;
pub mod outage;
pub mod outside;
pub mod overlay;
pub mod overlay_world;
pub mod provider;
pub mod real_node;
pub mod scenario;
pub mod tenant;
pub mod turnup;
pub mod wait;

pub use cluster::{Cluster, repo_dir, tool_path};
pub use namespace::TestNamespace;

/// Logs to the test's output (shown on failure), once per test binary.
pub fn init_tracing() {
    use std::sync::Once;
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let _ = tracing_subscriber::fmt()
            .with_env_filter(
                tracing_subscriber::EnvFilter::try_from_default_env()
                    .unwrap_or_else(|_| "info,kube=warn,hyper=warn".into()),
            )
            .with_test_writer()
            .try_init();
    });
}
