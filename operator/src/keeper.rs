//! The lease keeper: keeps won leases alive and closes the ones that should not stay.
//! - `MsgWithdrawLease` for every active lease each `withdrawal_period` (today's lease
//!   confirmation, and what pays the provider), several in one transaction;
//! - a lease whose manifest never arrives within `manifest_timeout` is closed with
//!   `manifest_timeout`;
//! - a lease whose services stay not ready for `unstable_after` is closed with `unstable`.
//!
//! Closing is `MsgCloseBid`; the chain then emits `EventLeaseClosed`, which the bid engine turns
//! into teardown like any other close.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use chain_client::Chain;
use chain_client::akash::market::v1 as mv1;
use chain_client::akash::market::v1beta5::{MsgCloseBid, MsgWithdrawLease};
use crds::resources::{ConditionStatus, ConditionType, Lease, LeasePhase};
use kube::ResourceExt;
use tokio::sync::watch;

use crate::metrics::Metrics;
use crate::provider::store::ProviderStore;

/// When the keeper acts.
#[derive(Debug, Clone)]
pub(crate) struct KeeperConfig {
    pub withdrawal_period: Duration,
    pub manifest_timeout: Duration,
    pub unstable_after: Duration,
    /// How often the keeper looks (also the granularity of the periods above).
    pub interval: Duration,
    pub batch_size: usize,
}

/// What the keeper decided for one lease at one moment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Verdict {
    Keep,
    Withdraw,
    Close(mv1::LeaseClosedReason),
}

/// The keeper's decision for `lease` (pure, for tests): `last_withdraw` is when this process last
/// withdrew it (`None`: not since start, so withdraw now).
pub(crate) fn verdict(
    lease: &Lease,
    now: jiff::Timestamp,
    last_withdraw: Option<jiff::Timestamp>,
    config: &KeeperConfig,
) -> Verdict {
    let status = lease.status.clone().unwrap_or_default();
    if matches!(status.phase, Some(LeasePhase::Closing | LeasePhase::Closed)) {
        return Verdict::Keep;
    }
    let older_than = |t: Option<jiff::Timestamp>, d: Duration| {
        t.is_some_and(|t| {
            let age = now.duration_since(t);
            age.is_positive() && age.unsigned_abs() > d
        })
    };
    let created = lease.metadata.creation_timestamp.as_ref().map(|t| t.0);
    if lease.spec.manifest.is_none() && older_than(created, config.manifest_timeout) {
        return Verdict::Close(mv1::LeaseClosedReason::ManifestTimeout);
    }
    if lease.spec.manifest.is_some() {
        let not_ready_since = status
            .conditions
            .iter()
            .find(|c| c.is(ConditionType::Ready, ConditionStatus::False))
            .and_then(|c| c.last_transition_time.as_deref())
            .and_then(|t| t.parse::<jiff::Timestamp>().ok());
        if older_than(not_ready_since, config.unstable_after) {
            return Verdict::Close(mv1::LeaseClosedReason::Unstable);
        }
    }
    match last_withdraw {
        None => Verdict::Withdraw,
        Some(t) if older_than(Some(t), config.withdrawal_period) => Verdict::Withdraw,
        Some(_) => Verdict::Keep,
    }
}

