//! Manifest-to-ready latency at 100 and 1,000 active leases, and the provider's memory (issue 7:
//! "A benchmark prints manifest-to-ready latency (p50, p99) with 100 and 1,000 active leases, and
//! the operator's memory").
//!
//! `cargo bench -p e2e --bench manifest_ready` runs the real provider (built with the bench's
//! profile, as `bid_latency` does) against the shared control plane and a fresh `akash-devnet`
//! with 500 ms blocks, and prints a table at the end. Settings, from the environment:
//! - `BENCH_LEASES`: the lease counts to reach, in order (default `100,1000`);
//! - `BENCH_BLOCK_TIME`: the devnet's block time (default `500ms`);
//! - `BENCH_CONCURRENCY`: manifests in flight at once (default 32);
//! - `BENCH_PROVIDER_LOG`: a file to copy the provider's log to;
//! - `BENCH_IDLE_SECS`: how long each step then waits with nothing changing (default 60), counting
//!   the API server's requests for `akash.network` resources and the provider's CPU time (the
//!   idle cost; the floor is no LIST at all).
//!
//! Each step brings the provider from the previous count to N active leases: three tenants post
//! the deployments (many `MsgCreateDeployment` per transaction), wait for the provider's bids,
//! lease them (many `MsgCreateLease` per transaction), then send the manifests over mTLS to the
//! gateway, `BENCH_CONCURRENCY` at a time. *Manifest-to-ready* runs from the gateway's 200 to the
//! first time a watch of the `Lease` resources shows the lease `Active`; the
//! percentiles of a step are over that step's new leases (the first step's 100, then the 900 sent
//! while 100 to 1,000 leases were active). *Objects applied* (issue 18's target 1) runs from the
//! same 200 to the first time a watch of the lease namespaces' Ingresses shows the lease's: the
//! provider applies the Ingress last, after the namespace, quota, policies, Service and
//! Deployment (0 when it was applied before the tenant read the 200). Memory is the provider process's `VmRSS` once the step's
//! leases are all active, and its peak `VmHWM` so far (from `/proc/<pid>/status`).
//!
//! The kwok nodes of `deploy/nodes.yaml` hold 330 pods; the bench adds kwok nodes like them
//! (`kwok-bench-<i>`, 110 pods each) for the largest N, and deletes them, and the lease
//! namespaces, at the end.

use std::collections::{BTreeMap, HashMap};
use std::process::ExitCode;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use chain_client::Chain;
use chain_client::akash::market::v1 as mv1;
use chain_client::akash::market::v1beta5::MsgCreateLease;
use chain_client::chain::{BidFilters, PageRequest};
use chain_client::node::NodeChain;
use crds::resources::{Lease, LeasePhase};
use e2e::devnet::{Devnet, TEST_MNEMONICS};
use e2e::market::{ProviderResource, certificate, object_name};
use e2e::provider::{ProviderOptions, ProviderProcess};
use futures::StreamExt;
use k8s_openapi::api::core::v1::{Namespace, Node};
use k8s_openapi::api::networking::v1::Ingress;
use kube::api::DeleteParams;
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, ResourceExt};
use operator::gateway::client::rest_client;

/// The devnet's test account the provider signs with.
const PROVIDER_KEY: usize = 1;
/// The tenants: every other test account.
const TENANT_KEYS: [usize; 3] = [2, 0, 3];
/// Messages per tenant transaction.
const MSGS_PER_TX: usize = 50;

/// A tiny deployment: 0.01 CPU, 32 MiB memory and storage, one global port 80. At the Provider
/// resource's scale rates (1 uact per millicore and per MiB) it is priced 10 + 32 + 32 = 74 uact.
const SDL: &str = r#"---
version: "2.0"
services:
  web:
    image: nginx:1.27
    expose:
      - port: 80
        as: 80
        to:
          - global: true
profiles:
  compute:
    web:
      resources:
        cpu:
          units: 0.01
        memory:
          size: 32Mi
        storage:
          size: 32Mi
  placement:
    akash:
      pricing:
        web:
          denom: uact
          amount: 10000
deployment:
  web:
    akash:
      profile: web
      count: 1
"#;

