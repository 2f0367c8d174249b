//! Tunnel certificates: a short-lived leaf per connection pair, signed by the key of the provider's
//! on-chain certificate, carrying what the tunnel is for (its claim) in a SAN URI.
//!
//! The chain a tunnel peer presents is `[leaf, on-chain certificate]`. The on-chain certificate is
//! the only trust root (the chain says it is valid); the leaf binds a fresh key to one claim, so a
//! leaked tunnel key opens one tunnel for a short time, not everything the provider may do.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use chain_client::cert::{OnChainCertificate, claimed_identity, verify_peer};
use rcgen::{
    CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, Issuer, KeyPair,
    KeyUsagePurpose, SanType,
};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::sign::CertifiedKey;
use sha2::{Digest, Sha256};
use x509_parser::extensions::GeneralName;
use x509_parser::prelude::{FromDer, X509Certificate};

use super::error::OverlayError;

/// The URI scheme of a tunnel claim in a certificate's SAN.
pub(crate) const CLAIM_SCHEME: &str = "akash-tunnel://";
/// Clock skew tolerated between providers: a leaf is valid from this long before it was made.
const BACKDATE: Duration = Duration::from_secs(300);

/// Which end of the tunnel a certificate (or a provider, for one connection) is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Side {
    /// Dials the peer (its workloads call the peer's service).
    Client,
    /// Accepts from the peer and forwards to its own service.
    Server,
}

impl Side {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Side::Client => "client",
            Side::Server => "server",
        }
    }

    /// `c` or `s`, as in [`super::topology::tunnel_name`].
    pub(crate) fn letter(self) -> char {
        match self {
            Side::Client => 'c',
            Side::Server => 's',
        }
    }
}

/// What one tunnel certificate may be used for: a connection between this side's group and service
/// and the peer's service (and group), of one deployment, to one port.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct TunnelClaim {
    /// The deployment's owner (the tenant).
    pub owner: String,
    pub dseq: u64,
    /// This side's group.
    pub gseq: u32,
    /// This side's service.
    pub service: String,
    /// The peer's group: a service placed in several datacenters has one group per placement.
    pub peer_gseq: u32,
    pub peer_service: String,
    /// The port of the server side's service.
    pub port: u16,
    pub side: Side,
}

impl TunnelClaim {
    /// The SAN URI form, `akash-tunnel://<owner>/<dseq>/<gseq>/<service>?peer_gseq=..&peer=..&port=..&side=..`.
    pub(crate) fn to_uri(&self) -> String {
        format!(
            "{CLAIM_SCHEME}{}/{}/{}/{}?peer_gseq={}&peer={}&port={}&side={}",
            self.owner,
            self.dseq,
            self.gseq,
            self.service,
            self.peer_gseq,
            self.peer_service,
            self.port,
            self.side.as_str()
        )
    }

    /// Parses the URI form, checking every part (no escaping: every part is an address, a number
    /// or a DNS label).
    pub(crate) fn from_uri(uri: &str) -> Result<Self, OverlayError> {
        let bad = |why: &str| OverlayError::Claim(format!("{why} in {uri:?}"));
        let rest = uri
            .strip_prefix(CLAIM_SCHEME)
            .ok_or_else(|| bad("no akash-tunnel scheme"))?;
        let (path, query) = rest.split_once('?').ok_or_else(|| bad("no query"))?;
        let parts: Vec<&str> = path.split('/').collect();
        let [owner, dseq, gseq, service] = parts[..] else {
            return Err(bad("not owner/dseq/gseq/service"));
        };
        let (mut peer_gseq, mut peer, mut port, mut side) = (None, None, None, None);
        for pair in query.split('&') {
            let (k, v) = pair
                .split_once('=')
                .ok_or_else(|| bad("a query part without '='"))?;
            let slot = match k {
                "peer_gseq" => &mut peer_gseq,
                "peer" => &mut peer,
                "port" => &mut port,
                "side" => &mut side,
                _ => return Err(bad("an unknown query key")),
            };
            if slot.replace(v).is_some() {
                return Err(bad("a repeated query key"));
            }
        }
        let claim = Self {
            owner: owner.to_owned(),
            dseq: dseq.parse().map_err(|_| bad("a bad dseq"))?,
            gseq: gseq.parse().map_err(|_| bad("a bad gseq"))?,
            service: service.to_owned(),
            peer_gseq: peer_gseq
                .ok_or_else(|| bad("no peer_gseq"))?
                .parse()
                .map_err(|_| bad("a bad peer_gseq"))?,
            peer_service: peer.ok_or_else(|| bad("no peer"))?.to_owned(),
            port: port
                .ok_or_else(|| bad("no port"))?
                .parse()
                .map_err(|_| bad("a bad port"))?,
            side: match side.ok_or_else(|| bad("no side"))? {
                "client" => Side::Client,
                "server" => Side::Server,
                _ => return Err(bad("a bad side")),
            },
        };
        claim.validate()?;
        Ok(claim)
    }

