//! The driver: kills by the schedule, brings each process back, restarts those that exited.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::Namespace;
use kube::Api;

use super::SoakReport;
use super::control_plane::ControlPlaneProcess;
use super::lifecycle::tolerant;
use super::schedule::{Kill, Victim};
use crate::marketplace::Marketplace;
use crate::wait::{Poll, until};

/// The processes the driver kills, and what it needs to bring them back.
pub(super) struct Targets<'a> {
    pub(super) m: &'a mut Marketplace,
    pub(super) apiserver: ControlPlaneProcess,
    pub(super) etcd: ControlPlaneProcess,
    pub(super) client: kube::Client,
}

impl Targets<'_> {
    async fn kill(&mut self, victim: Victim) -> anyhow::Result<()> {
        match victim {
            Victim::Provider(i) => self.m.sites[i].process.kill(),
            Victim::TenantController => self.m.controller.kill(),
            Victim::Devnet => self.m.devnet.sigkill(),
            Victim::ApiServer => self.apiserver.kill()?,
            Victim::Etcd => self.etcd.kill()?,
        }
        Ok(())
    }

    async fn start(&mut self, victim: Victim) -> anyhow::Result<()> {
        match victim {
            Victim::Provider(i) => self.m.sites[i].process.restart()?,
            Victim::TenantController => self.m.controller.restart()?,
            Victim::Devnet => self.m.devnet.restart()?,
            Victim::ApiServer => {
                self.apiserver.start()?;
                self.wait_api("kube-apiserver back").await?;
            }
            Victim::Etcd => {
                self.etcd.start()?;
                self.wait_api("etcd back (a list through the API server)")
                    .await?;
            }
        }
        Ok(())
    }

    pub(super) async fn wait_api(&self, what: &str) -> anyhow::Result<()> {
        let namespaces = Api::<Namespace>::all(self.client.clone());
        until(what, Duration::from_secs(180), || {
            tolerant(async {
                namespaces
                    .list(&kube::api::ListParams::default().limit(1))
                    .await?;
                Ok(Poll::Ready(()))
            })
        })
        .await
    }

    /// Providers and the tenant controller that exited by themselves start again, as the
    /// kubelet would restart their containers.
    fn supervise(&mut self) -> anyhow::Result<usize> {
        let mut restarted = 0;
        for site in &mut self.m.sites {
            restarted += usize::from(site.process.restart_if_exited()?);
        }
        restarted += usize::from(self.m.controller.restart_if_exited()?);
        Ok(restarted)
    }
}

/// Kills by `plan` until `done` and `min_kills` reached (or the plan ends).
pub(super) async fn drive(
    targets: &mut Targets<'_>,
    plan: &[Kill],
    done: &AtomicBool,
    min_kills: usize,
    report: &mut SoakReport,
) -> anyhow::Result<()> {
    for (n, kill) in plan.iter().enumerate() {
        if done.load(Ordering::SeqCst) && n >= min_kills {
            break;
        }
        // The pause, watching for processes that exited.
        let until_kill = Instant::now() + kill.after;
        while Instant::now() < until_kill {
            report.restarts_after_exit += targets.supervise()?;
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        tracing::info!(kill = n + 1, victim = %kill.victim.name(), down = ?kill.down, "chaos: SIGKILL");
        targets.kill(kill.victim).await?;
        *report.kills.entry(kill.victim.name()).or_default() += 1;
        tokio::time::sleep(kill.down).await;
        targets.start(kill.victim).await?;
    }
    report.restarts_after_exit += targets.supervise()?;
    Ok(())
}