fn main() -> ExitCode {
    e2e::bench::main("manifest_ready", run, cleanup)
}

pub struct Settings {
    pub block_time: String,
    pub leases: Vec<usize>,
    pub concurrency: usize,
    pub idle: Duration,
}

impl Settings {
    fn from_env() -> anyhow::Result<Self> {
        let var =
            |name: &str, default: &str| std::env::var(name).unwrap_or_else(|_| default.to_owned());
        let leases = var("BENCH_LEASES", "100,1000")
            .split(',')
            .map(|n| {
                n.trim()
                    .parse()
                    .with_context(|| format!("BENCH_LEASES={n:?}"))
            })
            .collect::<anyhow::Result<Vec<usize>>>()?;
        if leases.windows(2).any(|w| w[0] >= w[1]) || leases.is_empty() {
            bail!("BENCH_LEASES: increasing counts, e.g. 100,1000");
        }
        let idle_secs: u64 = var("BENCH_IDLE_SECS", "60")
            .parse()
            .context("BENCH_IDLE_SECS")?;
        Ok(Self {
            idle: Duration::from_secs(idle_secs),
            block_time: var("BENCH_BLOCK_TIME", "500ms"),
            leases,
            concurrency: var("BENCH_CONCURRENCY", "32")
                .parse()
                .context("BENCH_CONCURRENCY")?,
        })
    }
}

/// What the cleanup deletes: the added nodes and the lease namespaces.
static CREATED: Mutex<(Vec<String>, Vec<String>, Option<kube::Client>)> =
    Mutex::new((Vec::new(), Vec::new(), None));

struct Tenant {
    chain: NodeChain,
    http: reqwest::Client,
    next_dseq: u64,
}

/// One step's figures: the leases it brought up and what that took.
pub struct Step {
    pub leases: usize,
    pub new: usize,
    setup_secs: f64,
    manifests_secs: f64,
    pub latencies_ms: Vec<f64>,
    /// From the gateway's 200 to the lease's Ingress (applied last) seen by a watch.
    pub applied_ms: Vec<f64>,
    /// From each manifest's first PUT to the gateway's 200 (retries of a 404 or 5xx included).
    pub answers_ms: Vec<f64>,
    pub failed: usize,
    pub rss_kib: u64,
    hwm_kib: u64,
    /// The provider's own API-server requests from the first manifest sent to the last lease
    /// Active, by verb and resource (its `akash_provider_kube_requests_total`).
    pub requests: BTreeMap<String, f64>,
    pub idle: Option<e2e::idle_cost::IdleCost>,
}

async fn run() -> anyhow::Result<()> {
    run_with(Settings::from_env()?).await.map(|_| ())
}

