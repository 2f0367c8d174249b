//! `akash-provider tenant deploy|status|close`: the controller's flow from a terminal, for people
//! without a cluster of their own. The deployment's state is kept in
//! `<home>/<address>/deployments/<dseq>.json` (written after every step), the certificate beside it.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use chain_client::Chain;
use chain_client::keys::{Key, Mnemonic};
use crds::resources::{
    BidFilter, ManifestPhase, ManifestSpec, ManifestStatus, Price, SecretKeyRef,
};
use crds::sdl::Sdl;

use super::config::{CliCommon, DeployArgs, DseqArgs};
use super::delivery::{Gateway, MtlsGateway};
use super::flow::{self, Ctx, Next, Progress};
use super::identity::{self, CertStore, FileCertStore};
use super::plan::plan;
use crate::gateway::client::TenantIdentity;

pub(super) struct Session {
    pub(super) chain: Arc<dyn Chain>,
    pub(super) dir: PathBuf,
    /// A token of the account for providers' gateways, when asked for (`--jwt`).
    pub(super) token: Option<String>,
}

/// How long a token the CLI makes for itself is valid.
const TOKEN_LIFETIME: std::time::Duration = std::time::Duration::from_secs(15 * 60);

pub(super) async fn session(common: &CliCommon) -> anyhow::Result<Session> {
    session_with(common, false).await
}

/// A session; with `token`, also a token (JWT, full access) signed by the account's key.
pub(super) async fn session_with(common: &CliCommon, token: bool) -> anyhow::Result<Session> {
    let phrase = tokio::fs::read_to_string(&common.key_file)
        .await
        .with_context(|| format!("--key-file {}", common.key_file.display()))?;
    let key = Mnemonic::from_phrase(phrase.trim())
        .and_then(|m| Key::from_mnemonic(&m))
        .with_context(|| {
            format!(
                "--key-file {}: not a usable mnemonic",
                common.key_file.display()
            )
        })?;
    let dir = common.home.join(key.address().to_string());
    let token = token
        .then(|| crate::gateway::jwt::mint_full(&key, TOKEN_LIFETIME))
        .transpose()?;
    let chain = common.chain.connect(key)?;
    Ok(Session {
        chain: Arc::new(chain),
        dir,
        token,
    })
}

fn state_path(dir: &Path, dseq: u64) -> PathBuf {
    dir.join("deployments").join(format!("{dseq}.json"))
}

/// The state file: the SDL's spec and the flow's status.
#[derive(serde::Serialize, serde::Deserialize)]
struct Record {
    spec: ManifestSpec,
    status: ManifestStatus,
}

async fn save(dir: &Path, record: &Record) -> anyhow::Result<()> {
    let Some(dseq) = record.status.dseq else {
        return Ok(());
    };
    let path = state_path(dir, dseq);
    tokio::fs::create_dir_all(path.parent().unwrap_or(dir)).await?;
    let tmp = path.with_extension("json.tmp");
    tokio::fs::write(&tmp, serde_json::to_vec_pretty(record)?).await?;
    tokio::fs::rename(&tmp, &path).await?;
    Ok(())
}

async fn load(dir: &Path, dseq: u64) -> anyhow::Result<Option<Record>> {
    let path = state_path(dir, dseq);
    match tokio::fs::read(&path).await {
        Ok(bytes) => Ok(Some(
            serde_json::from_slice(&bytes).with_context(|| path.display().to_string())?,
        )),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e).with_context(|| path.display().to_string()),
    }
}

