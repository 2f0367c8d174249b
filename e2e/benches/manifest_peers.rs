//! How long a large manifest takes to reach every provider of a deployment: sent by the tenant to
//! each provider (`SendToAll`, today's Akash) versus sent to one and fetched by the others from
//! their peers (`SeedOne`), in the same run (issue 11: "A benchmark prints the time for a large
//! manifest (many services, long env values) to reach N providers (N = 2, 8, 32, simulated as
//! processes on loopback) by peer fetch versus the tenant sending to each").
//!
//! `cargo bench -p e2e --bench manifest_peers` runs real providers (`akash-provider run`, built with
//! the bench's profile) against the shared control plane and a fresh `akash-devnet`: two sets of
//! as many providers as the largest N, each with an account of its own (funded by a devnet test
//! account). Set `a` runs with `--peer-fetch=false` (today's Akash: only the tenant sends) and takes
//! the SendToAll deployments; set `b` fetches from peers and takes the SeedOne ones. Provider i of
//! a set has the attribute `site: <set><i>`. For each N and each mode, a new deployment of N groups
//! (group i pinned to provider i of the mode's set) carries the same services; once every group is
//! leased, the clock starts and the tenant sends the manifest over mTLS as `akash-provider tenant`
//! does (to every provider at once, up to 32 uploads in flight; before it sent to one provider
//! after another); it stops when a watch of the `Lease` resources has shown
//! every provider's lease holding the manifest's version. Then the deployment is closed. Settings,
//! from the environment:
//! - `BENCH_PROVIDERS`: the provider counts (default `2,8,32`);
//! - `BENCH_SERVICES`: services in the deployment, spread over its groups (default 64);
//! - `BENCH_ENV`: environment variables per service (default 4), each `BENCH_ENV_BYTES` long
//!   (1024: a `Lease` resource holds the manifest twice, and etcd refuses objects over 1.5 MiB);
//! - `BENCH_ROUNDS`: measurements per N and mode (default 2; the table lists each, and the ratio
//!   of the means);
//! - `BENCH_PEER_FETCH_INTERVAL`: the providers' `--peer-fetch-interval` (their default, 2s).

use std::collections::BTreeMap;
use std::process::ExitCode;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use chain_client::Chain;
use chain_client::akash::market::v1 as mv1;
use chain_client::akash::market::v1beta5::MsgCreateLease;
use chain_client::chain::{BidFilters, PageRequest};
use chain_client::node::NodeChain;
use cosmos_sdk_proto::cosmos::bank::v1beta1::MsgSend;
use cosmos_sdk_proto::cosmos::base::v1beta1::Coin;
use crds::resources::Lease;
use e2e::devnet::{Devnet, TEST_MNEMONICS};
use e2e::market::{certificate, close_deployment};
use e2e::marketplace::{Marketplace, Site, SiteSpec};
use futures::StreamExt;
use kube::Api;
use kube::runtime::{WatchStreamExt, watcher};
use operator::tenant::delivery::{Gateway, MtlsGateway};

/// The tenant's devnet account, and the one that funds the providers' accounts.
const TENANT_KEY: usize = 2;
const FUNDER_KEY: usize = 3;

fn main() -> ExitCode {
    e2e::bench::main("manifest_peers", run, cleanup)
}

async fn cleanup() {}

pub struct Settings {
    pub providers: Vec<usize>,
    pub services: usize,
    pub env: usize,
    pub env_bytes: usize,
    pub rounds: usize,
    pub fetch_interval: String,
}

impl Settings {
    fn from_env() -> anyhow::Result<Self> {
        let var =
            |name: &str, default: &str| std::env::var(name).unwrap_or_else(|_| default.to_owned());
        let number = |name: &str, default: &str| -> anyhow::Result<usize> {
            var(name, default)
                .parse()
                .with_context(|| format!("{name} must be a number"))
        };
        let providers = var("BENCH_PROVIDERS", "2,8,32")
            .split(',')
            .map(|n| {
                n.trim()
                    .parse::<usize>()
                    .with_context(|| format!("BENCH_PROVIDERS={n:?}"))
            })
            .collect::<anyhow::Result<Vec<_>>>()?;
        if providers.is_empty() || providers.iter().any(|&n| n < 2) {
            bail!("BENCH_PROVIDERS: counts of at least 2, e.g. 2,8,32");
        }
        let services = number("BENCH_SERVICES", "64")?;
        if providers.iter().any(|&n| n > services) {
            bail!("BENCH_SERVICES ({services}) must be at least the largest provider count");
        }
        Ok(Self {
            providers,
            services,
            env: number("BENCH_ENV", "4")?,
            env_bytes: number("BENCH_ENV_BYTES", "1024")?,
            rounds: number("BENCH_ROUNDS", "2")?.max(1),
            fetch_interval: var("BENCH_PEER_FETCH_INTERVAL", "2s"),
        })
    }
}

