//! Attacks on the gateway in process (real TLS on loopback, `FakeChain`, Lease resources in
//! memory): what a client without a valid certificate, or a tenant sending more than a manifest
//! can hold, gets out of it.

mod gateway_world;

use chain_client::akash::manifest::v2beta3 as mv;
use chain_client::akash::market::v1::LeaseId;
use chain_client::akash::provider::lease::v1::SendManifestRequest;
use chain_client::akash::provider::lease::v1::lease_rpc_client::LeaseRpcClient;
use gateway_world::*;
use operator::gateway::GatewayLimits;
use prost::bytes::{Buf, BufMut};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tonic::codec::{Codec, DecodeBuf, Decoder, EncodeBuf, Encoder};

/// Sends and receives gRPC messages as raw bytes, whatever they are.
#[derive(Default)]
struct RawCodec;

impl Codec for RawCodec {
    type Encode = Vec<u8>;
    type Decode = Vec<u8>;
    type Encoder = RawCodec;
    type Decoder = RawCodec;
    fn encoder(&mut self) -> Self::Encoder {
        RawCodec
    }
    fn decoder(&mut self) -> Self::Decoder {
        RawCodec
    }
}

impl Encoder for RawCodec {
    type Item = Vec<u8>;
    type Error = tonic::Status;
    fn encode(&mut self, item: Vec<u8>, dst: &mut EncodeBuf<'_>) -> Result<(), tonic::Status> {
        dst.put_slice(&item);
        Ok(())
    }
}

impl Decoder for RawCodec {
    type Item = Vec<u8>;
    type Error = tonic::Status;
    fn decode(&mut self, src: &mut DecodeBuf<'_>) -> Result<Option<Vec<u8>>, tonic::Status> {
        let n = src.remaining();
        Ok(Some(src.copy_to_bytes(n).to_vec()))
    }
}

