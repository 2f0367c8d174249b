//! What each finding makes of the status and the events, as tables: no cluster, no chain.

use std::time::Duration;

use chain_client::ChainError;
use crds::resources::{Condition, ConditionType, ManifestPhase, ManifestStatus, find_condition};
use kube::runtime::events::EventType;

use super::{Note, Notes};
use crate::tenant::controller::drive::Stepped;
use crate::tenant::controller::validate::tests::{spec, unknown_profile};
use crate::tenant::controller::validate::validate;
use crate::tenant::controller::{ReconcileError, report};
use crate::tenant::flow::{FlowError, Next, Progress};

const GENERATION: Option<i64> = Some(3);
const VERSION: &str = "0123456789abcdef0123";

fn condition(status: &ManifestStatus, type_: ConditionType) -> &Condition {
    find_condition(&status.conditions, type_).unwrap_or_else(|| panic!("no {type_:?} condition"))
}

/// (status, reason, message) of a condition.
fn summary(condition: &Condition) -> (&str, &str, &str) {
    (
        condition.status.as_str(),
        condition.reason.as_str(),
        condition.message.as_str(),
    )
}

fn status_of(
    phase: Option<ManifestPhase>,
    dseq: Option<u64>,
    ready: Option<&str>,
) -> ManifestStatus {
    ManifestStatus {
        phase,
        dseq,
        ready: ready.map(Into::into),
        ..Default::default()
    }
}

fn note(type_: EventType, reason: &'static str, message: &str) -> Note {
    Note {
        type_,
        reason,
        message: message.into(),
    }
}

#[test]
fn an_invalid_sdl_is_reported_in_valid_naming_the_field() {
    let mut spec = spec();
    unknown_profile(&mut spec);
    let invalid = validate(&spec).expect_err("unknown profile");
    // (status before, phase after): a deployment already posted keeps running its last valid spec.
    let cases = [
        (status_of(None, None, None), Some(ManifestPhase::Invalid)),
        (
            status_of(Some(ManifestPhase::Running), Some(7), Some("1/1")),
            Some(ManifestPhase::Running),
        ),
        (
            status_of(Some(ManifestPhase::Bidding), Some(7), None),
            Some(ManifestPhase::Bidding),
        ),
    ];
    for (mut status, phase) in cases {
        let notes = report::invalid_spec(&mut status, GENERATION, &invalid);
        assert_eq!(status.phase, phase);
        let valid = condition(&status, ConditionType::Valid);
        assert_eq!(
            summary(valid),
            ("False", "InvalidSpec", invalid.message.as_str())
        );
        assert_eq!(valid.observed_generation, GENERATION);
        assert!(
            valid.message.contains("spec.sdl.deployment.openspeedtest.")
                && valid.message.contains("no-such-profile"),
            "{}",
            valid.message
        );
        assert_eq!(
            notes,
            Notes {
                progress: Vec::new(),
                stop: Some(note(EventType::Warning, "InvalidSpec", &invalid.message)),
            }
        );
        // Only `Valid` says it: `Ready` is left as it was.
        assert!(find_condition(&status.conditions, ConditionType::Ready).is_none());
    }
}

#[test]
fn a_spec_made_valid_again_sets_valid_and_keeps_the_phase() {
    let mut spoiled = spec();
    unknown_profile(&mut spoiled);
    let invalid = validate(&spoiled).expect_err("unknown profile");
    let mut status = status_of(Some(ManifestPhase::Bidding), Some(7), None);
    report::invalid_spec(&mut status, GENERATION, &invalid);
    report::valid_spec(&mut status, GENERATION);
    assert_eq!(status.phase, Some(ManifestPhase::Bidding));
    assert_eq!(
        summary(condition(&status, ConditionType::Valid)),
        ("True", "Valid", "the spec is valid")
    );
}

#[test]
fn an_unavailable_key_is_reported_in_ready_and_keeps_the_phase() {
    let errors = [
        ReconcileError::Key("spec.keySecret: Secret team-a/key does not exist".into()),
        ReconcileError::Connect(anyhow::anyhow!("bad URL").context("--rpc-url")),
    ];
    for error in &errors {
        let mut status = status_of(Some(ManifestPhase::Running), Some(7), Some("1/1"));
        let notes = report::key_unavailable(&mut status, GENERATION, error);
        let message = error.to_string();
        assert_eq!(status.phase, Some(ManifestPhase::Running));
        assert_eq!(
            summary(condition(&status, ConditionType::Ready)),
            ("False", "KeyUnavailable", message.as_str())
        );
        assert_eq!(
            notes.stop,
            Some(note(EventType::Warning, "KeyUnavailable", &message))
        );
        assert!(notes.progress.is_empty());
    }
}

#[test]
fn after_a_step_ready_follows_the_phase() {
    // (phase, dseq, ready) after the step → Ready's (status, reason, message)
    let cases = [
        (
            Some(ManifestPhase::Running),
            Some(7),
            Some("2/2"),
            ("True", "Running", "deployment 7: 2/2 services ready"),
        ),
        (
            Some(ManifestPhase::Degraded),
            Some(7),
            Some("1/2"),
            ("False", "Degraded", "deployment 7: 1/2 services ready"),
        ),
        (
            Some(ManifestPhase::Bidding),
            Some(7),
            None,
            ("False", "Bidding", "deployment 7"),
        ),
        (
            Some(ManifestPhase::Deploying),
            Some(7),
            None,
            ("False", "Deploying", "deployment 7"),
        ),
        (
            Some(ManifestPhase::Closed),
            Some(7),
            None,
            ("False", "ClosedOnChain", "deployment 7"),
        ),
        (
            Some(ManifestPhase::Creating),
            Some(7),
            None,
            ("False", "Creating", "deployment 7"),
        ),
        (None, None, None, ("False", "Creating", "not posted yet")),
    ];
    for (phase, dseq, ready, expected) in cases {
        for next in [Next::Again, Next::Wait(Duration::from_secs(5))] {
            let mut status = status_of(phase, dseq, ready);
            let stepped = Stepped {
                outcome: Ok(next),
                progress: Vec::new(),
            };
            let notes = report::stepped(&mut status, GENERATION, &stepped);
            assert_eq!(
                summary(condition(&status, ConditionType::Ready)),
                expected,
                "{phase:?}"
            );
            assert_eq!(status.phase, phase, "the step's phase is kept");
            assert_eq!(notes, Notes::default());
        }
    }
}

