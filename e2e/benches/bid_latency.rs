//! Order-to-bid latency and batch capacity of `akash-provider run` (issue "provider, part 1": "A
//! benchmark prints the order-to-bid latency (in blocks and milliseconds) and how many orders in
//! one block the provider bids on within the next block").
//!
//! `cargo bench -p e2e --bench bid_latency` runs the real provider (built with the bench's
//! profile) against the shared control plane and a fresh `akash-devnet`, as the e2e scenarios do,
//! and prints a table at the end. Settings, from the environment:
//! - `BENCH_BLOCK_TIME`: the devnet's block time (default `1s`);
//! - `BENCH_ROUNDS`: single orders of the latency part (default 20);
//! - `BENCH_ORDERS`: order counts of the batch part, posted in one block (default `10,50,100`);
//! - `BENCH_BID_BATCH_SIZES`: `--bid-batch-size` values the batch part runs with (default
//!   `25,100`; 100 is the provider's default);
//! - `BENCH_PROVIDER_LOG`: a file to copy the provider's log to (one per batch size, suffixed).
//!
//! Latency: the tenant posts one deployment at a time; *blocks* is the height of the provider's
//! bid (`Bid.created_at`) minus the order's (`Order.created_at`); *ms* runs from the moment the
//! tenant's `MsgCreateDeployment` broadcast came back included in a block to the moment the bid is
//! visible in the chain's bids query (polled every 20 ms). The provider's own histogram
//! `akash_provider_order_to_bid_seconds` (order seen → bid included) is shown beside it.
//!
//! Batch capacity: three funded test accounts post N deployments between them, one transaction
//! each with many `MsgCreateDeployment`, sent right after a block so that they share the next one;
//! then the bids are counted by how many blocks after their order they landed.

use std::collections::{BTreeMap, BTreeSet};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use chain_client::Chain;
use chain_client::chain::{BidFilters, OrderFilters, PageRequest};
use chain_client::node::NodeChain;
use e2e::devnet::{Devnet, TEST_MNEMONICS};
use e2e::market::{self, ProviderResource};
use e2e::provider::{ProviderOptions, ProviderProcess};
use k8s_openapi::api::coordination::v1::Lease;

/// The devnet's test account the provider signs with.
const PROVIDER_KEY: usize = 1;
/// The tenants: the first posts the latency part's orders; all three post the batch part's.
const TENANT_KEYS: [usize; 3] = [2, 0, 3];

/// A small deployment, so that 100 and more fit the kwok nodes (two 16-CPU, one 32-CPU) at once.
/// At the Provider resource's scale rates (1 uact per millicore and per MiB) it is priced
/// 100 + 128 + 128 = 356 uact, well under the order's 10000.
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
          units: 0.1
        memory:
          size: 128Mi
        storage:
          size: 128Mi
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

/// How often the bids query is polled while waiting for one bid.
const BID_POLL: Duration = Duration::from_millis(20);

/// The kwok nodes the run added (deleted at the end, also after Ctrl-C or a failure).
static ADDED_NODES: std::sync::Mutex<(Vec<String>, Option<kube::Client>)> =
    std::sync::Mutex::new((Vec::new(), None));

fn main() -> ExitCode {
    e2e::bench::main("bid_latency", run, || async {
        let (nodes, client) = {
            let added = ADDED_NODES.lock().unwrap();
            (added.0.clone(), added.1.clone())
        };
        if let Some(client) = client {
            e2e::bench::delete_nodes(&client, &nodes).await;
        }
    })
}

pub struct Settings {
    pub block_time: String,
    pub block: Duration,
    pub rounds: usize,
    pub orders: Vec<usize>,
    pub bid_batch_sizes: Vec<usize>,
}

