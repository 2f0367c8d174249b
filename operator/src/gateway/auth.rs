//! Who the client is: the certificate it presented, checked against the chain as the Go provider
//! checks it (exactly one self-signed Akash certificate whose owner and serial the chain holds as
//! valid, byte for byte, within its validity). Positive chain lookups are cached for a short time so
//! that a burst of requests does not become a burst of chain queries.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use chain_client::Chain;
use chain_client::cert::{
    OnChainCertificate, VerifiedPeer, claimed_identity, lookup_filter, verify_peer,
};
use chain_client::chain::PageRequest;

use super::accept::Rejection;

/// How long a certificate found valid on chain is trusted without asking again.
pub const CACHE_TTL: Duration = Duration::from_secs(60);
const CACHE_MAX: usize = 10_000;

type Key = (String, String);

/// Checks client certificates against the chain.
pub struct Authenticator {
    chain: Arc<dyn Chain>,
    ttl: Duration,
    cache: Mutex<HashMap<Key, (Instant, Vec<OnChainCertificate>)>>,
}

impl Authenticator {
    pub fn new(chain: Arc<dyn Chain>, ttl: Duration) -> Self {
        Self {
            chain,
            ttl,
            cache: Mutex::new(HashMap::new()),
        }
    }

    /// The verified owner of `certs` (DER, leaf first, as the TLS handshake received them).
    pub async fn authenticate(&self, certs: &[Vec<u8>]) -> Result<VerifiedPeer, Rejection> {
        let Some(leaf) = certs.first() else {
            return Err(Rejection::Unauthenticated(
                "a client certificate is required: present your Akash certificate (the one \
                 published on chain for your account)"
                    .into(),
            ));
        };
        let claimed = claimed_identity(leaf)
            .map_err(|e| Rejection::Unauthenticated(format!("client certificate: {e}")))?;
        let key = (claimed.owner.clone(), claimed.serial.clone());
        if let Some(held) = self.cached(&key)
            && let Ok(peer) = verify_peer(certs, &held, SystemTime::now())
        {
            return Ok(peer);
        }
        let page = self
            .chain
            .certificates(lookup_filter(&claimed), PageRequest::first(10))
            .await
            .map_err(|e| {
                Rejection::Unavailable(format!(
                    "cannot look up the client certificate on chain: {e}"
                ))
            })?;
        let held: Vec<OnChainCertificate> = page
            .items
            .iter()
            .map(|c| OnChainCertificate::from_response(&claimed.owner, c))
            .collect();
        let peer = verify_peer(certs, &held, SystemTime::now())
            .map_err(|e| Rejection::Unauthenticated(format!("client certificate: {e}")))?;
        self.remember(key, held);
        Ok(peer)
    }

    fn cached(&self, key: &Key) -> Option<Vec<OnChainCertificate>> {
        let cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
        cache
            .get(key)
            .filter(|(at, _)| at.elapsed() < self.ttl)
            .map(|(_, held)| held.clone())
    }

    fn remember(&self, key: Key, held: Vec<OnChainCertificate>) {
        let mut cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
        if cache.len() >= CACHE_MAX {
            let ttl = self.ttl;
            cache.retain(|_, (at, _)| at.elapsed() < ttl);
            if cache.len() >= CACHE_MAX {
                cache.clear();
            }
        }
        cache.insert(key, (Instant::now(), held));
    }
}

#[cfg(test)]
mod tests {
    use chain_client::akash::cert::v1::{Certificate, CertificateResponse, State};
    use chain_client::cert::{CertificateRole, generate};
    use chain_client::fake::FakeChain;
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject;

    use super::*;

    #[tokio::test]
    async fn a_certificate_found_on_chain_is_trusted_for_the_ttl_then_asked_again() {
        let owner = chain_client::keys::Key::random("akash")
            .expect("key")
            .address()
            .to_string();
        let pair = generate(&owner, &CertificateRole::Client, Duration::from_secs(3600))
            .expect("certificate");
        let chain = FakeChain::new(&owner);
        chain.state().certificates.push(CertificateResponse {
            certificate: Some(Certificate {
                state: State::Valid as i32,
                cert: pair.cert_pem.clone().into_bytes(),
                pubkey: pair.pubkey_pem.clone().into_bytes(),
            }),
            serial: pair.serial.clone(),
        });
        let certs = vec![
            CertificateDer::from_pem_slice(pair.cert_pem.as_bytes())
                .unwrap()
                .to_vec(),
        ];
        let cached = Authenticator::new(Arc::new(chain.clone()), Duration::from_secs(60));
        let uncached = Authenticator::new(Arc::new(chain.clone()), Duration::ZERO);
        assert_eq!(cached.authenticate(&certs).await.unwrap().owner, owner);
        assert_eq!(uncached.authenticate(&certs).await.unwrap().owner, owner);

        // Revoked on chain: the cache still trusts it for a while, a fresh lookup does not.
        chain.state().certificates.clear();
        assert!(cached.authenticate(&certs).await.is_ok());
        let err = uncached.authenticate(&certs).await.unwrap_err();
        assert_eq!(err.http_status(), 401, "{err}");

        let none = cached.authenticate(&[]).await.unwrap_err();
        assert_eq!(none.http_status(), 401);
    }
}