/// Runs until `stop` turns false.
pub(crate) async fn run(
    chain: Arc<dyn Chain>,
    store: Arc<dyn ProviderStore>,
    config: KeeperConfig,
    metrics: Arc<Metrics>,
    mut stop: watch::Receiver<bool>,
) {
    let mut withdrawn: HashMap<String, jiff::Timestamp> = HashMap::new();
    let mut ticker = tokio::time::interval(config.interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            changed = stop.changed() => if changed.is_err() || !*stop.borrow() { return },
            _ = ticker.tick() => {}
        }
        let leases = match store.watched_leases().await {
            Ok(leases) => leases,
            Err(e) => {
                tracing::warn!(error = %e, "lease keeper: listing leases failed");
                continue;
            }
        };
        let now = jiff::Timestamp::now();
        let mut to_withdraw = Vec::new();
        for lease in &leases {
            let name = lease.name_any();
            match verdict(lease, now, withdrawn.get(&name).copied(), &config) {
                Verdict::Keep => {}
                Verdict::Withdraw => to_withdraw.push(lease.clone()),
                // Closing cannot be undone: decided again on the lease as it is now (the
                // watch may lag behind a manifest or a recovery that just happened).
                Verdict::Close(_) => match store.lease(&name).await {
                    Ok(Some(fresh)) => {
                        if let Verdict::Close(reason) =
                            verdict(&fresh, now, withdrawn.get(&name).copied(), &config)
                        {
                            close(&chain, &fresh, reason, &metrics).await;
                        }
                    }
                    Ok(None) => {}
                    Err(e) => {
                        tracing::warn!(lease = %lease.spec.lease_id, error = %e, "reading the lease before closing it failed; looked at again next time");
                    }
                },
            }
        }
        for batch in to_withdraw.chunks(config.batch_size.max(1)) {
            let msgs = batch
                .iter()
                .map(|l| {
                    chain_client::to_any(&MsgWithdrawLease {
                        id: Some(lease_id(l)),
                    })
                })
                .collect();
            match chain.broadcast(msgs).await {
                Ok(result) => {
                    for lease in batch {
                        withdrawn.insert(lease.name_any(), now);
                        // The status as it is now, not as the watch last saw it: the whole
                        // status is written back.
                        let fresh = match store.lease(&lease.name_any()).await {
                            Ok(Some(fresh)) => fresh,
                            Ok(None) => continue,
                            Err(e) => {
                                tracing::warn!(lease = %lease.spec.lease_id, error = %e, "reading the lease to record the withdrawal failed");
                                continue;
                            }
                        };
                        let mut status = fresh.status.clone().unwrap_or_default();
                        status.last_withdraw_height = Some(result.height as i64);
                        if let Err(e) = store.set_lease_status(&lease.name_any(), &status).await {
                            tracing::warn!(lease = %lease.spec.lease_id, error = %e, "recording the withdrawal failed");
                        }
                    }
                    tracing::info!(
                        leases = batch.len(),
                        height = result.height,
                        "withdrew from leases"
                    );
                }
                Err(e) => {
                    Metrics::count(&metrics.chain_errors, e.metric_label());
                    tracing::warn!(leases = batch.len(), error = %e, "withdrawing failed; retried at the next pass");
                }
            }
        }
    }
}

fn lease_id(lease: &Lease) -> mv1::LeaseId {
    let id = &lease.spec.lease_id;
    mv1::LeaseId {
        owner: id.owner.clone(),
        dseq: id.dseq,
        gseq: id.gseq,
        oseq: id.oseq,
        provider: id.provider.clone(),
        bseq: 0,
    }
}

