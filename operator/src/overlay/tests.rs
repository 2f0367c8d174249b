//! The overlay data plane over real TCP and TLS on 127.0.0.1: two (or more) providers with on-chain
//! certificates, an echo target, and an authorizer that checks tunnel chains against an in-memory
//! chain plus a lease list.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, SystemTime};

use chain_client::cert::{CertificateKeyPair, CertificateRole, OnChainCertificate, generate};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

use super::counters::{StatsSnapshot, TunnelStats};
use super::server::ServerCerts;
use super::tunnel_cert::{self, claimed_provider, issue, sign_leaf, verify};
use super::wire::{self, MAX_PREAMBLE, TunnelRequest, TunnelResponse, pair_sni};
use super::*;

pub(super) const HOUR: Duration = Duration::from_secs(3600);

pub(super) struct Provider {
    pub(super) address: String,
    pub(super) pair: CertificateKeyPair,
}

impl Provider {
    pub(super) fn new() -> Self {
        let address = address();
        let pair = generate(
            &address,
            &CertificateRole::Server {
                dns_names: vec!["provider.test".into()],
            },
            HOUR,
        )
        .expect("certificate");
        Self { address, pair }
    }

    pub(super) fn on_chain(&self, valid: bool) -> OnChainCertificate {
        OnChainCertificate {
            owner: self.address.clone(),
            serial: self.pair.serial.clone(),
            valid,
            cert_pem: self.pair.cert_pem.clone().into_bytes(),
        }
    }

    pub(super) fn issue(&self, claim: &TunnelClaim) -> TunnelCert {
        issue(&self.pair.cert_pem, self.pair.key_pem(), claim, HOUR).expect("tunnel cert")
    }
}

pub(super) fn address() -> String {
    chain_client::keys::Key::random("akash")
        .expect("key")
        .address()
        .to_string()
}

pub(super) fn request(owner: &str) -> TunnelRequest {
    TunnelRequest {
        owner: owner.to_owned(),
        dseq: 42,
        from_gseq: 1,
        from_service: "web".into(),
        to_gseq: 2,
        to_service: "db".into(),
        port: 5432,
        probe: false,
        wireguard: None,
    }
}

/// A target that echoes and counts the connections it accepted.
async fn echo_target() -> (SocketAddr, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let accepted = Arc::new(AtomicUsize::new(0));
    let count = accepted.clone();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            count.fetch_add(1, Ordering::SeqCst);
            tokio::spawn(async move {
                let (mut r, mut w) = stream.split();
                let _ = tokio::io::copy(&mut r, &mut w).await;
                let _ = w.shutdown().await;
            });
        }
    });
    (addr, accepted)
}

/// Checks the chain on the in-memory chain, that the claim is the client side of the request, and
/// that the lease list lets the peer provider reach this deployment.
struct FakeAuthorizer {
    on_chain: Vec<OnChainCertificate>,
    leases: Vec<(String, u64, String)>,
    target: String,
}

#[async_trait::async_trait]
impl Authorizer for FakeAuthorizer {
    async fn authorize(
        &self,
        peer_chain: &[Vec<u8>],
        req: &TunnelRequest,
    ) -> Result<AuthorizedTarget, Refusal> {
        let refuse = |reason: String| Refusal { reason };
        claimed_provider(peer_chain).map_err(|e| refuse(e.to_string()))?;
        let peer = verify(peer_chain, &self.on_chain, SystemTime::now())
            .map_err(|e| refuse(e.to_string()))?;
        if peer.claim != req.client_claim() {
            return Err(refuse("the certificate's claim is not this request".into()));
        }
        let leased = self
            .leases
            .iter()
            .any(|(o, d, p)| *o == req.owner && *d == req.dseq && *p == peer.provider);
        if !leased {
            return Err(refuse(format!("no lease lets {} in", peer.provider)));
        }
        Ok(AuthorizedTarget {
            target: self.target.clone(),
            tunnel_key: format!("{}/{}/{}", req.owner, req.dseq, req.to_service),
            wireguard: None,
        })
    }
}

/// Provider `server` serving `req` to `target`, with `leases` and `on_chain` as the chain's state.
struct Setup {
    server_addr: SocketAddr,
    counters: Arc<Counters>,
    stop: watch::Sender<bool>,
}

