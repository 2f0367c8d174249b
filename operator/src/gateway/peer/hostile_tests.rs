//! Asking a peer for a manifest when the peer floods, redirects, or registered a plain http
//! host URI.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use chain_client::akash::cert::v1::{Certificate, CertificateResponse, State};
use chain_client::akash::provider::v1beta4::Provider;
use chain_client::cert::{CertificateKeyPair, CertificateRole, generate};
use chain_client::fake::FakeChain;

use super::*;
use crate::gateway::hostile::{Answer, Hostile, PlainListener};
use crate::gateway::{GatewayConfig, MemoryLeaseSource, ServerIdentity, auth};

const OWNER: &str = "akash1tenant";
const DSEQ: u64 = 7;
const LIMIT: usize = 1 << 20;
/// Far more than a client should read of anything.
const FLOOD: usize = 64 << 20;
/// What a client that stops at its cap lets the server hand over at most.
const STOPPED_EARLY: usize = 32 << 20;

fn address() -> String {
    chain_client::keys::Key::random("akash")
        .expect("key")
        .address()
        .to_string()
}

fn certificate(owner: &str, role: CertificateRole) -> CertificateKeyPair {
    generate(owner, &role, Duration::from_secs(365 * 24 * 3600)).expect("certificate")
}

struct World {
    gateway: Gateway,
    identity: TenantIdentity,
    chain: FakeChain,
    peer: String,
    peer_identity: ServerIdentity,
}

/// This provider, and a peer whose certificate is on chain (its host URI set by [`World::at`]).
fn world() -> World {
    let me = address();
    let peer = address();
    let server = certificate(
        &peer,
        CertificateRole::Server {
            dns_names: vec!["localhost".into(), "127.0.0.1".into()],
        },
    );
    let chain = FakeChain::new(&me);
    chain.state().certificates.push(CertificateResponse {
        certificate: Some(Certificate {
            state: State::Valid as i32,
            cert: server.cert_pem.clone().into_bytes(),
            pubkey: server.pubkey_pem.clone().into_bytes(),
        }),
        serial: server.serial.clone(),
    });
    let mine = certificate(&me, CertificateRole::Client);
    let limits = crate::gateway::GatewayLimits::default();
    let gateway = Gateway {
        config: GatewayConfig {
            rest_addr: "127.0.0.1:0".parse().unwrap(),
            grpc_addr: "127.0.0.1:0".parse().unwrap(),
            max_manifest_bytes: LIMIT,
            provider_address: me,
            namespace: "akash-provider".into(),
            peer_serve_limit: 4,
            peer_fetch: None,
            hostnames: Default::default(),
            limits: limits.clone(),
            cluster_public_hostname: "localhost".into(),
        },
        chain: Arc::new(chain.clone()),
        leases: Arc::new(MemoryLeaseSource::default()),
        auth: auth::Authenticator::new(
            Arc::new(chain.clone()),
            limits.cert_cache_ttl,
            limits.cert_refusal_ttl,
        ),
        tokens: crate::gateway::jwt::TokenVerifier::new(
            Arc::new(chain.clone()),
            "akash",
            limits.cert_refusal_ttl,
        ),
        serve_limit: ServeLimit::new(4),
        reserving: tokio::sync::Mutex::new(()),
        pod_logs: None,
        lease_events: None,
        pod_exec: None,
        status: None,
        stopping: tokio::sync::watch::channel(false).1,
    };
    World {
        gateway,
        identity: TenantIdentity {
            cert_pem: mine.cert_pem.clone(),
            key_pem: mine.key_pem().to_owned(),
        },
        chain,
        peer,
        peer_identity: ServerIdentity {
            cert_pem: server.cert_pem.clone(),
            key_pem: server.key_pem().to_owned(),
        },
    }
}

impl World {
    /// The peer registered on chain with `host_uri`.
    fn at(&self, host_uri: &str) {
        self.chain.state().providers = vec![Provider {
            owner: self.peer.clone(),
            host_uri: host_uri.to_owned(),
            attributes: vec![],
            info: None,
        }];
    }

    async fn ask(&self) -> Result<Vec<u8>, String> {
        ask(
            &self.gateway,
            &self.identity,
            &mut HashMap::new(),
            &self.peer,
            OWNER,
            DSEQ,
        )
        .await
    }
}

fn manifest_path() -> String {
    format!("/deployment/{OWNER}/{DSEQ}/manifest")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flooding_peer_is_read_no_further_than_the_manifest_limit() {
    let w = world();
    let ok = manifest_path();
    let hostile = Hostile::start(&w.peer_identity, move |path| Answer::Flood {
        status: if path == ok { 200 } else { 404 },
        bytes: FLOOD,
    })
    .await;
    w.at(&hostile.uri());
    let e = w.ask().await.expect_err("a flood is no manifest");
    assert!(e.contains(&format!("larger than {LIMIT} bytes")), "{e}");
    let sent = hostile.sent();
    assert!(sent < STOPPED_EARLY, "the fetcher read {sent} bytes");

    // A refusal's body is read no further either.
    w.at(&format!("{}/elsewhere", hostile.uri()));
    let e = w.ask().await.expect_err("refused");
    assert!(e.contains("404"), "{e}");
    let sent = hostile.sent() - sent;
    assert!(
        sent < STOPPED_EARLY,
        "the fetcher read {sent} bytes of an error"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_redirect_is_not_followed() {
    let w = world();
    let ok = manifest_path();
    let hostile = Hostile::start(&w.peer_identity, move |path| {
        if path == ok {
            Answer::Redirect {
                location: "/elsewhere".into(),
            }
        } else {
            Answer::Body(r#"[{"name":"dc","services":[]}]"#.into())
        }
    })
    .await;
    w.at(&hostile.uri());
    let e = w.ask().await.expect_err("a redirect is no manifest");
    assert!(e.contains("307"), "{e}");
    assert_eq!(hostile.asked(), [manifest_path()]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_with_a_plain_http_host_uri_is_not_asked() {
    let w = world();
    let plain = PlainListener::start();
    w.at(&plain.http_uri());
    let e = w.ask().await.expect_err("http is refused");
    assert!(e.contains("not https"), "{e}");
    assert!(!plain.connected(), "nothing connected to the http address");
}