/// The whole bench with `settings`, its steps' figures (`tests/manifest_ready_small.rs` runs it
/// at a small size). [`cleanup`] deletes what it made.
pub async fn run_with(settings: Settings) -> anyhow::Result<Vec<Step>> {
    let profile = e2e::bench::build_binaries()?;
    let started = Instant::now();
    eprintln!(
        "manifest_ready: akash-provider and akash-devnet ({profile}) built; setting up (block time {})",
        settings.block_time
    );

    let cluster = e2e::Cluster::shared().await?;
    CREATED.lock().unwrap().2 = Some(cluster.client());
    e2e::crds::install(&cluster).await?;
    let max = *settings.leases.last().unwrap_or(&0);
    let added = e2e::bench::add_kwok_nodes(&cluster.client(), max + 100).await?;
    if !added.is_empty() {
        eprintln!("manifest_ready: added {} kwok nodes", added.len());
    }
    CREATED.lock().unwrap().0.extend(added);
    let ns = cluster.namespace("bench").await?;
    let devnet = Devnet::start("bench-manifest-ready", &settings.block_time)?;
    let resource =
        ProviderResource::create(&cluster.client(), ns.name(), &[("host", "akash")]).await?;
    let provider = ProviderProcess::start(
        cluster.kubeconfig(),
        &devnet,
        ProviderOptions {
            namespace: ns.name().to_owned(),
            provider_resource: resource.name.clone(),
            mnemonic: TEST_MNEMONICS[PROVIDER_KEY].to_owned(),
            extra_args: vec![
                "--withdrawal-period".into(),
                "24h".into(),
                "--bid-timeout".into(),
                "30m".into(),
                // Sending 900 manifests takes minutes here; none may time out meanwhile.
                "--manifest-timeout".into(),
                "1h".into(),
            ],
        },
    )?;
    let save_log = || {
        if let Some(path) = std::env::var_os("BENCH_PROVIDER_LOG") {
            let _ = std::fs::write(path, provider.logs());
        }
    };
    resource.wait_registered().await?;
    let pid = provider_pid(&provider.metrics_addr)?;
    let me = e2e::bench::client(
        &devnet,
        TEST_MNEMONICS[PROVIDER_KEY],
        Duration::from_secs(30),
    )?
    .address()
    .to_owned();
    let mut tenants = Vec::new();
    // dseqs no earlier run used: lease namespaces are named after the lease id. Each tenant has
    // its own range: the gateway's manifest URL names the dseq alone, and a dseq two owners share
    // is answered 403 for one of them.
    let base = u64::from(std::process::id()) * 10_000;
    for (t, &k) in TENANT_KEYS.iter().enumerate() {
        let chain = e2e::bench::client(&devnet, TEST_MNEMONICS[k], Duration::from_secs(30))?;
        let identity = certificate(&chain).await?;
        let http = rest_client(&chain, &me, &identity).await?;
        tenants.push(Tenant {
            chain,
            http,
            next_dseq: base + t as u64 * 3_000,
        });
    }
    let sdl = crds::sdl::Sdl::parse(SDL).map_err(|e| anyhow::anyhow!("the bench's SDL: {e}"))?;
    let leases: Api<Lease> = ns.api();

    // The lease watcher: the first time each Lease is seen Active. A watch, not repeated lists:
    // listing 1,000 Leases every few milliseconds loads the API server more than the provider does.
    let active: Arc<Mutex<HashMap<String, Instant>>> = Arc::default();
    let watcher = {
        let active = active.clone();
        let leases = leases.clone();
        tokio::spawn(async move {
            let stream = watcher::watcher(leases, watcher::Config::default())
                .default_backoff()
                .applied_objects();
            let mut stream = std::pin::pin!(stream);
            while let Some(item) = stream.next().await {
                let Ok(lease) = item else { continue };
                if lease.status.as_ref().and_then(|s| s.phase) == Some(LeasePhase::Active) {
                    let now = Instant::now();
                    active
                        .lock()
                        .unwrap()
                        .entry(lease.name_any())
                        .or_insert(now);
                }
            }
        })
    };

    // The Ingress watcher: the first time each lease namespace's Ingress is seen, the lease's
    // objects all applied (the provider applies the Ingress last).
    let applied: Arc<Mutex<HashMap<String, Instant>>> = Arc::default();
    let ingress_watcher = {
        let applied = applied.clone();
        let ingresses = Api::<Ingress>::all(cluster.client());
        tokio::spawn(async move {
            let config = watcher::Config::default().labels("akash.network");
            let stream = watcher::watcher(ingresses, config)
                .default_backoff()
                .applied_objects();
            let mut stream = std::pin::pin!(stream);
            while let Some(item) = stream.next().await {
                let Ok(ingress) = item else { continue };
                let now = Instant::now();
                if let Some(ns) = ingress.namespace() {
                    applied.lock().unwrap().entry(ns).or_insert(now);
                }
            }
        })
    };

    let mut steps = Vec::new();
    let mut have = 0;
    let outcome: anyhow::Result<()> = async {
        for &target in &settings.leases {
            let step = bring_to(
                &settings,
                &mut tenants,
                &me,
                &sdl,
                &provider,
                &active,
                &applied,
                have,
                target,
                pid,
            )
            .await?;
            let mut step = step;
            if !settings.idle.is_zero() {
                step.idle = Some(
                    e2e::idle_cost::IdleCost::measure(
                        &cluster,
                        "akash.network",
                        pid,
                        settings.idle,
                    )
                    .await?,
                );
            }
            eprintln!("  {}", step.line());
            have = target;
            steps.push(step);
        }
        Ok(())
    }
    .await;
    watcher.abort();
    ingress_watcher.abort();
    save_log();
    let logs = provider.logs();
    let errors = logs.lines().filter(|l| l.contains(" ERROR ")).count();
    let warnings = logs.lines().filter(|l| l.contains(" WARN ")).count();

    println!();
    println!(
        "manifest_ready: akash-provider ({profile} build), akash-devnet block time {}, {} manifests at a time, run took {:.0}s",
        settings.block_time,
        settings.concurrency,
        started.elapsed().as_secs_f64()
    );
    println!(
        "{:>7} {:>5} {:>9} {:>9} {:>9} {:>7} {:>10} {:>10} {:>9} {:>10}",
        "leases",
        "new",
        "p50 ms",
        "p99 ms",
        "max ms",
        "failed",
        "RSS MiB",
        "peak MiB",
        "setup s",
        "manifest s"
    );
    for s in &steps {
        println!("{}", s.row());
    }
    for s in &steps {
        println!(
            "objects applied at {} leases (gateway 200 to the lease's Ingress, applied last, seen by a watch; {} of {}): {}",
            s.leases,
            s.applied_ms.len(),
            s.new,
            spread(&s.applied_ms),
        );
        println!(
            "gateway answer at {} leases (each manifest's first PUT to its 200, {} in flight): {}",
            s.leases,
            settings.concurrency,
            spread(&s.answers_ms),
        );
        println!(
            "provider API-server requests per new lease at {} leases (manifests sent to all Active): {}",
            s.leases,
            s.requests_per_lease()
        );
    }
    for s in &steps {
        if let Some(idle) = &s.idle {
            println!(
                "idle at {} leases ({:.0} s; akash.network requests at the API server, provider CPU): {}",
                s.leases,
                settings.idle.as_secs_f64(),
                idle.summary()
            );
        }
    }
    println!("provider log: {errors} ERROR and {warnings} WARN lines");
    drop(provider);
    // With the provider gone nobody removes the Leases' finalizer: without this the bench's
    // namespace would stay Terminating, and the namespace controller's retries would load the
    // API server of the next run.
    e2e::crds::release_leases(&leases).await;
    outcome.map(|()| steps)
}

