//! Inputs the fuzz campaign found, minimized, run through the same targets: each must stay
//! within the allocation bound and not panic.

use std::sync::Arc;

use chain_client::akash::market::v1 as mv1;
use chain_client::akash::provider::lease::v1 as lease_rpc;
use fuzz::alloc::peak_during;
use fuzz::engine::{Target, allocation_bound};
use fuzz::targets::manifest::{ManifestGrpc, to_proto};
use fuzz::world::World;
use prost::Message;

/// `manifest_grpc`: a 1.4 MB `SendManifestRequest` of thousands of one-service groups became
/// about 5 MB of manifest JSON, which the gateway parsed and hashed (peak about 200 MB) before
/// refusing it as too large to store. (Thousands of groups are now refused on the wire, so the
/// same JSON is made within the wire limits: 64 groups of 75 services.)
#[test]
fn a_grpc_manifest_of_thousands_of_services_is_refused_within_the_allocation_bound() {
    let world = Arc::new(World::build());
    let mut group = to_proto(&world.deployed_sdl().manifest()[0]);
    let service = group.services[0].clone();
    group.services = vec![service; 75];
    let request = lease_rpc::SendManifestRequest {
        lease_id: Some(mv1::LeaseId {
            owner: world.tenant().into(),
            dseq: 7,
            gseq: 1,
            oseq: 1,
            provider: world.provider().into(),
            bseq: 0,
        }),
        manifest: vec![group; 64],
    };
    let input = request.encode_to_vec();
    let mut target = ManifestGrpc::new(world);
    let (label, peak) = peak_during(|| target.run(&input));
    assert!(
        peak <= allocation_bound(input.len()),
        "{peak} bytes for an input of {} bytes ({label})",
        input.len()
    );
    assert!(label.contains("JSON form is larger than"), "{label}");
}

/// `manifest_grpc`: requests of many empty repeated entries (32 to 366 KB) that decoded and
/// converted to 72 to 94 MB before the JSON was refused as too large to store. Now list entries
/// are counted on the bytes first, as the gateway does, and the JSON is built one group at a time
/// and stopped at the storage budget.
#[test]
fn grpc_manifests_of_many_empty_entries_stay_within_the_allocation_bound() {
    let world = Arc::new(World::build());
    let mut target = ManifestGrpc::new(world);
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data");
    let mut checked = 0;
    for entry in std::fs::read_dir(&dir).expect("tests/data") {
        let path = entry.expect("entry").path();
        if !path
            .to_string_lossy()
            .contains("manifest_grpc-over-allocation")
        {
            continue;
        }
        let input = std::fs::read(&path).expect("input");
        let (label, peak) = peak_during(|| target.run(&input));
        assert!(
            peak <= allocation_bound(input.len()),
            "{}: {peak} bytes for an input of {} bytes ({label})",
            path.display(),
            input.len()
        );
        checked += 1;
    }
    assert_eq!(checked, 3, "the saved inputs are in {}", dir.display());
}