/// `tenant deploy FILE`.
pub async fn deploy(args: DeployArgs) -> anyhow::Result<()> {
    let text = tokio::fs::read_to_string(&args.file)
        .await
        .with_context(|| args.file.display().to_string())?;
    let sdl = Sdl::parse(&text).map_err(|e| anyhow::anyhow!("{}: {e}", args.file.display()))?;
    let (amount, denom) = split_coin(&args.deposit).context("--deposit")?;
    let spec = ManifestSpec {
        sdl: sdl.document().clone(),
        deposit: Price { denom, amount },
        wait_duration_blocks: args.wait_blocks,
        key_secret: SecretKeyRef {
            name: "key-file".into(),
            key: "mnemonic".into(),
        },
        bid_filter: (!args.providers.is_empty()).then(|| BidFilter {
            allowed_providers: args.providers.clone(),
            ..Default::default()
        }),
        distribution: if args.seed_one {
            crds::resources::Distribution::SeedOne
        } else {
            crds::resources::Distribution::SendToAll
        },
        dseq: args.dseq,
    };
    let plan = plan(&spec).map_err(|issues| {
        anyhow::anyhow!(
            "{}",
            issues
                .iter()
                .map(|i| format!("{}: {}", cli_field(&args.file, &i.path), i.message))
                .collect::<Vec<_>>()
                .join("\n")
        )
    })?;
    let s = session(&args.common).await?;
    say(&format!("tenant {}", s.chain.address()));
    let identity = identity::ensure(s.chain.as_ref(), &FileCertStore { dir: s.dir.clone() })
        .await
        .context("the tenant certificate")?;
    let gateway = MtlsGateway::new(s.chain.clone(), identity);
    let mut record = Record {
        spec,
        status: ManifestStatus::default(),
    };
    let started = Instant::now();
    let mut printer = Printer::default();
    let dseqs = flow::DseqAllocator::default();
    loop {
        let ctx = Ctx {
            chain: s.chain.as_ref(),
            gateway: &gateway,
            dseqs: &dseqs,
            failure_threshold: Duration::from_secs(300),
            status_interval: Duration::from_secs(2),
            block_interval: args.common.block_interval,
            now: jiff::Timestamp::now(),
        };
        let mut progress = Vec::new();
        let next = flow::step(&ctx, &plan, &mut record.status, &mut progress).await;
        save(&s.dir, &record).await?;
        for p in &progress {
            printer.print(p);
        }
        let next = next?;
        if record.status.phase == Some(ManifestPhase::Running) {
            print_status(&record.status);
            say(&format!(
                "done in {}; `akash-provider tenant status {}` shows it, `tenant close {}` ends it",
                humantime::format_duration(Duration::from_secs(started.elapsed().as_secs())),
                record.status.dseq.unwrap_or_default(),
                record.status.dseq.unwrap_or_default()
            ));
            return Ok(());
        }
        if started.elapsed() > args.timeout {
            print_status(&record.status);
            anyhow::bail!(
                "not every service is ready after {}; deployment {} stays open (`tenant status`, `tenant close`)",
                humantime::format_duration(args.timeout),
                record.status.dseq.unwrap_or_default()
            );
        }
        if let Next::Wait(d) = next {
            tokio::time::sleep(d.min(Duration::from_secs(2))).await;
        }
    }
}

/// `tenant status DSEQ`.
pub async fn status(args: DseqArgs) -> anyhow::Result<()> {
    let s = session(&args.common).await?;
    let owner = s.chain.address().to_owned();
    let Some(deployment) = flow::deployment(s.chain.as_ref(), &owner, args.dseq).await? else {
        anyhow::bail!("{owner} has no deployment {} on chain", args.dseq);
    };
    let state = deployment
        .deployment
        .as_ref()
        .map(|d| d.state)
        .unwrap_or_default();
    let active = state == chain_client::akash::deployment::v1::deployment::State::Active as i32;
    say(&format!(
        "deployment {} of {owner}: {}",
        args.dseq,
        if active { "active" } else { "closed" }
    ));
    let Some(record) = load(&s.dir, args.dseq).await? else {
        say("(not deployed from this machine: no record of its leases here)");
        return Ok(());
    };
    let mut status = record.status;
    if active {
        // A fresh look at the leases and services, without posting anything.
        let identity = FileCertStore { dir: s.dir.clone() }
            .load()
            .await?
            .map(TenantIdentity::from)
            .context("no tenant certificate under --home")?;
        let gateway = MtlsGateway::new(s.chain.clone(), identity);
        for g in &status.groups {
            let (Some(provider), Some(oseq)) = (&g.provider, g.oseq) else {
                continue;
            };
            let uri = s
                .chain
                .provider(provider)
                .await?
                .map(|p| p.host_uri)
                .unwrap_or_default();
            match gateway
                .lease_status(provider, &uri, (args.dseq, g.gseq, oseq))
                .await
            {
                Ok(report) => {
                    status
                        .services
                        .retain(|s| !report.services.iter().any(|r| r.name == s.name));
                    status.services.extend(report.services);
                }
                Err(e) => say(&format!("group {} ({provider}): {e}", g.name)),
            }
        }
    }
    print_status(&status);
    Ok(())
}

/// `tenant close DSEQ`.
pub async fn close(args: DseqArgs) -> anyhow::Result<()> {
    let s = session(&args.common).await?;
    let owner = s.chain.address().to_owned();
    let before = s.chain.balance(&owner, "uact").await?;
    let status = ManifestStatus {
        dseq: Some(args.dseq),
        ..Default::default()
    };
    if !flow::close(s.chain.as_ref(), &status).await? {
        anyhow::bail!("{owner} has no active deployment {}", args.dseq);
    }
    let after = s.chain.balance(&owner, "uact").await?;
    say(&format!(
        "deployment {} closed; {} uact refunded from escrow (balance {after} uact)",
        args.dseq,
        after.saturating_sub(before)
    ));
    Ok(())
}

