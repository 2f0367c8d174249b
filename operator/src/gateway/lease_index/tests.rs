use std::collections::BTreeMap;

use crds::resources::{LeaseManifest, LeasePhase, LeaseRef};
use crds::sdl::Sdl;

use super::*;
use crate::gateway::endpoints::held_endpoints;
use crate::gateway::hostnames::held_hosts;

/// A group of one service `web` on host `host` and leased-IP endpoint `ip`.
fn group(host: &str, ip: &str) -> crds::sdl::ManifestGroup {
    let text = format!(
        r#"
version: "2.0"
endpoints:
  {ip}: {{kind: ip}}
services:
  web:
    image: nginx:1.27
    expose:
      - port: 80
        accept: ["{host}"]
        to: [{{global: true}}]
      - port: 81
        as: 8001
        to: [{{global: true, ip: {ip}}}]
profiles:
  compute:
    web:
      resources: {{cpu: {{units: 0.5}}, memory: {{size: 512Mi}}, storage: {{size: 1Gi}}}}
  placement:
    dc:
      pricing:
        web: {{denom: uact, amount: 1000}}
deployment:
  web:
    dc: {{profile: web, count: 1}}
"#
    );
    Sdl::parse(&text).expect("test SDL").manifest()[0].clone()
}

/// A lease of `owner`'s deployment `dseq` at resource version `version`, with a manifest naming
/// `host` (held as `hostnames` says; `None`: as an older provider accepted it).
fn lease(owner: &str, dseq: u64, version: u64, host: &str, hostnames: Option<&[&str]>) -> Lease {
    let id = LeaseRef {
        owner: owner.into(),
        dseq,
        gseq: 1,
        oseq: 1,
        provider: "akash1provider".into(),
    };
    let mut lease = crate::test_support::lease(&id.order().object_name(), id);
    lease.metadata.resource_version = Some(version.to_string());
    lease.spec.manifest = Some(LeaseManifest {
        version: "0".repeat(64),
        group: group(host, "edge"),
        leased: Vec::new(),
        hostnames: hostnames.map(|h| h.iter().map(|s| (*s).to_owned()).collect()),
        ip_endpoints: None,
        ip_addresses: BTreeMap::from([("edge".to_owned(), "192.0.2.7".to_owned())]),
        secret_name: None,
    });
    lease.spec.deployment_manifest = Some("[\"the whole manifest\"]".into());
    lease
}

fn held(index: &HashMap<String, Entry>, name: &str) -> BTreeSet<String> {
    held_hosts(&index[name].holdings)
}

use std::collections::BTreeSet;

#[test]
fn holdings_hold_the_same_hosts_and_endpoints_as_the_whole_lease() {
    let older = lease("akash1alice", 1, 10, "Old.Example.com", None);
    let granted = lease(
        "akash1alice",
        2,
        11,
        "a.example.com",
        Some(&["a.example.com"]),
    );
    let gave_up = lease("akash1alice", 3, 12, "b.example.com", Some(&[]));
    let mut closing = lease("akash1bob", 4, 13, "c.example.com", None);
    closing.status = Some(crds::resources::LeaseStatus {
        phase: Some(LeasePhase::Closing),
        ..Default::default()
    });
    for whole in [&older, &granted, &gave_up, &closing] {
        let slim = holdings(whole);
        assert_eq!(held_hosts(&slim), held_hosts(whole), "{}", whole.name_any());
        assert_eq!(
            held_endpoints(&slim),
            held_endpoints(whole),
            "{}",
            whole.name_any()
        );
        let manifest = slim.spec.manifest.as_ref().unwrap();
        assert_eq!(manifest.ip_addresses["edge"], "192.0.2.7");
        assert!(manifest.group.services.is_empty());
        assert_eq!(slim.spec.deployment_manifest, None);
        assert_eq!(slim.spec.lease_id, whole.spec.lease_id);
        assert_eq!(slim.resource_version(), whole.resource_version());
    }
    // What the fixtures hold, so that the comparison above compares something.
    assert_eq!(
        held_hosts(&older),
        BTreeSet::from(["old.example.com".to_owned()])
    );
    assert_eq!(held_endpoints(&older), BTreeSet::from(["edge".to_owned()]));
    assert!(held_hosts(&gave_up).is_empty());
    assert!(held_hosts(&closing).is_empty());
}

