//! What the overlay reads from the chain about other providers: who holds which group of a
//! deployment, where their overlay listens, and their certificates (cached briefly, since every
//! tunnel connection is checked against them).

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use chain_client::Chain;
use chain_client::akash::cert::v1::CertificateFilter;
use chain_client::akash::market::v1 as mv1;
use chain_client::akash::provider::v1beta4::Provider;
use chain_client::cert::OnChainCertificate;
use chain_client::chain::PageRequest;

use super::client::{OnChainServerVerifier, ServerVerifier};
use super::error::OverlayError;
use super::tunnel_cert::VerifiedTunnelPeer;
use super::wire::TunnelRequest;
use crate::cert_events::CertificateChange;

/// The on-chain provider attribute naming where a provider's overlay listens, `host:port`.
pub(crate) const ENDPOINT_ATTRIBUTE: &str = "overlay-endpoint";
/// The overlay port assumed when a provider publishes no endpoint: its host URI's host, this port.
pub(crate) const DEFAULT_PORT: u16 = 8445;
/// How long looked-up certificates are trusted before they are read again.
const CERT_TTL: Duration = Duration::from_secs(30);

/// Chain lookups of the overlay, with a short certificate cache that the chain's revocations end
/// at once ([`follow_revocations`]).
pub(crate) struct Peers {
    chain: Arc<dyn Chain>,
    default_port: u16,
    certs: Mutex<Certs>,
}

#[derive(Default)]
struct Certs {
    by_provider: HashMap<String, (Instant, Vec<OnChainCertificate>)>,
    /// Moves on whenever something is forgotten, so that a lookup that began before does not put
    /// back what was just forgotten.
    epoch: u64,
}

