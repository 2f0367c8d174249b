//! Peer-to-peer manifest distribution between the providers of one deployment (the whitepaper's
//! "lease participants pass the manifest to one another").
//!
//! - Serving: `GET /deployment/{owner}/{dseq}/manifest` answers a provider that presents its
//!   on-chain certificate and holds an active lease on the same deployment, while this provider
//!   holds one too, with exactly the manifest whose version is the deployment's hash on chain
//!   ([`authorize`]). At most `limit` peers are served the same manifest at once ([`ServeLimit`]).
//! - Fetching: [`run_fetcher`] finds this provider's leases without a manifest (or with an older
//!   version than the chain's hash), asks the deployment's other lease holders at their on-chain
//!   host URIs (presenting this provider's certificate, checking theirs against the chain),
//!   verifies the hash ([`verify_version`]) and hands the manifest to the same acceptance path a
//!   tenant's upload takes.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chain_client::akash::deployment::v1::deployment::State as DeploymentState;
use chain_client::chain::QueryDeploymentResponse;
use chain_client::events::AkashEvent;
use crds::resources::Lease;
use sha2::{Digest, Sha256};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, watch};
use tokio::time::Instant;

use super::accept::Rejection;
use super::client::TenantIdentity;
use super::source::LeaseSummary;
use super::{Gateway, source};
use crate::chain_events::FollowedBlock;

/// How often every deployment's version on chain is compared with the manifests held, besides
/// the updates the chain's events announce.
pub(crate) const UPDATE_SAFETY_CHECK: Duration = Duration::from_secs(300);

/// The default of `--peer-serve-limit`.
pub(crate) const DEFAULT_SERVE_LIMIT: usize = 4;

/// Decides whether `requester` (a verified certificate owner) may have the manifest of
/// deployment (`owner`, `dseq`) from this provider `me`, and returns the lease that holds it
/// (the version on chain) if so.
///
/// - `holders`: the providers that hold an active lease on the deployment, from the chain;
/// - `deployment`: the deployment on chain;
/// - `local`: this provider's Lease resources of the deployment.
///
/// The order of the checks tells a requester no more than it may know: anyone who is not one of
/// the deployment's providers learns only that (403), whatever this provider holds.
pub(crate) fn authorize<'a>(
    requester: &str,
    me: &str,
    owner: &str,
    dseq: u64,
    holders: &[String],
    deployment: Option<&QueryDeploymentResponse>,
    local: &'a [Lease],
) -> Result<&'a Lease, Rejection> {
    if requester == owner {
        return Err(Rejection::Forbidden(format!(
            "{requester} is the tenant of deployment {dseq}: manifests are served here only to \
             the deployment's other providers (the tenant sends its manifest with PUT \
             /deployment/{dseq}/manifest)"
        )));
    }
    if requester == me || !holders.iter().any(|h| h == requester) {
        return Err(Rejection::Forbidden(format!(
            "{requester} holds no active lease on deployment {owner}/{dseq}; only its providers \
             may fetch its manifest"
        )));
    }
    if !holders.iter().any(|h| h == me) {
        return Err(Rejection::NotFound(format!(
            "this provider holds no active lease on deployment {owner}/{dseq}"
        )));
    }
    let Some(found) = deployment.and_then(|d| d.deployment.as_ref()) else {
        return Err(Rejection::NotFound(format!(
            "deployment {owner}/{dseq} does not exist on chain"
        )));
    };
    if found.state() != DeploymentState::Active {
        return Err(Rejection::NotFound(format!(
            "deployment {owner}/{dseq} is {} on chain, not active",
            found.state().as_str_name()
        )));
    }
    let want = crds::sdl::version::hex(&found.hash);
    local
        .iter()
        .filter(|l| {
            let id = &l.spec.lease_id;
            id.owner == owner && id.dseq == dseq && id.provider == me && source::is_live(l)
        })
        .find(|l| {
            l.spec.deployment_manifest.is_some()
                && l.spec.manifest.as_ref().is_some_and(|m| m.version == want)
        })
        .ok_or_else(|| {
            Rejection::NotFound(format!(
                "this provider does not have version {want} of the manifest of deployment \
                 {owner}/{dseq} (yet)"
            ))
        })
}

