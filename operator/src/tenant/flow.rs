//! One deployment's life as the tenant drives it, one idempotent step at a time: post the
//! deployment, wait for bids, lease the winners, deliver the manifest, follow the services, replace
//! a provider that fails, post updates. Everything the step needs to resume is in the
//! `ManifestStatus` it is given (the controller keeps it in the resource, the CLI in a file), and
//! the step re-reads the chain every time, so a restart at any point loses nothing and posts
//! nothing twice.

use std::collections::BTreeMap;
use std::time::Duration;

use chain_client::Chain;
use chain_client::ChainError;
use chain_client::akash::deployment::{v1 as dv1, v1beta4 as dv4};
use chain_client::akash::market::v1 as mv1;
use chain_client::chain::PageRequest;
use crds::resources::{GroupLeaseStatus, ManifestPhase, ManifestStatus, Price};

use super::delivery::Gateway;
use super::plan::Plan;

mod bids;
mod serve;
#[cfg(test)]
mod tests;

use bids::{BidRound, bid_round};
use serve::{deliver, drop_failed, follow, summarize};

/// Hands out the dseqs of new deployments: the chain's height, or one past the last handed out
/// while the height has not moved, so that manifests created in the same block by one controller
/// (`kubectl apply -f` of a directory) do not share a dseq and overwrite each other's deployment.
#[derive(Debug, Default)]
pub(crate) struct DseqAllocator {
    last: std::sync::atomic::AtomicU64,
}

impl DseqAllocator {
    pub(crate) fn next(&self, height: u64) -> u64 {
        use std::sync::atomic::Ordering::SeqCst;
        let fresh = |last: u64| height.max(1).max(last + 1);
        // The closure always answers, so the update cannot fail.
        let last = self
            .last
            .fetch_update(SeqCst, SeqCst, |last| Some(fresh(last)))
            .unwrap_or_else(|last| last);
        fresh(last)
    }
}

/// What the step needs besides the plan and the status.
pub(crate) struct Ctx<'a> {
    pub(crate) chain: &'a dyn Chain,
    pub(crate) gateway: &'a dyn Gateway,
    pub(crate) dseqs: &'a DseqAllocator,
    /// A provider unreachable, or with services not ready, this long is replaced.
    pub(crate) failure_threshold: Duration,
    /// How often a running deployment's status is read.
    pub(crate) status_interval: Duration,
    /// Roughly one block: how often to look while waiting for the chain.
    pub(crate) block_interval: Duration,
    pub(crate) now: jiff::Timestamp,
}

/// What happened, for people: the controller makes events of it, the CLI prints it.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Progress {
    DeploymentCreated {
        dseq: u64,
        version: String,
    },
    DeploymentUpdated {
        version: String,
    },
    WaitingForBids {
        gseq: u32,
        blocks_left: u64,
    },
    BidsReceived {
        gseq: u32,
        bids: Vec<(String, String)>,
    },
    NoEligibleBid {
        gseq: u32,
        bids: usize,
    },
    LeaseCreated {
        gseq: u32,
        provider: String,
        price: String,
    },
    ManifestSent {
        provider: String,
        version: String,
    },
    DeliveryFailed {
        provider: String,
        error: String,
    },
    ServicesReady {
        ready: String,
    },
    ProviderDropped {
        gseq: u32,
        provider: String,
        reason: String,
    },
    GroupStarted {
        gseq: u32,
    },
    DeploymentClosedOnChain,
}

/// Why a step could not go on; the status keeps what was done before.
#[derive(Debug, thiserror::Error)]
pub(crate) enum FlowError {
    #[error(transparent)]
    Chain(#[from] ChainError),
    /// The spec changed in a way an update cannot carry (the chain keeps a deployment's groups).
    #[error("{0}")]
    GroupsChanged(String),
}

impl FlowError {
    /// A short label for metrics and conditions.
    pub(crate) fn reason(&self) -> &'static str {
        match self {
            FlowError::Chain(ChainError::InsufficientFunds { .. }) => "InsufficientFunds",
            FlowError::Chain(_) => "ChainError",
            FlowError::GroupsChanged(_) => "GroupsChanged",
        }
    }
}

