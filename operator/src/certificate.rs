//! The one way the provider and the tenant make sure they hold a certificate the chain accepts:
//! the kept certificate is used if the chain holds it as valid and published if the chain does not
//! know it; otherwise a new one is made, its key kept first, then published. Keeping the key before
//! publishing means a crash in between leaves a certificate the next try publishes, never a
//! published certificate whose key is lost.
//!
//! Where the certificate is kept (a Secret, files) and what happens to a revoked one differ between
//! the callers, so both are parameters.

use std::time::Duration;

use async_trait::async_trait;
use chain_client::Chain;
use chain_client::cert::{CertificateKeyPair, CertificateRole};
use chain_client::chain::{CertificateFilter, PageRequest};
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;

/// A kept certificate and its private key (PEM).
pub struct KeptCertificate {
    pub cert_pem: String,
    pub key_pem: String,
}

impl std::fmt::Debug for KeptCertificate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeptCertificate")
            .field("key_pem", &"[redacted]")
            .finish_non_exhaustive()
    }
}

/// Where a certificate and its key are kept.
#[async_trait]
pub(crate) trait CertStore: Send + Sync {
    async fn load(&self) -> anyhow::Result<Option<KeptCertificate>>;
    /// Keeps a newly made certificate, replacing any kept one.
    async fn save(&self, pair: &CertificateKeyPair) -> anyhow::Result<()>;
}

/// What to do when the chain lists the kept certificate as revoked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum WhenRevoked {
    /// Make, keep and publish a new one (the tenant: nothing else depends on the old one).
    MakeNew,
    /// Stop and tell the operator (the provider: its gateway serves the kept one); `remedy` says
    /// what to do, e.g. which Secret to delete.
    Refuse { remedy: String },
}

/// What is asked for a new certificate.
#[derive(Debug, Clone)]
pub(crate) struct NewCertificate {
    pub role: CertificateRole,
    pub valid_for: Duration,
}

#[derive(Debug, thiserror::Error)]
pub(crate) enum CertificateError {
    #[error("certificate {serial} is revoked on chain; {remedy}")]
    Revoked { serial: String, remedy: String },
    #[error("the kept certificate is unusable: {0}")]
    Unusable(String),
    #[error("cannot make a certificate: {0}")]
    Make(#[source] chain_client::cert::CertError),
    #[error("keeping the certificate: {0}")]
    Store(#[source] anyhow::Error),
    #[error("chain: {0}")]
    Chain(#[from] chain_client::ChainError),
}

/// The certificate to use and its decimal serial; see the module's comment for the protocol.
pub(crate) async fn ensure(
    chain: &dyn Chain,
    store: &dyn CertStore,
    new: &NewCertificate,
    when_revoked: &WhenRevoked,
) -> Result<(KeptCertificate, String), CertificateError> {
    let owner = chain.address().to_owned();
    if let Some(kept) = store.load().await.map_err(CertificateError::Store)? {
        let der = CertificateDer::from_pem_slice(kept.cert_pem.as_bytes())
            .map_err(|e| CertificateError::Unusable(format!("not PEM: {e}")))?;
        let serial = chain_client::cert::claimed_identity(&der)
            .map_err(|e| CertificateError::Unusable(e.to_string()))?
            .serial;
        match on_chain_state(chain, &owner, &serial).await? {
            Some(true) => return Ok((kept, serial)),
            // Kept but never published (a crash between the two): publish it now.
            None => {
                tracing::info!(%owner, %serial, "publishing the kept certificate on chain");
                let msg = chain_client::cert::create_msg_for(&owner, &kept.cert_pem, der.as_ref())
                    .map_err(|e| CertificateError::Unusable(e.to_string()))?;
                chain.broadcast(vec![chain_client::to_any(&msg)]).await?;
                return Ok((kept, serial));
            }
            Some(false) => match when_revoked {
                WhenRevoked::MakeNew => {}
                WhenRevoked::Refuse { remedy } => {
                    return Err(CertificateError::Revoked {
                        serial,
                        remedy: remedy.clone(),
                    });
                }
            },
        }
    }
    let pair = chain_client::cert::generate(&owner, &new.role, new.valid_for)
        .map_err(CertificateError::Make)?;
    store.save(&pair).await.map_err(CertificateError::Store)?;
    chain
        .broadcast(vec![chain_client::to_any(&pair.create_msg(&owner))])
        .await?;
    tracing::info!(%owner, serial = %pair.serial, "made and published a new certificate");
    let kept = KeptCertificate {
        cert_pem: pair.cert_pem.clone(),
        key_pem: pair.key_pem().to_owned(),
    };
    Ok((kept, pair.serial))
}

/// `Some(valid?)` when the chain has the certificate, `None` when it does not.
async fn on_chain_state(
    chain: &dyn Chain,
    owner: &str,
    serial: &str,
) -> Result<Option<bool>, chain_client::ChainError> {
    let page = chain
        .certificates(
            CertificateFilter {
                owner: owner.to_owned(),
                serial: serial.to_owned(),
                state: String::new(),
            },
            PageRequest::first(10),
        )
        .await?;
    Ok(page
        .items
        .iter()
        .map(|r| chain_client::cert::OnChainCertificate::from_response(owner, r))
        .find(|c| c.serial == serial)
        .map(|c| c.valid))
}

#[cfg(test)]
mod tests;
