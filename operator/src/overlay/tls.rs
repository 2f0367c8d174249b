//! rustls configurations of the tunnel (TLS 1.3 only, ring): both sides present `[tunnel leaf,
//! on-chain certificate]`. The handshake only checks the chain's shape and signatures (and that the
//! peer holds the leaf's key); whether the chain holds the certificate as valid and what the claim
//! allows is decided after the handshake, where it can be asked asynchronously.

use std::sync::Arc;

use rustls::client::danger::{ServerCertVerified, ServerCertVerifier};
use rustls::crypto::WebPkiSupportedAlgorithms;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::server::danger::ClientCertVerifier;
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use x509_parser::prelude::{FromDer, X509Certificate};

use super::error::OverlayError;
use super::server::ServerCerts;
use super::tunnel_cert::TunnelCert;
use crate::gateway::tls::crypto;

/// The certificates the peer presented (DER, leaf first); empty when it sent none.
pub(crate) fn peer_chain(connection: &rustls::CommonState) -> Vec<Vec<u8>> {
    connection
        .peer_certificates()
        .map(|c| c.iter().map(|c| c.as_ref().to_vec()).collect())
        .unwrap_or_default()
}

/// Checks that a presented chain is a leaf signed by a self-signed second certificate.
pub(crate) fn check_shape(
    end_entity: &CertificateDer<'_>,
    intermediates: &[CertificateDer<'_>],
) -> Result<(), rustls::Error> {
    let [root] = intermediates else {
        return Err(rustls::Error::General(format!(
            "the peer sent {} certificates; a tunnel peer sends exactly two",
            intermediates.len() + 1
        )));
    };
    let bad_encoding = || rustls::Error::InvalidCertificate(rustls::CertificateError::BadEncoding);
    let bad_signature =
        || rustls::Error::InvalidCertificate(rustls::CertificateError::BadSignature);
    let (_, leaf) = X509Certificate::from_der(end_entity.as_ref()).map_err(|_| bad_encoding())?;
    let (_, root) = X509Certificate::from_der(root.as_ref()).map_err(|_| bad_encoding())?;
    if root.issuer().as_raw() != root.subject().as_raw()
        || leaf.issuer().as_raw() != root.subject().as_raw()
    {
        return Err(rustls::Error::InvalidCertificate(
            rustls::CertificateError::UnknownIssuer,
        ));
    }
    root.verify_signature(None).map_err(|_| bad_signature())?;
    leaf.verify_signature(Some(root.public_key()))
        .map_err(|_| bad_signature())?;
    Ok(())
}

/// The server's check of client chains at the handshake (a client certificate is required).
#[derive(Debug)]
pub(crate) struct TunnelClientShape {
    algorithms: WebPkiSupportedAlgorithms,
}

impl Default for TunnelClientShape {
    fn default() -> Self {
        Self {
            algorithms: crypto().signature_verification_algorithms,
        }
    }
}

impl ClientCertVerifier for TunnelClientShape {
    crate::gateway::tls::client_cert_checks!(mandatory: true, check_shape);
}

/// The client's check of the server's chain at the handshake.
#[derive(Debug)]
pub(crate) struct TunnelServerShape {
    algorithms: WebPkiSupportedAlgorithms,
}

impl Default for TunnelServerShape {
    fn default() -> Self {
        Self {
            algorithms: crypto().signature_verification_algorithms,
        }
    }
}

impl ServerCertVerifier for TunnelServerShape {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        check_shape(end_entity, intermediates)?;
        Ok(ServerCertVerified::assertion())
    }

    crate::handshake_signature_checks!();
}

/// Picks the server certificate by the SNI the client sent.
struct BySni(Arc<dyn ServerCerts>);

impl std::fmt::Debug for BySni {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("BySni")
    }
}

impl ResolvesServerCert for BySni {
    fn resolve(&self, client_hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        let sni = client_hello.server_name()?;
        let found = self.0.cert_for(sni);
        if found.is_none() {
            tracing::debug!(sni, "no tunnel certificate for this SNI");
        }
        found
    }
}

/// The server's configuration: TLS 1.3, client chains required, certificates chosen by SNI.
pub(crate) fn server_config(
    certs: Arc<dyn ServerCerts>,
) -> Result<rustls::ServerConfig, OverlayError> {
    let config = rustls::ServerConfig::builder_with_provider(crypto())
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(OverlayError::Rustls)?
        .with_client_cert_verifier(Arc::new(TunnelClientShape::default()))
        .with_cert_resolver(Arc::new(BySni(certs)));
    Ok(config)
}

/// The client's configuration: TLS 1.3, presenting `cert`'s chain.
pub(crate) fn client_config(cert: &TunnelCert) -> Result<rustls::ClientConfig, OverlayError> {
    let chain = cert
        .chain_der
        .iter()
        .map(|d| CertificateDer::from(d.clone()))
        .collect();
    let key = <PrivateKeyDer<'_> as rustls::pki_types::pem::PemObject>::from_pem_slice(
        cert.key_pem.as_bytes(),
    )
    .map_err(|e| OverlayError::Tls(format!("tunnel key: {e}")))?;
    rustls::ClientConfig::builder_with_provider(crypto())
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(OverlayError::Rustls)?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(TunnelServerShape::default()))
        .with_client_auth_cert(chain, key)
        .map_err(|e| OverlayError::Tls(format!("tunnel certificate and key: {e}")))
}