impl Settings {
    fn from_env() -> anyhow::Result<Self> {
        let var =
            |name: &str, default: &str| std::env::var(name).unwrap_or_else(|_| default.to_owned());
        let list = |name: &str, default: &str| -> anyhow::Result<Vec<usize>> {
            var(name, default)
                .split(',')
                .map(|n| n.trim().parse().with_context(|| format!("{name}={n:?}")))
                .collect()
        };
        let block_time = var("BENCH_BLOCK_TIME", "1s");
        let block = humantime::parse_duration(&block_time).context("BENCH_BLOCK_TIME")?;
        Ok(Self {
            block,
            block_time,
            rounds: var("BENCH_ROUNDS", "20").parse().context("BENCH_ROUNDS")?,
            orders: list("BENCH_ORDERS", "10,50,100")?,
            bid_batch_sizes: list("BENCH_BID_BATCH_SIZES", "25,100")?,
        })
    }
}

/// Everything one run sets up. Fields drop in order: the provider first, the namespace last.
struct Bench {
    provider: Option<ProviderProcess>,
    resource: ProviderResource,
    devnet: Devnet,
    ns: e2e::TestNamespace,
    cluster: e2e::Cluster,
    tenants: Vec<NodeChain>,
    provider_address: String,
    sdl: crds::sdl::Sdl,
    /// The next dseq of each tenant.
    next_dseq: Vec<u64>,
    /// The running provider's `--bid-batch-size`.
    batch_size: usize,
}

async fn run() -> anyhow::Result<()> {
    run_with(Settings::from_env()?).await.map(|_| ())
}

/// The whole bench with `settings`; the batch part's results (`tests/bid_latency_small.rs` runs
/// it at a small size).
pub async fn run_with(settings: Settings) -> anyhow::Result<Vec<Batch>> {
    let profile = e2e::bench::build_binaries()?;
    // e2e::binaries runs its own (debug) `cargo build` first; do that now, before the clock.
    let started = Instant::now();
    eprintln!(
        "bid_latency: akash-provider and akash-devnet ({profile}) built; setting up (block time {})",
        settings.block_time
    );

    let cluster = e2e::Cluster::shared().await?;
    e2e::crds::install(&cluster).await?;
    let ns = cluster.namespace("bench").await?;
    // Room for every batch's orders at once, each one pod at 0.1 CPU: the bids of one batch
    // size's run still hold their reservations during the next (the 1,000-order run at the
    // second batch size bid on 738 of them when the room was for the largest batch alone).
    let all = settings.orders.iter().sum::<usize>() * settings.bid_batch_sizes.len();
    let added = e2e::bench::add_kwok_nodes(&cluster.client(), all + 100).await?;
    if !added.is_empty() {
        eprintln!("bid_latency: added {} kwok nodes", added.len());
    }
    *ADDED_NODES.lock().unwrap() = (added, Some(cluster.client()));
    let devnet = Devnet::start("bench-bid-latency", &settings.block_time)?;
    let resource =
        ProviderResource::create(&cluster.client(), ns.name(), &[("host", "akash")]).await?;
    let tenants = TENANT_KEYS
        .iter()
        .map(|&k| e2e::bench::client(&devnet, TEST_MNEMONICS[k], Duration::from_secs(10)))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let provider_address = e2e::bench::client(
        &devnet,
        TEST_MNEMONICS[PROVIDER_KEY],
        Duration::from_secs(10),
    )?
    .address()
    .to_owned();
    let mut bench = Bench {
        provider: None,
        resource,
        devnet,
        ns,
        cluster,
        next_dseq: vec![1; tenants.len()],
        batch_size: 0,
        tenants,
        provider_address,
        sdl: crds::sdl::Sdl::parse(SDL).map_err(|e| anyhow::anyhow!("the bench's SDL: {e}"))?,
    };

    let mut latency = None;
    let mut batches = Vec::new();
    for (i, &batch_size) in settings.bid_batch_sizes.iter().enumerate() {
        bench.start_provider(batch_size).await?;
        if i == 0 {
            latency = Some(bench.latency(&settings).await?);
        }
        for &n in &settings.orders {
            let result = bench.batch(&settings, n, batch_size).await?;
            eprintln!("  {}", result.line());
            batches.push(result);
        }
        let logs = bench
            .provider
            .as_ref()
            .map(|p| p.logs())
            .unwrap_or_default();
        let failed = logs.matches("a batch of bids failed").count();
        let refused = logs.matches("the chain refused the bid").count();
        if failed + refused > 0 {
            eprintln!(
                "  --bid-batch-size {batch_size}: {failed} failed batch(es), {refused} refused bid(s) in the provider's log"
            );
        }
    }

    bench.save_log();
    println!();
    println!(
        "bid_latency: akash-provider ({profile} build), akash-devnet block time {}, run took {:.0}s",
        settings.block_time,
        started.elapsed().as_secs_f64()
    );
    if let Some(l) = latency {
        println!("{}", l.table());
    }
    for b in &batches {
        println!("{}", b.line());
    }
    Ok(batches)
}

