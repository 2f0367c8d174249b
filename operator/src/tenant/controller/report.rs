//! Report: the new status (phase, conditions) and the events, computed from what validation,
//! dereferencing or a step found (pure but for the clock, read for a condition's transition
//! time), then written: the events published, the status saved by the kit's status writer.

use crds::resources::{
    ConditionStatus, ConditionType, Manifest, ManifestPhase, ManifestReason, ManifestStatus,
};
use kube::runtime::events::EventType;
use kube::{Api, ResourceExt};

use super::drive::Stepped;
use super::validate::InvalidSpec;
use super::{Context, FIELD_MANAGER, ReconcileError};
use crate::controller::status::Precondition;
use crate::controller::{conditions, events, short_version};
use crate::tenant::flow::Progress;

/// An event about the `Manifest`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Note {
    pub type_: EventType,
    pub reason: &'static str,
    pub message: String,
}

/// The events of one report, in the order they are published.
#[derive(Debug, Default, PartialEq, Eq)]
pub(super) struct Notes {
    /// What a step did (logged too: it is the deployment's history).
    pub progress: Vec<Note>,
    /// Why the reconcile cannot go on, if it cannot.
    pub stop: Option<Note>,
}

impl Notes {
    fn stop(note: Note) -> Self {
        Self {
            progress: Vec::new(),
            stop: Some(note),
        }
    }
}

/// The spec is invalid: `Valid` is false, and a deployment not posted yet is `Invalid` (one
/// already posted keeps its phase: it still runs the last valid spec).
pub(super) fn invalid_spec(
    status: &mut ManifestStatus,
    generation: Option<i64>,
    invalid: &InvalidSpec,
) -> Notes {
    if status.dseq.is_none() {
        status.phase = Some(ManifestPhase::Invalid);
    }
    let reason = ManifestReason::InvalidSpec.as_str();
    conditions::set_condition(
        &mut status.conditions,
        generation,
        ConditionType::Valid,
        ConditionStatus::False,
        reason,
        &invalid.message,
    );
    Notes::stop(warning(reason, invalid.message.clone()))
}

pub(super) fn valid_spec(status: &mut ManifestStatus, generation: Option<i64>) {
    conditions::set_condition(
        &mut status.conditions,
        generation,
        ConditionType::Valid,
        ConditionStatus::True,
        ManifestReason::Valid.as_str(),
        "the spec is valid",
    );
}

/// The key Secret or the chain client behind it is unavailable: not `Ready`, the phase kept.
pub(super) fn key_unavailable(
    status: &mut ManifestStatus,
    generation: Option<i64>,
    error: &ReconcileError,
) -> Notes {
    let (reason, message) = (ManifestReason::KeyUnavailable.as_str(), error.to_string());
    conditions::set_condition(
        &mut status.conditions,
        generation,
        ConditionType::Ready,
        ConditionStatus::False,
        reason,
        &message,
    );
    Notes::stop(warning(reason, message))
}

/// After a step: `Ready` follows the phase the step left, or says why the step failed.
pub(super) fn stepped(
    status: &mut ManifestStatus,
    generation: Option<i64>,
    stepped: &Stepped,
) -> Notes {
    let progress = stepped.progress.iter().filter_map(progress_note).collect();
    let stop = match &stepped.outcome {
        Ok(_) => {
            set_ready(status, generation);
            None
        }
        Err(e) => {
            let message = e.to_string();
            conditions::set_condition(
                &mut status.conditions,
                generation,
                ConditionType::Ready,
                ConditionStatus::False,
                e.reason(),
                &message,
            );
            Some(warning(e.reason(), message))
        }
    };
    Notes { progress, stop }
}

/// `Ready` from the phase: true only while `Running`.
fn set_ready(status: &mut ManifestStatus, generation: Option<i64>) {
    let running = status.phase == Some(ManifestPhase::Running);
    let why = match status.phase {
        Some(ManifestPhase::Running) => ManifestReason::Running,
        Some(ManifestPhase::Degraded) => ManifestReason::Degraded,
        Some(ManifestPhase::Bidding) => ManifestReason::Bidding,
        Some(ManifestPhase::Deploying) => ManifestReason::Deploying,
        Some(ManifestPhase::Closed) => ManifestReason::ClosedOnChain,
        _ => ManifestReason::Creating,
    };
    let message = match (&status.dseq, &status.ready) {
        (Some(dseq), Some(ready)) => format!("deployment {dseq}: {ready} services ready"),
        (Some(dseq), None) => format!("deployment {dseq}"),
        _ => "not posted yet".into(),
    };
    conditions::set_condition(
        &mut status.conditions,
        generation,
        ConditionType::Ready,
        ConditionStatus::from(running),
        why.as_str(),
        &message,
    );
}

