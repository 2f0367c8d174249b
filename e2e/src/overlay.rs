//! An `akash-provider overlay` sidecar process for one test, optionally inside a network
//! namespace (`ip netns exec`). Its log goes to a file the test prints on failure; it is
//! SIGKILLed when dropped.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use anyhow::Context;

use crate::devnet::Devnet;

/// How to run the sidecar.
#[derive(Debug, Clone)]
pub struct OverlayOptions {
    /// The network namespace to run in (none: the host's).
    pub netns: Option<String>,
    /// The provider's namespace (its `Lease` resources and certificate Secret).
    pub namespace: String,
    pub pod_ip: String,
    pub listen: String,
    /// The serving side's target template.
    pub target: String,
    pub extra_args: Vec<String>,
    /// Extra environment (such as `WG_USERSPACE_IMPLEMENTATION`).
    pub env: Vec<(String, String)>,
}

/// A running sidecar.
pub struct OverlayProcess {
    child: Option<Child>,
    dir: tempfile::TempDir,
    options: OverlayOptions,
    kubeconfig: PathBuf,
    chain: (String, String, String),
    /// `/metrics` (on the namespace's loopback when it runs in one).
    pub metrics_addr: String,
    starts: u32,
}

impl OverlayProcess {
    pub fn start(
        kubeconfig: &Path,
        devnet: &Devnet,
        options: OverlayOptions,
    ) -> anyhow::Result<Self> {
        // No key file: the sidecar knows the provider by its certificate Secret alone.
        let dir = tempfile::tempdir()?;
        let metrics_addr = format!("127.0.0.1:{}", crate::provider::free_port()?);
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
            metrics_addr,
            starts: 0,
        };
        process.launch()?;
        Ok(process)
    }

    fn launch(&mut self) -> anyhow::Result<()> {
        self.starts += 1;
        let log = std::fs::File::create(self.log_path())?;
        let binary = crate::binaries::akash_provider()?;
        let mut command = match &self.options.netns {
            Some(ns) => {
                let mut c = Command::new("ip");
                c.args(["netns", "exec", ns]).arg(binary);
                c
            }
            None => Command::new(binary),
        };
        let (chain_id, rpc, grpc) = &self.chain;
        let child = command
            .arg("overlay")
            .args(["--chain-id", chain_id, "--rpc-url", rpc, "--grpc-url", grpc])
            .args(["--namespace", &self.options.namespace])
            .args(["--pod-ip", &self.options.pod_ip])
            .args(["--listen", &self.options.listen])
            .args(["--target", &self.options.target])
            .args(["--metrics-addr", &self.metrics_addr])
            .args(["--interval", "500ms", "--poll-interval", "100ms"])
            .args(&self.options.extra_args)
            .envs(self.options.env.iter().map(|(k, v)| (k, v)))
            .env("KUBECONFIG", &self.kubeconfig)
            .env("RUST_LOG", "info,kube=warn,hyper=warn,tower=warn")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .context("starting akash-provider overlay")?;
        self.child = Some(child);
        Ok(())
    }

    /// SIGKILL, as a crash would.
    pub fn kill(&mut self) {
        crate::provider::kill_child(&mut self.child);
    }

    /// SIGKILL, then start again with the same settings.
    pub fn restart(&mut self) -> anyhow::Result<()> {
        self.kill();
        self.launch()
    }

    fn log_path(&self) -> PathBuf {
        self.dir.path().join(format!("overlay-{}.log", self.starts))
    }

    /// Every start's log so far.
    pub fn logs(&self) -> String {
        crate::provider::start_logs(self.dir.path(), "overlay", self.starts)
    }

    /// The metrics text (fetched from inside its network namespace), when it answers.
    pub fn metrics(&self) -> Option<String> {
        use std::io::{Read, Write};
        let addr: std::net::SocketAddr = self.metrics_addr.parse().ok()?;
        let mut conn = match &self.options.netns {
            Some(ns) => crate::netns::connect_in(ns, addr).ok()?,
            None => std::net::TcpStream::connect(addr).ok()?,
        };
        conn.write_all(b"GET /metrics HTTP/1.0\r\nHost: metrics\r\n\r\n")
            .ok()?;
        let mut text = String::new();
        conn.read_to_string(&mut text).ok()?;
        text.split_once("\r\n\r\n").map(|(_, body)| body.to_owned())
    }
}

impl Drop for OverlayProcess {
    fn drop(&mut self) {
        self.kill();
    }
}

/// The port of a URL such as `http://127.0.0.1:26657` or `https://127.0.0.1:6443/`.
pub fn url_port(url: &str) -> Option<u16> {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let host_port = rest.split('/').next()?;
    host_port.rsplit_once(':')?.1.parse().ok()
}

/// The port of the kube-apiserver a kubeconfig points at.
pub fn apiserver_port(kubeconfig: &Path) -> anyhow::Result<u16> {
    let text = std::fs::read_to_string(kubeconfig)?;
    let doc: serde_yaml::Value = serde_yaml::from_str(&text)?;
    let server = doc["clusters"][0]["cluster"]["server"]
        .as_str()
        .context("the kubeconfig names no server")?;
    url_port(server).with_context(|| format!("no port in server URL {server}"))
}

/// Bytes (received, sent) over all peers of userspace WireGuard interface `iface`, read from its
/// configuration socket: proof that traffic went through WireGuard.
pub fn wireguard_transfer(iface: &str) -> anyhow::Result<(u64, u64)> {
    use std::io::{BufRead, Write};
    let mut sock =
        std::os::unix::net::UnixStream::connect(format!("/var/run/wireguard/{iface}.sock"))
            .with_context(|| format!("opening the WireGuard socket of {iface}"))?;
    sock.write_all(b"get=1\n\n")?;
    let (mut rx, mut tx) = (0, 0);
    for line in std::io::BufReader::new(sock).lines() {
        let line = line?;
        if line.is_empty() {
            break;
        }
        match line.split_once('=') {
            Some(("rx_bytes", v)) => rx += v.parse::<u64>()?,
            Some(("tx_bytes", v)) => tx += v.parse::<u64>()?,
            _ => {}
        }
    }
    Ok((rx, tx))
}