impl Bench {
    /// (Re)starts the provider with `--bid-batch-size`, and waits until it bids.
    async fn start_provider(&mut self, batch_size: usize) -> anyhow::Result<()> {
        let first = self.provider.is_none();
        self.save_log();
        if !first {
            // The killed process held the leader-election lease; release it, or the next one
            // (a new identity) waits for it to expire.
            self.provider = None;
            let leases: kube::Api<Lease> = self.ns.api();
            match leases
                .delete("akash-provider-leader", &Default::default())
                .await
            {
                Ok(_) => {}
                Err(kube::Error::Api(e)) if e.code == 404 => {}
                Err(e) => return Err(e).context("releasing the leader-election lease"),
            }
        }
        self.provider = Some(ProviderProcess::start(
            self.cluster.kubeconfig(),
            &self.devnet,
            ProviderOptions {
                namespace: self.ns.name().to_owned(),
                provider_resource: self.resource.name.clone(),
                mnemonic: TEST_MNEMONICS[PROVIDER_KEY].to_owned(),
                // A bid timeout past the run: no MsgCloseBid traffic in the measurements.
                extra_args: vec![
                    "--bid-batch-size".into(),
                    batch_size.to_string(),
                    "--bid-timeout".into(),
                    "30m".into(),
                ],
            },
        )?);
        if first {
            self.resource.wait_registered().await?;
        }
        // Warm-up (connections, watch caches, the Provider settings): one order, not counted.
        let dseq = self.take_dseq(0, 1);
        self.tenants[0]
            .broadcast(vec![chain_client::to_any(&e2e::tenant::deployment_msg(
                self.tenants[0].address(),
                dseq,
                &self.sdl,
            )?)])
            .await
            .context("the warm-up deployment")?;
        let owner = self.tenants[0].address().to_owned();
        let me = self.provider_address.clone();
        self.wait_bid(0, &owner, dseq, &me, Duration::from_secs(90))
            .await
            .context("the warm-up bid")?;
        self.batch_size = batch_size;
        Ok(())
    }

    /// Copies the provider's log to `BENCH_PROVIDER_LOG`.<batch size>, when that is set.
    fn save_log(&self) {
        let (Some(path), Some(p)) = (std::env::var_os("BENCH_PROVIDER_LOG"), &self.provider) else {
            return;
        };
        let mut path = std::path::PathBuf::from(path).into_os_string();
        path.push(format!(".{}", self.batch_size));
        if let Err(e) = std::fs::write(&path, p.logs()) {
            eprintln!("bid_latency: writing {}: {e}", path.to_string_lossy());
        }
    }

    fn take_dseq(&mut self, tenant: usize, count: u64) -> u64 {
        let first = self.next_dseq[tenant];
        self.next_dseq[tenant] += count;
        first
    }

    /// Polls the bids query every [`BID_POLL`] until the provider's bid on (owner, dseq) is there.
    async fn wait_bid(
        &self,
        tenant: usize,
        owner: &str,
        dseq: u64,
        provider: &str,
        limit: Duration,
    ) -> anyhow::Result<chain_client::akash::market::v1beta5::Bid> {
        let start = Instant::now();
        loop {
            if let Some(bid) = market::chain_bids(&self.tenants[tenant], owner, dseq, provider)
                .await?
                .into_iter()
                .next()
            {
                return Ok(bid);
            }
            if start.elapsed() > limit {
                let logs = self.provider.as_ref().map(|p| p.logs()).unwrap_or_default();
                let tail: Vec<&str> = logs.lines().rev().take(30).collect();
                bail!(
                    "no bid on {owner}/{dseq} after {limit:?}; the provider's log ends with:\n{}",
                    tail.into_iter().rev().collect::<Vec<_>>().join("\n")
                );
            }
            tokio::time::sleep(BID_POLL).await;
        }
    }

