//! An `akash-provider run` process for one test, against the shared control plane and a test's
//! devnet. Its log goes to a file the test prints on failure; it is SIGKILLed when dropped.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use anyhow::Context;

use crate::devnet::Devnet;

/// How to run the provider.
#[derive(Debug, Clone)]
pub struct ProviderOptions {
    pub namespace: String,
    pub provider_resource: String,
    pub mnemonic: String,
    /// Extra flags, such as `--deny-owner X` or `--storage-class beta2=100Gi`.
    pub extra_args: Vec<String>,
}

/// A running provider.
pub struct ProviderProcess {
    child: Option<Child>,
    dir: tempfile::TempDir,
    options: ProviderOptions,
    kubeconfig: PathBuf,
    chain: (String, String, String),
    pub metrics_addr: String,
    /// The gateway's REST and gRPC addresses (https).
    pub gateway_rest_addr: String,
    pub gateway_grpc_addr: String,
    starts: u32,
    /// This process's name in leader election: kept across restarts (as a pod's name is when
    /// its container restarts), distinct between processes.
    identity: String,
}

impl ProviderProcess {
    pub fn start(
        kubeconfig: &Path,
        devnet: &Devnet,
        options: ProviderOptions,
    ) -> anyhow::Result<Self> {
        Self::start_with_gateway(kubeconfig, devnet, options, None)
    }

    /// Starts with the REST gateway on `rest_port` (when the `Provider` resource's host URI
    /// must name it before the process starts).
    pub fn start_with_gateway(
        kubeconfig: &Path,
        devnet: &Devnet,
        options: ProviderOptions,
        rest_port: Option<u16>,
    ) -> anyhow::Result<Self> {
        let dir = tempfile::tempdir()?;
        let key_file = dir.path().join("mnemonic");
        std::fs::write(&key_file, &options.mnemonic)?;
        // As a mounted Secret would be: readable by its owner only.
        std::fs::set_permissions(
            &key_file,
            std::os::unix::fs::PermissionsExt::from_mode(0o600),
        )?;
        static INSTANCES: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let instance = INSTANCES.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let port = free_port()?;
        let rest_port = match rest_port {
            Some(p) => p,
            None => free_port()?,
        };
        let grpc_port = free_port()?;
        let mut process = Self {
            child: None,
            dir,
            options,
            kubeconfig: kubeconfig.to_path_buf(),
            chain: (
                devnet.chain_id.clone(),
                devnet.rpc_url.clone(),
                devnet.grpc_url.clone(),
            ),
            metrics_addr: format!("127.0.0.1:{port}"),
            gateway_rest_addr: format!("127.0.0.1:{rest_port}"),
            gateway_grpc_addr: format!("127.0.0.1:{grpc_port}"),
            starts: 0,
            identity: format!("e2e-provider-{}-{instance}", std::process::id()),
        };
        process.launch()?;
        Ok(process)
    }

    fn launch(&mut self) -> anyhow::Result<()> {
        self.starts += 1;
        let log = std::fs::File::create(self.log_path())?;
        let (chain_id, rpc, grpc) = &self.chain;
        let child = wrapped(crate::binaries::akash_provider()?)
            .arg("run")
            .arg("--key-file")
            .arg(self.dir.path().join("mnemonic"))
            .args(["--chain-id", chain_id, "--rpc-url", rpc, "--grpc-url", grpc])
            .args(["--namespace", &self.options.namespace])
            .args(["--provider-resource", &self.options.provider_resource])
            .args(["--metrics-addr", &self.metrics_addr])
            .args(["--gateway-rest-addr", &self.gateway_rest_addr])
            .args(["--gateway-grpc-addr", &self.gateway_grpc_addr])
            .args(["--poll-interval", "100ms", "--tx-timeout", "20s"])
            .args(node_selector(&self.options.extra_args))
            .args(&self.options.extra_args)
            .env("KUBECONFIG", &self.kubeconfig)
            .env("POD_NAME", &self.identity)
            .env("RUST_LOG", provider_log_filter())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .context("starting akash-provider run")?;
        self.child = Some(child);
        Ok(())
    }

