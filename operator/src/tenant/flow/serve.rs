//! The serving half of a step: deliver the manifest to the providers that lack this version,
//! follow their lease status, drop the ones that fail for too long, and sum up the phase.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use futures::StreamExt;

use chain_client::akash::market::{v1 as mv1, v1beta5 as mv5};
use chain_client::{Chain, ChainError};
use crds::resources::{ManifestPhase, ManifestStatus, ServiceEndpoints};

use super::bids::group_mut;
use super::{Ctx, Progress};
use crate::gateway::client::host_of;
use crate::tenant::delivery::DeliveryError;
use crate::tenant::plan::Plan;

/// With `SeedOne`: the provider the manifest is sent to, the others fetching it from their peers.
/// None when a provider of the deployment (`holders`) runs it already (it passes it on);
/// otherwise the lowest address, so that every round picks the same one.
pub(crate) fn seed_choice(
    holders: &BTreeSet<String>,
    running: &BTreeSet<String>,
) -> Option<String> {
    if holders.iter().any(|h| running.contains(h)) {
        return None;
    }
    holders.first().cloned()
}

/// A provider, and how sending it the manifest went.
type Delivered = (String, Result<(), DeliveryError>);

/// Manifest uploads in flight at once, at most.
const MAX_SENDS: usize = 32;

