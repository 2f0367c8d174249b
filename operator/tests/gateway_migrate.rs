//! `POST /hostname/migrate` and `/endpoint/migrate` through the real gateway: an owner moves a
//! host (or a leased-IP endpoint, with its address) to another of its deployments that names it;
//! a stranger cannot pull a tenant's host or endpoint to its own deployment, and one the
//! destination does not name is refused; nothing is written when refused.

mod gateway_world;

use chain_client::cert::CertificateKeyPair;
use crds::resources::{Lease, LeaseManifest, LeaseRef};
use gateway_world::*;
use kube::ResourceExt;
use serde_json::json;

fn group(host: &str) -> crds::sdl::ManifestGroup {
    let mut group = sdl(1).manifest()[0].clone();
    group.services[0].expose[0].hosts = Some(vec![host.to_owned()]);
    group
}

/// A live lease of `owner`'s deployment `dseq` with a manifest naming `host`, holding `held`.
fn lease_with(owner: &str, provider: &str, dseq: u64, host: &str, held: &[&str]) -> Lease {
    let mut lease = lease(owner, provider);
    lease.spec.lease_id = LeaseRef {
        dseq,
        ..lease.spec.lease_id.clone()
    };
    lease.metadata.name = Some(lease.spec.lease_id.order().object_name());
    lease.spec.manifest = Some(LeaseManifest {
        version: "0".repeat(64),
        group: group(host),
        leased: Vec::new(),
        hostnames: Some(held.iter().map(|h| (*h).to_owned()).collect()),
        ip_endpoints: None,
        ip_addresses: Default::default(),
        secret_name: None,
    });
    lease
}

fn put(world: &World, lease: Lease) {
    world
        .source
        .leases
        .lock()
        .unwrap()
        .insert(lease.name_any(), lease);
}

fn held(world: &World, name: &str) -> Vec<String> {
    world
        .source
        .get(name)
        .and_then(|l| l.spec.manifest)
        .and_then(|m| m.hostnames)
        .unwrap_or_default()
}

async fn migrate(
    world: &World,
    who: Option<&CertificateKeyPair>,
    body: serde_json::Value,
) -> (u16, String) {
    post(world, who, "/hostname/migrate", body).await
}

async fn post(
    world: &World,
    who: Option<&CertificateKeyPair>,
    path: &str,
    body: serde_json::Value,
) -> (u16, String) {
    let response = http(who)
        .post(world.url(path))
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    (status, response.text().await.unwrap_or_default())
}

#[tokio::test]
async fn an_owner_moves_its_host_between_its_deployments_and_no_one_else_can() {
    let world = World::start().await;
    let tenant = world.tenant_addr();
    let stranger = world.stranger_key.address().to_string();
    let host = "www.example.com";
    // Deployment 20 took the host over; deployment 21 names it too, and holds nothing.
    let holder = lease_with(&tenant, &world.provider, 20, host, &[host]);
    let wanting = lease_with(&tenant, &world.provider, 21, host, &[]);
    let strangers = lease_with(&stranger, &world.provider, 30, host, &[]);
    for lease in [holder.clone(), wanting.clone(), strangers.clone()] {
        put(&world, lease);
    }

    // The stranger cannot pull the host to its own deployment that names it.
    let (status, body) = migrate(
        &world,
        Some(&world.stranger),
        json!({"hostnames_to_migrate": [host], "destination_dseq": 30, "destination_gseq": 1}),
    )
    .await;
    assert_eq!(status, 409, "{body}");
    // Nor can the tenant move it to a deployment that is not its own.
    let (status, body) = migrate(
        &world,
        Some(&world.tenant),
        json!({"hostnames_to_migrate": [host], "destination_dseq": 30, "destination_gseq": 1}),
    )
    .await;
    assert_eq!(status, 400, "{body}");
    // A host the destination does not name; no hosts; not JSON; no certificate.
    for bad in [
        json!({"hostnames_to_migrate": ["other.example.com"], "destination_dseq": 21, "destination_gseq": 1}),
        json!({"hostnames_to_migrate": [], "destination_dseq": 21, "destination_gseq": 1}),
        json!("migrate please"),
    ] {
        let (status, body) = migrate(&world, Some(&world.tenant), bad.clone()).await;
        assert_eq!(status, 400, "{bad}: {body}");
    }
    let (status, _) = migrate(
        &world,
        None,
        json!({"hostnames_to_migrate": [host], "destination_dseq": 21, "destination_gseq": 1}),
    )
    .await;
    assert_eq!(status, 401);
    assert_eq!(
        held(&world, &holder.name_any()),
        [host],
        "nothing moved yet"
    );
    assert!(held(&world, &strangers.name_any()).is_empty());

    // The owner moves it.
    let (status, body) = migrate(
        &world,
        Some(&world.tenant),
        json!({"hostnames_to_migrate": [host], "destination_dseq": 21, "destination_gseq": 1}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&body).unwrap(),
        json!({"transferred": [host]})
    );
    assert_eq!(held(&world, &wanting.name_any()), [host]);
    assert!(held(&world, &holder.name_any()).is_empty());
}

