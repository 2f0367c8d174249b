//! One deployment's life as the tenant drives it, one idempotent step at a time: post the
//! deployment, wait for bids, lease the winners, deliver the manifest, follow the services, replace
//! a provider that fails, post updates. Everything the step needs to resume is in the
//! `ManifestStatus` it is given (the controller keeps it in the resource, the CLI in a file), and
//! the step re-reads the chain every time, so a restart at any point loses nothing and posts
//! nothing twice.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use chain_client::Chain;
use chain_client::ChainError;
use chain_client::akash::deployment::{v1 as dv1, v1beta4 as dv4};
use chain_client::akash::market::{v1 as mv1, v1beta5 as mv5};
use chain_client::chain::PageRequest;
use crds::resources::{GroupLeaseStatus, ManifestPhase, ManifestStatus, Price, ServiceEndpoints};

use super::delivery::{DeliveryError, Gateway, host_of};
use super::plan::Plan;
use super::select::{self, Candidate};

/// What the step needs besides the plan and the status.
pub struct Ctx<'a> {
    pub chain: &'a dyn Chain,
    pub gateway: &'a dyn Gateway,
    /// A provider unreachable, or with services not ready, this long is replaced.
    pub failure_threshold: Duration,
    /// How often a running deployment's status is read.
    pub status_interval: Duration,
    /// Roughly one block: how often to look while waiting for the chain.
    pub block_interval: Duration,
    pub now: jiff::Timestamp,
}

/// What happened, for people: the controller makes events of it, the CLI prints it.
#[derive(Debug, Clone, PartialEq)]
pub enum Progress {
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
pub enum FlowError {
    #[error(transparent)]
    Chain(#[from] ChainError),
    /// The spec changed in a way an update cannot carry (the chain keeps a deployment's groups).
    #[error("{0}")]
    GroupsChanged(String),
}

impl FlowError {
    /// A short label for metrics and conditions.
    pub fn reason(&self) -> &'static str {
        match self {
            FlowError::Chain(ChainError::InsufficientFunds { .. }) => "InsufficientFunds",
            FlowError::Chain(_) => "ChainError",
            FlowError::GroupsChanged(_) => "GroupsChanged",
        }
    }
}

/// After a step: call again at once (the status changed and should be saved first), or wait.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Next {
    Again,
    Wait(Duration),
}