#[test]
fn a_failed_step_is_reported_in_ready_with_the_errors_reason() {
    let cases = [
        (
            FlowError::GroupsChanged("spec.sdl: the groups changed".into()),
            "GroupsChanged",
        ),
        (
            FlowError::Chain(ChainError::from_abci("sdk", 5, "insufficient funds")),
            "InsufficientFunds",
        ),
        (
            FlowError::Chain(ChainError::Timeout("broadcast".into())),
            "ChainError",
        ),
    ];
    for (error, reason) in cases {
        let message = error.to_string();
        let mut status = status_of(Some(ManifestPhase::Running), Some(7), Some("1/1"));
        let stepped = Stepped {
            outcome: Err(error),
            progress: vec![Progress::GroupStarted { gseq: 1 }],
        };
        let notes = report::stepped(&mut status, GENERATION, &stepped);
        assert_eq!(status.phase, Some(ManifestPhase::Running));
        assert_eq!(
            summary(condition(&status, ConditionType::Ready)),
            ("False", reason, message.as_str())
        );
        // What the step did before it failed is told first.
        assert_eq!(
            notes,
            Notes {
                progress: vec![note(
                    EventType::Normal,
                    "GroupStarted",
                    "group 1 reopened for bids"
                )],
                stop: Some(note(EventType::Warning, reason, &message)),
            }
        );
    }
}

#[test]
fn each_progress_is_one_event_but_waiting_for_bids() {
    let provider = || "akash1provider".to_owned();
    let cases = [
        (
            Progress::DeploymentCreated {
                dseq: 7,
                version: VERSION.into(),
            },
            Some((
                EventType::Normal,
                "DeploymentCreated",
                "deployment 7 posted on chain (version 0123456789ab)",
            )),
        ),
        (
            Progress::DeploymentUpdated {
                version: VERSION.into(),
            },
            Some((
                EventType::Normal,
                "DeploymentUpdated",
                "new manifest version 0123456789ab posted on chain",
            )),
        ),
        (
            Progress::WaitingForBids {
                gseq: 1,
                blocks_left: 2,
            },
            None,
        ),
        (
            Progress::BidsReceived {
                gseq: 1,
                bids: vec![
                    (provider(), "10uact".into()),
                    ("akash1other".into(), "12uact".into()),
                ],
            },
            Some((
                EventType::Normal,
                "BidsReceived",
                "group 1: 2 bids: akash1provider at 10uact, akash1other at 12uact",
            )),
        ),
        (
            Progress::NoEligibleBid { gseq: 1, bids: 3 },
            Some((
                EventType::Warning,
                "NoEligibleBid",
                "group 1: 3 bids, none passes the bid filter; still waiting",
            )),
        ),
        (
            Progress::LeaseCreated {
                gseq: 1,
                provider: provider(),
                price: "10uact".into(),
            },
            Some((
                EventType::Normal,
                "LeaseCreated",
                "group 1 leased to akash1provider at 10uact per block",
            )),
        ),
        (
            Progress::ManifestSent {
                provider: provider(),
                version: VERSION.into(),
            },
            Some((
                EventType::Normal,
                "ManifestSent",
                "manifest 0123456789ab sent to akash1provider",
            )),
        ),
        (
            Progress::DeliveryFailed {
                provider: provider(),
                error: "connection refused".into(),
            },
            Some((
                EventType::Warning,
                "DeliveryFailed",
                "sending the manifest to akash1provider: connection refused; retrying",
            )),
        ),
        (
            Progress::ServicesReady {
                ready: "2/2".into(),
            },
            Some((EventType::Normal, "Running", "2/2 services ready")),
        ),
        (
            Progress::ProviderDropped {
                gseq: 2,
                provider: provider(),
                reason: "unreachable for 60s".into(),
            },
            Some((
                EventType::Warning,
                "ProviderDropped",
                "group 2: dropped provider akash1provider: unreachable for 60s; choosing another bid",
            )),
        ),
        (
            Progress::GroupStarted { gseq: 2 },
            Some((
                EventType::Normal,
                "GroupStarted",
                "group 2 reopened for bids",
            )),
        ),
        (
            Progress::DeploymentClosedOnChain,
            Some((
                EventType::Warning,
                "ClosedOnChain",
                "the deployment was closed on chain; nothing runs (delete this Manifest and apply it again to redeploy)",
            )),
        ),
    ];
    // All of them in one step: their events in the step's order, the waiting left out.
    let expected: Vec<Note> = cases
        .iter()
        .filter_map(|(_, expected)| *expected)
        .map(|(type_, reason, message)| note(type_, reason, message))
        .collect();
    let mut status = status_of(Some(ManifestPhase::Bidding), Some(7), None);
    let stepped = Stepped {
        outcome: Ok(Next::Again),
        progress: cases.into_iter().map(|(progress, _)| progress).collect(),
    };
    let notes = report::stepped(&mut status, GENERATION, &stepped);
    assert_eq!(notes.progress, expected);
    assert_eq!(notes.stop, None);
}