/// The gateway's write is in the index at once, and a watch event older than it (in flight
/// when the write was answered) does not take it back: a second tenant's manifest naming the
/// same host is checked against the write, not against the copy before it.
#[test]
fn a_noted_write_is_not_undone_by_an_older_watch_event() {
    let mut known = HashMap::new();
    let mut listing = None;
    let before = lease("akash1alice", 1, 10, "a.example.com", Some(&[]));
    let name = before.name_any();
    assert!(!on_event(&mut known, &mut listing, Event::Init));
    assert!(!on_event(
        &mut known,
        &mut listing,
        Event::InitApply(before.clone())
    ));
    assert!(on_event(&mut known, &mut listing, Event::InitDone));
    assert!(held(&known, &name).is_empty());

    let written = lease(
        "akash1alice",
        1,
        12,
        "a.example.com",
        Some(&["a.example.com"]),
    );
    keep_latest(&mut known, name.clone(), Entry::of(&written));
    assert!(held(&known, &name).contains("a.example.com"));
    // The event of a write between the two (say, a status write) arrives after the answer.
    let status_write = lease("akash1alice", 1, 11, "a.example.com", Some(&[]));
    on_event(&mut known, &mut listing, Event::Apply(status_write));
    assert!(held(&known, &name).contains("a.example.com"));
    // A later event is taken.
    let released = lease("akash1alice", 1, 13, "a.example.com", Some(&[]));
    on_event(&mut known, &mut listing, Event::Apply(released));
    assert!(held(&known, &name).is_empty());
}

/// A relist whose page was read before a noted write keeps the write; a lease missing from the
/// relist is gone.
#[test]
fn a_relist_keeps_later_writes_and_drops_what_is_gone() {
    let mut known = HashMap::new();
    let mut listing = None;
    let kept = lease(
        "akash1alice",
        1,
        20,
        "a.example.com",
        Some(&["a.example.com"]),
    );
    let gone = lease(
        "akash1alice",
        2,
        21,
        "b.example.com",
        Some(&["b.example.com"]),
    );
    for l in [&kept, &gone] {
        keep_latest(&mut known, l.name_any(), Entry::of(l));
    }
    on_event(&mut known, &mut listing, Event::Init);
    let paged = lease("akash1alice", 1, 19, "a.example.com", Some(&[]));
    on_event(&mut known, &mut listing, Event::InitApply(paged));
    assert!(on_event(&mut known, &mut listing, Event::InitDone));
    assert_eq!(known.len(), 1);
    assert!(held(&known, &kept.name_any()).contains("a.example.com"));
}

/// A lease listed just now that the watch has not brought yet is in the view; one the view
/// holds a later version of is not replaced by an older listing.
#[test]
fn listed_leases_fill_in_what_the_watch_has_not_brought() {
    let in_view = lease(
        "akash1alice",
        1,
        30,
        "a.example.com",
        Some(&["a.example.com"]),
    );
    let view = vec![holdings(&in_view)];
    let new = lease(
        "akash1bob",
        2,
        31,
        "b.example.com",
        Some(&["b.example.com"]),
    );
    let stale = lease("akash1alice", 1, 29, "a.example.com", Some(&[]));
    let merged = with_listed(view, &[new.clone(), stale]);
    assert_eq!(merged.len(), 2);
    let find = |name: &str| merged.iter().find(|l| l.name_any() == name).unwrap();
    assert!(held_hosts(find(&in_view.name_any())).contains("a.example.com"));
    assert!(held_hosts(find(&new.name_any())).contains("b.example.com"));
    assert_eq!(find(&new.name_any()).spec.deployment_manifest, None);
}

#[tokio::test]
async fn a_wait_for_a_deployment_ends_when_the_watch_brings_its_lease() {
    let (index, mut feed) = LeaseIndex::fed();
    assert!(feed.take(Event::Init));
    assert!(feed.take(Event::InitDone));
    let waiter = {
        let index = index.clone();
        tokio::spawn(async move { index.wait_for_dseq(7, Duration::from_secs(60)).await })
    };
    tokio::task::yield_now().await;
    feed.take(Event::Apply(lease(
        "akash1other",
        8,
        5,
        "a.example.com",
        None,
    )));
    tokio::task::yield_now().await;
    assert!(
        !waiter.is_finished(),
        "another deployment's lease does not end the wait"
    );
    feed.take(Event::Apply(lease(
        "akash1tenant",
        7,
        6,
        "b.example.com",
        None,
    )));
    assert!(
        waiter.await.unwrap(),
        "the waiter saw the lease of deployment 7"
    );
}

#[tokio::test]
async fn a_wait_for_a_deployment_without_a_lease_gives_up_at_its_limit() {
    let (index, mut feed) = LeaseIndex::fed();
    feed.take(Event::Init);
    feed.take(Event::InitApply(lease(
        "akash1other",
        8,
        5,
        "a.example.com",
        None,
    )));
    feed.take(Event::InitDone);
    assert!(!index.wait_for_dseq(7, Duration::from_millis(50)).await);
    assert!(
        index.wait_for_dseq(8, Duration::from_secs(60)).await,
        "a known deployment is answered at once"
    );
}

#[test]
fn the_feed_stops_once_the_index_is_gone() {
    let (index, mut feed) = LeaseIndex::fed();
    assert!(feed.take(Event::Init));
    drop(index);
    assert!(!feed.take(Event::InitDone));
}