impl Peers {
    pub(crate) fn new(chain: Arc<dyn Chain>, default_port: u16) -> Self {
        Self {
            chain,
            default_port,
            certs: Mutex::default(),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Certs> {
        self.certs.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Forgets `provider`'s certificates: the next check reads them from the chain again.
    pub(crate) fn forget(&self, provider: &str) {
        let mut certs = self.lock();
        certs.by_provider.remove(provider);
        certs.epoch += 1;
    }

    /// Forgets every provider's certificates.
    pub(crate) fn forget_all(&self) {
        let mut certs = self.lock();
        certs.by_provider.clear();
        certs.epoch += 1;
    }

    /// gseq → provider of every active lease of deployment (`owner`, `dseq`).
    pub(crate) async fn holders(
        &self,
        owner: &str,
        dseq: u64,
    ) -> anyhow::Result<BTreeMap<u32, String>> {
        let all = chain_client::chain::deployment_leases(self.chain.as_ref(), owner, dseq).await?;
        Ok(all
            .into_iter()
            .filter_map(|r| r.lease)
            .filter(|l| l.state == mv1::lease::State::Active as i32)
            .filter_map(|l| l.id)
            .filter(|id| id.owner == owner && id.dseq == dseq)
            .map(|id| (id.gseq, id.provider))
            .collect())
    }

    /// Where `provider`'s overlay listens.
    pub(crate) async fn endpoint(&self, provider: &str) -> anyhow::Result<String> {
        let registered = self
            .chain
            .provider(provider)
            .await?
            .ok_or_else(|| anyhow::anyhow!("provider {provider} is not registered on chain"))?;
        endpoint_of(&registered, self.default_port).map_err(|e| anyhow::anyhow!(e))
    }

    /// `provider`'s certificates on chain (from the cache when `fresh` is false and they are
    /// recent).
    pub(crate) async fn certificates(
        &self,
        provider: &str,
        fresh: bool,
    ) -> anyhow::Result<Vec<OnChainCertificate>> {
        let epoch = {
            let certs = self.lock();
            if !fresh
                && let Some((at, held)) = certs.by_provider.get(provider)
                && at.elapsed() < CERT_TTL
            {
                return Ok(held.clone());
            }
            certs.epoch
        };
        let page = self
            .chain
            .certificates(
                CertificateFilter {
                    owner: provider.to_owned(),
                    serial: String::new(),
                    state: String::new(),
                },
                PageRequest::first(100),
            )
            .await?;
        let held: Vec<OnChainCertificate> = page
            .items
            .iter()
            .map(|c| OnChainCertificate::from_response(provider, c))
            .collect();
        let mut certs = self.lock();
        if certs.epoch == epoch {
            if certs.by_provider.len() > 4096 {
                certs.by_provider.clear();
            }
            certs
                .by_provider
                .insert(provider.to_owned(), (Instant::now(), held.clone()));
        }
        Ok(held)
    }

    /// Verifies a tunnel chain that claims to be `provider`'s; a failure is checked once more
    /// against freshly read certificates (the peer may have just published a new one).
    pub(crate) async fn verify(
        &self,
        provider: &str,
        chain_der: &[Vec<u8>],
    ) -> Result<VerifiedTunnelPeer, OverlayError> {
        let mut last = None;
        for fresh in [false, true] {
            let held = self.certificates(provider, fresh).await.map_err(|e| {
                OverlayError::Refused(format!(
                    "cannot read {provider}'s certificates on chain: {e:#}"
                ))
            })?;
            match super::tunnel_cert::verify(chain_der, &held, SystemTime::now()) {
                Ok(peer) => return Ok(peer),
                Err(e) => last = Some(e),
            }
        }
        Err(last.unwrap_or(OverlayError::ChainLength(chain_der.len())))
    }
}

/// Forgets a provider's certificates, and removes its WireGuard peer, as soon as the chain says
/// it revoked a certificate (from block `from`, the next one when `None`), until `stop`: its
/// next tunnel connection or probe is checked against the chain again.
pub(crate) async fn follow_revocations(
    chain: Arc<dyn Chain>,
    peers: Arc<Peers>,
    wireguard: Option<Arc<super::wireguard::WireGuard>>,
    from: Option<u64>,
    stop: tokio::sync::watch::Receiver<bool>,
) {
    crate::cert_events::follow(chain, from, stop, |change| match change {
        CertificateChange::Revoked(provider) => {
            peers.forget(provider);
            if let Some(wg) = wireguard.clone() {
                let provider = provider.to_owned();
                // Configuring the interface is a blocking call (netlink or the UAPI socket).
                tokio::task::spawn_blocking(move || wg.remove_peer(&provider));
            }
        }
        CertificateChange::Published(_) => {}
        CertificateChange::Missed => peers.forget_all(),
    })
    .await;
}

/// `host:port` of a provider's overlay: its `overlay-endpoint` attribute, or its host URI's host
/// with `default_port`.
pub(crate) fn endpoint_of(provider: &Provider, default_port: u16) -> Result<String, String> {
    if let Some(attr) = provider
        .attributes
        .iter()
        .find(|a| a.key == ENDPOINT_ATTRIBUTE)
    {
        let value = attr.value.trim();
        return match value.rsplit_once(':') {
            Some((host, port)) if !host.is_empty() && port.parse::<u16>().is_ok_and(|p| p > 0) => {
                Ok(value.to_owned())
            }
            _ => Err(format!(
                "provider {}: attribute {ENDPOINT_ATTRIBUTE} is {value:?}, expected host:port",
                provider.owner
            )),
        };
    }
    let rest = provider
        .host_uri
        .split_once("://")
        .map_or(provider.host_uri.as_str(), |(_, r)| r);
    let host_port = rest.split('/').next().unwrap_or_default();
    let host = match host_port.rsplit_once(':') {
        Some((h, p)) if p.chars().all(|c| c.is_ascii_digit()) => h,
        _ => host_port,
    };
    if host.is_empty() {
        return Err(format!(
            "provider {}: no {ENDPOINT_ATTRIBUTE} attribute and no host in its host URI {:?}",
            provider.owner, provider.host_uri
        ));
    }
    Ok(format!("{host}:{default_port}"))
}

/// Checks a tunnel server against the chain: the provider holding the server's group, with the
/// server-side claim of this pair.
pub(crate) struct ChainServerVerifier {
    pub peers: Arc<Peers>,
    pub provider: String,
    pub request: TunnelRequest,
}

#[async_trait::async_trait]
impl ServerVerifier for ChainServerVerifier {
    async fn verify(&self, server_chain: &[Vec<u8>]) -> Result<VerifiedTunnelPeer, OverlayError> {
        let mut last = None;
        for fresh in [false, true] {
            let on_chain = self
                .peers
                .certificates(&self.provider, fresh)
                .await
                .map_err(|e| {
                    OverlayError::Refused(format!(
                        "cannot read {}'s certificates on chain: {e:#}",
                        self.provider
                    ))
                })?;
            let check = OnChainServerVerifier {
                provider: self.provider.clone(),
                on_chain,
                request: self.request.clone(),
            };
            match check.verify(server_chain).await {
                Ok(peer) => return Ok(peer),
                Err(e) => last = Some(e),
            }
        }
        Err(last.unwrap_or(OverlayError::ChainLength(server_chain.len())))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chain_client::akash::base::attributes::v1::Attribute;
    use chain_client::akash::cert::v1::{Certificate, CertificateResponse, State};

    #[tokio::test]
    async fn a_revocation_on_chain_ends_the_cached_certificates_at_once() {
        let provider = chain_client::keys::Key::random("akash")
            .unwrap()
            .address()
            .to_string();
        let pair = chain_client::cert::generate(
            &provider,
            &chain_client::cert::CertificateRole::Client,
            Duration::from_secs(3600),
        )
        .unwrap();
        let chain = chain_client::fake::FakeChain::new("akash1me");
        chain.state().certificates.push(CertificateResponse {
            certificate: Some(Certificate {
                state: State::Valid as i32,
                cert: pair.cert_pem.clone().into_bytes(),
                pubkey: pair.pubkey_pem.clone().into_bytes(),
            }),
            serial: pair.serial.clone(),
        });
        let peers = Arc::new(Peers::new(Arc::new(chain.clone()), DEFAULT_PORT));
        let valid = |held: Vec<OnChainCertificate>| held.iter().all(|c| c.valid);
        assert!(valid(peers.certificates(&provider, false).await.unwrap()));

        let from = chain.state().height + 1;
        let (_stop, stopped) = tokio::sync::watch::channel(false);
        tokio::spawn(follow_revocations(
            Arc::new(chain.clone()),
            peers.clone(),
            None,
            Some(from),
            stopped,
        ));
        chain.state().certificates[0]
            .certificate
            .as_mut()
            .unwrap()
            .state = State::Revoked as i32;
        chain.push_events(vec![chain_client::events::AkashEvent::CertificateRevoked {
            owner: provider.clone(),
        }]);
        // The cache would hold the valid copy for 30 s; the event ends it (waits up to 20 s).
        for _ in 0..400 {
            if !valid(peers.certificates(&provider, false).await.unwrap()) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("the revoked certificate is still trusted from the cache");
    }

    fn provider(host_uri: &str, attributes: &[(&str, &str)]) -> Provider {
        Provider {
            owner: "akash1p".into(),
            host_uri: host_uri.into(),
            attributes: attributes
                .iter()
                .map(|(k, v)| Attribute {
                    key: (*k).into(),
                    value: (*v).into(),
                })
                .collect(),
            info: None,
        }
    }

    #[test]
    fn the_endpoint_attribute_wins_over_the_host_uri() {
        let p = provider(
            "https://provider.example.com:8443",
            &[("region", "eu"), (ENDPOINT_ATTRIBUTE, "10.0.0.2:9000")],
        );
        assert_eq!(endpoint_of(&p, DEFAULT_PORT).unwrap(), "10.0.0.2:9000");
    }

    #[test]
    fn without_the_attribute_the_host_uri_host_and_the_default_port_are_used() {
        let p = provider("https://provider.example.com:8443", &[]);
        assert_eq!(
            endpoint_of(&p, DEFAULT_PORT).unwrap(),
            "provider.example.com:8445"
        );
        let p = provider("https://provider.example.com", &[]);
        assert_eq!(endpoint_of(&p, 7000).unwrap(), "provider.example.com:7000");
    }

    #[test]
    fn a_malformed_endpoint_attribute_is_an_error_naming_it() {
        for bad in ["10.0.0.2", ":9000", "host:0", "host:http"] {
            let p = provider("https://h:8443", &[(ENDPOINT_ATTRIBUTE, bad)]);
            let e = endpoint_of(&p, DEFAULT_PORT).unwrap_err();
            assert!(
                e.contains(ENDPOINT_ATTRIBUTE) && e.contains("host:port"),
                "{e}"
            );
        }
    }
}