    /// Checks the parts can be written in a URI unescaped and read back the same.
    pub fn validate(&self) -> Result<(), OverlayError> {
        match self.owner.parse::<cosmrs::AccountId>() {
            Ok(id) if id.prefix() == "akash" => {}
            _ => {
                return Err(OverlayError::Claim(format!(
                    "owner {:?} is not an akash address",
                    self.owner
                )));
            }
        }
        for name in [&self.service, &self.peer_service] {
            let label = !name.is_empty()
                && name.len() <= 63
                && name
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
            if !label {
                return Err(OverlayError::Claim(format!(
                    "service {name:?} is not a DNS label"
                )));
            }
        }
        Ok(())
    }
}

/// A tunnel certificate and its key.
#[derive(Clone)]
pub struct TunnelCert {
    /// PEM "CERTIFICATE" of the leaf.
    pub(crate) cert_pem: String,
    /// PEM "PRIVATE KEY" (PKCS#8) of the leaf. Never log it.
    pub(crate) key_pem: String,
    /// DER, the leaf then the on-chain certificate: what the TLS handshake presents.
    pub chain_der: Vec<Vec<u8>>,
    pub(crate) not_after: SystemTime,
}

impl std::fmt::Debug for TunnelCert {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TunnelCert")
            .field("cert_pem", &self.cert_pem)
            .field("key_pem", &"[redacted]")
            .field("not_after", &self.not_after)
            .finish_non_exhaustive()
    }
}

impl TunnelCert {
    /// The chain and key as rustls signs with them (ring).
    pub(crate) fn certified_key(&self) -> Result<Arc<CertifiedKey>, OverlayError> {
        let key = PrivateKeyDer::from_pem_slice(self.key_pem.as_bytes())
            .map_err(|e| OverlayError::Issue(format!("tunnel key: {e}")))?;
        let signer = crate::gateway::tls::crypto()
            .key_provider
            .load_private_key(key)
            .map_err(|e| OverlayError::Issue(format!("tunnel key: {e}")))?;
        let certs = self
            .chain_der
            .iter()
            .map(|d| CertificateDer::from(d.clone()))
            .collect();
        Ok(Arc::new(CertifiedKey::new(certs, signer)))
    }
}

/// Issues a tunnel certificate for `claim`, valid for `valid_for`, signed by the provider's on-chain
/// certificate key (`provider_key_pem`, PKCS#8 PEM, must be the key of `provider_cert_pem`).
pub fn issue(
    provider_cert_pem: &str,
    provider_key_pem: &str,
    claim: &TunnelClaim,
    valid_for: Duration,
) -> Result<TunnelCert, OverlayError> {
    let issuer_der = CertificateDer::from_pem_slice(provider_cert_pem.as_bytes())
        .map_err(|e| OverlayError::Issue(format!("the provider certificate is not PEM: {e}")))?;
    let issuer_key = KeyPair::from_pem(provider_key_pem)
        .map_err(|e| OverlayError::Issue(format!("the provider key: {e}")))?;
    let (_, parsed) =
        X509Certificate::from_der(&issuer_der).map_err(|e| OverlayError::Issue(e.to_string()))?;
    // A leaf signed by another key would be refused by every peer; say so here instead.
    if parsed.public_key().subject_public_key.data.as_ref() != issuer_key.public_key_raw() {
        return Err(OverlayError::Issue(
            "the provider key does not belong to the provider certificate".into(),
        ));
    }
    sign_leaf(&issuer_der, &issuer_key, claim, valid_for)
}