#[allow(clippy::too_many_arguments)]
async fn bring_to(
    settings: &Settings,
    tenants: &mut [Tenant],
    me: &str,
    sdl: &crds::sdl::Sdl,
    provider: &ProviderProcess,
    active: &Arc<Mutex<HashMap<String, Instant>>>,
    applied: &Arc<Mutex<HashMap<String, Instant>>>,
    have: usize,
    target: usize,
    pid: u32,
) -> anyhow::Result<Step> {
    let new = target - have;
    let setup_start = Instant::now();
    // Deployments: split over the tenants, MSGS_PER_TX per transaction, tenants in parallel.
    let mut plan: Vec<(usize, Vec<u64>)> = Vec::new();
    for (t, tenant) in tenants.iter_mut().enumerate() {
        let count = new / TENANT_KEYS.len() + usize::from(t < new % TENANT_KEYS.len());
        let first = tenant.next_dseq;
        tenant.next_dseq += count as u64;
        plan.push((t, (first..first + count as u64).collect()));
    }
    {
        let mut created = CREATED.lock().unwrap();
        for (t, dseqs) in &plan {
            for &dseq in dseqs {
                created.1.push(crds::sdl::names::lease_namespace(
                    &crds::sdl::names::LeaseId {
                        owner: tenants[*t].chain.address().to_owned(),
                        dseq,
                        gseq: 1,
                        oseq: 1,
                        provider: me.to_owned(),
                    },
                ));
            }
        }
    }
    eprintln!("manifest_ready: {new} deployments (to {target} leases)");
    futures::future::try_join_all(plan.iter().map(|(t, dseqs)| {
        let chain = &tenants[*t].chain;
        async move {
            for chunk in dseqs.chunks(MSGS_PER_TX) {
                let msgs = chunk
                    .iter()
                    .map(|&d| {
                        e2e::tenant::deployment_msg(chain.address(), d, sdl)
                            .map(|m| chain_client::to_any(&m))
                    })
                    .collect::<anyhow::Result<Vec<_>>>()?;
                chain
                    .broadcast(msgs)
                    .await
                    .context("MsgCreateDeployment ×N")?;
            }
            anyhow::Ok(())
        }
    }))
    .await?;

    // Bids: wait until every deployment has the provider's bid.
    eprintln!("manifest_ready: waiting for {new} bids");
    let bid_start = Instant::now();
    loop {
        let mut missing = 0;
        for (t, dseqs) in &plan {
            let chain = &tenants[*t].chain;
            let bids = chain
                .bids(
                    BidFilters {
                        owner: chain.address().to_owned(),
                        provider: me.to_owned(),
                        ..Default::default()
                    },
                    PageRequest::first(10_000),
                )
                .await?
                .items
                .into_iter()
                .filter_map(|r| r.bid)
                .filter_map(|b| b.id.map(|id| id.dseq))
                .collect::<std::collections::BTreeSet<_>>();
            missing += dseqs.iter().filter(|d| !bids.contains(d)).count();
        }
        if missing == 0 {
            break;
        }
        if bid_start.elapsed() > Duration::from_secs(300) {
            bail!("{missing} of {new} bids missing after 300 s");
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }

    // Leases.
    eprintln!("manifest_ready: leasing {new} bids");
    futures::future::try_join_all(plan.iter().map(|(t, dseqs)| {
        let chain = &tenants[*t].chain;
        async move {
            for chunk in dseqs.chunks(MSGS_PER_TX) {
                let msgs = chunk
                    .iter()
                    .map(|&dseq| {
                        chain_client::to_any(&MsgCreateLease {
                            bid_id: Some(mv1::BidId {
                                owner: chain.address().to_owned(),
                                dseq,
                                gseq: 1,
                                oseq: 1,
                                provider: me.to_owned(),
                                bseq: 0,
                            }),
                        })
                    })
                    .collect::<Vec<_>>();
                chain.broadcast(msgs).await.context("MsgCreateLease ×N")?;
            }
            anyhow::Ok(())
        }
    }))
    .await?;
    let setup_secs = setup_start.elapsed().as_secs_f64();

    // Manifests, `concurrency` at a time; the gateway refuses a manifest before it knows the
    // lease, so a 404/422 is retried for a while.
    eprintln!("manifest_ready: sending {new} manifests");
    let body = sdl.manifest_json();
    let jobs: Vec<(usize, u64)> = plan
        .iter()
        .flat_map(|(t, dseqs)| dseqs.iter().map(move |&d| (*t, d)))
        .collect();
    let requests_before = provider_requests(provider).await?;
    let manifests_start = Instant::now();
    let tenants_ref = &*tenants;
    let results: Vec<anyhow::Result<(String, String, Instant, Instant)>> =
        futures::stream::iter(jobs.into_iter().map(|(t, dseq)| {
            let tenant = &tenants_ref[t];
            let body = body.clone();
            let url = format!(
                "https://{}/deployment/{dseq}/manifest",
                provider.gateway_rest_addr
            );
            async move {
                let start = Instant::now();
                loop {
                    let response = tenant.http.put(&url).body(body.clone()).send().await;
                    match response {
                        Ok(r) if r.status().is_success() => {
                            let name = object_name(tenant.chain.address(), dseq);
                            let namespace =
                                crds::sdl::names::lease_namespace(&crds::sdl::names::LeaseId {
                                    owner: tenant.chain.address().to_owned(),
                                    dseq,
                                    gseq: 1,
                                    oseq: 1,
                                    provider: me.to_owned(),
                                });
                            return Ok((name, namespace, start, Instant::now()));
                        }
                        Ok(r) if start.elapsed() < Duration::from_secs(120) => {
                            let status = r.status();
                            let text = r.text().await.unwrap_or_default();
                            if status.is_server_error() || status.as_u16() == 404 {
                                tokio::time::sleep(Duration::from_millis(200)).await;
                                continue;
                            }
                            bail!("manifest {dseq}: {status}: {text}");
                        }
                        Ok(r) => bail!("manifest {dseq}: {}", r.status()),
                        Err(e) if start.elapsed() < Duration::from_secs(120) => {
                            tracing::warn!("manifest {dseq}: {e}");
                            tokio::time::sleep(Duration::from_millis(200)).await;
                        }
                        Err(e) => bail!("manifest {dseq}: {e}"),
                    }
                }
            }
        }))
        .buffer_unordered(settings.concurrency)
        .collect()
        .await;
    let mut sent = BTreeMap::new();
    let mut namespaces = BTreeMap::new();
    let mut answers_ms = Vec::new();
    let mut failed = 0;
    for r in results {
        match r {
            Ok((name, namespace, put, at)) => {
                answers_ms.push(at.saturating_duration_since(put).as_secs_f64() * 1e3);
                namespaces.insert(namespace, at);
                sent.insert(name, at);
            }
            Err(e) => {
                failed += 1;
                if failed <= 5 {
                    eprintln!("  {e:#}");
                }
            }
        }
    }

    // Ready: every sent lease Active (or give up after 300 s).
    let wait_start = Instant::now();
    let latencies_ms = loop {
        let seen = active.lock().unwrap().clone();
        let done = sent.keys().filter(|n| seen.contains_key(*n)).count();
        if done == sent.len() || wait_start.elapsed() > Duration::from_secs(300) {
            if done < sent.len() {
                eprintln!(
                    "  {} of {} leases not Active after 300 s",
                    sent.len() - done,
                    sent.len()
                );
                failed += sent.len() - done;
            }
            break sent
                .iter()
                .filter_map(|(n, ok)| {
                    seen.get(n)
                        .map(|a| a.saturating_duration_since(*ok).as_secs_f64() * 1e3)
                })
                .collect::<Vec<f64>>();
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let manifests_secs = manifests_start.elapsed().as_secs_f64();
    let applied_ms = {
        let seen = applied.lock().unwrap();
        namespaces
            .iter()
            .filter_map(|(ns, ok)| {
                seen.get(ns)
                    .map(|a| a.saturating_duration_since(*ok).as_secs_f64() * 1e3)
            })
            .collect::<Vec<f64>>()
    };
    let requests =
        e2e::idle_cost::difference(&requests_before, &provider_requests(provider).await?);
    // Let the provider settle before reading its memory.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let (rss_kib, hwm_kib) = memory(pid)?;
    Ok(Step {
        leases: target,
        new,
        setup_secs,
        manifests_secs,
        latencies_ms,
        applied_ms,
        answers_ms,
        failed,
        rss_kib,
        hwm_kib,
        requests,
        idle: None,
    })
}

/// The provider's API-server requests so far, by verb.
async fn provider_requests(provider: &ProviderProcess) -> anyhow::Result<BTreeMap<String, f64>> {
    let text = provider
        .metrics()
        .await
        .context("the provider's metrics endpoint did not answer")?;
    Ok(e2e::idle_cost::provider_requests_by_verb_and_resource(
        &text,
    ))
}

impl Step {
    fn row(&self) -> String {
        format!(
            "{:>7} {:>5} {:>9.0} {:>9.0} {:>9.0} {:>7} {:>10.1} {:>10.1} {:>9.0} {:>10.0}",
            self.leases,
            self.new,
            e2e::bench::percentile(&self.latencies_ms, 0.5),
            e2e::bench::percentile(&self.latencies_ms, 0.99),
            e2e::bench::percentile(&self.latencies_ms, 1.0),
            self.failed,
            self.rss_kib as f64 / 1024.0,
            self.hwm_kib as f64 / 1024.0,
            self.setup_secs,
            self.manifests_secs,
        )
    }

    fn line(&self) -> String {
        format!(
            "{} active leases ({} new): manifest-to-ready {} over {} ({} failed); RSS {:.1} MiB, peak {:.1} MiB; set-up {:.0} s, manifests to all Active {:.0} s",
            self.leases,
            self.new,
            spread(&self.latencies_ms),
            self.latencies_ms.len(),
            self.failed,
            self.rss_kib as f64 / 1024.0,
            self.hwm_kib as f64 / 1024.0,
            self.setup_secs,
            self.manifests_secs,
        ) + &self
            .idle
            .as_ref()
            .map(|i| format!("; idle: {}", i.summary()))
            .unwrap_or_default()
    }

    /// `23.4 (APPLY 8.0, LIST 2.0, …)`: the provider's requests per new lease while the step's
    /// manifests turned up (the leases already there add their own reconciles).
    fn requests_per_lease(&self) -> String {
        let per = |n: f64| n / self.new.max(1) as f64;
        let mut by_verb: BTreeMap<&str, f64> = BTreeMap::new();
        for (key, n) in &self.requests {
            let verb = key.split_once(' ').map_or(key.as_str(), |(verb, _)| verb);
            *by_verb.entry(verb).or_default() += n;
        }
        let by_verb: Vec<String> = by_verb
            .iter()
            .map(|(verb, n)| format!("{verb} {:.1}", per(*n)))
            .collect();
        // The LISTs by resource: a LIST is the costly request, and where they come from says
        // which loop makes them.
        let lists: Vec<String> = self
            .requests
            .iter()
            .filter_map(|(key, n)| Some((key.strip_prefix("LIST ")?, n)))
            .filter(|(_, n)| per(**n) >= 0.05)
            .map(|(resource, n)| format!("{resource} {:.1}", per(*n)))
            .collect();
        format!(
            "{:.1} ({}; LIST by resource: {})",
            per(self.requests.values().sum()),
            by_verb.join(", "),
            if lists.is_empty() {
                "none".to_owned()
            } else {
                lists.join(", ")
            }
        )
    }
}

/// `p50 12 ms, p99 34 ms, max 56 ms` of `ms`.
fn spread(ms: &[f64]) -> String {
    format!(
        "p50 {:.0} ms, p99 {:.0} ms, max {:.0} ms",
        e2e::bench::percentile(ms, 0.5),
        e2e::bench::percentile(ms, 0.99),
        e2e::bench::percentile(ms, 1.0),
    )
}

/// The pid of the `akash-provider` whose command line names `metrics_addr`.
fn provider_pid(metrics_addr: &str) -> anyhow::Result<u32> {
    for entry in std::fs::read_dir("/proc")? {
        let entry = entry?;
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<u32>().ok())
        else {
            continue;
        };
        let Ok(cmdline) = std::fs::read(entry.path().join("cmdline")) else {
            continue;
        };
        let args: Vec<&[u8]> = cmdline.split(|b| *b == 0).collect();
        if args.first().is_some_and(|a| a.ends_with(b"akash-provider"))
            && args.contains(&metrics_addr.as_bytes())
        {
            return Ok(pid);
        }
    }
    bail!("no akash-provider process with --metrics-addr {metrics_addr}")
}

/// (VmRSS, VmHWM) in KiB.
fn memory(pid: u32) -> anyhow::Result<(u64, u64)> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .with_context(|| format!("/proc/{pid}/status: has the provider exited?"))?;
    let field = |name: &str| {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    Ok((field("VmRSS:"), field("VmHWM:")))
}

/// Deletes the lease namespaces the run made and the nodes it added.
pub async fn cleanup() {
    let (nodes, namespaces, client) = {
        let created = CREATED.lock().unwrap();
        (created.0.clone(), created.1.clone(), created.2.clone())
    };
    let Some(client) = client else {
        return;
    };
    eprintln!(
        "manifest_ready: deleting {} lease namespaces and {} added nodes",
        namespaces.len(),
        nodes.len()
    );
    let ns_api: Api<Namespace> = Api::all(client.clone());
    futures::stream::iter(namespaces.iter().map(|n| {
        let ns_api = ns_api.clone();
        async move {
            let _ = ns_api.delete(n, &DeleteParams::default()).await;
        }
    }))
    .buffer_unordered(32)
    .collect::<Vec<()>>()
    .await;
    // The pods go with their namespaces; wait a little for that before the nodes go.
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(120) {
        let mut left = 0;
        for n in &namespaces {
            if matches!(ns_api.get_opt(n).await, Ok(Some(_))) {
                left += 1;
                break;
            }
        }
        if left == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
    let node_api: Api<Node> = Api::all(client);
    for n in &nodes {
        let _ = node_api.delete(n, &DeleteParams::default()).await;
    }
}
