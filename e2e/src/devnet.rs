//! A devnet process for one test: the real `akash-devnet` binary on a temporary home and free
//! loopback ports, stopped (SIGKILL) when dropped.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use anyhow::{Context, bail};

/// The test mnemonics the devnet funds at genesis, in its account order (see `akash-devnet`'s
/// banner). Public test keys: never fund them elsewhere.
pub use devnet::genesis::TEST_MNEMONICS;

/// A running devnet.
pub struct Devnet {
    child: Option<Child>,
    home: tempfile::TempDir,
    pub chain_id: String,
    pub rpc_url: String,
    pub grpc_url: String,
    block_time: String,
}

impl Devnet {
    /// Starts a fresh devnet with blocks every `block_time` (e.g. "200ms").
    pub fn start(chain_id: &str, block_time: &str) -> anyhow::Result<Self> {
        Self::start_on(chain_id, block_time, std::net::Ipv4Addr::LOCALHOST)
    }

    /// Starts a fresh devnet listening on `ip` (free ports): the real node's address, for
    /// providers and tenants that run as pods.
    pub fn start_on(
        chain_id: &str,
        block_time: &str,
        ip: std::net::Ipv4Addr,
    ) -> anyhow::Result<Self> {
        let home = tempfile::tempdir()?;
        let mut devnet = Self {
            child: None,
            home,
            chain_id: chain_id.to_owned(),
            rpc_url: String::new(),
            grpc_url: String::new(),
            block_time: block_time.to_owned(),
        };
        devnet.launch((format!("{ip}:0"), format!("{ip}:0")))?;
        Ok(devnet)
    }

    fn launch(&mut self, (rpc, grpc): (String, String)) -> anyhow::Result<()> {
        let log = std::fs::File::create(self.home.path().join("devnet.log"))?;
        let mut child = Command::new(crate::binaries::akash_devnet()?)
            .args([
                "start",
                "--chain-id",
                &self.chain_id,
                "--block-time",
                &self.block_time,
            ])
            .args(["--rpc-laddr", &rpc, "--grpc-laddr", &grpc])
            .arg("--home")
            .arg(self.home.path())
            .env("RUST_LOG", "info")
            .stdout(Stdio::piped())
            .stderr(log)
            .spawn()
            .context("starting akash-devnet")?;
        let mut out = BufReader::new(child.stdout.take().context("no stdout")?);
        let (mut rpc_url, mut grpc_addr) = (None, None);
        while grpc_addr.is_none() {
            let mut line = String::new();
            if out.read_line(&mut line)? == 0 {
                bail!(
                    "akash-devnet exited before printing its addresses; see {}",
                    self.log_path().display()
                );
            }
            if let Some(rest) = line.strip_prefix("CometBFT RPC") {
                rpc_url = Some(rest.trim().to_owned());
            }
            if let Some(rest) = line.strip_prefix("gRPC") {
                grpc_addr = Some(rest.trim().to_owned());
            }
        }
        // Keep draining stdout so the child never blocks on a full pipe.
        std::thread::spawn(move || for _ in out.lines() {});
        self.rpc_url = rpc_url.context("no CometBFT RPC line in the banner")?;
        self.grpc_url = format!("http://{}", grpc_addr.unwrap_or_default());
        self.child = Some(child);
        tracing::info!(rpc = %self.rpc_url, grpc = %self.grpc_url, "devnet started");
        Ok(())
    }

    /// SIGKILLs the node and starts it again on the same home and ports.
    pub fn restart(&mut self) -> anyhow::Result<()> {
        self.kill();
        let rpc = self.rpc_url.trim_start_matches("http://").to_owned();
        let grpc = self.grpc_url.trim_start_matches("http://").to_owned();
        // The ports were just freed; retry briefly in case the OS holds them a moment.
        for attempt in 0..20 {
            match self.launch((rpc.clone(), grpc.clone())) {
                Ok(()) => return Ok(()),
                Err(e) if attempt < 19 => {
                    tracing::warn!(error = %e, "devnet restart failed; retrying");
                    std::thread::sleep(Duration::from_millis(250));
                }
                Err(e) => return Err(e),
            }
        }
        unreachable!("the loop returns")
    }

    /// SIGKILL, as a crash would; [`Devnet::restart`] starts it again on the same home and ports.
    pub fn sigkill(&mut self) {
        self.kill();
    }

    fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    pub fn home(&self) -> &Path {
        self.home.path()
    }

    pub fn log_path(&self) -> PathBuf {
        self.home.path().join("devnet.log")
    }
}

impl Drop for Devnet {
    fn drop(&mut self) {
        self.kill();
    }
}
