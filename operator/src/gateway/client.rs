//! The tenant's side of the gateway: a TLS 1.3 client that presents the tenant's on-chain
//! certificate and accepts the server only if it presents the provider's certificate as the
//! chain holds it (the provider's address and a valid serial), as Akash tenant tools check it.
//! Used by the tenant controller, by the peer fetcher and by end-to-end tests.
//!
//! What a provider or a peer answers is not trusted either: gateways are reached over https only
//! ([`gateway_url`]), redirects are not followed (a redirect could send the client, with its
//! certificate, anywhere, plain http included), and bodies are read with a cap ([`read_capped`]).

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

impl From<crate::certificate::KeptCertificate> for TenantIdentity {
    fn from(kept: crate::certificate::KeptCertificate) -> Self {
        Self {
            cert_pem: kept.cert_pem,
            key_pem: kept.key_pem,
        }
    }
}

/// How a tenant proves who it is to a gateway.
#[derive(Clone, Copy)]
pub(crate) enum Credentials<'a> {
    /// Its certificate (mutual TLS).
    Certificate(&'a TenantIdentity),
    /// A token signed by its account key, sent as `Authorization: Bearer`.
    Token(&'a str),
}

/// A TLS configuration for talking to `provider`'s gateway, presenting `identity` as client
/// certificate, or none: the provider's valid certificates are read from the chain now.
pub(crate) async fn tls_config_as(
    chain: &dyn Chain,
    provider: &str,
    identity: Option<&TenantIdentity>,
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
    let builder = rustls::ClientConfig::builder_with_provider(crypto)
        .with_protocol_versions(&[&rustls::version::TLS13])?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(OnChainProvider {
            provider: provider.to_owned(),
            on_chain,
            algorithms,
        }));
    let mut config = match identity {
        Some(identity) => {
            let cert = CertificateDer::from_pem_slice(identity.cert_pem.as_bytes())
                .map_err(|e| anyhow::anyhow!("the tenant certificate is not PEM: {e}"))?;
            let key = PrivateKeyDer::from_pem_slice(identity.key_pem.as_bytes())
                .map_err(|e| anyhow::anyhow!("the tenant key is not PEM: {e}"))?;
            builder.with_client_auth_cert(vec![cert], key)?
        }
        None => builder.with_no_client_auth(),
    };
    config.alpn_protocols = vec![alpn.to_vec()];
    Ok(config)
}

/// An HTTP client for `provider`'s REST gateway: https only, no redirects.
pub async fn rest_client(
    chain: &dyn Chain,
    provider: &str,
    identity: &TenantIdentity,
) -> anyhow::Result<reqwest::Client> {
    rest_client_as(chain, provider, Credentials::Certificate(identity)).await
}

/// [`rest_client`] with a certificate, or none (a token goes in each request).
pub(crate) async fn rest_client_as(
    chain: &dyn Chain,
    provider: &str,
    credentials: Credentials<'_>,
) -> anyhow::Result<reqwest::Client> {
    let identity = match credentials {
        Credentials::Certificate(identity) => Some(identity),
        Credentials::Token(_) => None,
    };
    let tls = tls_config_as(chain, provider, identity, b"http/1.1").await?;
    Ok(reqwest::Client::builder()
        .use_preconfigured_tls(tls)
        .https_only(true)
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(30))
        .build()?)
}

/// A websocket to `provider`'s gateway at `addr` (`host:port`) for `path_and_query`, over mutual
/// TLS as the tenant `identity`: lease logs. `Err` carries the HTTP status and body when the
/// gateway refused before the upgrade.
pub async fn open_websocket(
    chain: &dyn Chain,
    provider: &str,
    identity: &TenantIdentity,
    addr: &str,
    path_and_query: &str,
) -> anyhow::Result<
    tokio_tungstenite::WebSocketStream<tokio_rustls::client::TlsStream<tokio::net::TcpStream>>,
> {
    open_websocket_as(
        chain,
        provider,
        Credentials::Certificate(identity),
        addr,
        path_and_query,
    )
    .await
}

/// [`open_websocket`] with a certificate or a token.
pub(crate) async fn open_websocket_as(
    chain: &dyn Chain,
    provider: &str,
    credentials: Credentials<'_>,
    addr: &str,
    path_and_query: &str,
) -> anyhow::Result<
    tokio_tungstenite::WebSocketStream<tokio_rustls::client::TlsStream<tokio::net::TcpStream>>,
> {
    let (identity, token) = match credentials {
        Credentials::Certificate(identity) => (Some(identity), None),
        Credentials::Token(token) => (None, Some(token)),
    };
    let tls = tls_config_as(chain, provider, identity, b"http/1.1").await?;
    let tcp = tokio::net::TcpStream::connect(addr).await?;
    let host = addr.rsplit_once(':').map_or(addr, |(h, _)| h).to_owned();
    let name = rustls::pki_types::ServerName::try_from(host.clone())
        .map_err(|e| anyhow::anyhow!("{host}: {e}"))?;
    let stream = tokio_rustls::TlsConnector::from(Arc::new(tls))
        .connect(name, tcp)
        .await?;
    let url = format!("wss://{addr}{path_and_query}");
    use tokio_tungstenite::tungstenite::client::IntoClientRequest as _;
    let mut request = url.as_str().into_client_request()?;
    if let Some(token) = token {
        request.headers_mut().insert(
            tokio_tungstenite::tungstenite::http::header::AUTHORIZATION,
            format!("Bearer {token}").parse()?,
        );
    }
    match tokio_tungstenite::client_async(request, stream).await {
        Ok((socket, _)) => Ok(socket),
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
            let body = response
                .body()
                .as_deref()
                .map(String::from_utf8_lossy)
                .unwrap_or_default()
                .into_owned();
            anyhow::bail!("{}: {}", response.status().as_u16(), body.trim())
        }
        Err(e) => Err(e.into()),
    }
}