/// Sends the manifest to every provider that holds a lease and does not run this version yet
/// (`SendToAll`), or to one of them (`SeedOne`, see [`seed_choice`]).
pub(super) async fn deliver(
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
    // Every provider at once (up to MAX_SENDS): a deployment of many groups is delivered in
    // about the time of one upload, not one after another.
    let sends = providers.into_iter().map(|provider| {
        let manifest = &manifest;
        async move {
            let outcome = match host_uri(ctx.chain, &provider).await? {
                Some(uri) => {
                    ctx.gateway
                        .send_manifest(&provider, &uri, dseq, manifest)
                        .await
                }
                None => Err(DeliveryError::Unreachable {
                    uri: String::new(),
                    message: format!("provider {provider} is not registered on chain"),
                }),
            };
            Ok::<_, ChainError>((provider, outcome))
        }
    });
    let outcomes: Vec<Result<Delivered, ChainError>> = futures::stream::iter(sends)
        .buffered(MAX_SENDS)
        .collect()
        .await;
    for result in outcomes {
        let (provider, outcome) = result?;
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

pub(super) async fn host_uri(
    chain: &dyn Chain,
    provider: &str,
) -> Result<Option<String>, ChainError> {
    Ok(chain.provider(provider).await?.map(|p| p.host_uri))
}

/// Reads each delivered lease's status from its provider (with `seed_one`, every leased
/// group's: the providers not sent to fetch the manifest from their peers), and the manifest
/// version it runs when the provider says.
pub(super) async fn follow(
    ctx: &Ctx<'_>,
    status: &mut ManifestStatus,
    leases: &BTreeMap<u32, mv1::Lease>,
    dseq: u64,
    seed_one: bool,
) -> Result<(), ChainError> {
    let mut services: Vec<ServiceEndpoints> = Vec::new();
    let now = ctx.now.to_string();
    let version = status.version.clone();
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
                report.map(|r| (r, host_of(&uri).unwrap_or_default()))
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
                let runs_current = g.running_version.is_some() && g.running_version == version;
                if report.all_ready() && runs_current {
                    g.unhealthy_since = None;
                    g.message = None;
                } else if report.all_ready() {
                    // The previous version serving is not this version delivered: a failed
                    // send keeps its clock and message, so the provider is replaced in time.
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
pub(super) async fn drop_failed(
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
pub(super) fn summarize(status: &mut ManifestStatus, progress: &mut Vec<Progress>) {
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

#[cfg(test)]
mod deliver_tests {
    use std::sync::Mutex;

    use async_trait::async_trait;
    use chain_client::akash::provider::v1beta4::Provider;
    use chain_client::fake::FakeChain;
    use crds::resources::{GroupLeaseStatus, ManifestSpec, Price, SecretKeyRef};
    use crds::sdl::Sdl;
    use tokio::sync::Barrier;

    use super::*;
    use crate::tenant::delivery::{Gateway, LeaseReport};

    const GROUPS: usize = 8;

    /// Each upload waits until every one of `GROUPS` has started: uploads one after another
    /// would never get past the first.
    struct AllAtOnce {
        barrier: Barrier,
        sent: Mutex<Vec<String>>,
    }

    #[async_trait]
    impl Gateway for AllAtOnce {
        async fn send_manifest(
            &self,
            provider: &str,
            _: &str,
            _: u64,
            _: &str,
        ) -> Result<(), DeliveryError> {
            tokio::time::timeout(Duration::from_secs(10), self.barrier.wait())
                .await
                .map_err(|_| DeliveryError::Unreachable {
                    uri: String::new(),
                    message: "the other uploads never started".into(),
                })?;
            self.sent.lock().unwrap().push(provider.to_owned());
            Ok(())
        }

        async fn lease_status(
            &self,
            _: &str,
            _: &str,
            _: (u64, u32, u32),
        ) -> Result<LeaseReport, DeliveryError> {
            unreachable!("deliver reads no status")
        }
    }

    fn sdl() -> Sdl {
        let mut text = String::from("version: \"2.0\"\nservices:\n");
        for g in 0..GROUPS {
            text.push_str(&format!("  s{g}: {{image: nginx, expose: []}}\n"));
        }
        text.push_str("profiles:\n  compute:\n    p: {resources: {cpu: {units: 1}, memory: {size: 1Gi}, storage: {size: 1Gi}}}\n  placement:\n");
        for g in 0..GROUPS {
            text.push_str(&format!(
                "    dc{g}: {{pricing: {{p: {{denom: uact, amount: 1}}}}}}\n"
            ));
        }
        text.push_str("deployment:\n");
        for g in 0..GROUPS {
            text.push_str(&format!("  s{g}: {{dc{g}: {{profile: p, count: 1}}}}\n"));
        }
        Sdl::parse(&text).expect("test SDL")
    }

    #[tokio::test]
    async fn the_manifest_goes_to_every_provider_at_once() {
        let sdl = sdl();
        let plan = crate::tenant::plan::plan(&ManifestSpec {
            sdl: sdl.document().clone(),
            deposit: Price {
                denom: "uact".into(),
                amount: "5000000".into(),
            },
            wait_duration_blocks: 1,
            key_secret: SecretKeyRef {
                name: "k".into(),
                key: "m".into(),
            },
            bid_filter: None,
            distribution: Default::default(),
            dseq: None,
        })
        .expect("plan");
        let chain = FakeChain::new("akash1tenant");
        let mut status = ManifestStatus::default();
        let mut leases = BTreeMap::new();
        for g in 0..GROUPS {
            let provider = format!("akash1provider{g}");
            chain.state().providers.push(Provider {
                owner: provider.clone(),
                host_uri: format!("https://p{g}.example.com:8443"),
                ..Default::default()
            });
            let gseq = g as u32 + 1;
            status.groups.push(GroupLeaseStatus {
                gseq,
                provider: Some(provider.clone()),
                ..Default::default()
            });
            leases.insert(
                gseq,
                mv1::Lease {
                    id: Some(mv1::LeaseId {
                        gseq,
                        oseq: 1,
                        provider,
                        ..Default::default()
                    }),
                    ..Default::default()
                },
            );
        }
        let gateway = AllAtOnce {
            barrier: Barrier::new(GROUPS),
            sent: Mutex::default(),
        };
        let ctx = Ctx {
            chain: &chain,
            gateway: &gateway,
            dseqs: &Default::default(),
            failure_threshold: Duration::from_secs(60),
            status_interval: Duration::from_secs(5),
            block_interval: Duration::from_secs(1),
            now: jiff::Timestamp::now(),
        };
        let mut progress = Vec::new();
        deliver(&ctx, &plan, &mut status, &leases, 7, &mut progress)
            .await
            .unwrap();
        assert_eq!(gateway.sent.lock().unwrap().len(), GROUPS, "{progress:?}");
        let version = plan.version_hex();
        assert!(
            status
                .groups
                .iter()
                .all(|g| g.running_version.as_deref() == Some(version.as_str())
                    && g.message.is_none()),
            "{status:?}"
        );
        assert!(
            progress
                .iter()
                .all(|p| matches!(p, Progress::ManifestSent { .. })),
            "{progress:?}"
        );
    }
}
