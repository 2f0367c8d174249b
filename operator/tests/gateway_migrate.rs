//! `POST /hostname/migrate` through the real gateway: an owner moves a host back to another of
//! its deployments that names it; a stranger cannot pull a tenant's host to its own deployment,
//! and a host the destination does not name is refused; nothing is written when refused.

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
    let response = http(who)
        .post(world.url("/hostname/migrate"))
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