/// The host of a host URI (`https://provider.example.com:8443/` → `provider.example.com`; an
/// IPv6 address without its brackets), `None` when it has none.
pub(crate) fn host_of(uri: &str) -> Option<String> {
    let rest = uri.split_once("://").map_or(uri, |(_, r)| r);
    let authority = rest.split('/').next()?;
    let host = match authority.rsplit_once(':') {
        Some((h, p)) if p.bytes().all(|b| b.is_ascii_digit()) => h,
        _ => authority,
    };
    (!host.is_empty()).then(|| host.trim_matches(['[', ']']).to_owned())
}

/// `path` (starting with `/`) at the gateway of host URI `host_uri`, which must be https.
pub(crate) fn gateway_url(host_uri: &str, path: &str) -> Result<String, String> {
    let url = reqwest::Url::parse(host_uri.trim())
        .map_err(|e| format!("host URI {host_uri:?} is not a URL: {e}"))?;
    if url.scheme() != "https" {
        return Err(format!(
            "host URI {host_uri:?} is not https: a provider's gateway is reached over TLS only"
        ));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(format!("host URI {host_uri:?} names no host"));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(format!("host URI {host_uri:?} carries credentials"));
    }
    let base = url.as_str().split(['?', '#']).next().unwrap_or_default();
    Ok(format!("{}{path}", base.trim_end_matches('/')))
}

/// `host:port` of the gateway of host URI `host_uri` (https; port 443 when it names none).
pub(crate) fn gateway_addr(host_uri: &str) -> Result<String, String> {
    let url = reqwest::Url::parse(&gateway_url(host_uri, "/")?)
        .map_err(|e| format!("host URI {host_uri:?}: {e}"))?;
    let host = url.host_str().unwrap_or_default();
    Ok(format!(
        "{host}:{}",
        url.port_or_known_default().unwrap_or(443)
    ))
}

/// Why a body was not read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum ReadError {
    #[error("the answer is larger than {0} bytes")]
    TooLarge(usize),
    #[error("reading the answer: {0}")]
    Failed(String),
}

/// The body of `response`, if it is at most `cap` bytes; reading stops (and the connection is
/// dropped) as soon as it is known to be larger.
pub(crate) async fn read_capped(
    mut response: reqwest::Response,
    cap: usize,
) -> Result<Vec<u8>, ReadError> {
    if response.content_length().is_some_and(|n| n > cap as u64) {
        return Err(ReadError::TooLarge(cap));
    }
    let mut body = Vec::new();
    while let Some(chunk) = response
        .chunk()
        .await
        .map_err(|e| ReadError::Failed(e.to_string()))?
    {
        if body.len() + chunk.len() > cap {
            return Err(ReadError::TooLarge(cap));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// At most `chars` characters of an error answer's body (of at most 64 KiB), for a message.
pub(crate) async fn error_text(response: reqwest::Response, chars: usize) -> String {
    match read_capped(response, 64 << 10).await {
        Ok(body) => String::from_utf8_lossy(&body)
            .chars()
            .take(chars)
            .collect::<String>()
            .trim()
            .to_owned(),
        Err(e) => format!("({e})"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_of_takes_the_host_of_a_host_uri() {
        assert_eq!(
            host_of("https://provider.example.com:8443").as_deref(),
            Some("provider.example.com")
        );
        assert_eq!(
            host_of("https://p.example.com/").as_deref(),
            Some("p.example.com")
        );
        assert_eq!(
            host_of("https://127.0.0.1:8443").as_deref(),
            Some("127.0.0.1")
        );
        assert_eq!(host_of("127.0.0.1:8443").as_deref(), Some("127.0.0.1"));
        assert_eq!(host_of("https://[::1]:8443").as_deref(), Some("::1"));
        assert_eq!(host_of("https://"), None);
    }

    #[test]
    fn gateway_urls_are_https_with_a_host_and_no_credentials() {
        assert_eq!(
            gateway_url("https://p.example.com:8443", "/status").unwrap(),
            "https://p.example.com:8443/status"
        );
        assert_eq!(
            gateway_url("https://p.example.com/", "/status").unwrap(),
            "https://p.example.com/status"
        );
        for bad in [
            "http://p.example.com:8443",
            "p.example.com:8443",
            "ftp://p.example.com",
            "https://user:pw@p.example.com",
            "",
        ] {
            assert!(gateway_url(bad, "/status").is_err(), "{bad}");
        }
        let e = gateway_url("http://p.example.com", "/status").unwrap_err();
        assert!(e.contains("not https"), "{e}");
    }

    #[test]
    fn a_gateway_address_has_the_host_uris_port_or_443() {
        assert_eq!(
            gateway_addr("https://p.example.com:8443").unwrap(),
            "p.example.com:8443"
        );
        assert_eq!(
            gateway_addr("https://p.example.com/").unwrap(),
            "p.example.com:443"
        );
        assert!(gateway_addr("http://p.example.com:8443").is_err());
    }
}