/// After a step: call again at once (the status changed and should be saved first), or wait.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Next {
    Again,
    Wait(Duration),
}

/// Advances the deployment by one step.
pub(crate) async fn step(
    ctx: &Ctx<'_>,
    plan: &Plan,
    status: &mut ManifestStatus,
    progress: &mut Vec<Progress>,
) -> Result<Next, FlowError> {
    let owner = ctx.chain.address().to_owned();
    // The dseq is chosen and saved before the deployment is posted: a restart then finds it on
    // chain instead of posting a second one.
    let Some(dseq) = status.dseq else {
        status.dseq = Some(match plan.dseq {
            Some(dseq) => dseq,
            None => ctx.dseqs.next(ctx.chain.latest_height().await?),
        });
        status.phase = Some(ManifestPhase::Creating);
        return Ok(Next::Again);
    };
    let version = plan.version_hex();
    let Some(deployment) = deployment(ctx.chain, &owner, dseq).await? else {
        create_deployment(ctx, plan, &owner, dseq).await?;
        status.version = Some(version.clone());
        status.phase = Some(ManifestPhase::Bidding);
        progress.push(Progress::DeploymentCreated { dseq, version });
        return Ok(Next::Again);
    };
    let on_chain = deployment.deployment.clone().unwrap_or_default();
    if on_chain.state != dv1::deployment::State::Active as i32 {
        if status.phase != Some(ManifestPhase::Closed) {
            progress.push(Progress::DeploymentClosedOnChain);
        }
        status.phase = Some(ManifestPhase::Closed);
        status.ready = None;
        status.services.clear();
        return Ok(Next::Wait(Duration::from_secs(300)));
    }
    if on_chain.hash != plan.version {
        check_same_groups(plan, &deployment.groups)?;
        let msg = dv4::MsgUpdateDeployment {
            id: Some(dv1::DeploymentId {
                owner: owner.clone(),
                dseq,
            }),
            hash: plan.version.to_vec(),
        };
        ctx.chain
            .broadcast(vec![chain_client::to_any(&msg)])
            .await?;
        status.version = Some(version.clone());
        progress.push(Progress::DeploymentUpdated { version });
        return Ok(Next::Again);
    }
    status.version = Some(version.clone());

    let leases = held_leases(ctx.chain, &owner, dseq).await?;
    sync_groups(status, &deployment.groups, &leases, progress);

    // Groups the provider closed are paused on chain; starting them opens a new order.
    let paused: Vec<u32> = deployment
        .groups
        .iter()
        .filter(|g| g.state == dv4::group::State::Paused as i32)
        .filter_map(|g| g.id.as_ref().map(|id| id.gseq))
        .collect();
    if !paused.is_empty() {
        let msgs = paused
            .iter()
            .map(|&gseq| {
                chain_client::to_any(&dv4::MsgStartGroup {
                    id: Some(dv1::GroupId {
                        owner: owner.clone(),
                        dseq,
                        gseq,
                    }),
                })
            })
            .collect();
        ctx.chain.broadcast(msgs).await?;
        progress.extend(
            paused
                .into_iter()
                .map(|gseq| Progress::GroupStarted { gseq }),
        );
        return Ok(Next::Again);
    }

    let mut wait = ctx.status_interval;
    let unleased: Vec<u32> = status
        .groups
        .iter()
        .filter(|g| g.provider.is_none())
        .map(|g| g.gseq)
        .collect();
    if !unleased.is_empty() {
        match bid_round(ctx, plan, status, &owner, dseq, &unleased, progress).await? {
            BidRound::Leased => return Ok(Next::Again),
            BidRound::Waiting(d) => wait = wait.min(d),
        }
    }

    deliver(ctx, plan, status, &leases, dseq, progress).await?;
    let seed_one = plan.distribution == crds::resources::Distribution::SeedOne;
    follow(ctx, status, &leases, dseq, seed_one).await?;
    if drop_failed(ctx, status, &leases, progress).await? {
        return Ok(Next::Again);
    }
    summarize(status, progress);
    if status.phase != Some(ManifestPhase::Running) {
        wait = wait.min(ctx.block_interval * 2);
    }
    Ok(Next::Wait(wait))
}

