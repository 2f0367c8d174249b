//! When a reconcile may skip applying: only with the same objects, recently applied, all there,
//! and with the specs the apply left.

use k8s_openapi::api::apps::v1::{Deployment, StatefulSet};
use k8s_openapi::api::core::v1::{Namespace, ResourceQuota, Service};
use k8s_openapi::api::networking::v1::Ingress;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

use super::*;

const RECHECK: Duration = Duration::from_secs(600);

fn meta(name: &str, generation: Option<i64>) -> ObjectMeta {
    ObjectMeta {
        name: Some(name.to_owned()),
        generation,
        ..Default::default()
    }
}

fn deployment(name: &str, generation: Option<i64>) -> Deployment {
    Deployment {
        metadata: meta(name, generation),
        ..Default::default()
    }
}

fn objects(image_note: &str) -> LeaseObjects {
    LeaseObjects {
        namespace: Namespace {
            metadata: meta("lease-ns", None),
            ..Default::default()
        },
        resource_quota: ResourceQuota {
            metadata: meta("akash-quota", None),
            ..Default::default()
        },
        secrets: Vec::new(),
        deployments: vec![Deployment {
            metadata: ObjectMeta {
                annotations: Some([("note".to_owned(), image_note.to_owned())].into()),
                ..meta("web", None)
            },
            ..Default::default()
        }],
        stateful_sets: vec![StatefulSet {
            metadata: meta("db", None),
            ..Default::default()
        }],
        services: vec![Service {
            metadata: meta("web", None),
            ..Default::default()
        }],
        ingresses: vec![Ingress {
            metadata: meta("web-host", None),
            ..Default::default()
        }],
        network_policies: Vec::new(),
        service_accounts: Vec::new(),
        roles: Vec::new(),
        role_bindings: Vec::new(),
    }
}

/// What the API server holds after applying `objects("v1")`: generation 1 everywhere.
fn observed() -> Observed {
    Observed {
        deployments: vec![deployment("web", Some(1))],
        stateful_sets: vec![StatefulSet {
            metadata: meta("db", Some(1)),
            ..Default::default()
        }],
        services: vec![Service {
            metadata: meta("web", None),
            ..Default::default()
        }],
        ingresses: vec![Ingress {
            metadata: meta("web-host", None),
            ..Default::default()
        }],
    }
}

fn applied_at(at: Instant) -> (AppliedLeases, Applied) {
    let leases = AppliedLeases::default();
    let generations = [
        ("Deployment/web".to_owned(), 1),
        ("StatefulSet/db".to_owned(), 1),
    ]
    .into();
    leases.record("lease", &objects("v1"), generations, at);
    let record = leases.get("lease").expect("recorded");
    (leases, record)
}

#[test]
fn the_same_objects_all_in_place_need_no_apply() {
    let now = Instant::now();
    let (_, record) = applied_at(now);
    assert!(record.is_current(&objects("v1"), now + Duration::from_secs(5), RECHECK));
    assert!(record.in_place(&objects("v1"), &observed()));
}

#[test]
fn changed_objects_are_applied() {
    let now = Instant::now();
    let (_, record) = applied_at(now);
    assert!(!record.is_current(&objects("v2"), now, RECHECK));
}

#[test]
fn objects_are_applied_again_once_the_recheck_is_due() {
    let now = Instant::now();
    let (_, record) = applied_at(now);
    assert!(record.is_current(
        &objects("v1"),
        now + RECHECK - Duration::from_secs(1),
        RECHECK
    ));
    assert!(!record.is_current(&objects("v1"), now + RECHECK, RECHECK));
}

#[test]
fn a_missing_object_is_applied_again() {
    let (_, record) = applied_at(Instant::now());
    let mut gone = observed();
    gone.services.clear();
    assert!(!record.in_place(&objects("v1"), &gone));
    let mut gone = observed();
    gone.ingresses.clear();
    assert!(!record.in_place(&objects("v1"), &gone));
    let mut gone = observed();
    gone.stateful_sets.clear();
    assert!(!record.in_place(&objects("v1"), &gone));
}

#[test]
fn a_workload_whose_spec_someone_changed_is_applied_again() {
    let (_, record) = applied_at(Instant::now());
    let mut edited = observed();
    edited.deployments = vec![deployment("web", Some(2))];
    assert!(!record.in_place(&objects("v1"), &edited));
}

#[test]
fn an_extra_workload_is_applied_again_so_that_it_is_pruned() {
    let (_, record) = applied_at(Instant::now());
    let mut extra = observed();
    extra.deployments.push(deployment("stray", Some(1)));
    assert!(!record.in_place(&objects("v1"), &extra));
}

#[test]
fn a_forgotten_lease_has_no_record() {
    let (leases, _) = applied_at(Instant::now());
    leases.forget("lease");
    assert!(leases.get("lease").is_none());
}
