//! On-chain certificates in Akash's shape, and checking a peer's certificate against the chain.
//!
//! Shape (as the Go provider and tenant tools make them): a self-signed ECDSA P-256 certificate whose
//! subject and issuer common name is the owner's bech32 address, whose serial is the creation time in
//! Unix nanoseconds, carrying the subject attribute 2.23.133.2.6 = "v0.0.1", with client
//! authentication (and server authentication plus DNS names for a provider). It is published with
//! `MsgCreateCertificate { owner, cert: PEM "CERTIFICATE", pubkey: PEM "EC PUBLIC KEY" }`.
//!
//! A peer is accepted when it presents exactly one certificate that is byte for byte a valid
//! certificate the chain holds for the owner named in it, within its validity period, and correctly
//! self-signed: the on-chain certificate is the only root it can chain to.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rcgen::{
    CertificateParams, DistinguishedName, DnType, DnValue, ExtendedKeyUsagePurpose, KeyPair,
    KeyUsagePurpose, SerialNumber,
};
use x509_parser::prelude::{FromDer, X509Certificate};

use crate::akash::cert::v1::{
    CertificateFilter, CertificateResponse, Id, MsgCreateCertificate, MsgRevokeCertificate, State,
};

/// The subject attribute Akash adds to mark its certificate format.
pub const AUTH_VERSION_OID: [u64; 5] = [2, 23, 133, 2, 6];
const AUTH_VERSION: &str = "v0.0.1";

/// What a certificate is for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CertificateRole {
    /// A tenant: client authentication only.
    Client,
    /// A provider: client and server authentication for these DNS names (its gateway hosts).
    Server { dns_names: Vec<String> },
}

/// A freshly made certificate and its private key.
pub struct CertificateKeyPair {
    /// PEM "CERTIFICATE".
    pub cert_pem: String,
    /// PEM "EC PUBLIC KEY" (the SubjectPublicKeyInfo), as the chain stores it.
    pub pubkey_pem: String,
    /// Decimal serial, as the chain's queries name it.
    pub serial: String,
    key_pem: String,
}

impl std::fmt::Debug for CertificateKeyPair {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CertificateKeyPair")
            .field("serial", &self.serial)
            .field("key_pem", &"[redacted]")
            .finish_non_exhaustive()
    }
}

impl CertificateKeyPair {
    /// The private key, PEM "PRIVATE KEY" (PKCS#8). Keep it in a Secret; never log it.
    pub fn key_pem(&self) -> &str {
        &self.key_pem
    }

    /// The message that publishes this certificate for `owner`.
    pub fn create_msg(&self, owner: &str) -> MsgCreateCertificate {
        MsgCreateCertificate {
            owner: owner.to_string(),
            cert: self.cert_pem.clone().into_bytes(),
            pubkey: self.pubkey_pem.clone().into_bytes(),
        }
    }
}

/// The message that publishes an existing certificate (`cert_pem`, its DER `der`) for `owner`:
/// for a certificate kept from an earlier run whose publication did not happen.
pub fn create_msg_for(
    owner: &str,
    cert_pem: &str,
    der: &[u8],
) -> Result<MsgCreateCertificate, CertError> {
    let (_, parsed) =
        X509Certificate::from_der(der).map_err(|e| CertError::Generate(e.to_string()))?;
    Ok(MsgCreateCertificate {
        owner: owner.to_string(),
        cert: cert_pem.as_bytes().to_vec(),
        pubkey: pem_encode("EC PUBLIC KEY", parsed.public_key().raw).into_bytes(),
    })
}

/// Why a certificate could not be made or was refused.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum CertError {
    #[error("{0:?} is not an akash bech32 address")]
    NotAnAddress(String),
    #[error("cannot make the certificate: {0}")]
    Generate(String),
    #[error("the peer presented {0} certificates; exactly one is accepted")]
    ChainLength(usize),
    #[error("the peer's certificate is not valid X.509: {0}")]
    Parse(String),
    #[error("the peer's certificate has no common name with an akash address")]
    NoAddress,
    #[error("the peer's certificate is issued by {issuer:?}, not by its subject {subject:?}")]
    NotSelfIssued { subject: String, issuer: String },
    #[error("the chain holds no valid certificate {serial} for {owner}")]
    NotOnChain { owner: String, serial: String },
    #[error("certificate {serial} of {owner} differs from the one on chain")]
    DiffersFromChain { owner: String, serial: String },
    #[error("certificate {serial} of {owner} is outside its validity period")]
    Expired { owner: String, serial: String },
    #[error("certificate {serial} of {owner} has a bad signature")]
    BadSignature { owner: String, serial: String },
}

