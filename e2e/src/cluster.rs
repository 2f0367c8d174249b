use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use anyhow::{Context, bail};
use kube::config::{KubeConfigOptions, Kubeconfig};

use crate::TestNamespace;

/// Environment variable naming the kubeconfig of a control plane that is already running.
pub const KUBECONFIG_ENV: &str = "AKASH_E2E_KUBECONFIG";

/// A connection to the shared control plane of this test run.
#[derive(Clone)]
pub struct Cluster {
    kubeconfig: PathBuf,
    client: kube::Client,
}

impl Cluster {
    /// Connects to the control plane named by `AKASH_E2E_KUBECONFIG`, or starts (or reuses) the
    /// local one with `deploy/cluster-up.sh`. Every test in a binary shares the same control plane.
    pub async fn shared() -> anyhow::Result<Self> {
        crate::init_tracing();
        let kubeconfig = shared_kubeconfig()?;
        let client = client_from(&kubeconfig).await?;
        Ok(Self { kubeconfig, client })
    }

    pub fn client(&self) -> kube::Client {
        self.client.clone()
    }

    pub fn kubeconfig(&self) -> &Path {
        &self.kubeconfig
    }

    /// A fresh namespace named `e2e-<prefix>-<unique>`, deleted when the value is dropped.
    pub async fn namespace(&self, prefix: &str) -> anyhow::Result<TestNamespace> {
        TestNamespace::create(self, prefix).await
    }

    /// `kubectl` against this control plane, from the binary cache that `deploy/` fills.
    pub fn kubectl(&self) -> Command {
        let mut cmd = Command::new(tool_path("kubectl"));
        cmd.arg("--kubeconfig").arg(&self.kubeconfig);
        cmd
    }
}

/// A client built from a kubeconfig file.
pub async fn client_from(kubeconfig: &Path) -> anyhow::Result<kube::Client> {
    let kc = Kubeconfig::read_from(kubeconfig)
        .with_context(|| format!("reading kubeconfig {}", kubeconfig.display()))?;
    let config = kube::Config::from_custom_kubeconfig(kc, &KubeConfigOptions::default())
        .await
        .with_context(|| format!("loading kubeconfig {}", kubeconfig.display()))?;
    Ok(kube::Client::try_from(config)?)
}

/// The repository root (the parent of this crate).
pub fn repo_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("e2e lives inside the workspace")
        .to_path_buf()
}

/// Path of a tool (`kubectl`, `helm`, ...) in the binary cache that `deploy/build-k8s.sh` fills.
pub fn tool_path(name: &str) -> PathBuf {
    let cache = std::env::var_os("AKASH_CACHE")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            let home = std::env::var_os("HOME").unwrap_or_else(|| "/root".into());
            PathBuf::from(home).join(".cache/akash-provider")
        });
    cache.join("bin").join(name)
}

fn shared_kubeconfig() -> anyhow::Result<PathBuf> {
    static KUBECONFIG: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    KUBECONFIG
        .get_or_init(|| find_or_start().map_err(|e| format!("{e:#}")))
        .clone()
        .map_err(anyhow::Error::msg)
}

fn find_or_start() -> anyhow::Result<PathBuf> {
    if let Some(path) = std::env::var_os(KUBECONFIG_ENV) {
        let path = PathBuf::from(path);
        if !path.is_file() {
            bail!("{KUBECONFIG_ENV}={} is not a file", path.display());
        }
        return Ok(path);
    }
    let script = repo_dir().join("deploy/cluster-up.sh");
    tracing::info!(
        "{KUBECONFIG_ENV} is not set; starting the local control plane with {}",
        script.display()
    );
    let out = Command::new("bash")
        .arg(&script)
        .stderr(std::process::Stdio::inherit())
        .output()
        .with_context(|| format!("running {}", script.display()))?;
    if !out.status.success() {
        bail!("{} failed ({})", script.display(), out.status);
    }
    let path = String::from_utf8(out.stdout)?
        .lines()
        .last()
        .map(|l| PathBuf::from(l.trim()))
        .context("cluster-up.sh printed no kubeconfig path")?;
    Ok(path)
}