/// Closes the deployment on chain (the escrow's remainder goes back to the tenant). Nothing to do
/// when it was never posted or is closed already.
pub(crate) async fn close(chain: &dyn Chain, status: &ManifestStatus) -> Result<bool, ChainError> {
    let Some(dseq) = status.dseq else {
        return Ok(false);
    };
    let owner = chain.address().to_owned();
    match deployment(chain, &owner, dseq).await? {
        Some(d)
            if d.deployment.as_ref().map(|d| d.state)
                == Some(dv1::deployment::State::Active as i32) =>
        {
            let msg = dv4::MsgCloseDeployment {
                id: Some(dv1::DeploymentId { owner, dseq }),
            };
            match chain.broadcast(vec![chain_client::to_any(&msg)]).await {
                Ok(_) => Ok(true),
                Err(ChainError::Other { log, .. }) if log.contains("Deployment closed") => {
                    Ok(false)
                }
                Err(e) => Err(e),
            }
        }
        _ => Ok(false),
    }
}

/// The deployment `dseq` of `owner` with its groups, if the chain has it.
pub async fn deployment(
    chain: &dyn Chain,
    owner: &str,
    dseq: u64,
) -> Result<Option<dv4::QueryDeploymentResponse>, ChainError> {
    let page = chain
        .deployments(
            dv4::DeploymentFilters {
                owner: owner.to_owned(),
                dseq,
                state: String::new(),
            },
            PageRequest::first(1),
        )
        .await?;
    Ok(page.items.into_iter().find(|d| {
        d.deployment
            .as_ref()
            .and_then(|d| d.id.as_ref())
            .is_some_and(|id| id.dseq == dseq)
    }))
}

async fn create_deployment(
    ctx: &Ctx<'_>,
    plan: &Plan,
    owner: &str,
    dseq: u64,
) -> Result<(), ChainError> {
    let msg = dv4::MsgCreateDeployment {
        id: Some(dv1::DeploymentId {
            owner: owner.to_owned(),
            dseq,
        }),
        groups: plan.groups.clone(),
        hash: plan.version.to_vec(),
        deposit: Some(plan.deposit_msg()),
        reclamation: None,
    };
    match ctx.chain.broadcast(vec![chain_client::to_any(&msg)]).await {
        Ok(_) => Ok(()),
        // Posted by an earlier run whose answer was lost.
        Err(ChainError::Other { log, .. }) if log.contains("Deployment exists") => Ok(()),
        Err(e) => Err(e),
    }
}

/// Resources, counts and placement are fixed on chain; only the manifest version can change.
fn check_same_groups(plan: &Plan, on_chain: &[dv4::Group]) -> Result<(), FlowError> {
    let chain_specs: Vec<&dv4::GroupSpec> = on_chain
        .iter()
        .filter_map(|g| g.group_spec.as_ref())
        .collect();
    if chain_specs.len() != plan.groups.len() {
        return Err(FlowError::GroupsChanged(format!(
            "spec.sdl: the deployment has {} placement groups on chain and the new spec has {}; \
             groups cannot be added or removed by an update (delete and re-create the Manifest)",
            chain_specs.len(),
            plan.groups.len()
        )));
    }
    for spec in &plan.groups {
        match chain_specs.iter().find(|c| c.name == spec.name) {
            None => {
                return Err(FlowError::GroupsChanged(format!(
                    "spec.sdl.profiles.placement.{}: not a group of the deployment on chain; \
                     placements cannot be renamed by an update",
                    spec.name
                )));
            }
            Some(c) if **c != *spec => {
                return Err(FlowError::GroupsChanged(format!(
                    "spec.sdl.deployment: the resources, counts, attributes or prices of group {:?} \
                     changed; the chain keeps them for the deployment's life, so only images, \
                     commands, environment and exposes can be updated (delete and re-create the \
                     Manifest to change them)",
                    spec.name
                )));
            }
            Some(_) => {}
        }
    }
    Ok(())
}

