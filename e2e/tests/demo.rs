//! `deploy/demo.sh`, the one-command demo, end to end: with this run's debug binaries
//! (`DEMO_REUSE_BUILD`), the shared control plane (`DEMO_KUBECONFIG`), namespaces, ports, a state
//! directory and a dseq of its own, so that it runs beside the other tests. The demo installs the
//! chart; with the real node it runs the provider and the tenant controller as the chart's pods
//! and its output ends with the tenant's app answering through the ingress controller (kwok only:
//! it runs them on this machine with the chart's ServiceAccount tokens). Its output must show the
//! lease and the Running Manifest with an endpoint. `demo.sh down` must then stop everything it
//! started and remove what it installed.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use anyhow::{Context, ensure};
use e2e::market::unique_dseq;
use e2e::provider::free_port;

/// The demo's settings for this test.
struct Demo {
    dir: tempfile::TempDir,
    env: BTreeMap<&'static str, String>,
    stopped: bool,
}

impl Demo {
    fn new(kubeconfig: &Path, bin_dir: &Path) -> anyhow::Result<Self> {
        let dir = tempfile::tempdir()?;
        let id = std::process::id();
        let mut env = BTreeMap::from([
            ("DEMO_REUSE_BUILD", "1".to_owned()),
            ("DEMO_BIN_DIR", bin_dir.display().to_string()),
            ("DEMO_KUBECONFIG", kubeconfig.display().to_string()),
            ("DEMO_DIR", dir.path().display().to_string()),
            ("DEMO_NAMESPACE", format!("e2e-demo-{id}")),
            ("DEMO_TENANT_NAMESPACE", format!("e2e-demo-tenant-{id}")),
            ("DEMO_BLOCK_TIME", "200ms".to_owned()),
            ("DEMO_DSEQ", unique_dseq(97).to_string()),
            ("DEMO_TIMEOUT", "150".to_owned()),
            // Apart from the node ports other tests pick (30000 to 32399).
            ("DEMO_GATEWAY_NODE_PORT", (32400 + id % 300).to_string()),
        ]);
        for port in [
            "DEMO_RPC_PORT",
            "DEMO_GRPC_PORT",
            "DEMO_GATEWAY_PORT",
            "DEMO_GATEWAY_GRPC_PORT",
            "DEMO_METRICS_PORT",
            "DEMO_TENANT_METRICS_PORT",
        ] {
            env.insert(port, free_port()?.to_string());
        }
        Ok(Self {
            dir,
            env,
            stopped: false,
        })
    }

    fn run(&self, args: &[&str]) -> anyhow::Result<Output> {
        Command::new("bash")
            .arg(e2e::repo_dir().join("deploy/demo.sh"))
            .args(args)
            .envs(&self.env)
            .output()
            .context("running deploy/demo.sh")
    }

    fn pid_file(&self, name: &str) -> PathBuf {
        self.dir.path().join("pids").join(name)
    }

    fn logs(&self) -> String {
        ["devnet", "provider", "tenant"]
            .iter()
            .map(|name| {
                let text = std::fs::read_to_string(self.dir.path().join(format!("{name}.log")))
                    .unwrap_or_default();
                let tail: Vec<_> = text.lines().rev().take(40).collect();
                let tail: Vec<_> = tail.into_iter().rev().collect();
                format!("--- {name}.log ---\n{}", tail.join("\n"))
            })
            .collect::<Vec<_>>()
            .join("\n")
    }
}

impl Drop for Demo {
    /// A failed test still stops what the demo started.
    fn drop(&mut self) {
        if !self.stopped {
            eprintln!("{}", self.logs());
            let _ = self.run(&["down"]);
        }
    }
}