async fn close(
    chain: &Arc<dyn Chain>,
    lease: &Lease,
    reason: mv1::LeaseClosedReason,
    metrics: &Metrics,
) {
    let id = lease_id(lease);
    let msg = MsgCloseBid {
        id: Some(mv1::BidId {
            owner: id.owner,
            dseq: id.dseq,
            gseq: id.gseq,
            oseq: id.oseq,
            provider: id.provider,
            bseq: 0,
        }),
        reason: reason as i32,
    };
    match chain.broadcast(vec![chain_client::to_any(&msg)]).await {
        Ok(_) => {
            Metrics::count(&metrics.bids_closed, reason.as_str_name());
            tracing::warn!(lease = %lease.spec.lease_id, reason = reason.as_str_name(), "closed the lease");
        }
        Err(e) => {
            tracing::warn!(lease = %lease.spec.lease_id, error = %e, "closing the lease failed; retried at the next pass")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crds::resources::{Condition, LeaseRef, LeaseStatus};
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

    fn config() -> KeeperConfig {
        KeeperConfig {
            withdrawal_period: Duration::from_secs(3600),
            manifest_timeout: Duration::from_secs(300),
            unstable_after: Duration::from_secs(600),
            interval: Duration::from_secs(10),
            batch_size: 25,
        }
    }

    fn lease(age_secs: i64, with_manifest: bool, status: LeaseStatus) -> Lease {
        let mut lease = crate::test_support::lease(
            "l",
            LeaseRef {
                owner: "akash1owner".into(),
                dseq: 1,
                gseq: 1,
                oseq: 1,
                provider: "akash1provider".into(),
            },
        );
        lease.metadata.creation_timestamp = Some(Time(
            jiff::Timestamp::now() - jiff::SignedDuration::from_secs(age_secs),
        ));
        if with_manifest {
            let sdl = crds::sdl::Sdl::parse(include_str!(
                "../../testdata/sdl/awesome-akash/openspeedtest.yaml"
            ))
            .unwrap();
            lease.spec.manifest = Some(crds::resources::LeaseManifest {
                version: sdl.manifest_version_hex(),
                group: sdl.manifest()[0].clone(),
                leased: Vec::new(),
                hostnames: None,
                ip_endpoints: None,
                ip_addresses: Default::default(),
                secret_name: None,
            });
        }
        lease.status = Some(status);
        lease
    }

    fn not_ready_for(secs: i64) -> LeaseStatus {
        LeaseStatus {
            phase: Some(LeasePhase::Degraded),
            conditions: vec![Condition {
                type_: "Ready".into(),
                status: "False".into(),
                reason: "Degraded".into(),
                message: String::new(),
                last_transition_time: Some(
                    (jiff::Timestamp::now() - jiff::SignedDuration::from_secs(secs)).to_string(),
                ),
                observed_generation: None,
            }],
            ..Default::default()
        }
    }

    #[test]
    fn a_lease_without_a_manifest_past_the_timeout_is_closed_with_manifest_timeout() {
        let now = jiff::Timestamp::now();
        let young = lease(60, false, Default::default());
        let old = lease(301, false, Default::default());
        assert_eq!(verdict(&young, now, Some(now), &config()), Verdict::Keep);
        assert_eq!(
            verdict(&old, now, Some(now), &config()),
            Verdict::Close(mv1::LeaseClosedReason::ManifestTimeout)
        );
    }

    #[test]
    fn services_not_ready_past_the_threshold_close_the_lease_as_unstable() {
        let now = jiff::Timestamp::now();
        let brief = lease(3600, true, not_ready_for(60));
        let long = lease(3600, true, not_ready_for(601));
        assert_eq!(verdict(&brief, now, Some(now), &config()), Verdict::Keep);
        assert_eq!(
            verdict(&long, now, Some(now), &config()),
            Verdict::Close(mv1::LeaseClosedReason::Unstable)
        );
    }

    #[test]
    fn withdrawals_happen_at_start_and_every_period_and_never_on_closed_leases() {
        let now = jiff::Timestamp::now();
        let active = lease(3600, true, Default::default());
        assert_eq!(verdict(&active, now, None, &config()), Verdict::Withdraw);
        let recent = now - jiff::SignedDuration::from_secs(60);
        assert_eq!(
            verdict(&active, now, Some(recent), &config()),
            Verdict::Keep
        );
        let due = now - jiff::SignedDuration::from_secs(3601);
        assert_eq!(
            verdict(&active, now, Some(due), &config()),
            Verdict::Withdraw
        );
        let closed = lease(
            3600,
            false,
            LeaseStatus {
                phase: Some(LeasePhase::Closed),
                ..Default::default()
            },
        );
        assert_eq!(verdict(&closed, now, None, &config()), Verdict::Keep);
    }
}
