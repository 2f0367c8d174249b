//! TLS 1.3 for the gateway (rustls on ring): the provider's certificate as the server's, and
//! client certificates requested but optional at the handshake.
//!
//! The chain is the trust root of Akash certificates, so the handshake accepts any well-formed,
//! correctly self-signed client certificate (and checks that the client holds its key: the
//! handshake signature is verified); whether the chain holds it as valid is checked per request
//! (see [`super::auth`]), as the Go provider does.

use std::sync::Arc;

use rustls::crypto::{CryptoProvider, WebPkiSupportedAlgorithms};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::danger::ClientCertVerifier;
use tokio::sync::watch;
use x509_parser::prelude::{FromDer, X509Certificate};

/// The provider's certificate and key, PEM (as the Secret `akash-provider-certificate` holds them
/// in `tls.crt` and `tls.key`).
#[derive(Clone)]
pub struct ServerIdentity {
    pub cert_pem: String,
    pub key_pem: String,
}

impl std::fmt::Debug for ServerIdentity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerIdentity")
            .field("key_pem", &"[redacted]")
            .finish_non_exhaustive()
    }
}

/// The handshake-signature methods of a rustls certificate verifier (client or server side),
/// checked with `self.algorithms` (a [`WebPkiSupportedAlgorithms`]): every verifier of ours checks
/// the certificates its own way but the handshake signatures the same way.
#[macro_export]
macro_rules! handshake_signature_checks {
    () => {
        fn verify_tls12_signature(
            &self,
            message: &[u8],
            cert: &rustls::pki_types::CertificateDer<'_>,
            dss: &rustls::DigitallySignedStruct,
        ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
            rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algorithms)
        }

        fn verify_tls13_signature(
            &self,
            message: &[u8],
            cert: &rustls::pki_types::CertificateDer<'_>,
            dss: &rustls::DigitallySignedStruct,
        ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
            rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
        }

        fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
            self.algorithms.supported_schemes()
        }
    };
}

/// The methods of a rustls [`ClientCertVerifier`]: a client certificate asked for (required if
/// `mandatory`), no CA hints, the chain checked by `check` (a function of the end entity and the
/// intermediates), and the handshake signatures as [`handshake_signature_checks`] does. Our
/// client verifiers differ only in those two.
macro_rules! client_cert_checks {
    (mandatory: $mandatory:expr, $check:path) => {
        fn offer_client_auth(&self) -> bool {
            true
        }

        fn client_auth_mandatory(&self) -> bool {
            $mandatory
        }

        fn root_hint_subjects(&self) -> &[rustls::DistinguishedName] {
            &[]
        }

        fn verify_client_cert(
            &self,
            end_entity: &rustls::pki_types::CertificateDer<'_>,
            intermediates: &[rustls::pki_types::CertificateDer<'_>],
            _now: rustls::pki_types::UnixTime,
        ) -> Result<rustls::server::danger::ClientCertVerified, rustls::Error> {
            $check(end_entity, intermediates)?;
            Ok(rustls::server::danger::ClientCertVerified::assertion())
        }

        $crate::handshake_signature_checks!();
    };
}
pub(crate) use client_cert_checks;

/// The ring provider, the only crypto backend in this process.
pub fn crypto() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// A server configuration: TLS 1.3 only, this identity, optional self-signed client certificates,
/// and these ALPN protocols.
pub(crate) fn server_config(
    identity: &ServerIdentity,
    alpn: &[&[u8]],
) -> anyhow::Result<rustls::ServerConfig> {
    let certs: Vec<CertificateDer<'static>> =
        CertificateDer::pem_slice_iter(identity.cert_pem.as_bytes())
            .collect::<Result<_, _>>()
            .map_err(|e| anyhow::anyhow!("the provider certificate is not PEM: {e}"))?;
    if certs.is_empty() {
        anyhow::bail!("the provider certificate PEM holds no CERTIFICATE");
    }
    let key = PrivateKeyDer::from_pem_slice(identity.key_pem.as_bytes())
        .map_err(|e| anyhow::anyhow!("the provider key is not a PEM private key: {e}"))?;
    let provider = crypto();
    let verifier = Arc::new(SelfSignedClients::new(&provider));
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])?
        .with_client_cert_verifier(verifier)
        .with_single_cert(certs, key)
        .map_err(|e| anyhow::anyhow!("the provider certificate and key do not fit: {e}"))?;
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    Ok(config)
}