async fn serve(
    server: &Provider,
    req: &TunnelRequest,
    target: SocketAddr,
    on_chain: Vec<OnChainCertificate>,
    leases: Vec<(String, u64, String)>,
) -> Setup {
    let certs = Arc::new(IssuingServerCerts::new(
        &server.pair.cert_pem,
        server.pair.key_pem(),
        HOUR,
    ));
    assert_eq!(certs.allow(req), pair_sni(req));
    let authorizer = Arc::new(FakeAuthorizer {
        on_chain,
        leases,
        target: target.to_string(),
    });
    let tunnel_server = TunnelServer::bind("127.0.0.1:0".parse().unwrap(), certs, authorizer)
        .await
        .expect("bind");
    let server_addr = tunnel_server.local_addr().expect("addr");
    let counters = tunnel_server.counters();
    let (stop, shutdown) = watch::channel(false);
    tokio::spawn(tunnel_server.run(shutdown));
    Setup {
        server_addr,
        counters,
        stop,
    }
}

fn make_client(
    setup: &Setup,
    server: &Provider,
    req: &TunnelRequest,
    cert: TunnelCert,
) -> (TunnelClient, Arc<Counters>) {
    let counters = Counters::new();
    let client = TunnelClient::new(TunnelClientConfig {
        peer: setup.server_addr.to_string(),
        request: req.clone(),
        cert,
        verifier: Arc::new(OnChainServerVerifier {
            provider: server.address.clone(),
            on_chain: vec![server.on_chain(true)],
            request: req.clone(),
        }),
        tunnel_key: "pair".into(),
        counters: counters.clone(),
    })
    .expect("client");
    (client, counters)
}

fn random_bytes(len: usize) -> Vec<u8> {
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

/// Sends `data` through a local connection to `addr` and reads until the tunnel closes.
async fn round_trip(addr: SocketAddr, data: &[u8]) -> std::io::Result<Vec<u8>> {
    let stream = TcpStream::connect(addr).await?;
    let (mut r, mut w) = stream.into_split();
    let payload = data.to_vec();
    let writer = tokio::spawn(async move {
        // The tunnel may close before everything is written (a refusal): that is not the test's error.
        let _ = w.write_all(&payload).await;
        let _ = w.shutdown().await;
    });
    let mut back = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(20), r.read_to_end(&mut back))
        .await
        .map_err(|_| std::io::Error::other("timed out"))?;
    let _ = writer.await;
    read.map(|_| back)
}