/// Makes a certificate for `owner` valid from now for `valid_for`.
pub fn generate(
    owner: &str,
    role: &CertificateRole,
    valid_for: Duration,
) -> Result<CertificateKeyPair, CertError> {
    check_address(owner)?;
    let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)
        .map_err(|e| CertError::Generate(e.to_string()))?;
    let now = SystemTime::now();
    let nanos = now
        .duration_since(UNIX_EPOCH)
        .map_err(|e| CertError::Generate(e.to_string()))?
        .as_nanos();

    let dns_names = match role {
        CertificateRole::Client => Vec::new(),
        CertificateRole::Server { dns_names } => dns_names.clone(),
    };
    let mut params =
        CertificateParams::new(dns_names).map_err(|e| CertError::Generate(e.to_string()))?;
    let mut name = DistinguishedName::new();
    name.push(DnType::CommonName, owner);
    name.push(
        DnType::CustomDnType(AUTH_VERSION_OID.to_vec()),
        DnValue::PrintableString(
            AUTH_VERSION
                .try_into()
                .map_err(|e: rcgen::Error| CertError::Generate(e.to_string()))?,
        ),
    );
    params.distinguished_name = name;
    params.serial_number = Some(SerialNumber::from_slice(&nanos.to_be_bytes()));
    params.not_before = now.into();
    params.not_after = (now + valid_for).into();
    params.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::KeyEncipherment,
        KeyUsagePurpose::DataEncipherment,
        KeyUsagePurpose::KeyAgreement,
    ];
    params.extended_key_usages = match role {
        CertificateRole::Client => vec![ExtendedKeyUsagePurpose::ClientAuth],
        CertificateRole::Server { .. } => vec![
            ExtendedKeyUsagePurpose::ClientAuth,
            ExtendedKeyUsagePurpose::ServerAuth,
        ],
    };
    let cert = params
        .self_signed(&key)
        .map_err(|e| CertError::Generate(e.to_string()))?;
    // The chain stores the SubjectPublicKeyInfo, exactly as the certificate carries it.
    let (_, parsed) =
        X509Certificate::from_der(cert.der()).map_err(|e| CertError::Generate(e.to_string()))?;
    let pubkey_pem = pem_encode("EC PUBLIC KEY", parsed.public_key().raw);
    Ok(CertificateKeyPair {
        cert_pem: cert.pem(),
        pubkey_pem,
        serial: nanos.to_string(),
        key_pem: key.serialize_pem(),
    })
}

/// A certificate the chain holds, as its certificate query returns it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OnChainCertificate {
    pub owner: String,
    pub serial: String,
    /// True while the chain lists it as valid (not revoked).
    pub valid: bool,
    /// PEM "CERTIFICATE".
    pub cert_pem: Vec<u8>,
}

impl OnChainCertificate {
    /// The certificate of `owner` a certificate query returned.
    pub fn from_response(owner: &str, response: &CertificateResponse) -> Self {
        let cert = response.certificate.clone().unwrap_or_default();
        Self {
            owner: owner.to_owned(),
            serial: response.serial.clone(),
            valid: cert.state == State::Valid as i32,
            cert_pem: cert.cert,
        }
    }
}

/// The certificate query filter that finds the certificate `peer` claims to be (any state: a
/// revoked one is found and refused as not valid).
pub fn lookup_filter(peer: &VerifiedPeer) -> CertificateFilter {
    CertificateFilter {
        owner: peer.owner.clone(),
        serial: peer.serial.clone(),
        state: String::new(),
    }
}

/// The message that revokes `owner`'s certificate `serial` (decimal); signed by `owner`.
pub fn revoke_msg(owner: &str, serial: &str) -> MsgRevokeCertificate {
    MsgRevokeCertificate {
        id: Some(Id {
            owner: owner.to_owned(),
            serial: serial.to_owned(),
        }),
    }
}

