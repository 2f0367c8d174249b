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
/// refusing it as too large to store.
#[test]
fn a_grpc_manifest_of_thousands_of_groups_is_refused_within_the_allocation_bound() {
    let world = Arc::new(World::build());
    let group = to_proto(&world.deployed_sdl().manifest()[0]);
    let request = lease_rpc::SendManifestRequest {
        lease_id: Some(mv1::LeaseId {
            owner: world.tenant().into(),
            dseq: 7,
            gseq: 1,
            oseq: 1,
            provider: world.provider().into(),
            bseq: 0,
        }),
        manifest: vec![group; 4_762],
    };
    let input = request.encode_to_vec();
    let mut target = ManifestGrpc::new(world);
    let (label, peak) = peak_during(|| target.run(&input));
    assert!(
        peak <= allocation_bound(input.len()),
        "{peak} bytes for an input of {} bytes ({label})",
        input.len()
    );
    assert!(
        label.contains("too large") || label.contains("needs"),
        "{label}"
    );
}
