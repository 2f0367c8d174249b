//! The chaos soak (issue 16): deployments go through their whole life (order → bid → lease →
//! manifest → running → update → close) on two providers and the tenant controller while a
//! driver SIGKILLs, one at a time, a provider, the tenant controller, the devnet, the API server
//! or etcd, and starts it again. At the end the invariants are checked against the chain and the
//! cluster; a seed fixes the kill schedule (which process, how long between kills, how long it
//! stays down), so a failing run can be repeated.
//!
//! Each deployment has two groups, one pinned to each provider (`site: p0` / `site: p1`), so a
//! deployment is two lease lifecycles.

mod check;
mod control_plane;
mod driver;
mod lifecycle;
mod schedule;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use crds::resources::Lease;
use kube::Api;

pub use check::Invariants;
pub use control_plane::ControlPlaneProcess;
pub use lifecycle::{Lifecycle, sdl};
pub use schedule::{Kill, SeededRng, Victim, schedule};

use check::check;
use driver::{Targets, drive};
use lifecycle::lifecycles;

use crate::marketplace::{Marketplace, SiteSpec};

/// How a soak runs.
#[derive(Debug, Clone)]
pub struct SoakConfig {
    /// Fixes the kill schedule.
    pub seed: u64,
    /// Deployments lived through without kills first: the baseline.
    pub baseline: usize,
    /// Deployments lived through while the driver kills (two leases each).
    pub deployments: usize,
    /// Deployments in flight at once.
    pub concurrency: usize,
    /// The driver keeps killing until both the deployments are through and this many kills
    /// were made.
    pub min_kills: usize,
    /// Between two kills: a pause drawn from this range.
    pub pause: (Duration, Duration),
    /// How long a killed process stays down: drawn from this range.
    pub down: (Duration, Duration),
}

/// `CHAOS_SEED` when set, else one from the clock (printed with the report, to repeat a run).
pub fn seed_from_env() -> u64 {
    std::env::var("CHAOS_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(1, |d| d.as_micros() as u64)
        })
}

/// Everything a soak found.
#[derive(Debug, Default)]
pub struct SoakReport {
    pub seed: u64,
    pub baseline: Vec<Lifecycle>,
    pub lifecycles: Vec<Lifecycle>,
    pub kills: BTreeMap<String, usize>,
    pub restarts_after_exit: usize,
    pub invariants: Invariants,
    pub took: Duration,
}

impl SoakReport {
    /// The report as the bench and the test print it.
    pub fn table(&self) -> String {
        let mut out = format!(
            "chaos soak, seed {} (CHAOS_SEED={} repeats the kill schedule), {:.0} s\n",
            self.seed,
            self.seed,
            self.took.as_secs_f64()
        );
        let kills: usize = self.kills.values().sum();
        out.push_str(&format!(
            "lease lifecycles: {} ({} deployments x 2 groups); kills: {kills} ({}); restarts after a process exited by itself: {}\n",
            self.lifecycles.len() * 2,
            self.lifecycles.len(),
            self.kills
                .iter()
                .map(|(k, n)| format!("{k} {n}"))
                .collect::<Vec<_>>()
                .join(", "),
            self.restarts_after_exit,
        ));
        let p50 = |l: &[Lifecycle]| {
            let mut t: Vec<f64> = l
                .iter()
                .filter_map(|c| c.took)
                .map(|d| d.as_secs_f64())
                .collect();
            t.sort_by(f64::total_cmp);
            t.get(t.len() / 2).copied()
        };
        out.push_str(&format!(
            "deployment lifecycle p50: {} without kills (baseline, {} deployments), {} with kills\n",
            p50(&self.baseline).map_or("-".into(), |s| format!("{s:.1} s")),
            self.baseline.len(),
            p50(&self.lifecycles).map_or("-".into(), |s| format!("{s:.1} s")),
        ));
        for (what, n) in self.invariants.counts() {
            out.push_str(&format!("  {what:<34} {n}\n"));
        }
        for detail in &self.invariants.details {
            out.push_str(&format!("  - {detail}\n"));
        }
        out
    }
}

/// The soak: starts the marketplace, lives through the baseline, then through the deployments
/// while the driver kills, then checks the invariants.
pub async fn soak(config: &SoakConfig) -> anyhow::Result<SoakReport> {
    let started = Instant::now();
    let specs = [
        SiteSpec::nth(0, 1.0).with_attribute("site", "p0"),
        SiteSpec::nth(1, 1.0).with_attribute("site", "p1"),
    ];
    let mut m = Marketplace::start_sites("chaos", &specs, &[]).await?;
    let cluster = crate::Cluster::shared().await?;
    let mut report = SoakReport {
        seed: config.seed,
        ..SoakReport::default()
    };
    let manifests = m.manifests();
    let leases: Vec<Api<Lease>> = m.sites.iter().map(|s| s.ns.api()).collect();
    let first_dseq = crate::market::unique_dseq(0) * 10;

    report.baseline = lifecycles(
        &manifests,
        &leases,
        first_dseq,
        config.baseline,
        config.concurrency,
        "calm",
    )
    .await;

    let plan = schedule(config.seed, config.min_kills.max(1) * 20, config);
    let done = AtomicBool::new(false);
    let mut targets = Targets {
        apiserver: ControlPlaneProcess::find(cluster.kubeconfig(), "kube-apiserver")?,
        etcd: ControlPlaneProcess::find(cluster.kubeconfig(), "etcd")?,
        client: cluster.client(),
        m: &mut m,
    };
    let chaos_dseq = first_dseq + config.baseline as u64;
    let (lived, driven) = tokio::join!(
        async {
            let lived = lifecycles(
                &manifests,
                &leases,
                chaos_dseq,
                config.deployments,
                config.concurrency,
                "chaos",
            )
            .await;
            done.store(true, Ordering::SeqCst);
            lived
        },
        drive(&mut targets, &plan, &done, config.min_kills, &mut report)
    );
    driven?;
    targets
        .wait_api("the API server after the last kill")
        .await?;
    report.lifecycles = lived;

    let all: Vec<&Lifecycle> = report.baseline.iter().chain(&report.lifecycles).collect();
    report.invariants = check(&m, &cluster, &all).await?;
    report.took = started.elapsed();
    // Whole logs for a failed run.
    for (i, site) in m.sites.iter().enumerate() {
        crate::provider::keep_log(&format!("chaos-provider-{i}"), &site.process.logs());
    }
    Ok(report)
}
