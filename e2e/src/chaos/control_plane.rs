//! Killing and restarting the control plane's own processes (etcd, kube-apiserver).

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::Context;

/// A control-plane process started by `deploy/cluster-up.sh`: found by its pid file, killed, and
/// started again with the command line it had (its new pid written back, for `cluster-down.sh`).
pub struct ControlPlaneProcess {
    name: &'static str,
    pid_file: PathBuf,
    log: PathBuf,
    command: Vec<String>,
}

impl ControlPlaneProcess {
    /// `name` (`etcd`, `kube-apiserver`) of the control plane whose kubeconfig is `kubeconfig`
    /// (its state directory is the kubeconfig's).
    pub fn find(kubeconfig: &Path, name: &'static str) -> anyhow::Result<Self> {
        let state = kubeconfig
            .parent()
            .context("the kubeconfig has no directory")?;
        let pid_file = state.join("cluster/pids").join(name);
        let pid = read_pid(&pid_file)?;
        let cmdline = std::fs::read(format!("/proc/{pid}/cmdline"))
            .with_context(|| format!("{name} (pid {pid}) is not running"))?;
        // NUL-terminated arguments; an empty one (`--listen-metrics-urls ""`) is an argument.
        let command: Vec<String> = cmdline
            .strip_suffix(&[0])
            .unwrap_or(&cmdline)
            .split(|b| *b == 0)
            .map(|a| String::from_utf8_lossy(a).into_owned())
            .collect();
        anyhow::ensure!(
            command.first().is_some_and(|c| c.ends_with(name)),
            "pid {pid} of {} is not {name}: {command:?}",
            pid_file.display()
        );
        Ok(Self {
            name,
            pid_file,
            log: state.join("cluster/logs").join(format!("{name}.log")),
            command,
        })
    }

    /// SIGKILL, and waits until the process is gone.
    pub fn kill(&self) -> anyhow::Result<()> {
        let pid = read_pid(&self.pid_file)?;
        let _ = Command::new("kill")
            .args(["-KILL", &pid.to_string()])
            .status()?;
        let start = Instant::now();
        while alive(pid) {
            anyhow::ensure!(
                start.elapsed() < Duration::from_secs(30),
                "{} (pid {pid}) still alive 30 s after SIGKILL",
                self.name
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(())
    }

    /// Starts it again, in a session of its own as `cluster-up.sh` does, logging to its log.
    pub fn start(&self) -> anyhow::Result<()> {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)?;
        let child = Command::new(&self.command[0])
            .args(&self.command[1..])
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .process_group(0)
            .spawn()
            .with_context(|| format!("starting {} again", self.name))?;
        let pid = child.id();
        std::fs::write(&self.pid_file, pid.to_string())?;
        tracing::info!(name = self.name, pid, "started again");
        // Not waited for: it outlives the soak, as it would have without the kill. A thread
        // reaps it if it exits while this process runs.
        let (exited_tx, exited) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut child = child;
            let _ = exited_tx.send(child.wait());
        });
        // A command line that does not start fails at once: say so, with its log's end.
        if let Ok(status) = exited.recv_timeout(Duration::from_millis(500)) {
            let log = std::fs::read_to_string(&self.log).unwrap_or_default();
            let tail: Vec<&str> = log.lines().rev().take(10).collect();
            anyhow::bail!(
                "{} exited at once ({status:?}): {}",
                self.name,
                tail.into_iter().rev().collect::<Vec<_>>().join("\n")
            );
        }
        Ok(())
    }
}

fn read_pid(file: &Path) -> anyhow::Result<u32> {
    std::fs::read_to_string(file)
        .with_context(|| format!("reading {}", file.display()))?
        .trim()
        .parse()
        .with_context(|| format!("{} holds no pid", file.display()))
}

/// Running and not a zombie.
fn alive(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => stat
            .rsplit_once(") ")
            .is_some_and(|(_, rest)| !rest.starts_with('Z')),
        Err(_) => false,
    }
}
