use chain_client::akash::deployment::v1::{Deployment, DeploymentId, deployment::State};
use crds::resources::{LeasePhase, LeaseRef, LeaseSpec, LeaseStatus, Price};

use super::*;

const OWNER: &str = "akash1tenant";
const ME: &str = "akash1me";
const PEER: &str = "akash1peer";
const STRANGER: &str = "akash1stranger";
const BODY: &str = r#"[{"name":"dc","services":[]}]"#;

fn version_of(body: &str) -> String {
    let value: serde_json::Value = serde_json::from_str(body).unwrap();
    let canonical = crds::sdl::version::canonical_json(&value).unwrap();
    crds::sdl::version::hex(&Sha256::digest(canonical.as_bytes()))
}

fn deployment(hash: &str, state: State) -> QueryDeploymentResponse {
    let bytes: Vec<u8> = (0..hash.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&hash[i..i + 2], 16).unwrap())
        .collect();
    QueryDeploymentResponse {
        deployment: Some(Deployment {
            id: Some(DeploymentId {
                owner: OWNER.into(),
                dseq: 7,
            }),
            state: state as i32,
            hash: bytes,
            ..Default::default()
        }),
        ..Default::default()
    }
}

fn lease(version: Option<&str>, phase: Option<LeasePhase>) -> Lease {
    let mut lease = Lease::new(
        "l",
        LeaseSpec {
            lease_id: LeaseRef {
                owner: OWNER.into(),
                dseq: 7,
                gseq: 1,
                oseq: 1,
                provider: ME.into(),
            },
            price: Price {
                denom: "uact".into(),
                amount: "1".into(),
            },
            created_at: None,
            manifest: version.map(crate::test_support::empty_manifest),
            deployment_manifest: version.map(|_| BODY.to_owned()),
        },
    );
    lease.status = Some(LeaseStatus {
        phase,
        ..Default::default()
    });
    lease
}

fn holders(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| s.to_string()).collect()
}

#[test]
fn a_provider_of_the_deployment_gets_exactly_the_version_on_chain() {
    let v = version_of(BODY);
    let d = deployment(&v, State::Active);
    let local = [lease(Some(&v), Some(LeasePhase::Active))];
    let served = authorize(PEER, ME, OWNER, 7, &holders(&[ME, PEER]), Some(&d), &local);
    assert_eq!(
        served.unwrap().spec.deployment_manifest.as_deref(),
        Some(BODY)
    );
}

#[test]
fn tenants_strangers_and_providers_of_other_deployments_are_forbidden() {
    let v = version_of(BODY);
    let d = deployment(&v, State::Active);
    let local = [lease(Some(&v), Some(LeasePhase::Active))];
    let all = holders(&[ME, PEER]);
    for requester in [OWNER, STRANGER, ME] {
        let e = authorize(requester, ME, OWNER, 7, &all, Some(&d), &local).unwrap_err();
        assert_eq!(e.http_status(), 403, "{requester}: {e}");
        assert!(!e.to_string().contains(BODY));
    }
    // A stranger learns the same whether or not this provider holds anything.
    let e = authorize(STRANGER, ME, OWNER, 7, &[], None, &[]).unwrap_err();
    assert_eq!(e.http_status(), 403, "{e}");
}