/// Advances the deployment by one step.
pub async fn step(
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
            None => ctx.chain.latest_height().await?.max(1),
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
pub async fn close(chain: &dyn Chain, status: &ManifestStatus) -> Result<bool, ChainError> {
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
    let all = chain_client::chain::collect_all(100, |page| {
        chain.leases(
            mv1::LeaseFilters {
                owner: owner.to_owned(),
                dseq,
                ..Default::default()
            },
            page,
        )
    })
    .await?;
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

enum BidRound {
    /// Leases were created.
    Leased,
    /// Look again after this long (bids still being collected, or none eligible yet).
    Waiting(Duration),
}

/// Looks at the open order of every unleased group: still collecting bids, or time to choose.
/// The chosen bids are leased in one transaction.
async fn bid_round(
    ctx: &Ctx<'_>,
    plan: &Plan,
    status: &mut ManifestStatus,
    owner: &str,
    dseq: u64,
    unleased: &[u32],
    progress: &mut Vec<Progress>,
) -> Result<BidRound, FlowError> {
    let height = ctx.chain.latest_height().await?;
    let orders = chain_client::chain::collect_all(100, |page| {
        ctx.chain.orders(
            mv5::OrderFilters {
                owner: owner.to_owned(),
                dseq,
                state: "open".into(),
                ..Default::default()
            },
            page,
        )
    })
    .await?;
    let mut lease_msgs = Vec::new();
    let mut chosen = Vec::new();
    let mut min_wait: Option<u64> = None;
    for &gseq in unleased {
        let Some(order) = orders
            .iter()
            .filter(|o| o.id.as_ref().is_some_and(|id| id.gseq == gseq))
            .max_by_key(|o| o.id.as_ref().map(|id| id.oseq))
        else {
            continue;
        };
        let oid = order.id.clone().unwrap_or_default();
        let due = u64::try_from(order.created_at).unwrap_or(0) + plan.wait_blocks;
        let bids = open_bids(ctx.chain, &oid).await?;
        let gs = group_mut(status, gseq);
        gs.bids_seen = u32::try_from(bids.len()).unwrap_or(u32::MAX);
        gs.oseq = Some(oid.oseq);
        if height < due {
            let left = due - height;
            min_wait = Some(min_wait.map_or(left, |w| w.min(left)));
            progress.push(Progress::WaitingForBids {
                gseq,
                blocks_left: left,
            });
            continue;
        }
        let candidates = candidates(
            ctx.chain,
            &bids,
            !plan.filter.required_attributes.is_empty(),
        )
        .await?;
        progress.push(Progress::BidsReceived {
            gseq,
            bids: candidates
                .iter()
                .map(|c| (c.provider.clone(), display_price(c)))
                .collect(),
        });
        let gs = group_mut(status, gseq);
        match select::choose(&candidates, &plan.filter, &gs.dropped_providers) {
            Some(winner) => {
                let bid_id = bids
                    .iter()
                    .filter_map(|b| b.id.clone())
                    .find(|id| id.provider == winner.provider && id.bseq == winner.bseq);
                lease_msgs.push(chain_client::to_any(&mv5::MsgCreateLease { bid_id }));
                chosen.push((gseq, winner.provider.clone(), display_price(winner)));
            }
            None => {
                gs.message = Some(format!(
                    "{} bids, none eligible (filters, or providers dropped before)",
                    candidates.len()
                ));
                progress.push(Progress::NoEligibleBid {
                    gseq,
                    bids: candidates.len(),
                });
            }
        }
    }
    if !lease_msgs.is_empty() {
        ctx.chain.broadcast(lease_msgs).await?;
        for (gseq, provider, price) in chosen {
            progress.push(Progress::LeaseCreated {
                gseq,
                provider,
                price,
            });
        }
        return Ok(BidRound::Leased);
    }
    let blocks = u32::try_from(min_wait.unwrap_or(1)).unwrap_or(u32::MAX);
    Ok(BidRound::Waiting(
        ctx.block_interval
            .saturating_mul(blocks)
            .min(Duration::from_secs(30)),
    ))
}

fn group_mut(status: &mut ManifestStatus, gseq: u32) -> &mut GroupLeaseStatus {
    let idx = status
        .groups
        .iter()
        .position(|g| g.gseq == gseq)
        .unwrap_or_else(|| {
            status.groups.push(GroupLeaseStatus {
                gseq,
                ..Default::default()
            });
            status.groups.len() - 1
        });
    &mut status.groups[idx]
}

async fn open_bids(chain: &dyn Chain, order: &mv1::OrderId) -> Result<Vec<mv5::Bid>, ChainError> {
    let all = chain_client::chain::collect_all(100, |page| {
        chain.bids(
            mv5::BidFilters {
                owner: order.owner.clone(),
                dseq: order.dseq,
                gseq: order.gseq,
                oseq: order.oseq,
                state: "open".into(),
                ..Default::default()
            },
            page,
        )
    })
    .await?;
    Ok(all
        .into_iter()
        .filter_map(|r| r.bid)
        .filter(|b| {
            b.id.as_ref().is_some_and(|id| {
                id.dseq == order.dseq && id.gseq == order.gseq && id.oseq == order.oseq
            })
        })
        .collect())
}

async fn candidates(
    chain: &dyn Chain,
    bids: &[mv5::Bid],
    with_attributes: bool,
) -> Result<Vec<Candidate>, ChainError> {
    let mut out = Vec::with_capacity(bids.len());
    for bid in bids {
        let id = bid.id.clone().unwrap_or_default();
        let price = bid.price.clone().unwrap_or_default();
        let attributes = if with_attributes {
            chain
                .provider(&id.provider)
                .await?
                .map(|p| p.attributes.into_iter().map(|a| (a.key, a.value)).collect())
                .unwrap_or_default()
        } else {
            Vec::new()
        };
        out.push(Candidate {
            provider: id.provider,
            bseq: id.bseq,
            denom: price.denom,
            price: price.amount.parse().unwrap_or(u128::MAX),
            created_at: bid.created_at,
            attributes,
        });
    }
    Ok(out)
}

fn display_price(c: &Candidate) -> String {
    let amount = chain_client::dec::from_wire(&c.price.to_string()).unwrap_or_default();
    format!("{amount}{}", c.denom)
}

/// With `SeedOne`: the provider the manifest is sent to, the others fetching it from their peers.
/// None when a provider of the deployment (`holders`) runs it already (it passes it on);
/// otherwise the lowest address, so that every round picks the same one.
pub fn seed_choice(holders: &BTreeSet<String>, running: &BTreeSet<String>) -> Option<String> {
    if holders.iter().any(|h| running.contains(h)) {
        return None;
    }
    holders.first().cloned()
}

/// Sends the manifest to every provider that holds a lease and does not run this version yet
/// (`SendToAll`), or to one of them (`SeedOne`, see [`seed_choice`]).
async fn deliver(
    ctx: &Ctx<'_>,
    plan: &Plan,
    status: &mut ManifestStatus,
    leases: &BTreeMap<u32, mv1::Lease>,
    dseq: u64,
    progress: &mut Vec<Progress>,
) -> Result<(), ChainError> {
    let version = plan.version_hex();
    let providers: BTreeSet<String> = status
        .groups
        .iter()
        .filter(|g| g.running_version.as_deref() != Some(version.as_str()))
        .filter(|g| leases.contains_key(&g.gseq))
        .filter_map(|g| g.provider.clone())
        .collect();
    if providers.is_empty() {
        return Ok(());
    }
    let providers = match plan.distribution {
        crds::resources::Distribution::SendToAll => providers,
        crds::resources::Distribution::SeedOne => {
            let holders: BTreeSet<String> = status
                .groups
                .iter()
                .filter(|g| leases.contains_key(&g.gseq))
                .filter_map(|g| g.provider.clone())
                .collect();
            let running: BTreeSet<String> = holders.difference(&providers).cloned().collect();
            seed_choice(&holders, &running).into_iter().collect()
        }
    };
    let manifest = plan.sdl.manifest_json();
    for provider in providers {
        let outcome = match host_uri(ctx.chain, &provider).await? {
            Some(uri) => {
                ctx.gateway
                    .send_manifest(&provider, &uri, dseq, &manifest)
                    .await
            }
            None => Err(DeliveryError::Unreachable {
                uri: String::new(),
                message: format!("provider {provider} is not registered on chain"),
            }),
        };
        let now = ctx.now.to_string();
        for g in status
            .groups
            .iter_mut()
            .filter(|g| g.provider.as_deref() == Some(provider.as_str()))
        {
            match &outcome {
                Ok(()) => {
                    g.running_version = Some(version.clone());
                    g.message = None;
                }
                Err(e) => {
                    g.message = Some(format!("sending the manifest: {e}"));
                    g.unhealthy_since.get_or_insert_with(|| now.clone());
                }
            }
        }
        progress.push(match outcome {
            Ok(()) => Progress::ManifestSent {
                provider,
                version: version.clone(),
            },
            Err(e) => Progress::DeliveryFailed {
                provider,
                error: e.to_string(),
            },
        });
    }
    Ok(())
}

async fn host_uri(chain: &dyn Chain, provider: &str) -> Result<Option<String>, ChainError> {
    Ok(chain.provider(provider).await?.map(|p| p.host_uri))
}

/// Reads each delivered lease's status from its provider (with `seed_one`, every leased
/// group's: the providers not sent to fetch the manifest from their peers), and the manifest
/// version it runs when the provider says.
async fn follow(
    ctx: &Ctx<'_>,
    status: &mut ManifestStatus,
    leases: &BTreeMap<u32, mv1::Lease>,
    dseq: u64,
    seed_one: bool,
) -> Result<(), ChainError> {
    let mut services: Vec<ServiceEndpoints> = Vec::new();
    let now = ctx.now.to_string();
    for g in status.groups.iter_mut() {
        let Some(provider) = g.provider.clone() else {
            continue;
        };
        if g.running_version.is_none() && !seed_one {
            continue;
        }
        let Some(lease) = leases.get(&g.gseq) else {
            continue;
        };
        let oseq = lease.id.as_ref().map_or(0, |id| id.oseq);
        let report = match host_uri(ctx.chain, &provider).await? {
            Some(uri) => {
                let report = ctx
                    .gateway
                    .lease_status(&provider, &uri, (dseq, g.gseq, oseq))
                    .await;
                report.map(|r| (r, host_of(&uri)))
            }
            None => Err(DeliveryError::Unreachable {
                uri: String::new(),
                message: "not registered on chain".into(),
            }),
        };
        match report {
            Ok((report, _host)) => {
                if report.version.is_some() {
                    g.running_version = report.version.clone();
                }
                if report.all_ready() {
                    g.unhealthy_since = None;
                    g.message = None;
                } else {
                    g.unhealthy_since.get_or_insert_with(|| now.clone());
                    g.message = Some("services not ready".into());
                }
                services.extend(report.services);
            }
            Err(e) => {
                g.unhealthy_since.get_or_insert_with(|| now.clone());
                g.message = Some(e.to_string());
            }
        }
    }
    services.sort_by(|a, b| a.name.cmp(&b.name));
    status.services = services;
    Ok(())
}

/// Closes the leases of providers that have failed for longer than the threshold; their orders
/// open again and the next bid round chooses another provider by the same rule.
async fn drop_failed(
    ctx: &Ctx<'_>,
    status: &mut ManifestStatus,
    leases: &BTreeMap<u32, mv1::Lease>,
    progress: &mut Vec<Progress>,
) -> Result<bool, ChainError> {
    let mut msgs = Vec::new();
    let mut dropped = Vec::new();
    for g in status.groups.iter_mut() {
        let (Some(provider), Some(since)) = (g.provider.clone(), g.unhealthy_since.as_ref()) else {
            continue;
        };
        let Ok(since) = since.parse::<jiff::Timestamp>() else {
            continue;
        };
        let failing = ctx.now.duration_since(since);
        if failing.unsigned_abs() < ctx.failure_threshold || failing.is_negative() {
            continue;
        }
        let Some(lease) = leases.get(&g.gseq) else {
            continue;
        };
        msgs.push(chain_client::to_any(&mv5::MsgCloseLease {
            id: lease.id.clone(),
            reason: mv1::LeaseClosedReason::LeaseClosedOwner as i32,
        }));
        let reason = format!(
            "failing for {} ({})",
            humantime::format_duration(Duration::from_secs(failing.as_secs().unsigned_abs())),
            g.message.clone().unwrap_or_default()
        );
        dropped.push((g.gseq, provider, reason));
    }
    if msgs.is_empty() {
        return Ok(false);
    }
    ctx.chain.broadcast(msgs).await?;
    for (gseq, provider, reason) in dropped {
        let g = group_mut(status, gseq);
        if !g.dropped_providers.contains(&provider) {
            g.dropped_providers.push(provider.clone());
        }
        g.provider = None;
        g.running_version = None;
        g.unhealthy_since = None;
        g.price = None;
        g.message = Some(format!("dropped {provider}: {reason}"));
        progress.push(Progress::ProviderDropped {
            gseq,
            provider,
            reason,
        });
    }
    Ok(true)
}

/// The phase and the `ready` count from the groups and services.
fn summarize(status: &mut ManifestStatus, progress: &mut Vec<Progress>) {
    let total = status.services.len();
    let ready = status
        .services
        .iter()
        .filter(|s| s.replicas > 0 && s.ready_replicas >= s.replicas)
        .count();
    let all_leased = status.groups.iter().all(|g| g.provider.is_some());
    let all_delivered = status.groups.iter().all(|g| {
        g.running_version.is_some()
            && g.running_version == status.version
            && g.unhealthy_since.is_none()
    });
    let was_running = matches!(
        status.phase,
        Some(ManifestPhase::Running | ManifestPhase::Degraded)
    );
    let text = format!("{ready}/{total}");
    let phase = if !status.groups.is_empty()
        && all_leased
        && all_delivered
        && total > 0
        && ready == total
    {
        if status.phase != Some(ManifestPhase::Running) {
            progress.push(Progress::ServicesReady {
                ready: text.clone(),
            });
        }
        ManifestPhase::Running
    } else if was_running {
        ManifestPhase::Degraded
    } else if all_leased {
        ManifestPhase::Deploying
    } else {
        ManifestPhase::Bidding
    };
    status.phase = Some(phase);
    status.ready = Some(text);
}

#[cfg(test)]
mod seed_tests {
    use super::*;

    fn set(list: &[&str]) -> BTreeSet<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn seed_one_sends_to_the_lowest_address_once_and_not_while_one_runs_it() {
        let holders = set(&["akash1c", "akash1a", "akash1b"]);
        assert_eq!(seed_choice(&holders, &set(&[])).as_deref(), Some("akash1a"));
        // The same choice every round.
        assert_eq!(
            seed_choice(&holders, &BTreeSet::new()),
            seed_choice(&holders, &BTreeSet::new())
        );
        // One provider runs this version: the others fetch it from there.
        assert_eq!(seed_choice(&holders, &set(&["akash1c"])), None);
        assert_eq!(seed_choice(&BTreeSet::new(), &BTreeSet::new()), None);
    }
}