/// A live lease of `owner`'s deployment `dseq` whose manifest puts its first port on the leased
/// IP `endpoint`, holding `held`; a held endpoint reports address `10.0.0.<dseq>`.
fn ip_lease(owner: &str, provider: &str, dseq: u64, endpoint: &str, held: &[&str]) -> Lease {
    let mut lease = lease_with(owner, provider, dseq, "unused.example.com", &[]);
    let manifest = lease.spec.manifest.as_mut().unwrap();
    let expose = &mut manifest.group.services[0].expose[0];
    expose.global = true;
    expose.ip = endpoint.to_owned();
    manifest.ip_endpoints = Some(held.iter().map(|e| (*e).to_owned()).collect());
    let status = lease.status.get_or_insert_with(Default::default);
    status.services = vec![crds::resources::ServiceStatus {
        name: manifest.group.services[0].name.clone(),
        ips: held
            .iter()
            .map(|e| crds::resources::LeasedIpStatus {
                endpoint: (*e).to_owned(),
                ip: format!("10.0.0.{dseq}"),
                external_port: 80,
                port: 80,
                protocol: "TCP".into(),
            })
            .collect(),
        ..Default::default()
    }];
    lease
}

fn endpoints_of(world: &World, name: &str) -> (Vec<String>, Vec<(String, String)>) {
    let manifest = world
        .source
        .get(name)
        .and_then(|l| l.spec.manifest)
        .unwrap();
    (
        manifest.ip_endpoints.unwrap_or_default(),
        manifest.ip_addresses.into_iter().collect(),
    )
}

#[tokio::test]
async fn an_owner_moves_its_leased_ip_with_its_address_and_no_one_else_can() {
    let world = World::start().await;
    let tenant = world.tenant_addr();
    let stranger = world.stranger_key.address().to_string();
    let holder = ip_lease(&tenant, &world.provider, 20, "front", &["front"]);
    let wanting = ip_lease(&tenant, &world.provider, 21, "front", &[]);
    let strangers = ip_lease(&stranger, &world.provider, 30, "front", &[]);
    for lease in [holder.clone(), wanting.clone(), strangers.clone()] {
        put(&world, lease);
    }
    let to = |dseq: u64, endpoint: &str| json!({"endpoints_to_migrate": [endpoint], "destination_dseq": dseq, "destination_gseq": 1});

    // The stranger's own deployment names "front" too: moving there takes nothing of the
    // tenant's (the address is the tenant's endpoint's, not the name's).
    let (status, body) = post(
        &world,
        Some(&world.stranger),
        "/endpoint/migrate",
        to(30, "front"),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let (held, addresses) = endpoints_of(&world, &strangers.name_any());
    assert_eq!(held, ["front"]);
    assert!(addresses.is_empty(), "{addresses:?}");
    assert_eq!(endpoints_of(&world, &holder.name_any()).0, ["front"]);
    // The tenant cannot move to a deployment not its own, nor an endpoint the destination does
    // not name; an empty list, another body, no certificate are refused.
    for (who, body, want) in [
        (Some(&world.tenant), to(30, "front"), 400),
        (Some(&world.tenant), to(21, "back"), 400),
        (
            Some(&world.tenant),
            json!({"endpoints_to_migrate": [], "destination_dseq": 21}),
            400,
        ),
        (
            Some(&world.tenant),
            json!({"hostnames_to_migrate": ["front"], "destination_dseq": 21}),
            400,
        ),
        (None, to(21, "front"), 401),
    ] {
        let (status, text) = post(&world, who, "/endpoint/migrate", body.clone()).await;
        assert_eq!(status, want, "{body}: {text}");
    }
    assert_eq!(
        endpoints_of(&world, &holder.name_any()).0,
        ["front"],
        "nothing moved yet"
    );
    assert!(endpoints_of(&world, &wanting.name_any()).0.is_empty());

    // The owner moves it: the destination holds it and asks for the address it had.
    let (status, body) = post(
        &world,
        Some(&world.tenant),
        "/endpoint/migrate",
        to(21, "front"),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&body).unwrap(),
        json!({"transferred": ["front"]})
    );
    let (held, addresses) = endpoints_of(&world, &wanting.name_any());
    assert_eq!(held, ["front"]);
    assert_eq!(addresses, [("front".to_owned(), "10.0.0.20".to_owned())]);
    assert!(endpoints_of(&world, &holder.name_any()).0.is_empty());
}
