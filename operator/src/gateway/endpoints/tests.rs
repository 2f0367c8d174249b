use crds::resources::{
    LeaseManifest, LeasePhase, LeaseRef, LeaseStatus, LeasedIpStatus, ServiceStatus,
};
use crds::sdl::Sdl;

use super::*;

const ALICE: &str = "akash1alice";
const BOB: &str = "akash1bob";
const PROVIDER: &str = "akash1provider";

/// One service `web` with port 80 on each of `endpoints` (each its own `as` port).
fn group(endpoints: &[&str]) -> ManifestGroup {
    let mut declared = String::new();
    let mut exposes = String::new();
    for (i, name) in endpoints.iter().enumerate() {
        declared.push_str(&format!("  {name}: {{kind: ip}}\n"));
        exposes.push_str(&format!(
            "      - port: 80\n        as: {}\n        to: [{{global: true, ip: {name}}}]\n",
            8000 + i
        ));
    }
    if endpoints.is_empty() {
        exposes.push_str("      - port: 80\n        to: [{global: true}]\n");
    }
    let endpoints_section = if declared.is_empty() {
        String::new()
    } else {
        format!("endpoints:\n{declared}")
    };
    let text = format!(
        r#"
version: "2.0"
{endpoints_section}services:
  web:
    image: nginx:1.27
    expose:
{exposes}profiles:
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

fn manifest(group: ManifestGroup, held: Option<&[&str]>) -> LeaseManifest {
    LeaseManifest {
        version: "0".repeat(64),
        group,
        leased: Vec::new(),
        hostnames: None,
        ip_endpoints: held.map(|h| h.iter().map(|s| (*s).to_owned()).collect()),
        ip_addresses: BTreeMap::new(),
        secret_name: None,
    }
}

fn pending(owner: &str, dseq: u64) -> Lease {
    let id = LeaseRef {
        owner: owner.into(),
        dseq,
        gseq: 1,
        oseq: 1,
        provider: PROVIDER.into(),
    };
    crate::test_support::lease(&id.order().object_name(), id)
}

/// A live lease of `owner`'s deployment `dseq` naming `named` and holding `held`, each held
/// endpoint at address `10.0.0.<dseq>`.
fn holding(owner: &str, dseq: u64, named: &[&str], held: &[&str]) -> Lease {
    let mut lease = pending(owner, dseq);
    lease.spec.manifest = Some(manifest(group(named), Some(held)));
    lease.status = Some(LeaseStatus {
        phase: Some(LeasePhase::Active),
        services: vec![ServiceStatus {
            name: "web".into(),
            ips: held
                .iter()
                .map(|e| LeasedIpStatus {
                    endpoint: (*e).to_owned(),
                    ip: format!("10.0.0.{dseq}"),
                    external_port: 8000,
                    port: 80,
                    protocol: "TCP".into(),
                })
                .collect(),
            ..Default::default()
        }],
        ..Default::default()
    });
    lease
}

/// `owner`'s manifest for `dseq` naming `endpoints`, reserved against `others`.
fn claim(owner: &str, dseq: u64, endpoints: &[&str], others: &[Lease]) -> LeaseManifest {
    let mine = pending(owner, dseq);
    let mut accepted = vec![(mine.name_any(), manifest(group(endpoints), None))];
    let mut all = others.to_vec();
    all.push(mine);
    reserve(&mut accepted, &all);
    accepted.remove(0).1
}

fn names(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| (*s).to_owned()).collect()
}

#[test]
fn the_first_lease_naming_an_endpoint_holds_it() {
    let got = claim(ALICE, 1, &["front", "back"], &[]);
    assert_eq!(got.ip_endpoints, Some(names(&["back", "front"])));
    assert!(got.ip_addresses.is_empty());
}

#[test]
fn an_endpoint_the_owners_other_lease_holds_stays_there() {
    let first = holding(ALICE, 1, &["front"], &["front"]);
    let got = claim(ALICE, 2, &["front", "back"], &[first]);
    assert_eq!(got.ip_endpoints, Some(names(&["back"])));
}

#[test]
fn another_owners_endpoint_of_the_same_name_is_not_in_the_way() {
    let bobs = holding(BOB, 1, &["front"], &["front"]);
    let got = claim(ALICE, 2, &["front"], &[bobs]);
    assert_eq!(got.ip_endpoints, Some(names(&["front"])));
}

#[test]
fn a_closed_lease_holds_nothing_and_an_old_manifest_holds_all_it_names() {
    let mut closed = holding(ALICE, 1, &["front"], &["front"]);
    closed.status.as_mut().unwrap().phase = Some(LeasePhase::Closed);
    assert!(held_endpoints(&closed).is_empty());
    assert_eq!(
        claim(ALICE, 2, &["front"], &[closed]).ip_endpoints,
        Some(names(&["front"]))
    );
    let mut old = holding(ALICE, 3, &["front", "back"], &[]);
    old.spec.manifest.as_mut().unwrap().ip_endpoints = None;
    let all: BTreeSet<String> = names(&["back", "front"]).into_iter().collect();
    assert_eq!(held_endpoints(&old), all);
}

#[test]
fn a_lease_sending_its_manifest_again_keeps_its_endpoints_and_moved_addresses() {
    let mut mine = holding(ALICE, 2, &["front"], &["front"]);
    mine.spec
        .manifest
        .as_mut()
        .unwrap()
        .ip_addresses
        .insert("front".into(), "10.0.0.1".into());
    let mut accepted = vec![(mine.name_any(), manifest(group(&["front"]), None))];
    reserve(&mut accepted, std::slice::from_ref(&mine));
    let got = &accepted[0].1;
    assert_eq!(got.ip_endpoints, Some(names(&["front"])));
    assert_eq!(
        got.ip_addresses.get("front").map(String::as_str),
        Some("10.0.0.1")
    );
}

#[test]
fn migrating_moves_the_endpoint_with_its_address_and_the_old_lease_gives_it_up() {
    let old = holding(ALICE, 1, &["front", "back"], &["front", "back"]);
    let new = holding(ALICE, 2, &["front"], &[]);
    let bobs = holding(BOB, 3, &["front"], &["front"]);
    let all = [old.clone(), new.clone(), bobs];
    let m = migrate(&new, &names(&["front"]), &all).expect("migrated");
    assert_eq!(m.held, names(&["front"]));
    assert_eq!(
        m.addresses.get("front").map(String::as_str),
        Some("10.0.0.1")
    );
    assert_eq!(m.releases, vec![(old.name_any(), names(&["back"]))]);
}

#[test]
fn migrating_an_endpoint_the_destination_does_not_name_is_400() {
    let old = holding(ALICE, 1, &["front"], &["front"]);
    let new = holding(ALICE, 2, &["other"], &["other"]);
    let err = migrate(&new, &names(&["front"]), &[old, new.clone()]).expect_err("refused");
    assert_eq!(err.http_status(), 400, "{err}");
    assert!(err.to_string().contains("\"front\""), "{err}");
}

#[test]
fn migrating_never_takes_another_owners_endpoint() {
    let bobs = holding(BOB, 1, &["front"], &["front"]);
    let alices = holding(ALICE, 2, &["front"], &[]);
    let m = migrate(&alices, &names(&["front"]), &[bobs, alices.clone()]).expect("migrated");
    assert!(m.releases.is_empty());
    assert!(m.addresses.is_empty(), "{:?}", m.addresses);
}
