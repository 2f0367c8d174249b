//! The tenant's gateway client against a provider that answers with floods and redirects, or
//! registered a plain http host URI.

use std::sync::Arc;
use std::time::Duration;

use chain_client::akash::cert::v1::{Certificate, CertificateResponse, State};
use chain_client::cert::{CertificateKeyPair, CertificateRole, generate};
use chain_client::fake::FakeChain;

use super::*;
use crate::gateway::ServerIdentity;
use crate::gateway::hostile::{Answer, Hostile, PlainListener};

const STATUS_PATH: &str = "/lease/7/1/1/status";
/// Far more than a client should read of anything.
const FLOOD: usize = 64 << 20;
/// What a client that stops at its cap lets the server hand over at most (the cap, the socket
/// buffers of both sides and TLS records).
const STOPPED_EARLY: usize = 32 << 20;

fn address() -> String {
    chain_client::keys::Key::random("akash")
        .expect("key")
        .address()
        .to_string()
}

struct Provider {
    address: String,
    identity: ServerIdentity,
    gateway: MtlsGateway,
    chain: FakeChain,
    tenant: TenantIdentity,
}

/// A provider whose certificate is on chain, and a tenant's client for it.
fn provider() -> Provider {
    let address = address();
    let year = Duration::from_secs(365 * 24 * 3600);
    let server: CertificateKeyPair = generate(
        &address,
        &CertificateRole::Server {
            dns_names: vec!["localhost".into(), "127.0.0.1".into()],
        },
        year,
    )
    .expect("provider certificate");
    let chain = FakeChain::new(&address);
    chain.state().certificates.push(CertificateResponse {
        certificate: Some(Certificate {
            state: State::Valid as i32,
            cert: server.cert_pem.clone().into_bytes(),
            pubkey: server.pubkey_pem.clone().into_bytes(),
        }),
        serial: server.serial.clone(),
    });
    let tenant = generate(&self::address(), &CertificateRole::Client, year).expect("tenant");
    let tenant = TenantIdentity {
        cert_pem: tenant.cert_pem.clone(),
        key_pem: tenant.key_pem().to_owned(),
    };
    Provider {
        address,
        identity: ServerIdentity {
            cert_pem: server.cert_pem.clone(),
            key_pem: server.key_pem().to_owned(),
        },
        gateway: MtlsGateway::new(
            Arc::new(chain.clone()),
            TenantIdentity {
                cert_pem: tenant.cert_pem.clone(),
                key_pem: tenant.key_pem.clone(),
            },
        ),
        chain,
        tenant,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flooding_provider_is_read_no_further_than_the_cap() {
    let p = provider();
    let hostile = Hostile::start(&p.identity, |path| match path {
        STATUS_PATH => Answer::Flood {
            status: 200,
            bytes: FLOOD,
        },
        _ => Answer::Flood {
            status: 500,
            bytes: FLOOD,
        },
    })
    .await;
    let status = p
        .gateway
        .lease_status(&p.address, &hostile.uri(), (7, 1, 1))
        .await
        .expect_err("a flood is no lease status");
    assert!(status.to_string().contains("larger than"), "{status}");
    let sent_for_status = hostile.sent();
    assert!(
        sent_for_status < STOPPED_EARLY,
        "the client read {sent_for_status} bytes of a lease status"
    );

    // An error answer's body is read no further either.
    let refused = p
        .gateway
        .send_manifest(&p.address, &hostile.uri(), 7, "[]")
        .await
        .expect_err("refused");
    assert!(
        matches!(refused, DeliveryError::Refused { status: 500, .. }),
        "{refused}"
    );
    let sent_for_error = hostile.sent() - sent_for_status;
    assert!(
        sent_for_error < STOPPED_EARLY,
        "the client read {sent_for_error} bytes of an error"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_provider_redirect_is_not_followed() {
    let p = provider();
    let hostile = Hostile::start(&p.identity, |path| match path {
        STATUS_PATH => Answer::Redirect {
            location: "/elsewhere".into(),
        },
        _ => Answer::Body(r#"{"services":{}}"#.into()),
    })
    .await;
    let refused = p
        .gateway
        .lease_status(&p.address, &hostile.uri(), (7, 1, 1))
        .await
        .expect_err("a redirect is no answer");
    assert!(
        matches!(refused, DeliveryError::Refused { status: 307, .. }),
        "{refused}"
    );
    assert_eq!(
        hostile.asked(),
        [STATUS_PATH],
        "only the gateway's own path"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plain_http_host_uri_is_refused_without_connecting() {
    let p = provider();
    let plain = PlainListener::start();
    let refused = p
        .gateway
        .send_manifest(&p.address, &plain.http_uri(), 7, "[]")
        .await
        .expect_err("http is refused");
    assert!(refused.to_string().contains("not https"), "{refused}");
    assert!(!plain.connected(), "nothing connected to the http address");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_provider_certificate_revoked_on_chain_is_trusted_no_longer_than_a_client_lives() {
    let p = provider();
    // Whoever holds the provider's key (leaked, then revoked) answers as the provider.
    let impostor = Hostile::start(&p.identity, |_| {
        Answer::Body(r#"{"services":{},"forwarded_ports":{}}"#.into())
    })
    .await;
    // Clients are made again at every call.
    let gateway =
        MtlsGateway::with_client_lifetime(Arc::new(p.chain.clone()), p.tenant, Duration::ZERO);
    gateway
        .lease_status(&p.address, &impostor.uri(), (7, 1, 1))
        .await
        .expect("trusted while valid on chain");
    p.chain.state().certificates[0]
        .certificate
        .as_mut()
        .unwrap()
        .state = State::Revoked as i32;
    let refused = gateway
        .lease_status(&p.address, &impostor.uri(), (7, 1, 1))
        .await
        .expect_err("revoked on chain");
    assert!(
        matches!(refused, DeliveryError::Unreachable { .. }),
        "{refused}"
    );
    assert_eq!(CLIENT_LIFETIME, Duration::from_secs(60));
}