/// A spec field as the command line names it: the SDL file's own path, or the flag.
fn cli_field(file: &Path, path: &str) -> String {
    if let Some(sdl) = path.strip_prefix("spec.sdl.") {
        return format!("{}: {sdl}", file.display());
    }
    let flag = match path.split(['.', '[']).nth(1).unwrap_or_default() {
        "deposit" => "--deposit",
        "waitDurationBlocks" => "--wait-blocks",
        "bidFilter" => "--provider",
        "dseq" => "--dseq",
        _ => return path.to_owned(),
    };
    match path.find('[') {
        Some(i) => format!("{flag}{}", &path[i..]),
        None => flag.to_owned(),
    }
}

fn split_coin(text: &str) -> anyhow::Result<(String, String)> {
    let digits = text.chars().take_while(char::is_ascii_digit).count();
    let (amount, denom) = text.split_at(digits);
    if amount.is_empty() || denom.is_empty() {
        anyhow::bail!("{text:?} is not an amount and denom such as 5000000uact");
    }
    Ok((amount.to_owned(), denom.to_owned()))
}

fn say(line: &str) {
    let now = jiff::Zoned::now();
    println!("[{}] {line}", now.strftime("%H:%M:%S"));
}

/// Prints progress, once per change for the repeated ones.
#[cfg(test)]
mod tests {
    use super::cli_field;
    use std::path::Path;

    #[test]
    fn spec_fields_are_named_as_the_command_line_names_them() {
        let file = Path::new("deploy.yaml");
        assert_eq!(cli_field(file, "spec.deposit.denom"), "--deposit");
        assert_eq!(cli_field(file, "spec.waitDurationBlocks"), "--wait-blocks");
        assert_eq!(
            cli_field(file, "spec.bidFilter.allowedProviders[0]"),
            "--provider[0]"
        );
        assert_eq!(
            cli_field(file, "spec.sdl.services.web.image"),
            "deploy.yaml: services.web.image"
        );
    }
}

#[derive(Default)]
struct Printer {
    last_wait: Option<(u32, u64)>,
}

impl Printer {
    fn print(&mut self, p: &Progress) {
        let line = match p {
            Progress::DeploymentCreated { dseq, version } => {
                format!(
                    "deployment {dseq} created (manifest version {})",
                    crate::controller::short_version(version)
                )
            }
            Progress::DeploymentUpdated { version } => {
                format!("deployment updated to version {version}")
            }
            Progress::WaitingForBids { gseq, blocks_left } => {
                if self.last_wait == Some((*gseq, *blocks_left)) {
                    return;
                }
                self.last_wait = Some((*gseq, *blocks_left));
                format!(
                    "group {gseq}: waiting for bids ({blocks_left} block{} left)",
                    if *blocks_left == 1 { "" } else { "s" }
                )
            }
            Progress::BidsReceived { gseq, bids } => {
                let mut text = format!(
                    "group {gseq}: {} bid{}",
                    bids.len(),
                    if bids.len() == 1 { "" } else { "s" }
                );
                for (provider, price) in bids {
                    text.push_str(&format!("\n    {provider}  {price}/block"));
                }
                text
            }
            Progress::NoEligibleBid { gseq, bids } => {
                format!("group {gseq}: {bids} bids, none eligible; waiting")
            }
            Progress::LeaseCreated {
                gseq,
                provider,
                price,
            } => {
                format!("group {gseq}: leased to {provider} at {price}/block")
            }
            Progress::ManifestSent { provider, .. } => format!("manifest sent to {provider}"),
            Progress::DeliveryFailed { provider, error } => {
                format!("sending the manifest to {provider} failed: {error}; retrying")
            }
            Progress::ServicesReady { ready } => format!("{ready} services ready"),
            Progress::ProviderDropped {
                gseq,
                provider,
                reason,
            } => {
                format!("group {gseq}: dropped {provider} ({reason}); choosing another bid")
            }
            Progress::GroupStarted { gseq } => format!("group {gseq} reopened for bids"),
            Progress::DeploymentClosedOnChain => "the deployment was closed on chain".into(),
        };
        say(&line);
    }
}

fn print_status(status: &ManifestStatus) {
    for g in &status.groups {
        println!(
            "  group {} ({}): provider {}, price {}",
            g.name,
            g.gseq,
            g.provider.as_deref().unwrap_or("-"),
            g.price
                .as_ref()
                .map(|p| format!("{}{}/block", p.amount, p.denom))
                .unwrap_or_else(|| "-".into())
        );
    }
    for s in &status.services {
        println!(
            "  service {}: {}/{} ready",
            s.name, s.ready_replicas, s.replicas
        );
        for uri in &s.uris {
            println!("    http://{uri}");
        }
        for port in s.forwarded_ports.iter().chain(&s.leased_ips) {
            println!("    {port}");
        }
    }
}