fn text(out: &Output) -> String {
    format!(
        "exit {}\n--- stdout ---\n{}\n--- stderr ---\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Whether `pid` is a live process (a zombie has an empty command line).
fn alive(pid: u32) -> bool {
    std::fs::read(format!("/proc/{pid}/cmdline")).is_ok_and(|c| !c.is_empty())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_demo_shows_a_lease_and_a_running_manifest_with_an_endpoint_and_down_stops_it()
-> anyhow::Result<()> {
    let cluster = e2e::Cluster::shared().await?;
    let provider = e2e::binaries::akash_provider()?;
    let devnet = e2e::binaries::akash_devnet()?;
    ensure!(provider.parent() == devnet.parent());
    let mut demo = Demo::new(
        cluster.kubeconfig(),
        provider.parent().context("no binary directory")?,
    )?;
    let ns = demo.env["DEMO_NAMESPACE"].clone();
    let tenant_ns = demo.env["DEMO_TENANT_NAMESPACE"].clone();
    let dseq = demo.env["DEMO_DSEQ"].clone();

    let pods = e2e::real_node::RealNode::get(&cluster).await.is_ok();
    let up = demo.run(&[])?;
    let out = text(&up);
    ensure!(up.status.success(), "deploy/demo.sh failed: {out}");
    let stdout = String::from_utf8_lossy(&up.stdout);
    // The lease, in the chart's namespace, on the demo's dseq, Active.
    assert!(
        stdout.lines().any(|l| l.starts_with(&format!("{ns} "))
            && l.contains(&format!("-{dseq}-1-1"))
            && l.contains("Active")),
        "no Active lease of the demo: {out}"
    );
    // The Manifest, Running, and its service's endpoint.
    assert!(
        stdout
            .lines()
            .any(|l| l.starts_with("demo ") && l.contains("Running") && l.contains(&dseq)),
        "no Running Manifest: {out}"
    );
    let service = if pods { "web" } else { "openspeedtest" };
    assert!(
        stdout
            .lines()
            .any(|l| l.starts_with(&format!("service {service}: ready 1/1"))
                && l.contains(".ingress.localhost")),
        "no endpoint: {out}"
    );
    if pods {
        // The app answered through the ingress controller, and the demo printed its answer.
        assert!(
            stdout.lines().any(|l| l == "Hello from your Akash lease"),
            "no answer from the app: {out}"
        );
    }
    let stderr = String::from_utf8_lossy(&up.stderr);
    for progress in ["Manifest demo: Bidding", "Manifest demo: Running"] {
        assert!(
            stderr.contains(progress),
            "no progress line {progress:?}: {out}"
        );
    }

    // A second start while it runs says so and changes nothing. (With the real node only the
    // devnet is a process of the demo; the others are the chart's pods.)
    let processes: &[&str] = if pods {
        &["devnet"]
    } else {
        &["devnet", "provider", "tenant"]
    };
    let pids: Vec<u32> = processes
        .iter()
        .map(|n| -> anyhow::Result<u32> {
            Ok(std::fs::read_to_string(demo.pid_file(n))?.trim().parse()?)
        })
        .collect::<anyhow::Result<_>>()?;
    assert!(pids.iter().all(|p| alive(*p)), "{pids:?}");
    let again = demo.run(&[])?;
    ensure!(again.status.success(), "{}", text(&again));
    assert!(
        String::from_utf8_lossy(&again.stderr).contains("already running"),
        "{}",
        text(&again)
    );

    let down = demo.run(&["down"])?;
    demo.stopped = true;
    ensure!(
        down.status.success(),
        "deploy/demo.sh down: {}",
        text(&down)
    );
    let still: Vec<_> = pids.iter().filter(|p| alive(**p)).collect();
    assert!(
        still.is_empty(),
        "still running: {still:?}: {}",
        text(&down)
    );
    assert!(!demo.dir.path().join("state.env").exists());
    assert!(!demo.dir.path().join("provider.mnemonic").exists());
    for namespace in [&ns, &tenant_ns] {
        let get = cluster
            .kubectl()
            .args([
                "get",
                "namespace",
                namespace,
                "--ignore-not-found",
                "-o",
                "name",
            ])
            .output()?;
        ensure!(get.status.success(), "{}", text(&get));
        assert!(
            get.stdout.is_empty(),
            "namespace {namespace} left: {}",
            text(&down)
        );
    }
    let provider = cluster
        .kubectl()
        .args([
            "get",
            "providers.akash.network",
            &ns,
            "--ignore-not-found",
            "-o",
            "name",
        ])
        .output()?;
    assert!(provider.stdout.is_empty(), "the Provider resource is left");
    Ok(())
}