/// The version (lowercase hex SHA-256 of the canonical JSON) of a manifest `body`, if it is the
/// deployment's hash `want` (lowercase hex); otherwise why not.
pub fn verify_version(body: &[u8], want: &str) -> Result<String, String> {
    // A Lease resource could not hold it (see `accept`): refused before parsing, which costs
    // tens of bytes of memory per byte.
    let budget = super::accept::LEASE_MANIFEST_BUDGET;
    if body.len() > budget {
        return Err(format!(
            "the manifest ({} bytes) is larger than the {budget} bytes a lease can store",
            body.len()
        ));
    }
    let value: serde_json::Value =
        serde_json::from_slice(body).map_err(|e| format!("the manifest is not JSON: {e}"))?;
    let canonical = crds::sdl::version::canonical_json(&value)
        .map_err(|e| format!("the manifest cannot be hashed: {e}"))?;
    let got = crds::sdl::version::hex(&Sha256::digest(canonical.as_bytes()));
    if got == want {
        Ok(got)
    } else {
        Err(format!(
            "manifest version {got} is not the deployment's hash {want}"
        ))
    }
}

/// How many peers are served the manifest of one deployment at once.
pub(crate) struct ServeLimit {
    limit: usize,
    held: Mutex<HashMap<(String, u64), Arc<Semaphore>>>,
}

impl ServeLimit {
    pub(crate) fn new(limit: usize) -> Self {
        Self {
            limit: limit.max(1),
            held: Mutex::new(HashMap::new()),
        }
    }

    /// A permit to serve deployment (`owner`, `dseq`) to one more peer, held until the answer was
    /// sent; `Busy` when `limit` peers are being served it already.
    pub(crate) fn try_acquire(
        &self,
        owner: &str,
        dseq: u64,
    ) -> Result<OwnedSemaphorePermit, Rejection> {
        let semaphore = {
            let mut held = self.held.lock().unwrap_or_else(|p| p.into_inner());
            if held.len() > 1024 {
                let limit = self.limit;
                held.retain(|_, s| s.available_permits() < limit);
            }
            held.entry((owner.to_owned(), dseq))
                .or_insert_with(|| Arc::new(Semaphore::new(self.limit)))
                .clone()
        };
        semaphore.try_acquire_owned().map_err(|_| {
            Rejection::Busy(format!(
                "serving the manifest of deployment {owner}/{dseq} to {} peers already; ask \
                 another provider of the deployment, or again later",
                self.limit
            ))
        })
    }
}

/// The pause after `failures` failed rounds of asking peers: 1s, 2s, 4s, ... at most 10s.
pub(crate) fn backoff(failures: u32) -> Duration {
    Duration::from_secs(1u64 << failures.min(4)).min(MAX_BACKOFF)
}

const MAX_BACKOFF: Duration = Duration::from_secs(10);

/// The order in which the holders are asked in round `round`: every holder once, starting one
/// further each round, so that a holder that refused (busy, not there yet) is not always first.
pub(crate) fn ask_order(holders: &[String], round: u32) -> Vec<String> {
    if holders.is_empty() {
        return Vec::new();
    }
    let start = round as usize % holders.len();
    holders[start..]
        .iter()
        .chain(&holders[..start])
        .cloned()
        .collect()
}

/// How the fetcher runs.
#[derive(Debug, Clone)]
pub struct FetchConfig {
    /// How often this provider's leases are looked at.
    pub(crate) interval: Duration,
    /// How often a lease that has a manifest is checked for a newer version on chain when no
    /// `EventDeploymentUpdated` said so (a safety net: the events are followed).
    pub(crate) update_check: Duration,
}

/// The deployments whose version changed on chain since the fetcher last looked, as the chain's
/// events tell; `all` when a block's events were lost.
#[derive(Debug, Default)]
struct Updated {
    deployments: HashSet<(String, u64)>,
    all: bool,
}

#[derive(Default)]
struct Pending {
    failures: u32,
    next: Option<Instant>,
}