    async fn metrics(&self) -> String {
        match &self.provider {
            Some(p) => p.metrics().await.unwrap_or_default(),
            None => String::new(),
        }
    }

    /// Single orders, one at a time.
    async fn latency(&mut self, settings: &Settings) -> anyhow::Result<Latency> {
        eprintln!("bid_latency: {} single orders", settings.rounds);
        let before = Histogram::parse(&self.metrics().await, "akash_provider_order_to_bid_seconds");
        let owner = self.tenants[0].address().to_owned();
        let me = self.provider_address.clone();
        let mut blocks = Vec::new();
        let mut millis = Vec::new();
        for _ in 0..settings.rounds {
            let dseq = self.take_dseq(0, 1);
            let msg = chain_client::to_any(&e2e::tenant::deployment_msg(&owner, dseq, &self.sdl)?);
            self.tenants[0]
                .broadcast(vec![msg])
                .await
                .context("MsgCreateDeployment")?;
            let included = Instant::now();
            let bid = self
                .wait_bid(0, &owner, dseq, &me, Duration::from_secs(60))
                .await?;
            millis.push(included.elapsed().as_secs_f64() * 1e3);
            let order = self.tenants[0]
                .orders(
                    OrderFilters {
                        owner: owner.clone(),
                        dseq,
                        gseq: 1,
                        oseq: 1,
                        state: String::new(),
                    },
                    PageRequest::first(1),
                )
                .await?
                .items
                .into_iter()
                .next()
                .context("the order of a deployment just posted")?;
            blocks.push((bid.created_at - order.created_at) as f64);
        }
        tokio::time::sleep(settings.block).await;
        let after = Histogram::parse(&self.metrics().await, "akash_provider_order_to_bid_seconds");
        Ok(Latency {
            blocks,
            millis,
            provider_seconds: after.minus(&before),
        })
    }