#[test]
fn nothing_is_served_without_our_lease_an_active_deployment_or_the_current_version() {
    let v = version_of(BODY);
    let active = deployment(&v, State::Active);
    let current = [lease(Some(&v), Some(LeasePhase::Active))];
    let not_ours = authorize(
        PEER,
        ME,
        OWNER,
        7,
        &holders(&[PEER]),
        Some(&active),
        &current,
    );
    assert_eq!(not_ours.unwrap_err().http_status(), 404);
    let closed = deployment(&v, State::Closed);
    let e = authorize(
        PEER,
        ME,
        OWNER,
        7,
        &holders(&[ME, PEER]),
        Some(&closed),
        &current,
    );
    assert_eq!(e.unwrap_err().http_status(), 404);
    let e = authorize(PEER, ME, OWNER, 7, &holders(&[ME, PEER]), None, &current);
    assert_eq!(e.unwrap_err().http_status(), 404);
    // An update on chain: the old version is not served.
    let newer = deployment(&"ab".repeat(32), State::Active);
    let e = authorize(
        PEER,
        ME,
        OWNER,
        7,
        &holders(&[ME, PEER]),
        Some(&newer),
        &current,
    );
    let e = e.unwrap_err();
    assert_eq!(e.http_status(), 404);
    assert!(e.to_string().contains(&"ab".repeat(32)), "{e}");
    // No manifest yet, or a lease that is closing.
    let waiting = [lease(None, Some(LeasePhase::Pending))];
    let e = authorize(
        PEER,
        ME,
        OWNER,
        7,
        &holders(&[ME, PEER]),
        Some(&active),
        &waiting,
    );
    assert_eq!(e.unwrap_err().http_status(), 404);
    let closing = [lease(Some(&v), Some(LeasePhase::Closing))];
    let e = authorize(
        PEER,
        ME,
        OWNER,
        7,
        &holders(&[ME, PEER]),
        Some(&active),
        &closing,
    );
    assert_eq!(e.unwrap_err().http_status(), 404);
}

#[test]
fn the_version_check_hashes_the_canonical_json() {
    let v = version_of(BODY);
    assert_eq!(verify_version(BODY.as_bytes(), &v).unwrap(), v);
    // Same JSON, other key order and spacing: the same version.
    let reordered = r#"[ { "services": [], "name": "dc" } ]"#;
    assert_eq!(verify_version(reordered.as_bytes(), &v).unwrap(), v);
    let other = r#"[{"name":"dc2","services":[]}]"#;
    assert!(
        verify_version(other.as_bytes(), &v)
            .unwrap_err()
            .contains(&v)
    );
    assert!(verify_version(b"not json", &v).is_err());
}

/// Found by the fuzz harness (`manifest_json`): a peer's manifest of up to
/// `--max-manifest-bytes` (4 MiB) was parsed and hashed (about 245 MB at its peak) before the
/// acceptance path refused it as too large to store. It is now refused by its size first.
#[test]
fn a_peer_manifest_too_large_to_store_is_refused_before_it_is_hashed() {
    let padding = " ".repeat(super::super::accept::LEASE_MANIFEST_BUDGET);
    let body = format!("{padding}{BODY}");
    let v = version_of(BODY);
    let refused = verify_version(body.as_bytes(), &v);
    assert!(
        refused.as_ref().is_err_and(|e| e.contains("larger than")),
        "{refused:?}"
    );
}

#[tokio::test]
async fn no_more_than_the_limit_are_served_one_deployment_at_once() {
    let limit = ServeLimit::new(2);
    let a = limit.try_acquire(OWNER, 7).unwrap();
    let _b = limit.try_acquire(OWNER, 7).unwrap();
    let busy = limit.try_acquire(OWNER, 7).unwrap_err();
    assert_eq!(busy.http_status(), 429, "{busy}");
    assert!(busy.to_string().contains("another provider"), "{busy}");
    // Another deployment has its own count; a finished answer frees a place.
    let _other = limit.try_acquire(OWNER, 8).unwrap();
    drop(a);
    assert!(limit.try_acquire(OWNER, 7).is_ok());
}

#[test]
fn refused_holders_are_asked_in_turn_and_the_pause_grows_to_a_cap() {
    let list = holders(&["a", "b", "c"]);
    assert_eq!(ask_order(&list, 0), holders(&["a", "b", "c"]));
    assert_eq!(ask_order(&list, 1), holders(&["b", "c", "a"]));
    assert_eq!(ask_order(&list, 5), holders(&["c", "a", "b"]));
    assert!(ask_order(&[], 3).is_empty());
    let pauses: Vec<u64> = (0..8).map(|f| backoff(f).as_secs()).collect();
    assert_eq!(pauses, [1, 2, 4, 8, 10, 10, 10, 10]);
}