/// `services` services over `groups` groups (service s in group s mod groups), group i placed
/// with `site: <site><i>` and named `dc<ii>` (zero-padded: the chain numbers groups in name order, so
/// group `dc<ii>` is gseq i + 1); every service with `env` variables of `env_bytes` characters.
fn large_sdl(site: &str, groups: usize, services: usize, env: usize, env_bytes: usize) -> String {
    let mut out = String::from("version: \"2.0\"\nservices:\n");
    for s in 0..services {
        out.push_str(&format!("  svc{s}:\n    image: nginx:1.27\n    env:\n"));
        for e in 0..env {
            // Distinct per service and variable, so nothing in the manifest repeats verbatim.
            let fill: String = (0..env_bytes)
                .map(|i| char::from(b'a' + ((s * 7 + e * 13 + i) % 26) as u8))
                .collect();
            out.push_str(&format!("      - VALUE_{e}={fill}\n"));
        }
        out.push_str("    expose:\n      - port: 80\n        as: 80\n        to:\n          - global: true\n");
    }
    out.push_str("profiles:\n  compute:\n");
    for s in 0..services {
        out.push_str(&format!(
            "    svc{s}:\n      resources:\n        cpu:\n          units: 0.01\n        memory:\n          size: 16Mi\n        storage:\n          size: 16Mi\n"
        ));
    }
    out.push_str("  placement:\n");
    for g in 0..groups {
        out.push_str(&format!(
            "    dc{g:02}:\n      attributes:\n        site: {site}{g}\n      pricing:\n"
        ));
        for s in (g..services).step_by(groups) {
            out.push_str(&format!(
                "        svc{s}:\n          denom: uact\n          amount: 10000\n"
            ));
        }
    }
    out.push_str("deployment:\n");
    for s in 0..services {
        let g = s % groups;
        out.push_str(&format!(
            "  svc{s}:\n    dc{g:02}:\n      profile: svc{s}\n      count: 1\n"
        ));
    }
    out
}

/// A 12-word mnemonic of provider `i`'s own account (fixed per index; the devnet is fresh).
fn provider_mnemonic(i: usize) -> String {
    let mut entropy = [0u8; 16];
    entropy[..12].copy_from_slice(b"bench-peers-");
    entropy[12..].copy_from_slice(&(i as u32).to_be_bytes());
    bip39::Mnemonic::from_entropy(&entropy)
        .expect("16 bytes of entropy make a 12-word mnemonic")
        .to_string()
}

/// When the watch first saw each (dseq, provider) lease holding each manifest version.
type Arrivals = Arc<Mutex<BTreeMap<(u64, String), (String, Instant)>>>;

#[derive(Debug, Clone, Copy, PartialEq)]
enum Mode {
    SendToAll,
    SeedOne,
}

pub struct Measurement {
    /// From the first byte sent to every lease holding the manifest.
    pub reach: Duration,
    /// How long the tenant's own sending took.
    pub tenant: Duration,
    /// Manifest bytes the tenant uploaded.
    pub uploaded: usize,
}