/// Signs a leaf for `claim` with `issuer_key` as `issuer_der`'s subject, without checking that the
/// key is the certificate's (tests make bad leaves with it).
pub(crate) fn sign_leaf(
    issuer_der: &[u8],
    issuer_key: &KeyPair,
    claim: &TunnelClaim,
    valid_for: Duration,
) -> Result<TunnelCert, OverlayError> {
    claim.validate()?;
    let issue_err = |e: rcgen::Error| OverlayError::Issue(e.to_string());
    let provider = claimed_identity(issuer_der)?.owner;
    let issuer = Issuer::from_ca_cert_der(&CertificateDer::from(issuer_der), issuer_key)
        .map_err(issue_err)?;
    let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).map_err(issue_err)?;
    let mut params = CertificateParams::default();
    let mut name = DistinguishedName::new();
    name.push(DnType::CommonName, provider);
    params.distinguished_name = name;
    params.subject_alt_names = vec![SanType::URI(claim.to_uri().try_into().map_err(issue_err)?)];
    let now = SystemTime::now();
    let not_after = now + valid_for;
    params.not_before = (now - BACKDATE).into();
    params.not_after = not_after.into();
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = vec![match claim.side {
        Side::Client => ExtendedKeyUsagePurpose::ClientAuth,
        Side::Server => ExtendedKeyUsagePurpose::ServerAuth,
    }];
    let cert = params.signed_by(&key, &issuer).map_err(issue_err)?;
    Ok(TunnelCert {
        cert_pem: cert.pem(),
        key_pem: key.serialize_pem(),
        chain_der: vec![cert.der().to_vec(), issuer_der.to_vec()],
        not_after,
    })
}

/// Who sent a tunnel chain that passed [`verify`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedTunnelPeer {
    /// The provider's address (owner of the on-chain certificate).
    pub provider: String,
    /// The decimal serial of its on-chain certificate.
    pub provider_cert_serial: String,
    pub claim: TunnelClaim,
    /// SHA-256 of the leaf's DER, lowercase hex.
    pub leaf_sha256_hex: String,
}

/// The provider and on-chain certificate serial a tunnel chain claims, before any check: which
/// on-chain certificates to look up before calling [`verify`].
pub fn claimed_provider(chain_der: &[Vec<u8>]) -> Result<(String, String), OverlayError> {
    let [_, root] = chain_der else {
        return Err(OverlayError::ChainLength(chain_der.len()));
    };
    let peer = claimed_identity(root)?;
    Ok((peer.owner, peer.serial))
}

/// Checks a tunnel chain (`[leaf, on-chain certificate]`, DER) against what the chain holds.
pub fn verify(
    chain_der: &[Vec<u8>],
    on_chain: &[OnChainCertificate],
    now: SystemTime,
) -> Result<VerifiedTunnelPeer, OverlayError> {
    let [leaf_der, root_der] = chain_der else {
        return Err(OverlayError::ChainLength(chain_der.len()));
    };
    let root_peer = verify_peer(std::slice::from_ref(root_der), on_chain, now)?;
    let provider = root_peer.owner;
    let (_, root) =
        X509Certificate::from_der(root_der).map_err(|e| OverlayError::Parse(e.to_string()))?;
    let (_, leaf) =
        X509Certificate::from_der(leaf_der).map_err(|e| OverlayError::Parse(e.to_string()))?;
    if leaf.issuer().as_raw() != root.subject().as_raw() {
        return Err(OverlayError::IssuerMismatch {
            issuer: leaf.issuer().to_string(),
            subject: root.subject().to_string(),
        });
    }
    if leaf.verify_signature(Some(root.public_key())).is_err() {
        return Err(OverlayError::BadSignature { provider });
    }
    let seconds = now
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or_default();
    let validity = leaf.validity();
    if seconds < validity.not_before.timestamp() || seconds > validity.not_after.timestamp() {
        return Err(OverlayError::Expired { provider });
    }
    let subject = leaf
        .subject()
        .iter_common_name()
        .next()
        .and_then(|cn| cn.as_str().ok())
        .unwrap_or_default()
        .to_owned();
    if subject != provider {
        return Err(OverlayError::SubjectMismatch { subject, provider });
    }
    let claim = claim_of(&leaf)?;
    Ok(VerifiedTunnelPeer {
        provider,
        provider_cert_serial: root_peer.serial,
        claim,
        leaf_sha256_hex: super::hex(&Sha256::digest(leaf_der)),
    })
}

/// The one tunnel claim in a leaf's SAN URIs.
fn claim_of(leaf: &X509Certificate<'_>) -> Result<TunnelClaim, OverlayError> {
    let san = leaf
        .subject_alternative_name()
        .map_err(|e| OverlayError::Claim(e.to_string()))?
        .ok_or_else(|| OverlayError::Claim("no subject alternative name".into()))?;
    let uris: Vec<&str> = san
        .value
        .general_names
        .iter()
        .filter_map(|n| match n {
            GeneralName::URI(u) if u.starts_with(CLAIM_SCHEME) => Some(*u),
            _ => None,
        })
        .collect();
    match uris[..] {
        [uri] => TunnelClaim::from_uri(uri),
        _ => Err(OverlayError::Claim(format!(
            "{} akash-tunnel URIs; exactly one is accepted",
            uris.len()
        ))),
    }
}
