//! What the attack tests (`tests/attacks/`) do to a provider that no well-behaved client does:
//! connect from another loopback address, speak TLS trusting any server, send raw bytes as a
//! gRPC message, and announce a request body only to wait for `100 Continue`.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use operator::gateway::client::TenantIdentity;
use prost::bytes::{Buf, BufMut};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};
use tonic::codec::{Codec, DecodeBuf, Decoder, EncodeBuf, Encoder};

/// Another loopback address than the tenants' 127.0.0.1: one source, as far as the provider sees.
pub const ATTACKER: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(127, 0, 0, 2));

/// Accepts whatever server certificate it is shown (an attacker does not care whom it talks
/// to), checking only the handshake signature.
#[derive(Debug)]
struct AnyServer(rustls::crypto::WebPkiSupportedAlgorithms);

impl ServerCertVerifier for AnyServer {
    fn verify_server_cert(
        &self,
        _: &CertificateDer<'_>,
        _: &[CertificateDer<'_>],
        _: &ServerName<'_>,
        _: &[u8],
        _: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }
    fn verify_tls12_signature(
        &self,
        m: &[u8],
        c: &CertificateDer<'_>,
        d: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(m, c, d, &self.0)
    }
    fn verify_tls13_signature(
        &self,
        m: &[u8],
        c: &CertificateDer<'_>,
        d: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(m, c, d, &self.0)
    }
    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.supported_schemes()
    }
}

/// A TLS 1.3 client configuration that presents `identity` (or no certificate) and trusts any
/// server.
pub fn tls_trusting_any_server(
    identity: Option<&TenantIdentity>,
    alpn: &[u8],
) -> Arc<rustls::ClientConfig> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let algorithms = provider.signature_verification_algorithms;
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])
        .expect("TLS 1.3")
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(AnyServer(algorithms)));
    let mut config = match identity {
        Some(id) => builder
            .with_client_auth_cert(
                vec![CertificateDer::from_pem_slice(id.cert_pem.as_bytes()).expect("cert")],
                PrivateKeyDer::from_pem_slice(id.key_pem.as_bytes()).expect("key"),
            )
            .expect("client identity"),
        None => builder.with_no_client_auth(),
    };
    config.alpn_protocols = vec![alpn.to_vec()];
    Arc::new(config)
}

/// A TCP connection to `to` from the loopback address `source`.
pub async fn connect_from(source: IpAddr, to: SocketAddr) -> std::io::Result<TcpStream> {
    let socket = TcpSocket::new_v4()?;
    socket.bind(SocketAddr::new(source, 0))?;
    socket.connect(to).await
}

/// A TLS connection over `tcp`.
pub async fn tls_over(
    config: Arc<rustls::ClientConfig>,
    tcp: TcpStream,
) -> std::io::Result<tokio_rustls::client::TlsStream<TcpStream>> {
    tokio_rustls::TlsConnector::from(config)
        .connect(ServerName::try_from("localhost").expect("name"), tcp)
        .await
}

/// Sends and receives gRPC messages as raw bytes, whatever they are.
#[derive(Default)]
pub struct RawCodec;

impl Codec for RawCodec {
    type Encode = Vec<u8>;
    type Decode = Vec<u8>;
    type Encoder = RawCodec;
    type Decoder = RawCodec;
    fn encoder(&mut self) -> Self::Encoder {
        RawCodec
    }
    fn decoder(&mut self) -> Self::Decoder {
        RawCodec
    }
}

impl Encoder for RawCodec {
    type Item = Vec<u8>;
    type Error = tonic::Status;
    fn encode(&mut self, item: Vec<u8>, dst: &mut EncodeBuf<'_>) -> Result<(), tonic::Status> {
        dst.put_slice(&item);
        Ok(())
    }
}

impl Decoder for RawCodec {
    type Item = Vec<u8>;
    type Error = tonic::Status;
    fn decode(&mut self, src: &mut DecodeBuf<'_>) -> Result<Option<Vec<u8>>, tonic::Status> {
        let n = src.remaining();
        Ok(Some(src.copy_to_bytes(n).to_vec()))
    }
}

/// A gRPC channel to `addr` presenting `identity` (or no certificate).
pub async fn grpc_channel(
    addr: SocketAddr,
    identity: Option<&TenantIdentity>,
) -> anyhow::Result<tonic::transport::Channel> {
    let config = tls_trusting_any_server(identity, b"h2");
    Ok(
        tonic::transport::Endpoint::from_shared(format!("http://{addr}"))?
            .connect_with_connector(tower::service_fn(move |_| {
                let config = config.clone();
                async move {
                    let tls = tls_over(config, TcpStream::connect(addr).await?).await?;
                    Ok::<_, std::io::Error>(hyper_util::rt::TokioIo::new(tls))
                }
            }))
            .await?,
    )
}

/// `bytes` as the request of gRPC method `method` (`/package.Service/Method`) at `addr`.
pub async fn raw_grpc_call(
    addr: SocketAddr,
    identity: Option<&TenantIdentity>,
    method: &'static str,
    bytes: Vec<u8>,
) -> anyhow::Result<Result<Vec<u8>, tonic::Status>> {
    let mut grpc = tonic::client::Grpc::new(grpc_channel(addr, identity).await?);
    grpc.ready().await?;
    let path = tonic::codegen::http::uri::PathAndQuery::from_static(method);
    Ok(grpc
        .unary(tonic::Request::new(bytes), path, RawCodec)
        .await
        .map(tonic::Response::into_inner))
}

/// The first line of the answer to a `PUT` of `path` at `addr` that announces `length` bytes and
/// waits for `100 Continue` before sending them (it never sends them).
pub async fn status_line_of_a_waiting_put(
    addr: SocketAddr,
    identity: Option<&TenantIdentity>,
    path: &str,
    length: usize,
) -> anyhow::Result<String> {
    let config = tls_trusting_any_server(identity, b"http/1.1");
    let mut tls = tls_over(config, TcpStream::connect(addr).await?).await?;
    let head = format!(
        "PUT {path} HTTP/1.1\r\nhost: localhost\r\ncontent-type: application/json\r\n\
         content-length: {length}\r\nexpect: 100-continue\r\n\r\n"
    );
    tls.write_all(head.as_bytes()).await?;
    let mut answer = Vec::new();
    while !answer.windows(2).any(|w| w == b"\r\n") {
        let mut buf = [0u8; 256];
        let n = tls.read(&mut buf).await?;
        anyhow::ensure!(n > 0, "the gateway closed the connection without answering");
        answer.extend_from_slice(&buf[..n]);
    }
    Ok(String::from_utf8_lossy(&answer)
        .lines()
        .next()
        .unwrap_or_default()
        .to_owned())
}