    /// SIGKILL, as a crash or an OOM kill would.
    pub fn kill(&mut self) {
        kill_child(&mut self.child);
    }

    /// SIGKILL, then start again with the same settings.
    pub fn restart(&mut self) -> anyhow::Result<()> {
        self.kill();
        self.launch()
    }

    /// SIGKILL, then start again reaching the chain at `rpc` and `grpc` and the API server with
    /// `kubeconfig` (proxies a test can cut, for one).
    pub fn restart_via(&mut self, rpc: &str, grpc: &str, kubeconfig: &Path) -> anyhow::Result<()> {
        self.kill();
        self.chain.1 = rpc.to_owned();
        self.chain.2 = grpc.to_owned();
        self.kubeconfig = kubeconfig.to_path_buf();
        self.launch()
    }

    /// Starts it again if it exited (as the kubelet would); `true` when it did.
    pub fn restart_if_exited(&mut self) -> anyhow::Result<bool> {
        let exited = match self.child.as_mut() {
            Some(child) => child.try_wait()?.is_some(),
            None => true,
        };
        if exited {
            self.launch()?;
        }
        Ok(exited)
    }

    /// `/readyz`: its status code and body (`None`: no answer).
    pub async fn readyz(&self) -> Option<(u16, String)> {
        let response = reqwest::get(format!("http://{}/readyz", self.metrics_addr))
            .await
            .ok()?;
        let status = response.status().as_u16();
        Some((status, response.text().await.ok()?))
    }

    fn log_path(&self) -> PathBuf {
        self.dir
            .path()
            .join(format!("provider-{}.log", self.starts))
    }

    /// Every start's log so far, for a failing test's output.
    pub fn logs(&self) -> String {
        start_logs(self.dir.path(), "provider", self.starts)
    }

    /// The metrics text, when the endpoint answers.
    pub async fn metrics(&self) -> Option<String> {
        let url = format!("http://{}/metrics", self.metrics_addr);
        reqwest::get(url).await.ok()?.text().await.ok()
    }

    /// The running process's id.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(std::process::Child::id)
    }

    /// Whether the process is still running.
    pub fn running(&mut self) -> bool {
        self.child
            .as_mut()
            .is_some_and(|c| c.try_wait().ok().flatten().is_none())
    }

    /// SIGTERM, as Kubernetes stops a pod, then its exit status (SIGKILL after `limit`).
    pub fn terminate(&mut self, limit: Duration) -> anyhow::Result<std::process::ExitStatus> {
        let mut child = self.child.take().context("not running")?;
        let sent = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status()?;
        anyhow::ensure!(sent.success(), "kill -TERM failed");
        let start = std::time::Instant::now();
        while start.elapsed() < limit {
            if let Some(status) = child.try_wait()? {
                return Ok(status);
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = child.kill();
        let _ = child.wait();
        anyhow::bail!("still running {limit:?} after SIGTERM: killed")
    }

    /// The identity it runs the leader election as (`POD_NAME`).
    pub fn identity(&self) -> &str {
        &self.identity
    }
}

/// Lease workloads go to the kwok nodes unless a test chooses its nodes (`--node-selector
/// type=real` for the real node): the real node runs real containers, and the images most test
/// SDLs name are not there.
fn node_selector(extra_args: &[String]) -> Vec<&'static str> {
    if extra_args.iter().any(|a| a.starts_with("--node-selector")) {
        Vec::new()
    } else {
        vec!["--node-selector", "type=kwok"]
    }
}

/// SIGKILLs the child, if running, and reaps it.
pub(crate) fn kill_child(child: &mut Option<Child>) {
    if let Some(mut child) = child.take() {
        let _ = child.kill();
        let _ = child.wait();
    }
}