    /// `n` orders in one block, split over the tenants, one transaction each.
    async fn batch(
        &mut self,
        settings: &Settings,
        n: usize,
        batch_size: usize,
    ) -> anyhow::Result<Batch> {
        let me = self.provider_address.clone();
        // The provider counts a bid once its own poll sees the block: let the last one settle.
        tokio::time::sleep(settings.block).await;
        let sent_before = market::counter(&self.metrics().await, "akash_provider_bids_sent_total");
        let accounts = self.tenants.len();
        let mut posts = Vec::new();
        for t in 0..accounts {
            let count = n / accounts + usize::from(t < n % accounts);
            if count == 0 {
                continue;
            }
            let first = self.take_dseq(t, count as u64);
            let owner = self.tenants[t].address().to_owned();
            let msgs = (first..first + count as u64)
                .map(|dseq| {
                    e2e::tenant::deployment_msg(&owner, dseq, &self.sdl)
                        .map(|m| chain_client::to_any(&m))
                })
                .collect::<anyhow::Result<Vec<_>>>()?;
            posts.push((t, owner, first..first + count as u64, msgs));
        }
        // Right after a block, so that every transaction makes it into the next one.
        let height = self.tenants[0].latest_height().await?;
        loop {
            tokio::time::sleep(Duration::from_millis(10)).await;
            if self.tenants[0].latest_height().await? > height {
                break;
            }
        }
        let results = futures::future::join_all(
            posts
                .iter()
                .map(|(t, _, _, msgs)| self.tenants[*t].broadcast(msgs.clone())),
        )
        .await;
        let mut order_blocks = BTreeSet::new();
        for r in results {
            order_blocks.insert(r.context("MsgCreateDeployment ×N")?.height);
        }
        // The orders are on chain from here; each bid's seconds run to its first sighting.
        let included = Instant::now();
        let mut seen: BTreeMap<(String, u64), f64> = BTreeMap::new();

        // Wait for every bid (or give up after 30 blocks), then read the heights.
        let limit = (settings.block * 30).max(Duration::from_secs(30));
        let start = Instant::now();
        let (orders, bids) = loop {
            let mut orders = BTreeMap::new();
            let mut bids = BTreeMap::new();
            for (t, owner, dseqs, _) in &posts {
                let chain = &self.tenants[*t];
                for o in chain
                    .orders(
                        OrderFilters {
                            owner: owner.clone(),
                            ..Default::default()
                        },
                        PageRequest::first(10_000),
                    )
                    .await?
                    .items
                {
                    let id = o.id.clone().unwrap_or_default();
                    if dseqs.contains(&id.dseq) {
                        orders.insert((owner.clone(), id.dseq), o.created_at);
                    }
                }
                for b in chain
                    .bids(
                        BidFilters {
                            owner: owner.clone(),
                            provider: me.clone(),
                            ..Default::default()
                        },
                        PageRequest::first(10_000),
                    )
                    .await?
                    .items
                    .into_iter()
                    .filter_map(|r| r.bid)
                {
                    let id = b.id.clone().unwrap_or_default();
                    if dseqs.contains(&id.dseq) {
                        bids.insert((owner.clone(), id.dseq), b.created_at);
                        seen.entry((owner.clone(), id.dseq))
                            .or_insert_with(|| included.elapsed().as_secs_f64());
                    }
                }
            }
            if bids.len() >= n || start.elapsed() > limit {
                break (orders, bids);
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        };
        // Let the provider finish its bookkeeping (a status write per bid) before the next round
        // or the metrics read: until it has counted every bid seen on chain, or 30 s.
        tokio::time::sleep(settings.block * 2).await;
        let counting = Instant::now();
        let mut sent_after;
        loop {
            sent_after = market::counter(&self.metrics().await, "akash_provider_bids_sent_total");
            if sent_after - sent_before >= bids.len() as f64
                || counting.elapsed() > Duration::from_secs(30)
            {
                break;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }

        let delays: Vec<i64> = bids
            .iter()
            .filter_map(|(k, bid_at)| orders.get(k).map(|order_at| bid_at - order_at))
            .collect();
        let blocks: Vec<f64> = delays.iter().map(|d| *d as f64).collect();
        let seconds: Vec<f64> = seen.values().copied().collect();
        Ok(Batch {
            orders: n,
            batch_size,
            order_blocks: order_blocks.into_iter().collect(),
            next_block: delays.iter().filter(|d| **d <= 1).count(),
            two_blocks: delays.iter().filter(|d| **d <= 2).count(),
            total: bids.len(),
            max_delay: delays.iter().copied().max(),
            bid_heights: bids.values().copied().collect::<BTreeSet<_>>().len(),
            bids_sent: sent_after - sent_before,
            blocks_p50_p99: percentiles(&blocks),
            seconds_p50_p99: percentiles(&seconds),
        })
    }
}

struct Latency {
    blocks: Vec<f64>,
    millis: Vec<f64>,
    provider_seconds: Histogram,
}

impl Latency {
    fn table(&self) -> String {
        let h = &self.provider_seconds;
        let mean = if h.count > 0.0 {
            format!("{:.0}", h.sum / h.count * 1e3)
        } else {
            "-".into()
        };
        format!(
            "order-to-bid ({} single orders):\n  \
             blocks: p50={} p90={} max={}\n  \
             ms (tenant's tx included → bid visible to a chain query polled every 20 ms): p50={:.0} p90={:.0} max={:.0}\n  \
             provider's akash_provider_order_to_bid_seconds (order seen → bid included): mean={mean} ms over {} bids; {}",
            self.blocks.len(),
            e2e::bench::percentile(&self.blocks, 0.5),
            e2e::bench::percentile(&self.blocks, 0.9),
            e2e::bench::percentile(&self.blocks, 1.0),
            e2e::bench::percentile(&self.millis, 0.5),
            e2e::bench::percentile(&self.millis, 0.9),
            e2e::bench::percentile(&self.millis, 1.0),
            h.count,
            h.distribution(),
        )
    }
}

pub struct Batch {
    pub orders: usize,
    batch_size: usize,
    /// The heights the tenants' transactions landed in (one, when all went as planned).
    order_blocks: Vec<u64>,
    next_block: usize,
    two_blocks: usize,
    /// Orders bid on, in all.
    pub total: usize,
    max_delay: Option<i64>,
    /// Distinct heights of the bids: the provider's transactions (it sends one at a time).
    bid_heights: usize,
    bids_sent: f64,
    /// Order-to-bid in blocks (bid height − order height), p50 and p99.
    blocks_p50_p99: Option<(f64, f64)>,
    /// From the orders' transactions returning included to each bid's first sighting (the
    /// chain's bids polled every 200 ms), p50 and p99.
    seconds_p50_p99: Option<(f64, f64)>,
}

fn percentiles(samples: &[f64]) -> Option<(f64, f64)> {
    (!samples.is_empty()).then(|| {
        (
            e2e::bench::percentile(samples, 0.5),
            e2e::bench::percentile(samples, 0.99),
        )
    })
}

impl Batch {
    pub fn line(&self) -> String {
        let blocks = if self.order_blocks.len() == 1 {
            "one block".to_owned()
        } else {
            format!("blocks {:?}", self.order_blocks)
        };
        let p = |v: Option<(f64, f64)>, digits: usize| {
            v.map_or("-".into(), |(a, b)| {
                format!("p50 {a:.digits$} p99 {b:.digits$}")
            })
        };
        format!(
            "orders in {blocks}: {:>3} (--bid-batch-size {}) → bid within next block: {}, within 2 blocks: {}, in all: {} (max {} blocks; {} bid txs, bids_sent_total +{}); order-to-bid blocks {}, seconds {}",
            self.orders,
            self.batch_size,
            self.next_block,
            self.two_blocks,
            self.total,
            self.max_delay.map_or("-".into(), |d| d.to_string()),
            self.bid_heights,
            self.bids_sent,
            p(self.blocks_p50_p99, 0),
            p(self.seconds_p50_p99, 2),
        )
    }
}

/// A Prometheus histogram as the text format shows it: cumulative buckets, sum and count.
#[derive(Debug, Clone, Default)]
struct Histogram {
    buckets: Vec<(f64, f64)>,
    sum: f64,
    count: f64,
}

impl Histogram {
    fn parse(text: &str, name: &str) -> Self {
        let value = |line: &str| {
            line.rsplit(' ')
                .next()
                .and_then(|v| v.parse::<f64>().ok())
                .unwrap_or(0.0)
        };
        let mut h = Self::default();
        let bucket = format!("{name}_bucket{{");
        for line in text.lines() {
            if line.starts_with(&bucket) {
                let le = line
                    .split("le=\"")
                    .nth(1)
                    .and_then(|rest| rest.split('"').next())
                    .unwrap_or("+Inf");
                let le = if le == "+Inf" {
                    f64::INFINITY
                } else {
                    le.parse().unwrap_or(f64::INFINITY)
                };
                h.buckets.push((le, value(line)));
            } else if line.starts_with(&format!("{name}_sum ")) {
                h.sum = value(line);
            } else if line.starts_with(&format!("{name}_count ")) {
                h.count = value(line);
            }
        }
        h
    }

    /// `self - earlier`, bucket by bucket.
    fn minus(&self, earlier: &Self) -> Self {
        Self {
            buckets: self
                .buckets
                .iter()
                .map(|&(le, c)| {
                    let before = earlier
                        .buckets
                        .iter()
                        .find(|(l, _)| *l == le)
                        .map_or(0.0, |(_, c)| *c);
                    (le, c - before)
                })
                .collect(),
            sum: self.sum - earlier.sum,
            count: self.count - earlier.count,
        }
    }

    /// The samples per bucket, e.g. `0.5-1s: 12, 1-2s: 7` (empty buckets left out).
    fn distribution(&self) -> String {
        let mut parts = Vec::new();
        let (mut lower, mut below) = (0.0, 0.0);
        for &(le, cumulative) in &self.buckets {
            let n = cumulative - below;
            if n > 0.0 {
                let range = if le.is_infinite() {
                    format!(">{lower}s")
                } else {
                    format!("{lower}-{le}s")
                };
                parts.push(format!("{range}: {n}"));
            }
            lower = le;
            below = cumulative;
        }
        parts.join(", ")
    }
}
