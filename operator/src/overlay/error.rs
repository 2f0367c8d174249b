//! Why a tunnel could not be made, served or trusted.

use chain_client::cert::CertError;

/// Every failure of the overlay data plane. `metric_label` gives a short, stable label for metrics.
#[derive(Debug, thiserror::Error)]
pub enum OverlayError {
    #[error("cannot make the tunnel certificate: {0}")]
    Issue(String),
    #[error(
        "the peer presented {0} certificates; a tunnel peer presents exactly two (tunnel leaf, on-chain certificate)"
    )]
    ChainLength(usize),
    #[error("the peer's tunnel certificate is not valid X.509: {0}")]
    Parse(String),
    #[error("the peer's on-chain certificate: {0}")]
    OnChain(#[from] CertError),
    #[error(
        "the tunnel certificate is issued by {issuer:?}, not by the on-chain certificate {subject:?}"
    )]
    IssuerMismatch { issuer: String, subject: String },
    #[error("the tunnel certificate is not signed by the key of {provider}'s on-chain certificate")]
    BadSignature { provider: String },
    #[error("the tunnel certificate of {provider} is outside its validity period")]
    Expired { provider: String },
    #[error(
        "the tunnel certificate names {subject:?}, but its on-chain certificate is {provider}'s"
    )]
    SubjectMismatch { subject: String, provider: String },
    #[error("the tunnel certificate carries no valid tunnel claim: {0}")]
    Claim(String),
    #[error("the tunnel peer is {got}, expected {expected}")]
    WrongPeer { expected: String, got: String },
    #[error("tunnel preamble of {len} bytes exceeds the limit of {max}")]
    PreambleTooLarge { len: usize, max: usize },
    #[error("invalid tunnel preamble: {0}")]
    PreambleInvalid(String),
    #[error("invalid tunnel preamble: {0}")]
    PreambleJson(#[source] serde_json::Error),
    #[error("the tunnel was refused: {0}")]
    Refused(String),
    #[error("TLS: {0}")]
    Tls(String),
    /// The TLS handshake failed (its I/O error carries rustls' alert or the transport's failure).
    #[error("TLS: {0}")]
    Handshake(#[source] std::io::Error),
    #[error("TLS: {0}")]
    Rustls(#[source] rustls::Error),
    #[error("timed out: {0}")]
    Timeout(&'static str),
    #[error("cannot reach the tunnel target {target}: {source}")]
    Target {
        target: String,
        #[source]
        source: std::io::Error,
    },
    #[error("I/O: {0}")]
    Io(#[from] std::io::Error),
}

impl OverlayError {
    /// A short label for the metrics' `reason`.
    pub fn metric_label(&self) -> &'static str {
        match self {
            Self::Issue(_) => "issue",
            Self::ChainLength(_) => "chain_length",
            Self::Parse(_) => "parse",
            Self::OnChain(_) => "not_on_chain",
            Self::IssuerMismatch { .. } => "issuer_mismatch",
            Self::BadSignature { .. } => "bad_signature",
            Self::Expired { .. } => "expired",
            Self::SubjectMismatch { .. } => "subject_mismatch",
            Self::Claim(_) => "claim",
            Self::WrongPeer { .. } => "wrong_peer",
            Self::PreambleTooLarge { .. } => "preamble_too_large",
            Self::PreambleInvalid(_) | Self::PreambleJson(_) => "preamble_invalid",
            Self::Refused(_) => "refused",
            Self::Tls(_) | Self::Handshake(_) | Self::Rustls(_) => "tls",
            Self::Timeout(_) => "timeout",
            Self::Target { .. } => "target",
            Self::Io(_) => "io",
        }
    }
}
