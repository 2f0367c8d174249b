//! The provider gateway in process, over real TLS on loopback: a tenant with its on-chain
//! certificate sends a manifest (REST and gRPC), and every kind of refusal writes nothing.
//! The chain is `FakeChain`, the Lease resources are in memory.

mod gateway_world;

use chain_client::akash::market::v1::LeaseId;
use chain_client::akash::provider::lease::v1::lease_rpc_client::LeaseRpcClient;
use chain_client::akash::provider::lease::v1::{SendManifestRequest, ServiceStatusRequest};
use chain_client::akash::provider::v1::provider_rpc_client::ProviderRpcClient;
use crds::sdl::ManifestGroup;
use gateway_world::*;
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tenant_with_the_same_dseq_as_another_is_told_it_has_no_lease_here_not_that_it_is_a_stranger()
 {
    let world = World::start().await;
    // The stranger owns a deployment with the same number; only the tenant leased from us.
    let stranger_addr = {
        let der = CertificateDer::from_pem_slice(world.stranger.cert_pem.as_bytes()).unwrap();
        chain_client::cert::claimed_identity(&der).unwrap().owner
    };
    world
        .chain
        .state()
        .deployments
        .push(deployment(&stranger_addr, &sdl(2)));
    let (status, text) = world
        .put(Some(&world.stranger), sdl(2).manifest_json().into_bytes())
        .await;
    assert_eq!(status, 404, "{text}");
    assert!(text.contains("holds no lease"), "{text}");
    assert_eq!(world.source.write_count(), 0);

    let (status, text) = world
        .put(Some(&world.tenant), sdl(2).manifest_json().into_bytes())
        .await;
    assert_eq!(status, 200, "{text}");
    assert!(
        world
            .source
            .get(&world.lease_name())
            .unwrap()
            .spec
            .manifest
            .is_some()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rest_manifest_accepted_from_the_owner_and_refused_otherwise() {
    let world = World::start().await;
    let good = sdl(2).manifest_json().into_bytes();

    // Public endpoints need no client certificate.
    let anonymous = http(None);
    for path in ["/version", "/address", "/status"] {
        let response = anonymous.get(world.url(path)).send().await.expect(path);
        assert_eq!(response.status().as_u16(), 200, "{path}");
    }
    let status: serde_json::Value = anonymous
        .get(world.url("/status"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(status["cluster_public_hostname"], "provider.example.com");
    assert_eq!(
        status["bidengine"]["orders"], 0,
        "no bid engine here: {status}"
    );
    let address: serde_json::Value = anonymous
        .get(world.url("/address"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(address["address"], world.provider.as_str());

    // Refusals first: none writes anything.
    let (status, text) = world.put(None, good.clone()).await;
    assert_eq!(status, 401, "{text}");
    assert!(text.contains("client certificate is required"), "{text}");

    let (status, text) = world.put(Some(&world.unknown), good.clone()).await;
    assert_eq!(status, 401, "{text}");
    assert!(text.contains("holds no valid certificate"), "{text}");

    let (status, text) = world.put(Some(&world.stranger), good.clone()).await;
    assert_eq!(status, 403, "{text}");
    assert!(text.contains("only its owner"), "{text}");

    let wrong = sdl(3).manifest_json().into_bytes();
    let (status, text) = world.put(Some(&world.tenant), wrong).await;
    assert_eq!(status, 400, "{text}");
    assert!(
        text.starts_with(&format!(
            "manifest version {} does not match the deployment's hash {}",
            sdl(3).manifest_version_hex(),
            sdl(2).manifest_version_hex()
        )),
        "{text}"
    );

    let (status, text) = world.put(Some(&world.tenant), vec![b' '; MAX + 1]).await;
    assert_eq!(status, 413, "{text}");

    let (status, text) = world.put(Some(&world.tenant), b"{not json".to_vec()).await;
    assert_eq!(status, 400, "{text}");

    assert_eq!(world.source.write_count(), 0, "no refusal wrote anything");
    assert!(
        world
            .source
            .get(&world.lease_name())
            .unwrap()
            .spec
            .manifest
            .is_none()
    );

    // The owner's manifest with the hash on chain.
    let (status, text) = world.put(Some(&world.tenant), good.clone()).await;
    assert_eq!(status, 200, "{text}");
    let written = world
        .source
        .get(&world.lease_name())
        .unwrap()
        .spec
        .manifest
        .expect("manifest written");
    assert_eq!(written.version, sdl(2).manifest_version_hex());
    assert_eq!(written.group, sdl(2).manifest()[0]);

    // The reconciler reported web's node port: tenants are told where to reach it.
    {
        let mut leases = world.source.leases.lock().unwrap();
        let lease = leases.get_mut(&world.lease_name()).unwrap();
        lease.status.get_or_insert_with(Default::default).services =
            vec![crds::resources::ServiceStatus {
                name: "web".into(),
                // Every count different: each field of the answer is the one it names.
                ready_replicas: 2,
                replicas: 3,
                available_replicas: 1,
                updated_replicas: 0,
                uris: Vec::new(),
                forwarded_ports: vec!["31234:8080/TCP".into()],
                ips: Vec::new(),
            }];
    }

    // The lease's status and manifest, for its owner only.
    let tenant = http(Some(&world.tenant));
    let status: serde_json::Value = tenant
        .get(world.url(&format!("/lease/{DSEQ}/1/1/status")))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let web = &status["services"]["web"];
    assert_eq!(web["total"], 3, "{status}");
    assert_eq!(web["replicas"], 3, "{status}");
    assert_eq!(web["ready_replicas"], 2, "{status}");
    assert_eq!(web["available"], 1, "{status}");
    assert_eq!(web["available_replicas"], 1, "{status}");
    assert_eq!(web["updated_replicas"], 0, "{status}");
    let one: serde_json::Value = tenant
        .get(world.url(&format!("/lease/{DSEQ}/1/1/service/web/status")))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(one, status["services"]["web"]);
    let missing = tenant
        .get(world.url(&format!("/lease/{DSEQ}/1/1/service/nope/status")))
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status().as_u16(), 404);
    let forwarded = &status["forwarded_ports"]["web"][0];
    assert_eq!(forwarded["host"], "provider.example.com", "{status}");
    assert_eq!(
        (&forwarded["externalPort"], &forwarded["port"]),
        (&serde_json::json!(31234), &serde_json::json!(8080))
    );
    let manifest: Vec<ManifestGroup> = tenant
        .get(world.url(&format!("/lease/{DSEQ}/1/1/manifest")))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(manifest, sdl(2).manifest());
    let refused = http(Some(&world.stranger))
        .get(world.url(&format!("/lease/{DSEQ}/1/1/status")))
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status().as_u16(), 403);

    world.gateway.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grpc_send_manifest_and_service_status() {
    let world = World::start().await;
    let request = SendManifestRequest {
        lease_id: Some(LeaseId {
            owner: world.tenant_addr(),
            dseq: DSEQ,
            gseq: 1,
            oseq: 1,
            provider: world.provider.clone(),
            bseq: 0,
        }),
        manifest: sdl(2).manifest().iter().map(to_proto).collect(),
    };

    let stranger = grpc_channel(&world, &world.stranger).await;
    let refused = LeaseRpcClient::new(stranger)
        .send_manifest(request.clone())
        .await
        .expect_err("a stranger is refused");
    assert_eq!(refused.code(), tonic::Code::PermissionDenied, "{refused:?}");
    assert_eq!(world.source.write_count(), 0);

    let wrong = SendManifestRequest {
        manifest: sdl(3).manifest().iter().map(to_proto).collect(),
        ..request.clone()
    };
    let channel = grpc_channel(&world, &world.tenant).await;
    let mut leases = LeaseRpcClient::new(channel.clone());
    let refused = leases
        .send_manifest(wrong)
        .await
        .expect_err("wrong version");
    assert_eq!(refused.code(), tonic::Code::InvalidArgument, "{refused:?}");
    assert_eq!(world.source.write_count(), 0);

    leases
        .send_manifest(request)
        .await
        .expect("the owner's manifest is accepted");
    let written = world
        .source
        .get(&world.lease_name())
        .unwrap()
        .spec
        .manifest
        .expect("manifest written");
    assert_eq!(written.version, sdl(2).manifest_version_hex());

    let status = leases
        .service_status(ServiceStatusRequest {
            lease_id: Some(LeaseId {
                owner: world.tenant_addr(),
                dseq: DSEQ,
                gseq: 1,
                oseq: 1,
                provider: world.provider.clone(),
                bseq: 0,
            }),
            services: vec![],
        })
        .await
        .expect("status")
        .into_inner();
    assert_eq!(status.services.len(), 1);
    assert_eq!(status.services[0].name, "web");
    assert_eq!(status.services[0].status.as_ref().unwrap().total, 2);
    // The same as a stream: the first answer at once, equal to the unary one.
    let request = ServiceStatusRequest {
        lease_id: Some(LeaseId {
            owner: world.tenant_addr(),
            dseq: DSEQ,
            gseq: 1,
            oseq: 1,
            provider: world.provider.clone(),
            bseq: 0,
        }),
        services: vec![],
    };
    let mut stream = leases
        .stream_service_status(request.clone())
        .await
        .expect("a service status stream")
        .into_inner();
    let first = tokio::time::timeout(std::time::Duration::from_secs(10), stream.message())
        .await
        .expect("a first message in time")
        .expect("a message")
        .expect("not the end");
    assert_eq!(first, status);
    drop(stream);
    // Another lease id (not this tenant's): refused before any stream starts.
    let mut other = request;
    other.lease_id.as_mut().unwrap().dseq = DSEQ + 1;
    let Err(refused) = leases.stream_service_status(other).await else {
        panic!("another lease's status stream was opened");
    };
    assert_eq!(refused.code(), tonic::Code::NotFound, "{refused:?}");

    let mut provider_rpc = ProviderRpcClient::new(channel);
    let provider_status = provider_rpc
        .get_status(())
        .await
        .expect("provider status")
        .into_inner();
    assert_eq!(provider_status.cluster.unwrap().leases.unwrap().active, 1);
    assert_eq!(provider_status.manifest.unwrap().deployments, 1);
    assert_eq!(provider_status.public_hostnames, ["provider.example.com"]);
    // The same as a stream: its first message at once.
    let mut stream = provider_rpc
        .stream_status(())
        .await
        .expect("a status stream")
        .into_inner();
    let first = tokio::time::timeout(std::time::Duration::from_secs(10), stream.message())
        .await
        .expect("a first message in time")
        .expect("a message")
        .expect("not the end");
    assert_eq!(first.cluster.unwrap().leases.unwrap().active, 1);
    drop(stream);
    world.gateway.shutdown().await;
}
