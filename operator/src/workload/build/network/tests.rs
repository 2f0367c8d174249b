//! Which hosts a lease's Ingress routes: its automatic host, and the manifest's hosts it holds.

use crds::sdl::names::ingress_host;

use super::super::tests::{config, fixture_manifest, lease, lease_id};
use super::super::{LeaseObjects, build};

fn ingress_hosts(o: &LeaseObjects) -> Vec<String> {
    o.ingresses[0]
        .spec
        .as_ref()
        .and_then(|s| s.rules.as_ref())
        .expect("rules")
        .iter()
        .map(|r| r.host.clone().unwrap_or_default())
        .collect()
}

#[test]
fn the_ingress_routes_only_the_hosts_the_lease_holds() {
    let auto = ingress_host(&lease_id(), "web", &config().ingress_domain);
    // The fixture accepts www.example.com and Shop.Example.com.
    let mut m = fixture_manifest("http");
    let all = build(&lease(), &m, &config()).expect("build");
    assert_eq!(
        ingress_hosts(&all),
        [auto.as_str(), "www.example.com", "shop.example.com"]
    );
    // shop.example.com moved to another deployment of the owner.
    m.hostnames = Some(vec!["www.example.com".into()]);
    let held = build(&lease(), &m, &config()).expect("build");
    assert_eq!(ingress_hosts(&held), [auto.as_str(), "www.example.com"]);
    // None held: the automatic host still routes.
    m.hostnames = Some(Vec::new());
    let none = build(&lease(), &m, &config()).expect("build");
    assert_eq!(ingress_hosts(&none), [auto.as_str()]);
}

#[test]
fn a_host_under_the_ingress_domain_that_is_not_the_leases_own_is_refused() {
    let domain = config().ingress_domain;
    let mut other = lease_id();
    other.dseq += 1;
    for host in [
        ingress_host(&other, "web", &domain),
        format!("admin.{domain}"),
        domain.clone(),
    ] {
        let mut m = fixture_manifest("http");
        m.group.services[0].expose[0].hosts = Some(vec![host.clone()]);
        let e = build(&lease(), &m, &config()).expect_err("refused");
        assert_eq!(e.field, "services[web].expose[0].hosts[0]", "{host}: {e}");
        assert!(e.reason.contains("ingress domain"), "{e}");
    }
    let mut m = fixture_manifest("http");
    m.group.services[0].expose[0].hosts = Some(vec![ingress_host(&lease_id(), "web", &domain)]);
    build(&lease(), &m, &config()).expect("its own automatic host");
}