/// Fetches missing or outdated manifests from the deployments' other providers until `stop`.
pub(super) async fn run_fetcher(
    gateway: Arc<Gateway>,
    identity: TenantIdentity,
    config: FetchConfig,
    mut stop: watch::Receiver<bool>,
) {
    let mut state: HashMap<(String, u64), Pending> = HashMap::new();
    let mut clients: HashMap<String, reqwest::Client> = HashMap::new();
    // An update is looked for when the chain says there is one, not by asking the chain about
    // every deployment every few seconds.
    let updated = Arc::new(Mutex::new(Updated::default()));
    let recorder = updated.clone();
    tokio::spawn(crate::chain_events::follow(
        gateway.chain.clone(),
        None,
        stop.clone(),
        move |block| {
            let mut updated = recorder.lock().unwrap_or_else(|p| p.into_inner());
            match block {
                FollowedBlock::Events { events, .. } => {
                    for event in events {
                        if let AkashEvent::DeploymentUpdated(e) = event
                            && let Some(id) = &e.id
                        {
                            updated.deployments.insert((id.owner.clone(), id.dseq));
                        }
                    }
                }
                FollowedBlock::Missed => updated.all = true,
            }
        },
    ));
    let mut ticker = tokio::time::interval(config.interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            () = super::tls::stopped(&mut stop) => return,
            _ = ticker.tick() => {}
        }
        // From the watch's memory: no request while nothing changes.
        let leases = match gateway.leases.summaries().await {
            Ok(leases) => leases,
            Err(e) => {
                tracing::warn!(error = %e, "peer fetch: reading the leases failed");
                continue;
            }
        };
        let me = gateway.config.provider_address.clone();
        let mut deployments: BTreeMap<(String, u64), Vec<LeaseSummary>> = BTreeMap::new();
        for lease in leases.into_iter().filter(|l| l.live && l.id.provider == me) {
            deployments
                .entry((lease.id.owner.clone(), lease.id.dseq))
                .or_default()
                .push(lease);
        }
        state.retain(|key, _| deployments.contains_key(key));
        let now = Instant::now();
        let changed = std::mem::take(&mut *updated.lock().unwrap_or_else(|p| p.into_inner()));
        for ((owner, dseq), held) in deployments {
            let key = (owner.clone(), dseq);
            let told = changed.all || changed.deployments.contains(&key);
            let pending = state.entry(key).or_default();
            if told && pending.failures == 0 {
                pending.next = None;
            }
            if pending.next.is_some_and(|next| now < next) {
                continue;
            }
            let missing = held.iter().any(|l| l.version.is_none());
            match fetch_one(
                &gateway,
                &identity,
                &mut clients,
                &owner,
                dseq,
                &held,
                pending,
            )
            .await
            {
                Ok(()) => {
                    pending.failures = 0;
                    pending.next = Some(now + config.update_check);
                }
                Err(e) => {
                    let pause = backoff(pending.failures);
                    pending.failures = pending.failures.saturating_add(1);
                    pending.next = Some(now + pause);
                    tracing::info!(%owner, dseq, missing, error = %e, retry_in = ?pause, "manifest not fetched from peers yet");
                }
            }
        }
    }
}

