//! The serving side's authorization: a tunnel request is let in only for a connection pair the
//! controller admitted (our lease runs the served group, the manifest allows the call, and the
//! chain shows the peer's active lease for the calling group), from that peer provider, whose
//! tunnel certificate chains to its on-chain certificate and claims exactly this pair.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use super::peers::Peers;
use super::server::{AuthorizedTarget, Authorizer, Refusal};
use super::tunnel_cert::claimed_provider;
use super::wire::{TunnelRequest, WireGuardOffer, pair_sni};
use super::wireguard::WireGuard;

/// A connection pair this provider serves.
#[derive(Debug, Clone)]
pub(crate) struct Admitted {
    /// The pair (never a probe).
    pub request: TunnelRequest,
    /// The provider holding the calling group's lease.
    pub peer_provider: String,
    /// Where its connections go, `host:port`.
    pub target: String,
    /// Counter key and `Tunnel` name.
    pub tunnel_key: String,
}

/// What the serving side saw of one pair, for its `Tunnel` status.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Seen {
    /// The last time the peer was let in (a probe or a connection).
    pub last_ok: Option<SystemTime>,
    /// The peer's tunnel leaf, SHA-256 hex.
    pub peer_sha256: Option<String>,
    /// The last refusal of a request for this pair.
    pub last_refusal: Option<String>,
    pub refusals: u64,
}

#[derive(Default)]
struct Table {
    admitted: HashMap<String, Admitted>,
    seen: HashMap<String, Seen>,
}

/// Authorizes against the admitted pairs and the chain.
pub(crate) struct ChainAuthorizer {
    peers: Arc<Peers>,
    table: Mutex<Table>,
    refusals: Box<dyn Fn(&str) + Send + Sync>,
    wireguard: Option<Arc<WireGuard>>,
}

impl ChainAuthorizer {
    /// `on_refusal` is told a short reason label for every refusal (metrics).
    pub(crate) fn new(
        peers: Arc<Peers>,
        on_refusal: impl Fn(&str) + Send + Sync + 'static,
    ) -> Self {
        Self {
            peers,
            table: Mutex::new(Table::default()),
            refusals: Box::new(on_refusal),
            wireguard: None,
        }
    }

    /// Answers WireGuard offers of admitted peers with this interface (WireGuard mode).
    pub(crate) fn with_wireguard(mut self, wg: Arc<WireGuard>) -> Self {
        self.wireguard = Some(wg);
        self
    }

    /// Authorizes a connection that came through WireGuard from `provider`'s peer: WireGuard
    /// vouches for the sender, so only the pair and its peer are checked.
    pub(crate) fn authorize_peer(
        &self,
        provider: &str,
        req: &TunnelRequest,
    ) -> Result<AuthorizedTarget, Refusal> {
        let (_, sni, admitted) = self.admitted_for(req, provider)?;
        Ok(self.let_in(sni, None, admitted, None))
    }

    /// The admitted pair of `req` (probe and offer aside) and its SNI, if `provider` is its peer.
    fn admitted_for(
        &self,
        req: &TunnelRequest,
        provider: &str,
    ) -> Result<(TunnelRequest, String, Admitted), Refusal> {
        let pair = TunnelRequest {
            probe: false,
            wireguard: None,
            ..req.clone()
        };
        let sni = pair_sni(&pair);
        let Some(admitted) = self.lock().admitted.get(&sni).cloned() else {
            return Err(self.refuse(
                None,
                "not_served",
                "this provider serves no such connection: no lease of ours lets that service be called from there".into(),
            ));
        };
        if admitted.peer_provider != provider {
            return Err(self.refuse(
                Some(&sni),
                "not_lease_holder",
                format!(
                    "{provider} does not hold the lease of group {} of {}/{}",
                    pair.from_gseq, pair.owner, pair.dseq
                ),
            ));
        }
        Ok((pair, sni, admitted))
    }