/// `bytes` as the request of LeaseRPC method `method`, over a connection presenting `who`.
async fn raw_call(
    world: &World,
    who: Option<&chain_client::cert::CertificateKeyPair>,
    method: &'static str,
    bytes: Vec<u8>,
) -> tonic::Status {
    let mut grpc = tonic::client::Grpc::new(grpc_channel_as(world, who).await);
    grpc.ready().await.expect("gRPC ready");
    let path = tonic::codegen::http::uri::PathAndQuery::from_static(method);
    grpc.unary(tonic::Request::new(bytes), path, RawCodec)
        .await
        .expect_err("refused")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grpc_calls_without_a_valid_certificate_are_refused_before_the_request_is_decoded() {
    let world = World::start().await;
    // Not protobuf at all: had it been decoded, the answer would be a decoding error.
    let garbage = vec![0xff; 40 << 10];
    for method in [
        "/akash.provider.lease.v1.LeaseRPC/SendManifest",
        "/akash.provider.lease.v1.LeaseRPC/ServiceStatus",
    ] {
        for who in [None, Some(&world.unknown)] {
            let status = raw_call(&world, who, method, garbage.clone()).await;
            assert_eq!(
                status.code(),
                tonic::Code::Unauthenticated,
                "{method} as {:?}: {status:?}",
                who.map(|_| "unknown certificate")
            );
        }
    }
    // A client the chain knows gets as far as decoding.
    let status = raw_call(
        &world,
        Some(&world.stranger),
        "/akash.provider.lease.v1.LeaseRPC/SendManifest",
        garbage,
    )
    .await;
    assert_eq!(status.code(), tonic::Code::InvalidArgument, "{status:?}");
    assert_eq!(world.source.write_count(), 0);
    world.gateway.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_grpc_manifest_with_more_entries_than_a_list_may_hold_is_refused_naming_the_list() {
    let world = World::start().await;
    let tiny = mv::Service {
        name: "s".into(),
        ..Default::default()
    };
    let request = SendManifestRequest {
        lease_id: Some(LeaseId {
            owner: world.tenant_addr(),
            dseq: DSEQ,
            gseq: 1,
            oseq: 1,
            provider: world.provider.clone(),
            bseq: 0,
        }),
        manifest: vec![mv::Group {
            name: "dc".into(),
            services: vec![tiny; 300],
        }],
    };
    let refused = LeaseRpcClient::new(grpc_channel(&world, &world.tenant).await)
        .send_manifest(request)
        .await
        .expect_err("too many services");
    assert_eq!(refused.code(), tonic::Code::InvalidArgument, "{refused:?}");
    assert_eq!(
        refused.message(),
        "manifest[0].services: more than 256 entries"
    );
    assert_eq!(world.source.write_count(), 0);
    world.gateway.shutdown().await;
}

/// The first line of the answer to a `PUT` of the manifest that announces `length` bytes and
/// waits for `100 Continue` before sending them.
async fn status_line_of_a_waiting_put(
    world: &World,
    who: Option<&chain_client::cert::CertificateKeyPair>,
    length: usize,
) -> String {
    let connector =
        tokio_rustls::TlsConnector::from(std::sync::Arc::new(tls_client(who, b"http/1.1")));
    let tcp = tokio::net::TcpStream::connect(world.gateway.rest_addr)
        .await
        .expect("connect");
    let mut tls = connector
        .connect(
            rustls::pki_types::ServerName::try_from("localhost").unwrap(),
            tcp,
        )
        .await
        .expect("TLS");
    let head = format!(
        "PUT /deployment/{DSEQ}/manifest HTTP/1.1\r\nhost: localhost\r\n\
         content-type: application/json\r\ncontent-length: {length}\r\n\
         expect: 100-continue\r\n\r\n"
    );
    tls.write_all(head.as_bytes()).await.expect("write");
    let mut answer = Vec::new();
    while !answer.windows(2).any(|w| w == b"\r\n") {
        let mut buf = [0u8; 256];
        let n = tls.read(&mut buf).await.expect("read");
        assert!(n > 0, "the gateway closed the connection without answering");
        answer.extend_from_slice(&buf[..n]);
    }
    let text = String::from_utf8_lossy(&answer);
    text.lines().next().unwrap_or_default().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rest_refuses_a_manifest_from_a_client_without_a_valid_certificate_before_reading_its_body()
{
    let world = World::start().await;
    // The body is never sent: a server that wanted it would say `100 Continue` first.
    for who in [None, Some(&world.unknown)] {
        let line = status_line_of_a_waiting_put(&world, who, MAX).await;
        assert!(line.starts_with("HTTP/1.1 401"), "{line}");
    }
    // A tenant announcing more than the limit is told so, also without sending it.
    let line = status_line_of_a_waiting_put(&world, Some(&world.tenant), MAX + 1).await;
    assert!(line.starts_with("HTTP/1.1 413"), "{line}");
    // Within the limit, the tenant is asked for the body.
    let line = status_line_of_a_waiting_put(&world, Some(&world.tenant), MAX).await;
    assert!(line.starts_with("HTTP/1.1 100"), "{line}");
    world.gateway.shutdown().await;
}

/// A TCP connection to `to` from the loopback address `source`.
async fn connect_from(
    source: std::net::IpAddr,
    to: std::net::SocketAddr,
) -> std::io::Result<tokio::net::TcpStream> {
    let socket = tokio::net::TcpSocket::new_v4()?;
    socket.bind(std::net::SocketAddr::new(source, 0))?;
    socket.connect(to).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_source_holding_idle_connections_and_stalled_handshakes_does_not_keep_a_tenant_out() {
    use futures::StreamExt;

    let world = World::start().await;
    let addr = world.gateway.rest_addr;
    // The tenant connects from 127.0.0.1; the attacker from another loopback address.
    let attacker: std::net::IpAddr = "127.0.0.2".parse().unwrap();
    let connector =
        tokio_rustls::TlsConnector::from(std::sync::Arc::new(tls_client(None, b"http/1.1")));
    // 1,024 connections that complete TLS, then say nothing.
    let idle: Vec<_> = futures::stream::iter(0..1024)
        .map(|_| {
            let connector = connector.clone();
            async move {
                let tcp = connect_from(attacker, addr).await.ok()?;
                let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
                connector.connect(name, tcp).await.ok()
            }
        })
        .buffer_unordered(64)
        .filter_map(std::future::ready)
        .collect()
        .await;
    // 256 connections that never begin their handshake (a saturated server may not even let
    // them connect).
    let stalled: Vec<_> = futures::future::join_all((0..256).map(|_| connect_from(attacker, addr)))
        .await
        .into_iter()
        .filter_map(Result::ok)
        .collect();

    let (status, text) = world
        .put(Some(&world.tenant), sdl(2).manifest_json().into_bytes())
        .await;
    assert_eq!(status, 200, "{text}");
    assert!(
        idle.len() <= GatewayLimits::default().max_connections_per_source,
        "the attacker completed {} handshakes",
        idle.len()
    );
    drop((idle, stalled));
    world.gateway.shutdown().await;
}

/// An API server holding `listed` Lease resources that answers the first watch with `added`
/// (and later watches not at all); counts the LISTs it answers.
fn lease_api(
    listed: Vec<crds::resources::Lease>,
    added: crds::resources::Lease,
) -> (kube::Client, std::sync::Arc<std::sync::atomic::AtomicUsize>) {
    use std::sync::atomic::{AtomicUsize, Ordering};
    let lists = std::sync::Arc::new(AtomicUsize::new(0));
    let watches = std::sync::Arc::new(AtomicUsize::new(0));
    let counted = lists.clone();
    let service = tower::service_fn(move |request: axum::http::Request<kube::client::Body>| {
        let watching = request
            .uri()
            .query()
            .is_some_and(|q| q.contains("watch=true"));
        let body = if !watching {
            counted.fetch_add(1, Ordering::SeqCst);
            Some(serde_json::json!({
                "apiVersion": "akash.network/v1",
                "kind": "LeaseList",
                "metadata": { "resourceVersion": "1" },
                "items": listed,
            }))
        } else if watches.fetch_add(1, Ordering::SeqCst) == 0 {
            Some(serde_json::json!({ "type": "ADDED", "object": added }))
        } else {
            None
        };
        async move {
            let Some(body) = body else {
                return std::future::pending().await;
            };
            Ok::<_, kube::Error>(
                axum::http::Response::builder()
                    .status(200)
                    .header("content-type", "application/json")
                    .body(kube::client::Body::from(serde_json::to_vec(&body).unwrap()))
                    .unwrap(),
            )
        }
    });
    (kube::Client::new(service, "akash-provider"), lists)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_is_answered_from_memory_not_by_listing_every_lease_with_its_manifest() {
    let provider = address();
    let server = server_certificate(&provider);
    let chain = chain_client::fake::FakeChain::new(&provider);
    let mut with_manifest = lease(&address(), &provider);
    with_manifest.spec.manifest = Some(crds::resources::LeaseManifest {
        version: "ab".repeat(32),
        group: sdl(1).manifest()[0].clone(),
        leased: Vec::new(),
        hostnames: None,
        ip_endpoints: None,
        ip_addresses: Default::default(),
        secret_name: None,
    });
    let mut added = lease(&address(), &provider);
    added.metadata.resource_version = Some("2".into());
    let (client, lists) = lease_api(vec![with_manifest, lease(&address(), &provider)], added);
    let gateway = gateway_over(
        &chain,
        &server,
        std::sync::Arc::new(operator::gateway::KubeLeaseSource::new(
            client,
            "akash-provider",
        )),
        GatewayLimits::default(),
    )
    .await;
    let anonymous = http(None);
    let url = format!("https://127.0.0.1:{}/status", gateway.rest_addr.port());
    let status = || async {
        let answer = anonymous.get(&url).send().await.expect("status");
        assert_eq!(answer.status().as_u16(), 200);
        let json: serde_json::Value = answer.json().await.expect("JSON");
        (
            json["cluster"]["leases"].as_u64(),
            json["manifest"]["deployments"].as_u64(),
        )
    };
    for _ in 0..20 {
        status().await;
    }
    assert_eq!(
        lists.load(std::sync::atomic::Ordering::SeqCst),
        1,
        "one LIST (the watch's), none per status request"
    );
    // The lease the watch reported is counted.
    let mut seen = status().await;
    for _ in 0..200 {
        if seen == (Some(3), Some(1)) {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        seen = status().await;
    }
    assert_eq!(seen, (Some(3), Some(1)));
    gateway.shutdown().await;
}

/// Until `check` holds, asking again every 50 ms, for at most 30 s.
async fn eventually<F: std::future::Future<Output = bool>>(what: &str, check: impl Fn() -> F) {
    for _ in 0..600 {
        if check().await {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    panic!("{what}: not after 30 s");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_certificate_revoked_on_chain_is_refused_from_the_next_block_not_when_the_cache_expires()
{
    let hour = std::time::Duration::from_secs(3600);
    let world = World::start_with(GatewayLimits {
        cert_cache_ttl: hour,
        cert_refusal_ttl: hour,
        ..Default::default()
    })
    .await;
    let tenant = http(Some(&world.tenant));
    let url = world.url(&format!("/lease/{DSEQ}/1/1/status"));
    let status = || async {
        tenant
            .get(&url)
            .send()
            .await
            .expect("status")
            .status()
            .as_u16()
    };
    assert_eq!(status().await, 200, "trusted, and now cached for an hour");

    // Revoked: the chain's state, and the block that says so.
    let serial = world.tenant.serial.clone();
    world.chain.state().certificates.iter_mut().for_each(|c| {
        if c.serial == serial {
            c.certificate.as_mut().unwrap().state =
                chain_client::akash::cert::v1::State::Revoked as i32;
        }
    });
    world
        .chain
        .push_events(vec![chain_client::events::AkashEvent::CertificateRevoked {
            owner: world.tenant_addr(),
        }]);
    eventually("the revoked certificate refused", || async {
        status().await == 401
    })
    .await;
    world.gateway.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_certificate_is_let_in_from_the_block_that_publishes_it() {
    let hour = std::time::Duration::from_secs(3600);
    let world = World::start_with(GatewayLimits {
        cert_cache_ttl: hour,
        cert_refusal_ttl: hour,
        ..Default::default()
    })
    .await;
    // `unknown` is the tenant's, not on chain yet: refused, and the refusal cached for an hour.
    let client = http(Some(&world.unknown));
    let url = world.url(&format!("/lease/{DSEQ}/1/1/status"));
    let status = || async {
        client
            .get(&url)
            .send()
            .await
            .expect("status")
            .status()
            .as_u16()
    };
    assert_eq!(status().await, 401);
    world
        .chain
        .state()
        .certificates
        .push(on_chain(&world.unknown));
    assert_eq!(status().await, 401, "refused from memory");
    world
        .chain
        .push_events(vec![chain_client::events::AkashEvent::CertificateCreated {
            owner: world.tenant_addr(),
        }]);
    eventually("the published certificate let in", || async {
        status().await == 200
    })
    .await;
    world.gateway.shutdown().await;
}