/// Brings the leases `held` of deployment (`owner`, `dseq`) to the version on chain by asking
/// the deployment's other providers; `Ok` when they run it (already, or now).
async fn fetch_one(
    gateway: &Gateway,
    identity: &TenantIdentity,
    clients: &mut HashMap<String, reqwest::Client>,
    owner: &str,
    dseq: u64,
    held: &[LeaseSummary],
    pending: &Pending,
) -> Result<(), String> {
    let deployment = gateway
        .deployment(owner, dseq)
        .await
        .map_err(|e| e.to_string())?;
    let Some(found) = deployment.as_ref().and_then(|d| d.deployment.as_ref()) else {
        return Err("the deployment is not on chain".into());
    };
    if found.state() != DeploymentState::Active {
        // Closing: the bid engine tears the leases down; nothing to fetch.
        return Ok(());
    }
    let want = crds::sdl::version::hex(&found.hash);
    if held.iter().all(|l| l.version.as_deref() == Some(&want)) {
        return Ok(());
    }
    let me = gateway.config.provider_address.as_str();
    let holders: Vec<String> = gateway
        .lease_holders(owner, dseq)
        .await
        .map_err(|e| e.to_string())?
        .into_iter()
        .filter(|h| h != me)
        .collect();
    if holders.is_empty() {
        return Err(
            "no other provider holds a lease on the deployment; waiting for the tenant".into(),
        );
    }
    let mut refusals = Vec::new();
    for peer in ask_order(&holders, pending.failures) {
        match ask(gateway, identity, clients, &peer, owner, dseq).await {
            Ok(body) => {
                if let Err(e) = verify_version(&body, &want) {
                    tracing::warn!(%peer, %owner, dseq, error = %e, "a peer served a manifest that is not the deployment's version");
                    refusals.push(format!("{peer}: {e}"));
                    continue;
                }
                // The tenant (or another round) may have delivered it while peers were asked:
                // then there is nothing to accept again.
                if current(gateway, owner, dseq, &want).await {
                    return Ok(());
                }
                let from = format!("peer {peer}");
                match gateway
                    .receive(owner, dseq, &body, deployment.as_ref(), &from)
                    .await
                {
                    Ok(leases) => {
                        tracing::info!(%peer, %owner, dseq, version = %want, leases, "manifest fetched from peer");
                        return Ok(());
                    }
                    Err(e) => refusals.push(format!("{peer}: not accepted: {e}")),
                }
            }
            Err(e) => refusals.push(format!("{peer}: {e}")),
        }
    }
    Err(refusals.join("; "))
}

/// Whether this provider's live leases of deployment (`owner`, `dseq`), read again now, all run
/// version `want` already (false when they cannot be read).
async fn current(gateway: &Gateway, owner: &str, dseq: u64, want: &str) -> bool {
    let me = gateway.config.provider_address.as_str();
    gateway
        .leases
        .leases(Some(owner), dseq)
        .await
        .is_ok_and(|leases| {
            let mine: Vec<&Lease> = leases
                .iter()
                .filter(|l| l.spec.lease_id.provider == me && source::is_live(l))
                .collect();
            !mine.is_empty()
                && mine
                    .iter()
                    .all(|l| l.spec.manifest.as_ref().is_some_and(|m| m.version == want))
        })
}

/// `GET {host}/deployment/{owner}/{dseq}/manifest` at `peer`'s gateway (its on-chain host URI,
/// https only), at most `--max-manifest-bytes` of it.
async fn ask(
    gateway: &Gateway,
    identity: &TenantIdentity,
    clients: &mut HashMap<String, reqwest::Client>,
    peer: &str,
    owner: &str,
    dseq: u64,
) -> Result<Vec<u8>, String> {
    let host = gateway
        .chain
        .provider(peer)
        .await
        .map_err(|e| format!("reading its registration: {e}"))?
        .map(|p| p.host_uri)
        .ok_or_else(|| "not registered on chain".to_owned())?;
    let client = match clients.get(peer) {
        Some(c) => c.clone(),
        None => {
            let c = super::client::rest_client(gateway.chain.as_ref(), peer, identity)
                .await
                .map_err(|e| format!("{e:#}"))?;
            clients.insert(peer.to_owned(), c.clone());
            c
        }
    };
    let url = super::client::gateway_url(&host, &format!("/deployment/{owner}/{dseq}/manifest"))?;
    let response = match client.get(&url).send().await {
        Ok(r) => r,
        Err(e) => {
            // Perhaps a new certificate: a new client next time.
            clients.remove(peer);
            return Err(format!("{url}: {e}"));
        }
    };
    let status = response.status();
    if !status.is_success() {
        let text = super::client::error_text(response, 300).await;
        return Err(format!("{url} answered {status}: {text}"));
    }
    let limit = gateway.config.max_manifest_bytes;
    super::client::read_capped(response, limit)
        .await
        .map_err(|e| format!("{url}: {e}"))
}

#[cfg(test)]
mod hostile_tests;
#[cfg(test)]
mod tests;