    /// Records that the peer was let in, and where it goes.
    fn let_in(
        &self,
        sni: String,
        peer_sha256: Option<String>,
        admitted: Admitted,
        wireguard: Option<WireGuardOffer>,
    ) -> AuthorizedTarget {
        let mut table = self.lock();
        let seen = table.seen.entry(sni).or_default();
        seen.last_ok = Some(SystemTime::now());
        if peer_sha256.is_some() {
            seen.peer_sha256 = peer_sha256;
        }
        AuthorizedTarget {
            target: admitted.target,
            tunnel_key: admitted.tunnel_key,
            wireguard,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Table> {
        self.table.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Serves `pair` from now on (or updates it).
    pub(crate) fn admit(&self, pair: Admitted) {
        let sni = pair_sni(&pair.request);
        self.lock().admitted.insert(sni, pair);
    }

    /// Stops serving `request`'s pair.
    pub(crate) fn revoke(&self, request: &TunnelRequest) {
        let sni = pair_sni(request);
        let mut table = self.lock();
        table.admitted.remove(&sni);
        table.seen.remove(&sni);
    }

    /// What was seen of `request`'s pair.
    pub(crate) fn seen(&self, request: &TunnelRequest) -> Seen {
        self.lock()
            .seen
            .get(&pair_sni(request))
            .cloned()
            .unwrap_or_default()
    }

    fn refuse(&self, sni: Option<&str>, label: &str, reason: String) -> Refusal {
        (self.refusals)(label);
        if let Some(sni) = sni {
            let mut table = self.lock();
            if table.admitted.contains_key(sni) {
                let seen = table.seen.entry(sni.to_owned()).or_default();
                seen.refusals += 1;
                seen.last_refusal = Some(reason.clone());
            }
        }
        Refusal { reason }
    }
}

#[async_trait::async_trait]
impl Authorizer for ChainAuthorizer {
    async fn authorize(
        &self,
        peer_chain: &[Vec<u8>],
        req: &TunnelRequest,
    ) -> Result<AuthorizedTarget, Refusal> {
        let (claimed, _) = claimed_provider(peer_chain).map_err(|e| {
            let sni = pair_sni(&TunnelRequest {
                probe: false,
                wireguard: None,
                ..req.clone()
            });
            self.refuse(Some(&sni), "certificate", e.to_string())
        })?;
        let (pair, sni, admitted) = self.admitted_for(req, &claimed)?;
        let peer = self
            .peers
            .verify(&claimed, peer_chain)
            .await
            .map_err(|e| self.refuse(Some(&sni), e.metric_label(), e.to_string()))?;
        if peer.claim != pair.client_claim() {
            return Err(self.refuse(
                Some(&sni),
                "claim",
                format!(
                    "the certificate claims {}, not this connection",
                    peer.claim.to_uri()
                ),
            ));
        }
        // A probe offering WireGuard: the peer's key is now vouched for by its certificate.
        let wireguard = match (&self.wireguard, &req.wireguard) {
            (Some(wg), Some(offer)) if req.probe => {
                let (wg, offer, provider) = (wg.clone(), offer.clone(), peer.provider.clone());
                // Configuring the interface is a blocking call (netlink or the UAPI socket).
                let added = tokio::task::spawn_blocking(move || {
                    wg.add_peer(&provider, &offer, false).map(|()| wg.offer())
                })
                .await;
                match added {
                    Ok(Ok(ours)) => Some(ours),
                    Ok(Err(e)) => {
                        tracing::warn!(provider = %peer.provider, error = %e, "cannot add the WireGuard peer; the pair stays on mTLS");
                        None
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "adding the WireGuard peer panicked; the pair stays on mTLS");
                        None
                    }
                }
            }
            _ => None,
        };
        Ok(self.let_in(sni, Some(peer.leaf_sha256_hex), admitted, wireguard))
    }
}
