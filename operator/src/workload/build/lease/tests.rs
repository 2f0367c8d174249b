//! The quota comes from the lease, and a manifest beyond its lease is refused by the builder
//! too, from the fixtures of `operator/tests/fixtures/workload/`.

use std::collections::BTreeMap;

use crds::resources::LeaseManifest;
use crds::sdl::groups::Attribute;
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;

use super::super::tests::{config, fixture_manifest, invariants, lease};
use super::super::{BuildError, LeaseObjects, build};

const MI: u64 = 1 << 20;
const GI: u64 = 1 << 30;

fn hard(o: &LeaseObjects) -> BTreeMap<String, String> {
    o.resource_quota
        .spec
        .as_ref()
        .and_then(|s| s.hard.as_ref())
        .expect("quota")
        .iter()
        .map(|(k, Quantity(v))| (k.clone(), v.clone()))
        .collect()
}

fn built(manifest: &LeaseManifest) -> LeaseObjects {
    build(&lease(), manifest, &config()).expect("build")
}

fn refused(manifest: &LeaseManifest) -> BuildError {
    build(&lease(), manifest, &config()).expect_err("refused")
}

#[test]
fn the_quota_is_what_the_lease_holds_not_what_the_manifest_asks() {
    // The lease holds 5 replicas of web; the manifest runs 2 of them.
    let mut m = fixture_manifest("http");
    m.leased[0].count = 5;
    let o = built(&m);
    assert_eq!(o.deployments[0].spec.replicas, Some(2));
    let hard = hard(&o);
    assert_eq!(hard["limits.cpu"], "2500m");
    assert_eq!(hard["requests.cpu"], "2500m");
    assert_eq!(hard["limits.memory"], (5 * 512 * MI).to_string());
    assert_eq!(hard["limits.ephemeral-storage"], (5 * GI).to_string());
    assert_eq!(hard["services.nodeports"], "0");
    assert_eq!(hard["requests.storage"], "0");
    assert_eq!(hard["persistentvolumeclaims"], "0");
}

#[test]
fn node_ports_gpus_and_persistent_volumes_come_from_the_lease() {
    let o = built(&fixture_manifest("random-port"));
    // Two random-port endpoints leased (UDP 7777 and 2222).
    assert_eq!(hard(&o)["services.nodeports"], "2");

    let mut m = fixture_manifest("gpu");
    m.leased[0].count = 3;
    let hard_gpu = hard(&built(&m));
    assert_eq!(hard_gpu["requests.nvidia.com/gpu"], "6");

    let mut m = fixture_manifest("persistent");
    m.leased[0].count = 4;
    let hard_pv = hard(&built(&m));
    assert_eq!(hard_pv["requests.storage"], (4 * 10 * GI).to_string());
    assert_eq!(hard_pv["persistentvolumeclaims"], "4");
    assert_eq!(
        hard_pv["limits.ephemeral-storage"],
        (4 * 2 * GI).to_string()
    );

    // A ram volume counts as memory, as the container's limit does, and not as disk.
    let o = built(&fixture_manifest("ram"));
    invariants("ram", &o);
    let hard_ram = hard(&o);
    assert_eq!(hard_ram["limits.memory"], (GI + 256 * MI).to_string());
    assert_eq!(hard_ram["limits.ephemeral-storage"], GI.to_string());
}

#[test]
fn the_builder_refuses_a_manifest_beyond_its_lease() {
    // The lease holds a T4; the manifest asks for the fixture's A100/H100.
    let mut m = fixture_manifest("gpu");
    for a in &mut m.leased[0].resources.gpu.attributes {
        a.key = "vendor/nvidia/model/t4".into();
    }
    m.leased[0].resources.gpu.attributes.dedup();
    let e = refused(&m);
    assert_eq!(e.field, "services[llm].resources.gpu.attributes", "{e}");

    // Leased disk run as RAM.
    let mut m = fixture_manifest("http");
    m.group.services[0].resources.storage[0].attributes = Some(vec![
        Attribute {
            key: "class".into(),
            value: "ram".into(),
        },
        Attribute {
            key: "persistent".into(),
            value: "false".into(),
        },
    ]);
    let e = refused(&m);
    assert_eq!(
        e.field, "services[web].resources.storage[0].attributes",
        "{e}"
    );

    // More replicas than leased.
    let mut m = fixture_manifest("http");
    m.leased[0].count = 1;
    let e = refused(&m);
    assert_eq!(e.field, "services[web].count", "{e}");

    // Node ports the lease has no endpoints for.
    let mut m = fixture_manifest("http");
    let mut extra = m.group.services[0].expose[0].clone();
    extra.port = 22;
    extra.external_port = 22;
    m.group.services[0].expose.push(extra);
    let e = refused(&m);
    assert_eq!(e.field, "services[web].expose", "{e}");
    assert!(e.reason.contains("node ports"), "{e}");
}

#[test]
fn a_manifest_an_older_provider_accepted_keeps_the_quota_of_its_services() {
    let mut m = fixture_manifest("http");
    m.leased.clear();
    let hard = hard(&built(&m));
    // Two replicas of 500m.
    assert_eq!(hard["limits.cpu"], "1000m");
}