/// Who a verified peer is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedPeer {
    pub owner: String,
    pub serial: String,
}

/// The owner and decimal serial a certificate claims, before any check against the chain: what to
/// look up on chain for it.
pub fn claimed_identity(der: &[u8]) -> Result<VerifiedPeer, CertError> {
    let (_, cert) = X509Certificate::from_der(der).map_err(|e| CertError::Parse(e.to_string()))?;
    let owner = common_name(cert.subject()).ok_or(CertError::NoAddress)?;
    check_address(&owner).map_err(|_| CertError::NoAddress)?;
    Ok(VerifiedPeer {
        owner,
        serial: cert.tbs_certificate.serial.to_string(),
    })
}

/// The owner (the akash address in the common name) of a certificate in PEM: whom one's own
/// certificate names, without its key.
pub fn owner_of_pem(cert_pem: &str) -> Result<String, CertError> {
    let der = pem_decode_certificate(cert_pem.as_bytes())
        .ok_or_else(|| CertError::Parse("no PEM CERTIFICATE block".into()))?;
    Ok(claimed_identity(&der)?.owner)
}

/// Checks a peer's certificate chain (DER, leaf first) against what the chain holds for it.
pub fn verify_peer(
    chain: &[Vec<u8>],
    on_chain: &[OnChainCertificate],
    now: SystemTime,
) -> Result<VerifiedPeer, CertError> {
    let [der] = chain else {
        return Err(CertError::ChainLength(chain.len()));
    };
    let (_, cert) = X509Certificate::from_der(der).map_err(|e| CertError::Parse(e.to_string()))?;
    let owner = common_name(cert.subject()).ok_or(CertError::NoAddress)?;
    check_address(&owner).map_err(|_| CertError::NoAddress)?;
    let issuer = common_name(cert.issuer()).unwrap_or_default();
    if issuer != owner {
        return Err(CertError::NotSelfIssued {
            subject: owner,
            issuer,
        });
    }
    let serial = cert.tbs_certificate.serial.to_string();
    let held = on_chain
        .iter()
        .find(|c| c.valid && c.owner == owner && c.serial == serial)
        .ok_or_else(|| CertError::NotOnChain {
            owner: owner.clone(),
            serial: serial.clone(),
        })?;
    let held_der =
        pem_decode_certificate(&held.cert_pem).ok_or_else(|| CertError::DiffersFromChain {
            owner: owner.clone(),
            serial: serial.clone(),
        })?;
    if held_der != *der {
        return Err(CertError::DiffersFromChain { owner, serial });
    }
    let seconds = now
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or_default();
    let validity = cert.validity();
    if seconds < validity.not_before.timestamp() || seconds > validity.not_after.timestamp() {
        return Err(CertError::Expired { owner, serial });
    }
    if cert.verify_signature(None).is_err() {
        return Err(CertError::BadSignature { owner, serial });
    }
    Ok(VerifiedPeer { owner, serial })
}

fn check_address(address: &str) -> Result<(), CertError> {
    match address.parse::<cosmrs::AccountId>() {
        Ok(id) if id.prefix() == "akash" => Ok(()),
        _ => Err(CertError::NotAnAddress(address.to_string())),
    }
}

fn common_name(name: &x509_parser::x509::X509Name<'_>) -> Option<String> {
    name.iter_common_name()
        .next()
        .and_then(|cn| cn.as_str().ok())
        .map(str::to_string)
}

fn pem_encode(label: &str, der: &[u8]) -> String {
    let body = data_encoding::BASE64.encode(der);
    let mut out = format!("-----BEGIN {label}-----\n");
    for line in body.as_bytes().chunks(64) {
        out.push_str(std::str::from_utf8(line).unwrap_or_default());
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out
}

fn pem_decode_certificate(pem: &[u8]) -> Option<Vec<u8>> {
    let text = std::str::from_utf8(pem).ok()?;
    let body: String = text
        .lines()
        .skip_while(|l| !l.starts_with("-----BEGIN CERTIFICATE-----"))
        .skip(1)
        .take_while(|l| !l.starts_with("-----END CERTIFICATE-----"))
        .collect();
    data_encoding::BASE64.decode(body.trim().as_bytes()).ok()
}

#[cfg(test)]
mod tests;