/// One provider count's results: N, the manifest's size in bytes, and each mode's measurements
/// (`all`: the tenant sends to every provider; `seed`: to one, the others fetch from peers).
pub type Row = (usize, usize, BTreeMap<&'static str, Vec<Measurement>>);

async fn run() -> anyhow::Result<()> {
    run_with(Settings::from_env()?).await.map(|_| ())
}

/// The whole bench with `settings` (`tests/manifest_peers_small.rs` runs it at a small size).
pub async fn run_with(settings: Settings) -> anyhow::Result<Vec<Row>> {
    let profile = e2e::bench::build_binaries()?;
    let started = Instant::now();
    let max = *settings.providers.iter().max().unwrap_or(&2);
    let cluster = e2e::Cluster::shared().await?;
    e2e::crds::install(&cluster).await?;
    let devnet = Devnet::start("bench-manifest-peers", "200ms")?;
    let tenant = e2e::bench::client(&devnet, TEST_MNEMONICS[TENANT_KEY], Duration::from_secs(60))?;
    let funder = e2e::bench::client(&devnet, TEST_MNEMONICS[FUNDER_KEY], Duration::from_secs(60))?;

    // Two sets of `max` providers: `a<i>` with peer fetching off (today's Akash: only the tenant
    // sends) for SendToAll, `b<i>` with it on for SeedOne.
    let total = 2 * max;
    eprintln!("manifest_peers: ({profile}) funding {total} provider accounts");
    let mnemonics: Vec<String> = (0..total).map(provider_mnemonic).collect();
    let sends = mnemonics
        .iter()
        .map(|m| {
            let key = chain_client::keys::Key::from_mnemonic(
                &chain_client::keys::Mnemonic::from_phrase(m)?,
            )?;
            Ok(chain_client::to_any(&MsgSend {
                from_address: funder.address().to_owned(),
                to_address: key.address().to_string(),
                amount: ["uact", "uakt"]
                    .iter()
                    .map(|denom| Coin {
                        denom: (*denom).into(),
                        amount: "50000000".into(),
                    })
                    .collect(),
            }))
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    funder
        .broadcast(sends)
        .await
        .context("funding the providers (MsgSend)")?;

    eprintln!("manifest_peers: starting {total} providers");
    let mut sites: Vec<Site> = Vec::new();
    for chunk in (0..total).collect::<Vec<_>>().chunks(8) {
        let started = futures::future::try_join_all(chunk.iter().map(|&i| {
            let (set, index, fetch) = if i < max {
                ("a", i, "false")
            } else {
                ("b", i - max, "true")
            };
            let spec = SiteSpec::nth(0, 1.0)
                .with_mnemonic(&mnemonics[i])
                .with_attribute("site", &format!("{set}{index}"))
                .with_args(&[
                    "--peer-fetch",
                    fetch,
                    "--peer-fetch-interval",
                    &settings.fetch_interval,
                    "--manifest-timeout",
                    "1h",
                ]);
            let cluster = &cluster;
            let devnet = &devnet;
            async move {
                Marketplace::site_with(cluster, devnet, &format!("peers-{set}{index}"), &spec).await
            }
        }))
        .await?;
        sites.extend(started);
    }
    eprintln!(
        "manifest_peers: {total} providers registered after {:.0}s",
        started.elapsed().as_secs_f64()
    );

    let identity = certificate(&tenant).await?;
    let tenant_chain: Arc<dyn Chain> = Arc::new(e2e::bench::client(
        &devnet,
        TEST_MNEMONICS[TENANT_KEY],
        Duration::from_secs(60),
    )?);
    let gateway = MtlsGateway::new(tenant_chain, identity);

    let arrivals: Arrivals = Arc::default();
    let watch = {
        let arrivals = arrivals.clone();
        let owner = tenant.address().to_owned();
        let leases: Api<Lease> = Api::all(cluster.client());
        tokio::spawn(async move {
            let stream = watcher::watcher(leases, watcher::Config::default())
                .default_backoff()
                .applied_objects();
            let mut stream = std::pin::pin!(stream);
            while let Some(item) = stream.next().await {
                let Ok(lease) = item else { continue };
                let id = &lease.spec.lease_id;
                if id.owner != owner {
                    continue;
                }
                if let Some(m) = &lease.spec.manifest {
                    let now = Instant::now();
                    let mut seen = arrivals.lock().unwrap();
                    let entry = seen
                        .entry((id.dseq, id.provider.clone()))
                        .or_insert_with(|| (m.version.clone(), now));
                    if entry.0 != m.version {
                        *entry = (m.version.clone(), now);
                    }
                }
            }
        })
    };

    let mut rows = Vec::new();
    let mut next_dseq = u64::from(std::process::id()) * 1000;
    let outcome: anyhow::Result<()> = async {
        for &n in &settings.providers {
            // The same services for both modes; only the placement's site attribute differs.
            let parse = |site: &str| {
                let text = large_sdl(site, n, settings.services, settings.env, settings.env_bytes);
                crds::sdl::Sdl::parse(&text).map_err(|e| anyhow::anyhow!("the bench's SDL: {e}"))
            };
            let (sdl_all, sdl_seed) = (parse("a")?, parse("b")?);
            let (manifest_all, manifest_seed) = (sdl_all.manifest_json(), sdl_seed.manifest_json());
            let mut results: BTreeMap<&'static str, Vec<Measurement>> = BTreeMap::new();
            for round in 0..settings.rounds {
                // Alternating which mode goes first, so that neither always runs on a warmer system.
                let order = if round % 2 == 0 {
                    [Mode::SendToAll, Mode::SeedOne]
                } else {
                    [Mode::SeedOne, Mode::SendToAll]
                };
                for mode in order {
                    next_dseq += 1;
                    let (sites, sdl, manifest) = match mode {
                        Mode::SendToAll => (&sites[..n], &sdl_all, &manifest_all),
                        Mode::SeedOne => (&sites[max..max + n], &sdl_seed, &manifest_seed),
                    };
                    let m = measure(
                        &tenant, &gateway, sites, sdl, manifest, next_dseq, mode, &arrivals,
                    )
                    .await?;
                    eprintln!(
                        "  N={n:>2} {mode:?}: reached all in {:.2}s (tenant busy {:.2}s, uploaded {} KiB)",
                        m.reach.as_secs_f64(),
                        m.tenant.as_secs_f64(),
                        m.uploaded / 1024
                    );
                    results
                        .entry(match mode {
                            Mode::SendToAll => "all",
                            Mode::SeedOne => "seed",
                        })
                        .or_default()
                        .push(m);
                }
            }
            rows.push((n, manifest_all.len(), results));
        }
        Ok(())
    }
    .await;
    watch.abort();

    println!();
    println!(
        "manifest_peers: akash-provider ({profile} build) ×{total} on loopback (half with --peer-fetch=false for to-all), devnet 200 ms blocks, --peer-fetch-interval {}, {} services × {} env values of {} B, {} rounds, run took {:.0}s",
        settings.fetch_interval,
        settings.services,
        settings.env,
        settings.env_bytes,
        settings.rounds,
        started.elapsed().as_secs_f64()
    );
    println!(
        "{:>3} {:>13} {:>20} {:>20} {:>15} {:>15} {:>17}",
        "N",
        "manifest KiB",
        "to-all s",
        "seed-one s",
        "to-all up KiB",
        "seed up KiB",
        "mean seed/to-all"
    );
    for (n, bytes, results) in &rows {
        // Every round's time, and their mean: two rounds have no useful median.
        let times = |key: &str| -> Vec<f64> {
            results
                .get(key)
                .map(|ms| ms.iter().map(|m| m.reach.as_secs_f64()).collect())
                .unwrap_or_default()
        };
        let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len().max(1) as f64;
        let listed = |v: &[f64]| {
            v.iter()
                .map(|t| format!("{t:.2}"))
                .collect::<Vec<_>>()
                .join(" / ")
        };
        let uploaded = |key: &str| {
            results
                .get(key)
                .and_then(|ms| ms.first())
                .map_or(0, |m| m.uploaded)
        };
        let (all, seed) = (times("all"), times("seed"));
        let (all_mean, seed_mean) = (mean(&all), mean(&seed));
        println!(
            "{:>3} {:>13} {:>20} {:>20} {:>15} {:>15} {:>17.2}",
            n,
            bytes / 1024,
            listed(&all),
            listed(&seed),
            uploaded("all") / 1024,
            uploaded("seed") / 1024,
            if all_mean > 0.0 {
                seed_mean / all_mean
            } else {
                0.0
            }
        );
    }
    let mut errors = 0;
    for site in &sites {
        errors += site
            .process
            .logs()
            .lines()
            .filter(|l| l.contains(" ERROR "))
            .count();
    }
    println!("provider logs: {errors} ERROR lines");
    outcome.map(|()| rows)
}

/// One deployment of `sites.len()` groups: leased to the sites, then the manifest sent per `mode`;
/// closed again at the end.
#[allow(clippy::too_many_arguments)]
async fn measure(
    tenant: &NodeChain,
    gateway: &MtlsGateway,
    sites: &[Site],
    sdl: &crds::sdl::Sdl,
    manifest: &str,
    dseq: u64,
    mode: Mode,
    arrivals: &Arrivals,
) -> anyhow::Result<Measurement> {
    let n = sites.len();
    let owner = tenant.address().to_owned();
    e2e::tenant::create_deployment(tenant, sdl, dseq).await?;
    // Group i (gseq i + 1) is pinned to site i: wait for each of their bids, then lease them all.
    let waited = Instant::now();
    loop {
        let bids = tenant
            .bids(
                BidFilters {
                    owner: owner.clone(),
                    dseq,
                    ..Default::default()
                },
                PageRequest::first(1000),
            )
            .await?;
        let have = bids
            .items
            .iter()
            .filter_map(|r| r.bid.as_ref()?.id.as_ref())
            .filter(|id| {
                sites
                    .get(id.gseq as usize - 1)
                    .is_some_and(|s| s.address == id.provider)
            })
            .count();
        if have == n {
            break;
        }
        if waited.elapsed() > Duration::from_secs(120) {
            bail!("deployment {dseq}: {have} of {n} bids after 120 s");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let leases = sites
        .iter()
        .enumerate()
        .map(|(i, site)| {
            chain_client::to_any(&MsgCreateLease {
                bid_id: Some(mv1::BidId {
                    owner: owner.clone(),
                    dseq,
                    gseq: i as u32 + 1,
                    oseq: 1,
                    provider: site.address.clone(),
                    bseq: 0,
                }),
            })
        })
        .collect();
    tenant
        .broadcast(leases)
        .await
        .context("MsgCreateLease ×N")?;
    // Every provider has its `Lease` resource (waiting for the manifest) before the clock starts.
    let waited = Instant::now();
    loop {
        let mut missing = 0;
        for site in sites {
            let api: Api<Lease> = site.ns.api();
            let names = api.list_metadata(&Default::default()).await?;
            let found = names.items.iter().any(|l| {
                l.metadata
                    .name
                    .as_deref()
                    .is_some_and(|name| name.contains(&format!("-{dseq}-")))
            });
            missing += usize::from(!found);
        }
        if missing == 0 {
            break;
        }
        if waited.elapsed() > Duration::from_secs(120) {
            bail!("deployment {dseq}: {missing} of {n} Lease resources missing after 120 s");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    let version = sdl.manifest_version_hex();
    let clock = Instant::now();
    let targets: Vec<&Site> = match mode {
        Mode::SendToAll => sites.iter().collect(),
        Mode::SeedOne => sites.iter().take(1).collect(),
    };
    // As the tenant controller sends: to every provider at once, up to 32 uploads in flight.
    let sends = targets.iter().map(|site| async move {
        let uri = format!("https://{}", site.process.gateway_rest_addr);
        gateway
            .send_manifest(&site.address, &uri, dseq, manifest)
            .await
            .with_context(|| format!("sending the manifest to {}", site.address))
    });
    futures::stream::iter(sends)
        .buffer_unordered(32)
        .collect::<Vec<anyhow::Result<()>>>()
        .await
        .into_iter()
        .collect::<anyhow::Result<Vec<()>>>()?;
    let tenant_busy = clock.elapsed();
    let reach = loop {
        let last = {
            let seen = arrivals.lock().unwrap();
            let times: Vec<Instant> = sites
                .iter()
                .filter_map(|s| seen.get(&(dseq, s.address.clone())))
                .filter(|(v, _)| *v == version)
                .map(|(_, t)| *t)
                .collect();
            (times.len() == n).then(|| times.into_iter().max().unwrap_or(clock))
        };
        if let Some(last) = last {
            break last.saturating_duration_since(clock);
        }
        if clock.elapsed() > Duration::from_secs(300) {
            bail!(
                "deployment {dseq} ({mode:?}): the manifest did not reach all {n} providers in 300 s"
            );
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    close_deployment(tenant, dseq).await?;
    Ok(Measurement {
        reach,
        tenant: tenant_busy,
        uploaded: manifest.len() * targets.len(),
    })
}