async fn settled(stats: &TunnelStats) -> StatsSnapshot {
    for _ in 0..200 {
        let s = stats.snapshot();
        if s.active == 0 {
            return s;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    stats.snapshot()
}

#[tokio::test]
async fn one_mebibyte_round_trips_byte_for_byte_and_both_sides_count_it() {
    let (a, b, tenant) = (Provider::new(), Provider::new(), address());
    let req = request(&tenant);
    let (target, accepted) = echo_target().await;
    let setup = serve(
        &a,
        &req,
        target,
        vec![a.on_chain(true), b.on_chain(true)],
        vec![(tenant.clone(), 42, b.address.clone())],
    )
    .await;
    let cert = b.issue(&req.client_claim());
    let client_leaf = super::hex(&<sha2::Sha256 as sha2::Digest>::digest(&cert.chain_der[0]));
    let (client, _) = make_client(&setup, &a, &req, cert);
    let handle = client
        .listen("127.0.0.1:0".parse().unwrap())
        .await
        .expect("listen");

    let data = random_bytes(1 << 20);
    let back = round_trip(handle.local_addr(), &data)
        .await
        .expect("round trip");
    assert_eq!(back.len(), data.len());
    assert!(back == data, "the bytes came back changed");
    assert_eq!(accepted.load(Ordering::SeqCst), 1);

    let client_stats = settled(&client.stats()).await;
    assert_eq!(
        (client_stats.sent, client_stats.received),
        (1 << 20, 1 << 20)
    );
    assert_eq!(client_stats.connections, 1);
    assert_eq!(client_stats.last_error, None);
    let key = format!("{tenant}/42/db");
    let server_stats = settled(&setup.counters.stats(&key)).await;
    assert_eq!(
        (server_stats.sent, server_stats.received),
        (1 << 20, 1 << 20)
    );
    assert_eq!(
        server_stats.last_peer_sha256.as_deref(),
        Some(client_leaf.as_str())
    );
    assert_eq!(
        server_stats.established_since, None,
        "no connection is open any more"
    );

    handle.stop().await;
    let _ = setup.stop.send(true);
}

/// Sends one payload through a client that should be refused, and checks nothing reached the target.
async fn assert_refused(
    client: &TunnelClient,
    accepted: &AtomicUsize,
    reason: &str,
) -> StatsSnapshot {
    let handle = client
        .listen("127.0.0.1:0".parse().unwrap())
        .await
        .expect("listen");
    let back = round_trip(handle.local_addr(), b"hello")
        .await
        .unwrap_or_default();
    assert!(back.is_empty(), "a refused tunnel echoed {back:?}");
    let stats = settled(&client.stats()).await;
    assert_eq!(stats.connections, 0);
    assert_eq!(stats.failures, 1);
    let error = stats.last_error.clone().unwrap_or_default();
    assert!(error.contains(reason), "{error:?} does not say {reason:?}");
    assert_eq!(
        accepted.load(Ordering::SeqCst),
        0,
        "the target saw a connection"
    );
    handle.stop().await;
    stats
}

#[tokio::test]
async fn a_provider_on_chain_but_without_a_lease_is_refused_and_nothing_reaches_the_target() {
    let (a, b, c, tenant) = (Provider::new(), Provider::new(), Provider::new(), address());
    let req = request(&tenant);
    let (target, accepted) = echo_target().await;
    let setup = serve(
        &a,
        &req,
        target,
        vec![a.on_chain(true), b.on_chain(true), c.on_chain(true)],
        vec![(tenant.clone(), 42, b.address.clone())],
    )
    .await;
    let (client, _) = make_client(&setup, &a, &req, c.issue(&req.client_claim()));
    assert_refused(
        &client,
        &accepted,
        &format!("no lease lets {} in", c.address),
    )
    .await;

    // A leased provider asking for another pair than its certificate claims is refused too.
    let mut other = req.clone();
    other.port = 6543;
    let (client, _) = make_client(&setup, &a, &req, b.issue(&other.client_claim()));
    assert_refused(&client, &accepted, "claim is not this request").await;
    let _ = setup.stop.send(true);
}

#[tokio::test]
async fn a_leaf_not_signed_by_the_on_chain_key_is_refused() {
    let (a, b, c, tenant) = (Provider::new(), Provider::new(), Provider::new(), address());
    let req = request(&tenant);
    // b's on-chain certificate as issuer, signed with c's key.
    let b_der = &b.issue(&req.client_claim()).chain_der[1];
    let c_key = rcgen::KeyPair::from_pem(c.pair.key_pem()).expect("key");
    let forged = sign_leaf(b_der, &c_key, &req.client_claim(), HOUR).expect("forged");
    let on_chain = vec![a.on_chain(true), b.on_chain(true), c.on_chain(true)];

    let err = verify(&forged.chain_der, &on_chain, SystemTime::now()).unwrap_err();
    assert!(
        matches!(err, OverlayError::BadSignature { ref provider } if *provider == b.address),
        "{err}"
    );
    assert_eq!(err.metric_label(), "bad_signature");
    let err = issue(
        &b.pair.cert_pem,
        c.pair.key_pem(),
        &req.client_claim(),
        HOUR,
    )
    .unwrap_err();
    assert!(matches!(err, OverlayError::Issue(_)), "{err}");

    let (target, accepted) = echo_target().await;
    let setup = serve(
        &a,
        &req,
        target,
        on_chain,
        vec![(tenant.clone(), 42, b.address.clone())],
    )
    .await;
    let (client, _) = make_client(&setup, &a, &req, forged);
    // The server's handshake check refuses the signature before any request.
    assert_refused(&client, &accepted, "fatal alert").await;
    let _ = setup.stop.send(true);
}

#[tokio::test]
async fn a_chain_whose_second_certificate_is_not_on_chain_or_revoked_is_refused() {
    let (a, b, d, tenant) = (Provider::new(), Provider::new(), Provider::new(), address());
    let req = request(&tenant);
    let leases = vec![
        (tenant.clone(), 42, b.address.clone()),
        (tenant.clone(), 42, d.address.clone()),
    ];
    let now = SystemTime::now();

    // Unit level: absent, revoked, and a different certificate under the same owner and serial.
    let b_cert = b.issue(&req.client_claim());
    let err = verify(&b_cert.chain_der, &[a.on_chain(true)], now).unwrap_err();
    assert_eq!(err.metric_label(), "not_on_chain", "{err}");
    let err = verify(&b_cert.chain_der, &[b.on_chain(false)], now).unwrap_err();
    assert_eq!(err.metric_label(), "not_on_chain", "{err}");
    let mut impostor = d.on_chain(true);
    impostor.owner = b.address.clone();
    impostor.serial = b.pair.serial.clone();
    let err = verify(&b_cert.chain_der, &[impostor], now).unwrap_err();
    assert!(
        err.to_string().contains("differs from the one on chain"),
        "{err}"
    );
    let ok = verify(&b_cert.chain_der, &[b.on_chain(true)], now).expect("valid");
    assert_eq!(ok.provider, b.address);
    assert_eq!(ok.provider_cert_serial, b.pair.serial);
    assert_eq!(ok.claim, req.client_claim());
    assert_eq!(
        claimed_provider(&b_cert.chain_der).unwrap(),
        (b.address.clone(), b.pair.serial.clone())
    );
    assert_eq!(
        verify(&b_cert.chain_der[..1], &[b.on_chain(true)], now)
            .unwrap_err()
            .metric_label(),
        "chain_length"
    );
    let late = now + 2 * HOUR;
    assert!(verify(&b_cert.chain_der, &[b.on_chain(true)], late).is_err());

    // Through the tunnel: d is not on chain at all, b is revoked.
    let (target, accepted) = echo_target().await;
    let setup = serve(
        &a,
        &req,
        target,
        vec![a.on_chain(true), b.on_chain(false)],
        leases,
    )
    .await;
    let (client, _) = make_client(&setup, &a, &req, d.issue(&req.client_claim()));
    assert_refused(&client, &accepted, "the chain holds no valid certificate").await;
    let (client, _) = make_client(&setup, &a, &req, b_cert);
    assert_refused(&client, &accepted, "the chain holds no valid certificate").await;
    let _ = setup.stop.send(true);
}

#[tokio::test]
async fn the_client_refuses_a_server_that_is_not_the_expected_provider() {
    let (a, b, c, tenant) = (Provider::new(), Provider::new(), Provider::new(), address());
    let req = request(&tenant);
    let (target, accepted) = echo_target().await;
    let setup = serve(
        &a,
        &req,
        target,
        vec![a.on_chain(true), b.on_chain(true)],
        vec![(tenant.clone(), 42, b.address.clone())],
    )
    .await;
    // The client expects c, and a answers.
    let (client, _) = make_client(&setup, &c, &req, b.issue(&req.client_claim()));
    let stats = assert_refused(&client, &accepted, "the chain holds no valid certificate").await;
    assert!(stats.last_error.is_some());
    let _ = setup.stop.send(true);
}

#[tokio::test]
async fn an_oversize_or_invalid_preamble_is_refused_with_a_clear_error() {
    // A frame announcing more than the limit is refused before its body is read.
    let (mut w, mut r) = tokio::io::duplex(64);
    w.write_all(&5000u32.to_be_bytes()).await.unwrap();
    let err = wire::read_frame::<_, TunnelRequest>(&mut r)
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            OverlayError::PreambleTooLarge {
                len: 5000,
                max: MAX_PREAMBLE
            }
        ),
        "{err}"
    );

    // Writing one is refused too.
    let mut big = request(&address());
    big.to_service = "x".repeat(MAX_PREAMBLE);
    let mut sink = Vec::new();
    let err = wire::write_frame(&mut sink, &big).await.unwrap_err();
    assert_eq!(err.metric_label(), "preamble_too_large");
    assert!(sink.is_empty());

    // Invalid JSON and a short body.
    let (mut w, mut r) = tokio::io::duplex(64);
    w.write_all(&3u32.to_be_bytes()).await.unwrap();
    w.write_all(b"{x}").await.unwrap();
    let err = wire::read_frame::<_, TunnelRequest>(&mut r)
        .await
        .unwrap_err();
    assert_eq!(err.metric_label(), "preamble_invalid");
    let (mut w, mut r) = tokio::io::duplex(64);
    w.write_all(&10u32.to_be_bytes()).await.unwrap();
    drop(w);
    assert!(wire::read_frame::<_, TunnelRequest>(&mut r).await.is_err());

    // Over the real server: it answers why, and dials nothing.
    let (a, b, tenant) = (Provider::new(), Provider::new(), address());
    let req = request(&tenant);
    let (target, accepted) = echo_target().await;
    let setup = serve(
        &a,
        &req,
        target,
        vec![a.on_chain(true), b.on_chain(true)],
        vec![(tenant.clone(), 42, b.address.clone())],
    )
    .await;
    let config = tls::client_config(&b.issue(&req.client_claim())).expect("config");
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let tcp = TcpStream::connect(setup.server_addr).await.unwrap();
    let name = rustls::pki_types::ServerName::try_from(pair_sni(&req)).unwrap();
    let mut tls = connector.connect(name, tcp).await.expect("handshake");
    tls.write_all(&(1u32 << 20).to_be_bytes()).await.unwrap();
    tls.flush().await.unwrap();
    let answer: TunnelResponse = wire::read_frame(&mut tls).await.expect("answer");
    assert!(!answer.ok);
    assert!(
        answer
            .error
            .unwrap_or_default()
            .contains("exceeds the limit")
    );
    assert_eq!(accepted.load(Ordering::SeqCst), 0);
    let _ = setup.stop.send(true);
}