/// The event telling what happened, if it is worth one.
fn progress_note(progress: &Progress) -> Option<Note> {
    let (type_, reason, message) = match progress {
        Progress::DeploymentCreated { dseq, version } => (
            EventType::Normal,
            "DeploymentCreated",
            format!("deployment {dseq} posted on chain (version {})", short_version(version)),
        ),
        Progress::DeploymentUpdated { version } => (
            EventType::Normal,
            "DeploymentUpdated",
            format!("new manifest version {} posted on chain", short_version(version)),
        ),
        // Every step while waiting: not worth an event each time.
        Progress::WaitingForBids { .. } => return None,
        Progress::BidsReceived { gseq, bids } => (
            EventType::Normal,
            "BidsReceived",
            format!(
                "group {gseq}: {} bids: {}",
                bids.len(),
                bids.iter()
                    .map(|(p, price)| format!("{p} at {price}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        ),
        Progress::NoEligibleBid { gseq, bids } => (
            EventType::Warning,
            "NoEligibleBid",
            format!("group {gseq}: {bids} bids, none passes the bid filter; still waiting"),
        ),
        Progress::LeaseCreated {
            gseq,
            provider,
            price,
        } => (
            EventType::Normal,
            "LeaseCreated",
            format!("group {gseq} leased to {provider} at {price} per block"),
        ),
        Progress::ManifestSent { provider, version } => (
            EventType::Normal,
            "ManifestSent",
            format!("manifest {} sent to {provider}", short_version(version)),
        ),
        Progress::DeliveryFailed { provider, error } => (
            EventType::Warning,
            "DeliveryFailed",
            format!("sending the manifest to {provider}: {error}; retrying"),
        ),
        Progress::ServicesReady { ready } => (
            EventType::Normal,
            "Running",
            format!("{ready} services ready"),
        ),
        Progress::ProviderDropped {
            gseq,
            provider,
            reason,
        } => (
            EventType::Warning,
            "ProviderDropped",
            format!("group {gseq}: dropped provider {provider}: {reason}; choosing another bid"),
        ),
        Progress::GroupStarted { gseq } => (
            EventType::Normal,
            "GroupStarted",
            format!("group {gseq} reopened for bids"),
        ),
        Progress::DeploymentClosedOnChain => (
            EventType::Warning,
            "ClosedOnChain",
            "the deployment was closed on chain; nothing runs (delete this Manifest and apply it again to redeploy)".into(),
        ),
    };
    Some(Note {
        type_,
        reason,
        message,
    })
}

fn warning(reason: &'static str, message: String) -> Note {
    Note {
        type_: EventType::Warning,
        reason,
        message,
    }
}

/// Publishes `notes`, then saves `status`.
pub(super) async fn write(
    ctx: &Context,
    manifest: &Manifest,
    status: &ManifestStatus,
    notes: &Notes,
) -> Result<(), ReconcileError> {
    for note in &notes.progress {
        let reason = note.reason;
        tracing::info!(manifest = %manifest.name_any(), namespace = ?manifest.namespace(), reason, "{}", note.message);
        publish(ctx, manifest, note.type_, reason, &note.message).await;
    }
    if let Some(note) = &notes.stop {
        publish(ctx, manifest, note.type_, note.reason, &note.message).await;
    }
    save(ctx, manifest, status).await
}

/// Writes the status if it changed. Not guarded by the version read: one reconcile saves the
/// status after every step, each save making that version stale, and this controller is the
/// only writer of a `Manifest`'s status.
pub(super) async fn save(
    ctx: &Context,
    manifest: &Manifest,
    status: &ManifestStatus,
) -> Result<(), ReconcileError> {
    let mut status = status.clone();
    status.observed_generation = manifest.metadata.generation;
    let api = Api::<Manifest>::namespaced(
        ctx.client.clone(),
        &manifest.namespace().unwrap_or_default(),
    );
    crate::controller::status::write_status(
        &api,
        manifest,
        FIELD_MANAGER,
        Precondition::LastWriteWins,
        manifest.status.as_ref(),
        &status,
    )
    .await?;
    Ok(())
}

pub(super) async fn publish(
    ctx: &Context,
    manifest: &Manifest,
    type_: EventType,
    reason: &str,
    note: &str,
) {
    events::publish(&ctx.recorder, manifest, type_, reason, note).await;
}

#[cfg(test)]
mod tests;
