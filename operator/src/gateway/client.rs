//! The tenant's side of the gateway: a TLS 1.3 client that presents the tenant's on-chain
//! certificate and accepts the server only if it presents the provider's certificate as the
//! chain holds it (the provider's address and a valid serial), as Akash tenant tools check it.
//! Used by the tenant controller and by end-to-end tests.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use chain_client::Chain;
use chain_client::cert::OnChainCertificate;
use chain_client::chain::{CertificateFilter, PageRequest};
use rustls::client::danger::{ServerCertVerified, ServerCertVerifier};
use rustls::crypto::WebPkiSupportedAlgorithms;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};

/// Accepts exactly the provider's valid on-chain certificates.
#[derive(Debug)]
struct OnChainProvider {
    provider: String,
    on_chain: Vec<OnChainCertificate>,
    algorithms: WebPkiSupportedAlgorithms,
}

impl ServerCertVerifier for OnChainProvider {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let mut chain = vec![end_entity.to_vec()];
        chain.extend(intermediates.iter().map(|c| c.to_vec()));
        let peer = chain_client::cert::verify_peer(&chain, &self.on_chain, SystemTime::now())
            .map_err(|e| rustls::Error::General(format!("provider certificate: {e}")))?;
        if peer.owner != self.provider {
            return Err(rustls::Error::General(format!(
                "the server is {}, not the provider {}",
                peer.owner, self.provider
            )));
        }
        Ok(ServerCertVerified::assertion())
    }

    crate::handshake_signature_checks!();
}

/// The tenant's certificate and key (PEM), as `chain_client::cert::generate` makes them.
pub struct TenantIdentity {
    pub cert_pem: String,
    pub key_pem: String,
}

/// A TLS configuration for talking to `provider`'s gateway: the provider's valid certificates
/// are read from the chain now.
pub async fn tls_config(
    chain: &dyn Chain,
    provider: &str,
    identity: &TenantIdentity,
    alpn: &[u8],
) -> anyhow::Result<rustls::ClientConfig> {
    let held = chain
        .certificates(
            CertificateFilter {
                owner: provider.to_owned(),
                serial: String::new(),
                state: "valid".into(),
            },
            PageRequest::first(100),
        )
        .await?;
    let on_chain: Vec<OnChainCertificate> = held
        .items
        .iter()
        .map(|r| OnChainCertificate::from_response(provider, r))
        .collect();
    if on_chain.is_empty() {
        anyhow::bail!("provider {provider} has no valid certificate on chain");
    }
    let crypto = Arc::new(rustls::crypto::ring::default_provider());
    let algorithms = crypto.signature_verification_algorithms;
    let cert = CertificateDer::from_pem_slice(identity.cert_pem.as_bytes())
        .map_err(|e| anyhow::anyhow!("the tenant certificate is not PEM: {e}"))?;
    let key = PrivateKeyDer::from_pem_slice(identity.key_pem.as_bytes())
        .map_err(|e| anyhow::anyhow!("the tenant key is not PEM: {e}"))?;
    let mut config = rustls::ClientConfig::builder_with_provider(crypto)
        .with_protocol_versions(&[&rustls::version::TLS13])?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(OnChainProvider {
            provider: provider.to_owned(),
            on_chain,
            algorithms,
        }))
        .with_client_auth_cert(vec![cert], key)?;
    config.alpn_protocols = vec![alpn.to_vec()];
    Ok(config)
}

/// An HTTP client for `provider`'s REST gateway.
pub async fn rest_client(
    chain: &dyn Chain,
    provider: &str,
    identity: &TenantIdentity,
) -> anyhow::Result<reqwest::Client> {
    let tls = tls_config(chain, provider, identity, b"http/1.1").await?;
    Ok(reqwest::Client::builder()
        .use_preconfigured_tls(tls)
        .timeout(Duration::from_secs(30))
        .build()?)
}