#[test]
fn claims_round_trip_through_their_uri_and_bad_ones_are_refused() {
    let req = request(&address());
    for claim in [req.client_claim(), req.server_claim()] {
        assert_eq!(TunnelClaim::from_uri(&claim.to_uri()).unwrap(), claim);
        assert_eq!(TunnelRequest::from_claim(&claim), req);
    }
    let uri = req.client_claim().to_uri();
    for bad in [
        uri.replace("side=client", "side=both"),
        uri.replace("port=5432", "port=70000"),
        uri.replace("/web?", "/We b?"),
        uri.replace("akash1", "cosmos1"),
        format!("{uri}&port=1"),
        uri.replace("akash-tunnel://", "https://"),
    ] {
        assert!(TunnelClaim::from_uri(&bad).is_err(), "{bad} was accepted");
    }
    let mut bad = req.client_claim();
    bad.service = "a/b".into();
    assert!(tunnel_cert::issue("", "", &bad, HOUR).is_err());
}

#[test]
fn the_pair_sni_is_deterministic_and_differs_per_pair() {
    let req = request(&address());
    let sni = pair_sni(&req);
    assert_eq!(sni, pair_sni(&req.clone()));
    assert!(sni.starts_with("t-") && sni.ends_with(".overlay.akash") && sni.len() == 2 + 16 + 14);
    let mut other = req.clone();
    other.to_gseq = 3;
    assert_ne!(pair_sni(&other), sni);
    let mut other = req.clone();
    other.port = 5433;
    assert_ne!(pair_sni(&other), sni);
}