/// Accepts, at the handshake, a client certificate that is well-formed and self-signed.
#[derive(Debug)]
pub struct SelfSignedClients {
    algorithms: WebPkiSupportedAlgorithms,
}

impl SelfSignedClients {
    pub fn new(provider: &CryptoProvider) -> Self {
        Self {
            algorithms: provider.signature_verification_algorithms,
        }
    }
}

impl ClientCertVerifier for SelfSignedClients {
    client_cert_checks!(mandatory: false, check_self_signed);
}

/// Checks that a presented chain is one self-signed certificate, as an Akash client sends.
fn check_self_signed(
    end_entity: &CertificateDer<'_>,
    intermediates: &[CertificateDer<'_>],
) -> Result<(), rustls::Error> {
    if !intermediates.is_empty() {
        return Err(rustls::Error::General(format!(
            "the client sent {} certificates; an Akash client sends exactly one",
            intermediates.len() + 1
        )));
    }
    let (_, cert) = X509Certificate::from_der(end_entity.as_ref())
        .map_err(|_| rustls::Error::InvalidCertificate(rustls::CertificateError::BadEncoding))?;
    if cert.issuer().as_raw() != cert.subject().as_raw() {
        return Err(rustls::Error::InvalidCertificate(
            rustls::CertificateError::UnknownIssuer,
        ));
    }
    cert.verify_signature(None)
        .map_err(|_| rustls::Error::InvalidCertificate(rustls::CertificateError::BadSignature))?;
    Ok(())
}

/// Resolves once `shutdown` is true (or its sender is gone).
pub(crate) async fn stopped(shutdown: &mut watch::Receiver<bool>) {
    while !*shutdown.borrow_and_update() {
        if shutdown.changed().await.is_err() {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use chain_client::cert::{CertificateRole, generate};
    use rustls::pki_types::UnixTime;

    fn der(pem: &str) -> CertificateDer<'static> {
        CertificateDer::from_pem_slice(pem.as_bytes()).expect("PEM")
    }

    #[test]
    fn a_self_signed_akash_certificate_passes_the_handshake_check_and_a_tampered_one_does_not() {
        let owner = chain_client::keys::Key::random("akash")
            .expect("key")
            .address()
            .to_string();
        let pair = generate(&owner, &CertificateRole::Client, Duration::from_secs(3600))
            .expect("certificate");
        let verifier = SelfSignedClients::new(&crypto());
        let good = der(&pair.cert_pem);
        verifier
            .verify_client_cert(&good, &[], UnixTime::now())
            .expect("self-signed is accepted at the handshake");

        let mut bytes = good.as_ref().to_vec();
        let last = bytes.len() - 1;
        bytes[last] ^= 0x01;
        let tampered = CertificateDer::from(bytes);
        assert!(
            verifier
                .verify_client_cert(&tampered, &[], UnixTime::now())
                .is_err()
        );
        assert!(
            verifier
                .verify_client_cert(&good, std::slice::from_ref(&good), UnixTime::now())
                .is_err(),
            "a chain of two is refused"
        );
        assert!(!verifier.client_auth_mandatory());
        assert!(verifier.offer_client_auth());
    }

    #[test]
    fn the_server_speaks_tls13_only_with_the_given_alpn() {
        let owner = chain_client::keys::Key::random("akash")
            .expect("key")
            .address()
            .to_string();
        let pair = generate(
            &owner,
            &CertificateRole::Server {
                dns_names: vec!["localhost".into()],
            },
            Duration::from_secs(3600),
        )
        .expect("certificate");
        let config = server_config(
            &ServerIdentity {
                cert_pem: pair.cert_pem.clone(),
                key_pem: pair.key_pem().to_owned(),
            },
            &[b"h2"],
        )
        .expect("config");
        assert_eq!(config.alpn_protocols, vec![b"h2".to_vec()]);
        assert!(
            server_config(
                &ServerIdentity {
                    cert_pem: "nonsense".into(),
                    key_pem: pair.key_pem().to_owned(),
                },
                &[],
            )
            .is_err()
        );
    }
}
