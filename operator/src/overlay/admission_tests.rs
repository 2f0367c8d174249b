//! The serving side's admission against a fake chain: who may use an admitted pair.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use chain_client::akash::cert::v1::{Certificate, CertificateResponse, State};
use chain_client::fake::FakeChain;

use super::admission::{Admitted, ChainAuthorizer};
use super::peers::Peers;
use super::server::Authorizer;
use super::tests::{Provider, request};
use super::wire::TunnelRequest;

struct Setup {
    authorizer: ChainAuthorizer,
    caller: Provider,
    stranger: Provider,
    req: TunnelRequest,
    refusals: Arc<AtomicUsize>,
}

/// The caller (holding the calling group) and a stranger, both with valid certificates on chain;
/// the pair web → db admitted for the caller.
fn setup() -> Setup {
    let (caller, stranger) = (Provider::new(), Provider::new());
    let chain = FakeChain::new(&Provider::new().address);
    for p in [&caller, &stranger] {
        chain.state().certificates.push(CertificateResponse {
            certificate: Some(Certificate {
                state: State::Valid as i32,
                cert: p.pair.cert_pem.clone().into_bytes(),
                pubkey: Vec::new(),
            }),
            serial: p.pair.serial.clone(),
        });
    }
    let refusals = Arc::new(AtomicUsize::new(0));
    let counted = refusals.clone();
    let authorizer = ChainAuthorizer::new(Arc::new(Peers::new(Arc::new(chain), 8445)), move |_| {
        counted.fetch_add(1, Ordering::SeqCst);
    });
    let req = request(&super::tests::address());
    authorizer.admit(Admitted {
        request: req.clone(),
        peer_provider: caller.address.clone(),
        target: "127.0.0.1:5432".into(),
        tunnel_key: "tun-42".into(),
    });
    Setup {
        authorizer,
        caller,
        stranger,
        req,
        refusals,
    }
}

fn chain_of(p: &Provider, req: &TunnelRequest) -> Vec<Vec<u8>> {
    p.issue(&req.client_claim()).chain_der
}

#[tokio::test]
async fn the_lease_holder_with_a_chained_certificate_for_the_pair_gets_the_target() {
    let s = setup();
    let target = s
        .authorizer
        .authorize(&chain_of(&s.caller, &s.req), &s.req)
        .await
        .expect("admitted");
    assert_eq!(
        (target.target.as_str(), target.tunnel_key.as_str()),
        ("127.0.0.1:5432", "tun-42")
    );
    let seen = s.authorizer.seen(&s.req);
    assert!(seen.last_ok.is_some() && seen.peer_sha256.is_some());
    // A probe of the same pair is the same pair.
    let probe = TunnelRequest {
        probe: true,
        ..s.req.clone()
    };
    assert!(
        s.authorizer
            .authorize(&chain_of(&s.caller, &s.req), &probe)
            .await
            .is_ok()
    );
    assert_eq!(s.refusals.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn a_stranger_with_a_valid_certificate_is_refused_as_no_lease_holder() {
    let s = setup();
    let refused = s
        .authorizer
        .authorize(&chain_of(&s.stranger, &s.req), &s.req)
        .await
        .expect_err("refused");
    assert!(
        refused.reason.contains("does not hold the lease"),
        "{refused:?}"
    );
    assert_eq!(s.refusals.load(Ordering::SeqCst), 1);
    assert_eq!(s.authorizer.seen(&s.req).refusals, 1);
}

#[tokio::test]
async fn a_certificate_for_another_pair_is_refused() {
    let s = setup();
    let other = TunnelRequest {
        from_service: "admin".into(),
        ..s.req.clone()
    };
    let refused = s
        .authorizer
        .authorize(&chain_of(&s.caller, &other), &s.req)
        .await
        .expect_err("refused");
    assert!(
        refused.reason.contains("not this connection"),
        "{refused:?}"
    );
}

#[tokio::test]
async fn pairs_not_admitted_or_revoked_are_refused() {
    let s = setup();
    let other = TunnelRequest {
        port: 6379,
        ..s.req.clone()
    };
    let refused = s
        .authorizer
        .authorize(&chain_of(&s.caller, &other), &other)
        .await
        .expect_err("refused");
    assert!(
        refused.reason.contains("serves no such connection"),
        "{refused:?}"
    );
    s.authorizer.revoke(&s.req);
    assert!(
        s.authorizer
            .authorize(&chain_of(&s.caller, &s.req), &s.req)
            .await
            .is_err()
    );
}

#[test]
fn through_wireguard_only_the_pairs_peer_provider_is_let_in() {
    let s = setup();
    assert!(
        s.authorizer
            .authorize_peer(&s.caller.address, &s.req)
            .is_ok()
    );
    let refused = s
        .authorizer
        .authorize_peer(&s.stranger.address, &s.req)
        .expect_err("refused");
    assert!(
        refused.reason.contains("does not hold the lease"),
        "{refused:?}"
    );
}
