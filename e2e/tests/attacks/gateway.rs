//! Attacks on the gateway and on the clients that read from other providers: a stranger making
//! the gateway read and decode what it sends, one source exhausting the gateway, a revoked
//! certificate still trusted, a hostile peer flooding or redirecting the manifest fetcher.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context;
use chain_client::Chain;
use chain_client::akash::manifest::v2beta3 as mv;
use chain_client::akash::market::v1::{BidId, LeaseId};
use chain_client::akash::market::v1beta5::{MsgCreateBid, MsgCreateLease};
use chain_client::akash::provider::lease::v1::SendManifestRequest;
use chain_client::akash::provider::v1beta4::MsgCreateProvider;
use chain_client::cert::{CertificateKeyPair, CertificateRole, generate};
use crds::resources::BidPhase;
use e2e::attack::{
    ATTACKER, connect_from, raw_grpc_call, status_line_of_a_waiting_put, tls_over,
    tls_trusting_any_server,
};
use e2e::market::{self, certificate, leased, object_name, unique_dseq};
use e2e::scenario::{COMPETITOR_KEY, scenario};
use e2e::wait::{Poll, until};
use futures::StreamExt;
use operator::gateway::client::{TenantIdentity, rest_client};
use operator::gateway::hostile::{Answer, Hostile};
use operator::gateway::{GatewayLimits, ServerIdentity};
use prost::Message;

const SEND_MANIFEST: &str = "/akash.provider.lease.v1.LeaseRPC/SendManifest";
const DAY: Duration = Duration::from_secs(86_400);

fn identity_of(pair: &CertificateKeyPair) -> TenantIdentity {
    TenantIdentity {
        cert_pem: pair.cert_pem.clone(),
        key_pem: pair.key_pem().to_owned(),
    }
}