#[test]
fn the_server_certificate_is_issued_per_known_sni_and_cached() {
    let (a, tenant) = (Provider::new(), address());
    let req = request(&tenant);
    let certs = IssuingServerCerts::new(&a.pair.cert_pem, a.pair.key_pem(), HOUR);
    assert!(
        certs.cert_for(&pair_sni(&req)).is_none(),
        "an unknown pair gets nothing"
    );
    let sni = certs.allow(&req);
    let first = certs.cert_for(&sni).expect("issued");
    let again = certs.cert_for(&sni).expect("cached");
    assert!(Arc::ptr_eq(&first, &again));
    let chain: Vec<Vec<u8>> = first.cert.iter().map(|c| c.as_ref().to_vec()).collect();
    let peer = verify(&chain, &[a.on_chain(true)], SystemTime::now()).expect("valid");
    assert_eq!(peer.claim, req.server_claim());
    assert!(format!("{certs:?}").contains("redacted"));
    assert!(!format!("{:?}", a.issue(&req.client_claim())).contains("PRIVATE KEY"));
    certs.forget(&req);
    assert!(certs.cert_for(&sni).is_none());
}

#[tokio::test]
async fn an_invalid_preamble_and_an_unreachable_target_carry_their_source_error() {
    use std::error::Error as _;

    let (mut w, mut r) = tokio::io::duplex(64);
    w.write_all(&3u32.to_be_bytes()).await.unwrap();
    w.write_all(b"{x}").await.unwrap();
    let err = wire::read_frame::<_, TunnelRequest>(&mut r)
        .await
        .unwrap_err();
    let json = err.source().expect("the JSON error").to_string();
    assert_eq!(err.to_string(), format!("invalid tunnel preamble: {json}"));
    assert_eq!(err.metric_label(), "preamble_invalid");

    // Nothing listens on a port just released.
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let route = listener.local_addr().unwrap();
    drop(listener);
    let err = crate::overlay::wg_data::open(route, &request(&address()))
        .await
        .unwrap_err();
    assert!(
        matches!(err, OverlayError::Target { .. } | OverlayError::Timeout(_)),
        "{err}"
    );
    if let OverlayError::Target { .. } = &err {
        let io = err.source().expect("the connect error").to_string();
        assert_eq!(
            err.to_string(),
            format!("cannot reach the tunnel target {route}: {io}")
        );
        assert_eq!(err.metric_label(), "target");
    }
}
