//! Who the client is: the certificate it presented, checked against the chain as the Go provider
//! checks it (exactly one self-signed Akash certificate whose owner and serial the chain holds as
//! valid, byte for byte, within its validity).
//!
//! Chain lookups are cached so that a burst of requests does not become a burst of chain queries:
//! a certificate found valid for `ttl`, one found not valid (unknown, revoked) for `refusal_ttl`.
//! The chain's certificate events end both at once ([`Authenticator::forget_owner`],
//! [`Authenticator::forget_refusals`]), and at most [`MAX_LOOKUPS`] lookups run at once.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use chain_client::Chain;
use chain_client::cert::{
    OnChainCertificate, VerifiedPeer, claimed_identity, lookup_filter, verify_peer,
};
use chain_client::chain::PageRequest;
use sha2::{Digest as _, Sha256};
use tokio::sync::Semaphore;

use super::accept::Rejection;

/// Chain lookups of client certificates running at once, at most.
pub(crate) const MAX_LOOKUPS: usize = 32;
const CACHE_MAX: usize = 10_000;

/// (owner, serial).
type Key = (String, String);

/// SHA-256 of a presented certificate: a refusal holds for exactly those bytes, so that nobody
/// can have another's certificate refused by presenting a forgery that names it.
type Digest = [u8; 32];

#[derive(Default)]
struct Cache {
    valid: HashMap<Key, (Instant, Vec<OnChainCertificate>)>,
    /// When, and (owner, why).
    refused: HashMap<Digest, (Instant, (String, String))>,
    /// Moves on whenever something is forgotten, so that a lookup that began before does not
    /// put back what was just forgotten.
    epoch: u64,
}

/// Checks client certificates against the chain.
pub(crate) struct Authenticator {
    chain: Arc<dyn Chain>,
    ttl: Duration,
    refusal_ttl: Duration,
    cache: Mutex<Cache>,
    lookups: Semaphore,
}

impl Authenticator {
    /// Trusts a certificate found valid for `ttl`, refuses one found not valid for `refusal_ttl`,
    /// without asking the chain again.
    pub(crate) fn new(chain: Arc<dyn Chain>, ttl: Duration, refusal_ttl: Duration) -> Self {
        Self {
            chain,
            ttl,
            refusal_ttl,
            cache: Mutex::new(Cache::default()),
            lookups: Semaphore::new(MAX_LOOKUPS),
        }
    }

    /// The verified owner of `certs` (DER, leaf first, as the TLS handshake received them).
    pub(crate) async fn authenticate(&self, certs: &[Vec<u8>]) -> Result<VerifiedPeer, Rejection> {
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
        let digest: Digest = Sha256::digest(leaf).into();
        let (cached, epoch) = self.cached(&key, &digest);
        match cached {
            Some(Ok(held)) => {
                // Otherwise another certificate under the same serial: the chain decides.
                if let Ok(peer) = verify_peer(certs, &held, SystemTime::now()) {
                    return Ok(peer);
                }
            }
            Some(Err(reason)) => return Err(Rejection::Unauthenticated(reason)),
            None => {}
        }
        let held = {
            let _lookup =
                self.lookups.acquire().await.map_err(|_| {
                    Rejection::Unavailable("the certificate lookups stopped".into())
                })?;
            let page = self
                .chain
                .certificates(lookup_filter(&claimed), PageRequest::first(10))
                .await
                .map_err(|e| {
                    Rejection::Unavailable(format!(
                        "cannot look up the client certificate on chain: {e}"
                    ))
                })?;
            page.items
                .iter()
                .map(|c| OnChainCertificate::from_response(&claimed.owner, c))
                .collect::<Vec<_>>()
        };
        match verify_peer(certs, &held, SystemTime::now()) {
            Ok(peer) => {
                self.remember(key, digest, epoch, Ok(held));
                Ok(peer)
            }
            Err(e) => {
                let reason = format!("client certificate: {e}");
                self.remember(key, digest, epoch, Err(reason.clone()));
                Err(Rejection::Unauthenticated(reason))
            }
        }
    }

