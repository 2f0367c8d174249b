use crds::resources::{LeaseManifest, LeasePhase, LeaseRef, LeaseStatus};
use crds::sdl::Sdl;
use crds::sdl::names::LeaseId;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

use super::*;

const ALICE: &str = "akash1alice";
const BOB: &str = "akash1bob";
const PROVIDER: &str = "akash1provider";
const DOMAIN: &str = "ingress.example.com";

/// One service `web` on port 80, accepting `hosts`.
fn group(hosts: &[&str]) -> ManifestGroup {
    let accept = if hosts.is_empty() {
        String::new()
    } else {
        format!("        accept: [{}]\n", hosts.join(", "))
    };
    let text = format!(
        r#"
version: "2.0"
services:
  web:
    image: nginx:1.27
    expose:
      - port: 80
{accept}        to: [{{global: true}}]
profiles:
  compute:
    web:
      resources:
        cpu: {{units: 0.5}}
        memory: {{size: 512Mi}}
        storage: {{size: 1Gi}}
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

fn manifest(group: ManifestGroup, hostnames: Option<&[&str]>) -> LeaseManifest {
    LeaseManifest {
        version: "0".repeat(64),
        group,
        leased: Vec::new(),
        hostnames: hostnames.map(|h| h.iter().map(|s| (*s).to_owned()).collect()),
        ip_endpoints: None,
        ip_addresses: Default::default(),
        secret_name: None,
    }
}

fn lease_id(owner: &str, dseq: u64) -> LeaseRef {
    LeaseRef {
        owner: owner.into(),
        dseq,
        gseq: 1,
        oseq: 1,
        provider: PROVIDER.into(),
    }
}

/// A live lease of `owner`'s deployment `dseq`, holding `hosts` (granted by this provider).
fn holding(owner: &str, dseq: u64, hosts: &[&str]) -> Lease {
    let mut lease = pending(owner, dseq);
    lease.spec.manifest = Some(manifest(group(hosts), Some(hosts)));
    lease.status = Some(LeaseStatus {
        phase: Some(LeasePhase::Active),
        ..Default::default()
    });
    lease
}

/// A lease waiting for its manifest.
fn pending(owner: &str, dseq: u64) -> Lease {
    let id = lease_id(owner, dseq);
    crate::test_support::lease(&id.order().object_name(), id)
}

fn policy() -> HostnamePolicy {
    HostnamePolicy {
        ingress_domain: DOMAIN.into(),
        blocked: Vec::new(),
    }
}

/// `owner`'s manifest for deployment `dseq` naming `hosts`, reserved against `others` (and the
/// lease it is for, pending).
fn claim(
    owner: &str,
    dseq: u64,
    hosts: &[&str],
    others: &[Lease],
    policy: &HostnamePolicy,
) -> Result<(Accepted, Vec<Release>), Rejection> {
    let mine = pending(owner, dseq);
    let mut accepted = vec![(mine.name_any(), manifest(group(hosts), None))];
    let mut all = others.to_vec();
    all.push(mine);
    let releases = reserve(&mut accepted, &all, policy)?;
    Ok((accepted, releases))
}

fn refused(result: Result<(Accepted, Vec<Release>), Rejection>, host: &str) -> String {
    let err = result.expect_err("refused");
    assert_eq!(err.http_status(), 409, "{err}");
    assert_eq!(err.grpc_code(), tonic::Code::AlreadyExists);
    let text = err.to_string();
    assert!(text.contains(&format!("{host:?}")), "{text}");
    text
}

#[test]
fn a_host_is_granted_to_the_first_lease_that_names_it() {
    let (accepted, releases) =
        claim(ALICE, 1, &["shop.example.com"], &[], &policy()).expect("granted");
    assert_eq!(
        accepted[0].1.hostnames,
        Some(vec!["shop.example.com".to_owned()])
    );
    assert!(releases.is_empty());
}

#[test]
fn another_tenants_host_is_409_whatever_its_case() {
    let alice = holding(ALICE, 1, &["shop.example.com"]);
    let text = refused(
        claim(
            BOB,
            7,
            &["shop.example.com"],
            std::slice::from_ref(&alice),
            &policy(),
        ),
        "shop.example.com",
    );
    assert!(text.contains("another tenant"), "{text}");
    refused(
        claim(BOB, 7, &["Shop.EXAMPLE.com"], &[alice], &policy()),
        "shop.example.com",
    );
}

#[test]
fn a_manifest_an_older_provider_accepted_holds_every_host_it_names() {
    let mut alice = holding(ALICE, 1, &["shop.example.com"]);
    alice.spec.manifest.as_mut().unwrap().hostnames = None;
    refused(
        claim(BOB, 7, &["shop.example.com"], &[alice], &policy()),
        "shop.example.com",
    );
}

#[test]
fn a_closing_closed_or_deleted_lease_holds_nothing() {
    for phase in [LeasePhase::Closing, LeasePhase::Closed] {
        let mut alice = holding(ALICE, 1, &["shop.example.com"]);
        alice.status.as_mut().unwrap().phase = Some(phase);
        claim(BOB, 7, &["shop.example.com"], &[alice], &policy()).expect("released");
    }
    let mut alice = holding(ALICE, 1, &["shop.example.com"]);
    alice.metadata.deletion_timestamp = Some(Time(Default::default()));
    claim(BOB, 7, &["shop.example.com"], &[alice], &policy()).expect("released");
}

#[test]
fn the_same_owner_moves_a_host_to_another_deployment_and_the_old_lease_gives_it_up() {
    let old = holding(ALICE, 1, &["shop.example.com", "blog.example.com"]);
    let (accepted, releases) = claim(
        ALICE,
        2,
        &["shop.example.com"],
        std::slice::from_ref(&old),
        &policy(),
    )
    .expect("moved");
    assert_eq!(
        accepted[0].1.hostnames,
        Some(vec!["shop.example.com".to_owned()])
    );
    assert_eq!(
        releases,
        vec![(old.name_any(), vec!["blog.example.com".to_owned()])]
    );

    // Once moved, the old lease no longer holds it; the new one does, against strangers too.
    let mut old = old;
    old.spec.manifest.as_mut().unwrap().hostnames = Some(vec!["blog.example.com".into()]);
    let new = holding(ALICE, 2, &["shop.example.com"]);
    refused(
        claim(BOB, 7, &["shop.example.com"], &[old, new], &policy()),
        "shop.example.com",
    );
}

#[test]
fn a_lease_sending_its_manifest_again_keeps_its_hosts() {
    let alice = holding(ALICE, 1, &["shop.example.com"]);
    let mut accepted = vec![(
        alice.name_any(),
        manifest(group(&["shop.example.com"]), None),
    )];
    let releases = reserve(&mut accepted, &[alice], &policy()).expect("its own");
    assert!(releases.is_empty());
}

#[test]
fn hosts_under_the_ingress_domain_other_than_the_leases_own_are_409() {
    // Another lease's automatic host.
    let bobs = ingress_host(
        &LeaseId {
            owner: BOB.into(),
            dseq: 7,
            gseq: 1,
            oseq: 1,
            provider: PROVIDER.into(),
        },
        "web",
        DOMAIN,
    );
    let text = refused(claim(ALICE, 1, &[&bobs], &[], &policy()), &bobs);
    assert!(text.contains("ingress domain"), "{text}");
    // Any other name there, and the domain itself.
    refused(
        claim(ALICE, 1, &["admin.ingress.example.com"], &[], &policy()),
        "admin.ingress.example.com",
    );
    refused(claim(ALICE, 1, &[DOMAIN], &[], &policy()), DOMAIN);
    // Its own automatic host is fine; a look-alike outside the domain too.
    let own = ingress_host(
        &LeaseId {
            owner: ALICE.into(),
            dseq: 1,
            gseq: 1,
            oseq: 1,
            provider: PROVIDER.into(),
        },
        "web",
        DOMAIN,
    );
    claim(ALICE, 1, &[&own], &[], &policy()).expect("its own host");
    claim(ALICE, 1, &["myingress.example.com"], &[], &policy()).expect("not under the domain");
}

#[test]
fn blocked_hosts_are_409_exactly_or_under_a_wildcard() {
    let policy = HostnamePolicy {
        blocked: vec![
            "Provider.Example.com".parse().unwrap(),
            "*.internal.example".parse().unwrap(),
        ],
        ..policy()
    };
    let text = refused(
        claim(ALICE, 1, &["provider.example.com"], &[], &policy),
        "provider.example.com",
    );
    assert!(text.contains("blocked"), "{text}");
    refused(
        claim(ALICE, 1, &["a.b.internal.example"], &[], &policy),
        "a.b.internal.example",
    );
    claim(ALICE, 1, &["internal.example"], &[], &policy).expect("the domain itself is not under");
    claim(ALICE, 1, &["notinternal.example"], &[], &policy).expect("a label boundary");
    claim(ALICE, 1, &["www.provider.example.com"], &[], &policy).expect("exact means exact");
}

#[test]
fn blocked_host_entries_must_be_names() {
    for bad in [
        "",
        "*.",
        "*",
        "a..b",
        "*.*.example",
        "bad host",
        "-a.example",
    ] {
        assert!(bad.parse::<BlockedHost>().is_err(), "{bad:?}");
    }
    assert_eq!(
        "*.Example.COM".parse::<BlockedHost>(),
        Ok(BlockedHost::Under("example.com".into()))
    );
}

#[test]
fn two_groups_of_one_deployment_naming_one_host_are_409() {
    let first = pending(ALICE, 1);
    let mut second = pending(ALICE, 1);
    second.spec.lease_id.gseq = 2;
    second.metadata.name = Some(second.spec.lease_id.order().object_name());
    let mut g2 = group(&["shop.example.com"]);
    g2.name = "dc2".into();
    let mut accepted = vec![
        (
            first.name_any(),
            manifest(group(&["shop.example.com"]), None),
        ),
        (second.name_any(), manifest(g2, None)),
    ];
    let err = reserve(&mut accepted, &[first, second], &policy()).expect_err("refused");
    assert_eq!(err.http_status(), 409);
    assert!(err.to_string().contains("groups dc and dc2"), "{err}");
    assert!(accepted.iter().all(|(_, m)| m.hostnames.is_none()));
}

fn hosts(list: &[&str]) -> Vec<String> {
    list.iter().map(|h| (*h).to_owned()).collect()
}

#[test]
fn migration_moves_a_host_back_to_a_deployment_of_the_same_owner_that_names_it() {
    // Deployment 2 took www over; deployment 1 still names it and asks for it back.
    let mut first = holding(ALICE, 1, &["www.example.com", "api.example.com"]);
    first.spec.manifest.as_mut().unwrap().hostnames = Some(hosts(&["api.example.com"]));
    let second = holding(ALICE, 2, &["www.example.com"]);
    let all = [first.clone(), second.clone()];
    let (held, releases) = migrate(&first, &hosts(&["WWW.example.com"]), &all).unwrap();
    assert_eq!(held, hosts(&["api.example.com", "www.example.com"]));
    assert_eq!(releases, vec![(second.name_any(), Vec::new())]);
}

#[test]
fn migration_never_takes_a_host_from_another_owner_nor_one_the_destination_does_not_name() {
    let mine = holding(ALICE, 1, &["www.example.com"]);
    let bobs = holding(BOB, 7, &["www.example.com"]);
    let all = [mine.clone(), bobs];
    let e = migrate(&mine, &hosts(&["www.example.com"]), &all).unwrap_err();
    assert!(matches!(e, Rejection::HostnameTaken(_)), "{e}");
    let e = migrate(&mine, &hosts(&["other.example.com"]), &all).unwrap_err();
    assert!(
        matches!(&e, Rejection::Malformed(t) if t.contains("not used by this deployment")),
        "{e}"
    );
    let e = migrate(&pending(ALICE, 3), &hosts(&["www.example.com"]), &all).unwrap_err();
    assert!(matches!(e, Rejection::Malformed(_)), "{e}");
}