/// A well-formed Akash certificate of an account the chain holds no certificate for.
fn stranger() -> TenantIdentity {
    let address = chain_client::keys::Key::random("akash")
        .expect("key")
        .address()
        .to_string();
    identity_of(&generate(&address, &CertificateRole::Client, DAY).expect("certificate"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stranger_cannot_make_the_gateway_read_or_decode_a_manifest() -> anyhow::Result<()> {
    let s = scenario("attack-decode", &[("host", "akash")], vec![]).await?;
    let grpc = s.provider.gateway_grpc_addr.parse()?;
    let rest = s.provider.gateway_rest_addr.parse()?;
    let stranger = stranger();
    // Not protobuf: decoded, it would be answered with a decoding error.
    let garbage = vec![0xff; 1 << 20];
    for who in [None, Some(&stranger)] {
        let status = raw_grpc_call(grpc, who, SEND_MANIFEST, garbage.clone())
            .await?
            .expect_err("refused");
        assert_eq!(status.code(), tonic::Code::Unauthenticated, "{status:?}");
        // A body announced but never sent: a gateway that wanted it would say 100 Continue.
        let line =
            status_line_of_a_waiting_put(rest, who, "/deployment/1/manifest", 4 << 20).await?;
        assert!(line.starts_with("HTTP/1.1 401"), "{line}");
    }

    // A tenant the chain knows, with more services than a group may hold: refused on the
    // protobuf, naming the list, before it is decoded.
    let tenant = certificate(&s.tenant).await?;
    let request = SendManifestRequest {
        lease_id: Some(LeaseId {
            owner: s.tenant.address().to_owned(),
            dseq: unique_dseq(11),
            gseq: 1,
            oseq: 1,
            provider: s.provider_address(),
            bseq: 0,
        }),
        manifest: vec![mv::Group {
            name: "dc".into(),
            services: vec![
                mv::Service {
                    name: "s".into(),
                    ..Default::default()
                };
                300
            ],
        }],
    };
    let status = raw_grpc_call(grpc, Some(&tenant), SEND_MANIFEST, request.encode_to_vec())
        .await?
        .expect_err("refused");
    assert_eq!(status.code(), tonic::Code::InvalidArgument, "{status:?}");
    assert_eq!(
        status.message(),
        "manifest[0].services: more than 256 entries"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_source_holding_idle_connections_and_stalled_handshakes_does_not_keep_a_tenant_out()
-> anyhow::Result<()> {
    let s = scenario("attack-exhaust", &[("host", "akash")], vec![]).await?;
    let dseq = unique_dseq(12);
    leased(&s, dseq).await?;
    let identity = certificate(&s.tenant).await?;
    let http = rest_client(&s.tenant, &s.provider_address(), &identity).await?;
    let rest = s.provider.gateway_rest_addr.parse()?;

    // From 127.0.0.2: 1,024 connections that complete TLS and say nothing, then 256 that never
    // begin their handshake (a saturated gateway may not even let them connect).
    let config = tls_trusting_any_server(None, b"http/1.1");
    let idle: Vec<_> = futures::stream::iter(0..1024)
        .map(|_| {
            let config = config.clone();
            async move {
                tls_over(config, connect_from(ATTACKER, rest).await.ok()?)
                    .await
                    .ok()
            }
        })
        .buffer_unordered(64)
        .filter_map(std::future::ready)
        .collect()
        .await;
    let stalled: Vec<_> = futures::future::join_all((0..256).map(|_| connect_from(ATTACKER, rest)))
        .await
        .into_iter()
        .filter_map(Result::ok)
        .collect();

    // The tenant, from 127.0.0.1, delivers its manifest meanwhile.
    let sdl = e2e::tenant::testdata_sdl("openspeedtest.yaml")?;
    let url = format!("https://{rest}/deployment/{dseq}/manifest");
    let response = http.put(&url).body(sdl.manifest_json()).send().await?;
    let status = response.status();
    assert!(status.is_success(), "{status}: {}", response.text().await?);
    let per_source = GatewayLimits::default().max_connections_per_source;
    assert!(
        idle.len() <= per_source,
        "one source completed {} handshakes",
        idle.len()
    );
    drop((idle, stalled));
    market::close_deployment(&s.tenant, dseq).await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_certificate_revoked_on_chain_is_refused_from_the_next_block() -> anyhow::Result<()> {
    // Trusted for an hour once found valid: only the revocation can end it within the test.
    let ttl = ["--gateway-cert-cache-ttl", "1h"]
        .map(String::from)
        .to_vec();
    let s = scenario("attack-revoked", &[("host", "akash")], ttl).await?;
    let owner = s.tenant.address().to_owned();
    let pair = generate(&owner, &CertificateRole::Client, DAY)?;
    s.tenant
        .broadcast(vec![chain_client::to_any(&pair.create_msg(&owner))])
        .await?;
    let http = rest_client(&s.tenant, &s.provider_address(), &identity_of(&pair)).await?;
    // No such lease: 404 to the authenticated owner, 401 to anyone else.
    let url = format!(
        "https://{}/lease/{}/1/1/status",
        s.provider.gateway_rest_addr,
        unique_dseq(13)
    );
    let status = || async { anyhow::Ok(http.get(&url).send().await?.status().as_u16()) };
    assert_eq!(status().await?, 404, "authenticated, and cached");

    s.tenant
        .broadcast(vec![chain_client::to_any(&chain_client::cert::revoke_msg(
            &owner,
            &pair.serial,
        ))])
        .await
        .context("MsgRevokeCertificate")?;
    until(
        "the revoked certificate refused",
        Duration::from_secs(60),
        || async {
            Ok(match status().await? {
                401 => Poll::Ready(()),
                other => Poll::Pending(format!("answered {other}")),
            })
        },
    )
    .await
}

/// Two groups: `dc1` for the provider under test, `dc2` only a provider with `site: hostile`
/// bids on.
fn two_group_sdl() -> anyhow::Result<crds::sdl::Sdl> {
    let mut text = String::from("version: \"2.0\"\nservices:\n");
    for i in [1, 2] {
        text.push_str(&format!(
            "  web{i}:\n    image: nginx:1.27\n    expose:\n      - port: 80\n        as: 80\n        to:\n          - global: true\n"
        ));
    }
    text.push_str("profiles:\n  compute:\n");
    for i in [1, 2] {
        text.push_str(&format!(
            "    web{i}:\n      resources:\n        cpu:\n          units: 0.1\n        memory:\n          size: 64Mi\n        storage:\n          size: 64Mi\n"
        ));
    }
    text.push_str(
        "  placement:\n    dc1:\n      attributes:\n        host: akash\n      pricing:\n        web1:\n          denom: uact\n          amount: 10000\n    dc2:\n      attributes:\n        site: hostile\n      pricing:\n        web2:\n          denom: uact\n          amount: 10000\n",
    );
    text.push_str("deployment:\n  web1:\n    dc1:\n      profile: web1\n      count: 1\n  web2:\n    dc2:\n      profile: web2\n      count: 1\n");
    crds::sdl::Sdl::parse(&text).map_err(|e| anyhow::anyhow!("{e}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hostile_peer_cannot_flood_or_redirect_the_manifest_fetcher() -> anyhow::Result<()> {
    let fast = ["--peer-fetch-interval", "300ms"]
        .map(String::from)
        .to_vec();
    let s = scenario("attack-peer", &[("host", "akash")], fast).await?;
    let me = s.provider_address();
    let owner = s.tenant.address().to_owned();
    let dseq = unique_dseq(14);
    let d = &s.devnet_ref;
    let peer = e2e::tenant::client_for(
        &d.chain_id,
        &d.rpc_url,
        &d.grpc_url,
        e2e::devnet::TEST_MNEMONICS[COMPETITOR_KEY],
    )?;
    let hostile_address = peer.address().to_owned();

    // The hostile provider: its certificate on chain, a gateway that presents it and answers the
    // manifest request as `mode` says.
    let server = generate(
        &hostile_address,
        &CertificateRole::Server {
            dns_names: vec!["localhost".into(), "127.0.0.1".into()],
        },
        DAY,
    )?;
    peer.broadcast(vec![chain_client::to_any(
        &server.create_msg(&hostile_address),
    )])
    .await?;
    let manifest_path = format!("/deployment/{owner}/{dseq}/manifest");
    let mode = Arc::new(Mutex::new(Answer::Redirect {
        location: "/elsewhere".into(),
    }));
    let hostile = {
        let (mode, manifest_path) = (mode.clone(), manifest_path.clone());
        Hostile::start(
            &ServerIdentity {
                cert_pem: server.cert_pem.clone(),
                key_pem: server.key_pem().to_owned(),
            },
            move |path| {
                if path == manifest_path {
                    mode.lock().unwrap().clone()
                } else {
                    Answer::Body("[]".into())
                }
            },
        )
        .await
    };
    let attributes = vec![chain_client::akash::base::attributes::v1::Attribute {
        key: "site".into(),
        value: "hostile".into(),
    }];
    peer.broadcast(vec![chain_client::to_any(&MsgCreateProvider {
        owner: hostile_address.clone(),
        host_uri: hostile.uri(),
        attributes,
        info: None,
    })])
    .await?;

    // One deployment, a lease with each: the provider under test has no manifest and asks its
    // only other lease holder, the hostile one.
    e2e::tenant::create_deployment(&s.tenant, &two_group_sdl()?, dseq).await?;
    market::wait_bid_phase(&s.bids(), &object_name(&owner, dseq), BidPhase::Open).await?;
    let bid = BidId {
        owner: owner.clone(),
        dseq,
        gseq: 2,
        oseq: 1,
        provider: hostile_address.clone(),
        bseq: 0,
    };
    peer.broadcast(vec![chain_client::to_any(&MsgCreateBid {
        id: Some(bid.clone()),
        price: Some(chain_client::dec::dec_coin("uact", "1000")?),
        deposit: Some(chain_client::akash::base::deposit::v1::Deposit {
            amount: Some(cosmos_sdk_proto::cosmos::base::v1beta1::Coin {
                denom: "uact".into(),
                amount: "500000".into(),
            }),
            sources: vec![chain_client::akash::base::deposit::v1::Source::Balance as i32],
        }),
        resources_offer: vec![],
        reclamation_window: None,
    })])
    .await?;
    market::lease(&s.tenant, dseq, &me).await?;
    s.tenant
        .broadcast(vec![chain_client::to_any(&MsgCreateLease {
            bid_id: Some(bid),
        })])
        .await?;
    market::wait_lease(&s.leases(), &object_name(&owner, dseq)).await?;

    let asked_for_manifest = |hostile: &Hostile| {
        hostile
            .asked()
            .iter()
            .filter(|p| **p == manifest_path)
            .count()
    };
    let asked_again = |hostile: &Hostile, times: usize| {
        let n = asked_for_manifest(hostile);
        async move {
            Ok(if n >= times {
                Poll::Ready(())
            } else {
                Poll::Pending(format!("asked {n} times"))
            })
        }
    };

    // A redirect: asked twice, never followed.
    until("the fetcher asking twice", Duration::from_secs(60), || {
        asked_again(&hostile, 2)
    })
    .await?;
    assert!(
        !hostile.asked().iter().any(|p| p == "/elsewhere"),
        "the fetcher followed the redirect: {:?}",
        hostile.asked()
    );

    // A flood: the fetcher stops reading at its limit (4 MiB), each time.
    *mode.lock().unwrap() = Answer::Flood {
        status: 200,
        bytes: 64 << 20,
    };
    let floods_from = hostile.asked().len();
    let before = asked_for_manifest(&hostile);
    until(
        "the fetcher asking twice more",
        Duration::from_secs(60),
        || asked_again(&hostile, before + 2),
    )
    .await?;
    // The first flood is over: the fetcher asked again after it.
    let flooded = hostile.sent_per_answer()[floods_from];
    assert!(
        flooded < 32 << 20,
        "the fetcher read {flooded} bytes of one answer"
    );

    // A plain http host URI cannot be tried here: the chain refuses one in MsgCreateProvider and
    // MsgUpdateProvider ("scheme ... should be https"), as Akash's does. The fetcher refuses it
    // too (gateway/peer/hostile_tests.rs), for a chain that let one through.
    market::close_deployment(&s.tenant, dseq).await?;
    Ok(())
}