    /// Forgets every certificate of `owner` found valid (the chain revoked one of them).
    pub(crate) fn forget_owner(&self, owner: &str) {
        let mut cache = self.lock();
        cache.valid.retain(|(o, _), _| o != owner);
        cache.epoch += 1;
    }

    /// Forgets the refusals of `owner`'s certificates (it published a certificate).
    pub(crate) fn forget_refusals(&self, owner: &str) {
        let mut cache = self.lock();
        cache.refused.retain(|_, (_, (o, _))| o != owner);
        cache.epoch += 1;
    }

    /// Forgets everything (certificate events may have been missed).
    pub(crate) fn forget_all(&self) {
        let mut cache = self.lock();
        cache.valid.clear();
        cache.refused.clear();
        cache.epoch += 1;
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Cache> {
        self.cache.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// What is known of `key` (valid certificates) or of the certificate with `digest` (why it
    /// was refused), and the cache's epoch.
    fn cached(
        &self,
        key: &Key,
        digest: &Digest,
    ) -> (Option<Result<Vec<OnChainCertificate>, String>>, u64) {
        let cache = self.lock();
        // The exact bytes refused first: a forgery naming a valid certificate is not looked up again.
        let refused = cache
            .refused
            .get(digest)
            .filter(|(at, _)| at.elapsed() < self.refusal_ttl)
            .map(|(_, (_, reason))| Err(reason.clone()));
        let valid = || {
            cache
                .valid
                .get(key)
                .filter(|(at, _)| at.elapsed() < self.ttl)
                .map(|(_, held)| Ok(held.clone()))
        };
        (refused.or_else(valid), cache.epoch)
    }

    /// Keeps what a lookup found, unless something was forgotten since it began (`epoch`).
    fn remember(
        &self,
        key: Key,
        digest: Digest,
        epoch: u64,
        found: Result<Vec<OnChainCertificate>, String>,
    ) {
        let mut cache = self.lock();
        if epoch != cache.epoch {
            return;
        }
        let now = Instant::now();
        match found {
            Ok(held) => {
                let ttl = self.ttl;
                bounded(&mut cache.valid, ttl);
                cache.refused.remove(&digest);
                cache.valid.insert(key, (now, held));
            }
            Err(reason) => {
                let ttl = self.refusal_ttl;
                bounded(&mut cache.refused, ttl);
                cache.refused.insert(digest, (now, (key.0, reason)));
            }
        }
    }
}

/// Makes room in a full cache: expired entries go, then everything if still full.
fn bounded<K, T>(map: &mut HashMap<K, (Instant, T)>, ttl: Duration) {
    if map.len() >= CACHE_MAX {
        map.retain(|_, (at, _)| at.elapsed() < ttl);
        if map.len() >= CACHE_MAX {
            map.clear();
        }
    }
}

#[cfg(test)]
mod tests {
    use chain_client::akash::cert::v1::{Certificate, CertificateResponse, State};
    use chain_client::cert::{CertificateKeyPair, CertificateRole, generate};
    use chain_client::fake::FakeChain;
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject;

    use super::*;

    const HOUR: Duration = Duration::from_secs(3600);

    fn owner() -> String {
        chain_client::keys::Key::random("akash")
            .expect("key")
            .address()
            .to_string()
    }

    fn on_chain(pair: &CertificateKeyPair) -> CertificateResponse {
        CertificateResponse {
            certificate: Some(Certificate {
                state: State::Valid as i32,
                cert: pair.cert_pem.clone().into_bytes(),
                pubkey: pair.pubkey_pem.clone().into_bytes(),
            }),
            serial: pair.serial.clone(),
        }
    }

    fn presented(pair: &CertificateKeyPair) -> Vec<Vec<u8>> {
        vec![
            CertificateDer::from_pem_slice(pair.cert_pem.as_bytes())
                .unwrap()
                .to_vec(),
        ]
    }

    /// A self-signed certificate that names `owner` and `serial` (decimal) but is not theirs.
    fn forgery(owner: &str, serial: &str) -> Vec<Vec<u8>> {
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, owner);
        let serial: u128 = serial.parse().unwrap();
        params.serial_number = Some(rcgen::SerialNumber::from_slice(
            &(serial as u64).to_be_bytes(),
        ));
        let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
        vec![params.self_signed(&key).unwrap().der().to_vec()]
    }

    fn queries(chain: &FakeChain) -> u64 {
        chain.state().certificate_queries
    }

    #[tokio::test]
    async fn a_certificate_found_on_chain_is_trusted_for_the_ttl_then_asked_again() {
        let owner = owner();
        let pair = generate(&owner, &CertificateRole::Client, HOUR).expect("certificate");
        let chain = FakeChain::new(&owner);
        chain.state().certificates.push(on_chain(&pair));
        let certs = presented(&pair);
        let cached = Authenticator::new(
            Arc::new(chain.clone()),
            Duration::from_secs(60),
            Duration::ZERO,
        );
        let uncached = Authenticator::new(Arc::new(chain.clone()), Duration::ZERO, Duration::ZERO);
        assert_eq!(cached.authenticate(&certs).await.unwrap().owner, owner);
        assert_eq!(uncached.authenticate(&certs).await.unwrap().owner, owner);

        // Revoked on chain: the cache still trusts it for a while, a fresh lookup does not.
        chain.state().certificates.clear();
        assert!(cached.authenticate(&certs).await.is_ok());
        let err = uncached.authenticate(&certs).await.unwrap_err();
        assert_eq!(err.http_status(), 401, "{err}");
        // Until the revocation is seen.
        cached.forget_owner(&owner);
        let err = cached.authenticate(&certs).await.unwrap_err();
        assert_eq!(err.http_status(), 401, "{err}");

        let none = cached.authenticate(&[]).await.unwrap_err();
        assert_eq!(none.http_status(), 401);
    }

    #[tokio::test]
    async fn a_certificate_the_chain_does_not_hold_is_refused_from_memory_until_its_owner_publishes_one()
     {
        let owner = owner();
        let pair = generate(&owner, &CertificateRole::Client, HOUR).expect("certificate");
        let chain = FakeChain::new(&owner);
        let auth = Authenticator::new(Arc::new(chain.clone()), HOUR, HOUR);
        let certs = presented(&pair);
        for _ in 0..20 {
            let err = auth.authenticate(&certs).await.unwrap_err();
            assert_eq!(err.http_status(), 401, "{err}");
        }
        assert_eq!(
            queries(&chain),
            1,
            "one lookup, then the refusal from memory"
        );

        // Published now: refused from memory until the chain says its owner published one.
        chain.state().certificates.push(on_chain(&pair));
        assert!(auth.authenticate(&certs).await.is_err());
        auth.forget_refusals(&owner);
        assert_eq!(auth.authenticate(&certs).await.unwrap().owner, owner);
        assert_eq!(queries(&chain), 2);
    }

    #[tokio::test]
    async fn a_forgery_naming_anothers_certificate_does_not_get_that_certificate_refused() {
        let owner = owner();
        let pair = generate(&owner, &CertificateRole::Client, HOUR).expect("certificate");
        let chain = FakeChain::new(&owner);
        chain.state().certificates.push(on_chain(&pair));
        let auth = Authenticator::new(Arc::new(chain.clone()), HOUR, HOUR);
        let forged = forgery(&owner, &pair.serial);
        let genuine = presented(&pair);
        assert_eq!(
            chain_client::cert::claimed_identity(&forged[0]).unwrap(),
            chain_client::cert::claimed_identity(&genuine[0]).unwrap(),
            "the forgery names the genuine certificate"
        );

        // Refused first: the genuine one is still looked up and let in.
        assert_eq!(
            auth.authenticate(&forged).await.unwrap_err().http_status(),
            401
        );
        assert_eq!(auth.authenticate(&genuine).await.unwrap().owner, owner);
        // Both from memory now: the forgery refused, the genuine one valid.
        let before = queries(&chain);
        for _ in 0..3 {
            let refused = auth.authenticate(&forged).await.unwrap_err();
            assert_eq!(refused.http_status(), 401);
            assert_eq!(auth.authenticate(&genuine).await.unwrap().owner, owner);
        }
        assert_eq!(queries(&chain), before);
    }
}