/// Every start's log so far: `<prefix>-<n>.log` in `dir`, for n in 1..=starts.
pub(crate) fn start_logs(dir: &Path, prefix: &str, starts: u32) -> String {
    (1..=starts)
        .map(|n| {
            let path = dir.join(format!("{prefix}-{n}.log"));
            format!(
                "--- start {n} ---\n{}",
                std::fs::read_to_string(path).unwrap_or_default()
            )
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// With `AKASH_E2E_LOG_DIR` set, writes a process's log to `<dir>/<test>/<name>.log`, so that a
/// failed run's logs can be read whole after it (a test's captured output may be cut short).
pub fn keep_log(name: &str, text: &str) {
    let Some(dir) = std::env::var_os("AKASH_E2E_LOG_DIR") else {
        return;
    };
    let test = std::thread::current()
        .name()
        .unwrap_or("unnamed")
        .replace("::", "-");
    let dir = PathBuf::from(dir).join(test);
    if std::fs::create_dir_all(&dir).is_ok() {
        let _ = std::fs::write(dir.join(format!("{name}.log")), text);
    }
}

/// A port nothing listens on right now, for a process the test starts next to listen on.
///
/// Taken from 21000–29999, below the kernel's ephemeral range (32768–60999): a port the kernel
/// hands out (port 0, or the source port of any outgoing connection) could be taken by another
/// test's connection between this check and the child's bind, and the child would fail with
/// "address in use". Each port is handed out once per test process.
pub fn free_port() -> std::io::Result<u16> {
    const FIRST: u32 = 21_000;
    const COUNT: u32 = 9_000;
    static NEXT: std::sync::OnceLock<std::sync::atomic::AtomicU32> = std::sync::OnceLock::new();
    let next = NEXT.get_or_init(|| {
        std::sync::atomic::AtomicU32::new(std::process::id().wrapping_mul(7_919) % COUNT)
    });
    for _ in 0..COUNT {
        let port = (FIRST + next.fetch_add(1, std::sync::atomic::Ordering::SeqCst) % COUNT) as u16;
        // Free on every address, so a child binding 0.0.0.0 or 127.0.0.1 finds it free too.
        if std::net::TcpListener::bind(("0.0.0.0", port)).is_ok() {
            return Ok(port);
        }
    }
    Err(std::io::Error::new(
        std::io::ErrorKind::AddrInUse,
        "no free port in 21000-29999",
    ))
}

impl Drop for ProviderProcess {
    fn drop(&mut self) {
        self.kill();
        // A test that fails by returning an error does not panic: AKASH_E2E_LOGS=1 shows them too.
        let logs = self.logs();
        keep_log(&format!("provider-{}", self.identity), &logs);
        if std::thread::panicking() || std::env::var_os("AKASH_E2E_LOGS").is_some() {
            eprintln!("akash-provider logs:\n{logs}");
        }
    }
}

/// A command running `binary`, under the profiler that `AKASH_E2E_PROVIDER_WRAPPER` names if set
/// (split on spaces, e.g. `heaptrack -o /tmp/provider`): a heap profile of the provider under a
/// bench's load. The wrapper must start the binary with its own argv, as heaptrack and `perf
/// record --` do, so that benches still find the provider's pid by its command line. The SIGKILL
/// that ends a test reaches the wrapper only: stop the provider itself afterwards
/// (`pkill -f 'akash-provider run'`).
fn wrapped(binary: PathBuf) -> Command {
    match std::env::var("AKASH_E2E_PROVIDER_WRAPPER") {
        Ok(wrapper) if !wrapper.trim().is_empty() => {
            let mut words = wrapper.split_whitespace();
            let mut cmd = Command::new(words.next().unwrap_or_default());
            cmd.args(words).arg(binary);
            cmd
        }
        _ => Command::new(binary),
    }
}

/// The providers' log filter: `AKASH_E2E_PROVIDER_LOG` if set (a `RUST_LOG` filter, e.g.
/// `info,operator::workload=debug` to follow every reconcile), else info without the HTTP stack.
fn provider_log_filter() -> String {
    std::env::var("AKASH_E2E_PROVIDER_LOG")
        .ok()
        .filter(|f| !f.trim().is_empty())
        .unwrap_or_else(|| "info,kube=warn,hyper=warn,tower=warn".into())
}