/// The deployment's leases that are still running, by gseq.
async fn held_leases(
    chain: &dyn Chain,
    owner: &str,
    dseq: u64,
) -> Result<BTreeMap<u32, mv1::Lease>, ChainError> {
    let all = chain_client::chain::deployment_leases(chain, owner, dseq).await?;
    let mut held = BTreeMap::new();
    for response in all {
        let Some(lease) = response.lease else {
            continue;
        };
        let running = lease.state == mv1::lease::State::Active as i32
            || lease.state == mv1::lease::State::Reclaiming as i32;
        let Some(id) = lease.id.as_ref() else {
            continue;
        };
        if running && id.dseq == dseq {
            held.insert(id.gseq, lease);
        }
    }
    Ok(held)
}

/// Brings the per-group status in line with the chain: one entry per group, the provider and
/// price of its running lease; a lease that ended drops its provider.
fn sync_groups(
    status: &mut ManifestStatus,
    groups: &[dv4::Group],
    leases: &BTreeMap<u32, mv1::Lease>,
    progress: &mut Vec<Progress>,
) {
    for g in groups {
        let Some(gseq) = g.id.as_ref().map(|id| id.gseq) else {
            continue;
        };
        if g.state == dv4::group::State::Closed as i32 {
            continue;
        }
        let name = g
            .group_spec
            .as_ref()
            .map(|s| s.name.clone())
            .unwrap_or_default();
        let idx = match status.groups.iter().position(|s| s.gseq == gseq) {
            Some(i) => i,
            None => {
                status.groups.push(GroupLeaseStatus {
                    name,
                    gseq,
                    ..Default::default()
                });
                status.groups.sort_by_key(|s| s.gseq);
                status
                    .groups
                    .iter()
                    .position(|s| s.gseq == gseq)
                    .unwrap_or_default()
            }
        };
        let gs = &mut status.groups[idx];
        match leases.get(&gseq) {
            Some(lease) => {
                let id = lease.id.clone().unwrap_or_default();
                if gs.provider.as_deref() != Some(id.provider.as_str()) || gs.oseq != Some(id.oseq)
                {
                    gs.provider = Some(id.provider.clone());
                    gs.oseq = Some(id.oseq);
                    gs.price = lease.price.as_ref().map(price_of);
                    gs.running_version = None;
                    gs.unhealthy_since = None;
                    gs.message = None;
                }
            }
            None => {
                if let Some(provider) = gs.provider.take() {
                    // The lease ended without us (the provider closed it, or funds ran out):
                    // that provider is not chosen again for this group.
                    if !gs.dropped_providers.contains(&provider) {
                        gs.dropped_providers.push(provider.clone());
                    }
                    progress.push(Progress::ProviderDropped {
                        gseq,
                        provider,
                        reason: "its lease was closed".into(),
                    });
                }
                gs.running_version = None;
                gs.unhealthy_since = None;
                gs.price = None;
            }
        }
    }
}

fn price_of(coin: &cosmos_sdk_proto::cosmos::base::v1beta1::DecCoin) -> Price {
    Price {
        denom: coin.denom.clone(),
        amount: chain_client::dec::from_wire(&coin.amount).unwrap_or_else(|_| coin.amount.clone()),
    }
}
