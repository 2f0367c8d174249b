//! The provider gateway in process for the gateway tests: real TLS on loopback, `FakeChain`,
//! Lease resources in memory, a tenant, a stranger and a certificate the chain does not hold.

#![allow(dead_code)] // each test file uses its own part of it

use std::sync::Arc;
use std::time::Duration;

use chain_client::akash::base::resources::v1beta4 as res;
use chain_client::akash::cert::v1::{Certificate, CertificateResponse, State as CertState};
use chain_client::akash::deployment::v1 as dv1;
use chain_client::akash::deployment::v1beta4 as dv4;
use chain_client::akash::manifest::v2beta3 as mv;
use chain_client::cert::{CertificateKeyPair, CertificateRole, generate};
use chain_client::chain::QueryDeploymentResponse;
use chain_client::fake::FakeChain;
use chain_client::keys::Key;
use crds::resources::{Lease, LeaseRef, LeaseSpec, Price};
use crds::sdl::{ManifestGroup, Sdl};
use operator::gateway::{
    GatewayConfig, GatewayExtras, GatewayHandle, GatewayLimits, LeaseSource, MemoryLeaseSource,
    ServerIdentity, serve_with,
};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};

pub const DSEQ: u64 = 7;
pub const MAX: usize = 64 << 10;

pub fn address() -> String {
    Key::random("akash").expect("key").address().to_string()
}

pub fn sdl(count: u32) -> Sdl {
    Sdl::parse(&format!(
        r#"
version: "2.0"
services:
  web:
    image: nginx:1.27
    expose:
      - port: 80
        as: 80
        to: [{{global: true}}]
profiles:
  compute:
    web:
      resources:
        cpu: {{units: 0.5}}
        memory: {{size: 512Mi}}
        storage: {{size: 1Gi}}
  placement:
    dc:
      pricing:
        web: {{denom: uact, amount: 1000}}
deployment:
  web:
    dc:
      profile: web
      count: {count}
"#
    ))
    .expect("test SDL")
}

pub fn on_chain(pair: &CertificateKeyPair) -> CertificateResponse {
    CertificateResponse {
        certificate: Some(Certificate {
            state: CertState::Valid as i32,
            cert: pair.cert_pem.clone().into_bytes(),
            pubkey: pair.pubkey_pem.clone().into_bytes(),
        }),
        serial: pair.serial.clone(),
    }
}

pub fn deployment(owner: &str, sdl: &Sdl) -> QueryDeploymentResponse {
    let groups = operator::chain_groups::to_chain(sdl.groups()).expect("groups");
    QueryDeploymentResponse {
        deployment: Some(dv1::Deployment {
            id: Some(dv1::DeploymentId {
                owner: owner.into(),
                dseq: DSEQ,
            }),
            state: dv1::deployment::State::Active as i32,
            hash: sdl.manifest_version().to_vec(),
            created_at: 1,
            reclamation: None,
        }),
        groups: groups
            .into_iter()
            .enumerate()
            .map(|(i, spec)| dv4::Group {
                id: Some(dv1::GroupId {
                    owner: owner.into(),
                    dseq: DSEQ,
                    gseq: i as u32 + 1,
                }),
                state: dv4::group::State::Open as i32,
                group_spec: Some(spec),
                created_at: 1,
            })
            .collect(),
        escrow_account: None,
    }
}

pub fn lease(owner: &str, provider: &str) -> Lease {
    let id = LeaseRef {
        owner: owner.into(),
        dseq: DSEQ,
        gseq: 1,
        oseq: 1,
        provider: provider.into(),
    };
    Lease::new(
        &id.order().object_name(),
        LeaseSpec {
            lease_id: id,
            price: Price {
                denom: "uact".into(),
                amount: "1000".into(),
            },
            created_at: Some(3),
            manifest: None,
            deployment_manifest: None,
        },
    )
}

/// The test client trusts whatever server certificate it is shown (the provider's is
/// self-signed), but still checks the handshake signature.
#[derive(Debug)]
pub struct AnyServer(rustls::crypto::WebPkiSupportedAlgorithms);

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

pub fn tls_client(identity: Option<&CertificateKeyPair>, alpn: &[u8]) -> rustls::ClientConfig {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let algorithms = provider.signature_verification_algorithms;
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])
        .expect("TLS 1.3")
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(AnyServer(algorithms)));
    let mut config = match identity {
        Some(pair) => builder
            .with_client_auth_cert(
                vec![CertificateDer::from_pem_slice(pair.cert_pem.as_bytes()).expect("cert")],
                PrivateKeyDer::from_pem_slice(pair.key_pem().as_bytes()).expect("key"),
            )
            .expect("client identity"),
        None => builder.with_no_client_auth(),
    };
    config.alpn_protocols = vec![alpn.to_vec()];
    config
}

pub fn http(identity: Option<&CertificateKeyPair>) -> reqwest::Client {
    reqwest::Client::builder()
        .use_preconfigured_tls(tls_client(identity, b"http/1.1"))
        .timeout(Duration::from_secs(20))
        .build()
        .expect("client")
}

/// A gateway of the provider whose certificate is `server`, over `chain` and `leases`.
pub async fn gateway_over(
    chain: &FakeChain,
    server: &CertificateKeyPair,
    leases: Arc<dyn LeaseSource>,
    limits: GatewayLimits,
) -> GatewayHandle {
    gateway_over_with(chain, server, leases, limits, GatewayExtras::default()).await
}

/// [`gateway_over`] with `extras` (logs, shell, status).
pub async fn gateway_over_with(
    chain: &FakeChain,
    server: &CertificateKeyPair,
    leases: Arc<dyn LeaseSource>,
    limits: GatewayLimits,
    extras: GatewayExtras,
) -> GatewayHandle {
    let provider = chain_client::cert::claimed_identity(
        &CertificateDer::from_pem_slice(server.cert_pem.as_bytes()).expect("cert"),
    )
    .expect("provider certificate")
    .owner;
    serve_with(
        GatewayConfig {
            rest_addr: "127.0.0.1:0".parse().unwrap(),
            grpc_addr: "127.0.0.1:0".parse().unwrap(),
            max_manifest_bytes: MAX,
            provider_address: provider,
            namespace: "akash-provider".into(),
            peer_serve_limit: 4,
            peer_fetch: None,
            hostnames: Default::default(),
            limits,
            cluster_public_hostname: "provider.example.com".into(),
        },
        ServerIdentity {
            cert_pem: server.cert_pem.clone(),
            key_pem: server.key_pem().to_owned(),
        },
        Arc::new(chain.clone()),
        leases,
        extras,
    )
    .await
    .expect("gateway starts")
}

/// A provider's server certificate for loopback.
pub fn server_certificate(provider: &str) -> CertificateKeyPair {
    generate(
        provider,
        &CertificateRole::Server {
            dns_names: vec!["localhost".into(), "127.0.0.1".into()],
        },
        Duration::from_secs(365 * 24 * 3600),
    )
    .expect("provider cert")
}

pub struct World {
    pub chain: FakeChain,
    /// The tenant's and the stranger's account keys (for tokens).
    pub tenant_key: Key,
    pub stranger_key: Key,
    pub source: Arc<MemoryLeaseSource>,
    pub gateway: GatewayHandle,
    pub provider: String,
    pub tenant: CertificateKeyPair,
    pub stranger: CertificateKeyPair,
    pub unknown: CertificateKeyPair,
}

impl World {
    pub async fn start() -> Self {
        Self::start_with(GatewayLimits::default()).await
    }

    pub async fn start_with(limits: GatewayLimits) -> Self {
        Self::start_with_extras(limits, GatewayExtras::default()).await
    }

    pub async fn start_with_extras(limits: GatewayLimits, extras: GatewayExtras) -> Self {
        let provider = address();
        // The tenant and the stranger are accounts with keys on chain: they can sign tokens.
        let tenant_key = Key::random("akash").expect("key");
        let stranger_key = Key::random("akash").expect("key");
        let tenant_addr = tenant_key.address().to_string();
        let stranger_addr = stranger_key.address().to_string();
        let year = Duration::from_secs(365 * 24 * 3600);
        let server = server_certificate(&provider);
        let tenant = generate(&tenant_addr, &CertificateRole::Client, year).expect("tenant");
        let stranger = generate(&stranger_addr, &CertificateRole::Client, year).expect("stranger");
        let unknown = generate(&tenant_addr, &CertificateRole::Client, year).expect("unknown");
        let chain = FakeChain::new(&provider);
        {
            let mut st = chain.state();
            st.certificates.push(on_chain(&tenant));
            st.certificates.push(on_chain(&stranger));
            st.deployments.push(deployment(&tenant_addr, &sdl(2)));
            for key in [&tenant_key, &stranger_key] {
                let address = key.address().to_string();
                st.accounts.insert(
                    address.clone(),
                    chain_client::transport::AccountInfo {
                        address,
                        account_number: 1,
                        sequence: 1,
                        pub_key: Some(key.public_key().to_bytes()),
                    },
                );
            }
        }
        let source = Arc::new(MemoryLeaseSource::with([lease(&tenant_addr, &provider)]));
        let gateway = gateway_over_with(&chain, &server, source.clone(), limits, extras).await;
        Self {
            chain,
            tenant_key,
            stranger_key,
            source,
            gateway,
            provider,
            tenant,
            stranger,
            unknown,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("https://127.0.0.1:{}{path}", self.gateway.rest_addr.port())
    }

    pub fn tenant_addr(&self) -> String {
        let der = CertificateDer::from_pem_slice(self.tenant.cert_pem.as_bytes()).unwrap();
        chain_client::cert::claimed_identity(&der).unwrap().owner
    }

    pub fn lease_name(&self) -> String {
        format!("{}-{DSEQ}-1-1", self.tenant_addr())
    }

    /// A websocket to `path_and_query` as `who` (`Err`: the HTTP status and body of a refusal).
    pub async fn websocket(
        &self,
        who: Option<&CertificateKeyPair>,
        path_and_query: &str,
    ) -> Result<
        tokio_tungstenite::WebSocketStream<tokio_rustls::client::TlsStream<tokio::net::TcpStream>>,
        (u16, String),
    > {
        self.websocket_with(who, None, path_and_query).await
    }

    /// [`World::websocket`], with `bearer` as `Authorization: Bearer` when given.
    pub async fn websocket_with(
        &self,
        who: Option<&CertificateKeyPair>,
        bearer: Option<&str>,
        path_and_query: &str,
    ) -> Result<
        tokio_tungstenite::WebSocketStream<tokio_rustls::client::TlsStream<tokio::net::TcpStream>>,
        (u16, String),
    > {
        let addr = self.gateway.rest_addr;
        let tcp = tokio::net::TcpStream::connect(addr).await.expect("connect");
        let tls = tokio_rustls::TlsConnector::from(Arc::new(tls_client(who, b"http/1.1")))
            .connect(ServerName::try_from("localhost").unwrap(), tcp)
            .await
            .map_err(|e| (0, e.to_string()))?;
        use tokio_tungstenite::tungstenite::client::IntoClientRequest as _;
        let mut request = format!("wss://{addr}{path_and_query}")
            .into_client_request()
            .expect("request");
        if let Some(token) = bearer {
            request.headers_mut().insert(
                "authorization",
                format!("Bearer {token}").parse().expect("header"),
            );
        }
        match tokio_tungstenite::client_async(request, tls).await {
            Ok((socket, _)) => Ok(socket),
            Err(tokio_tungstenite::tungstenite::Error::Http(response)) => Err((
                response.status().as_u16(),
                String::from_utf8_lossy(response.body().as_deref().unwrap_or_default())
                    .into_owned(),
            )),
            Err(e) => Err((0, e.to_string())),
        }
    }

    pub async fn put(&self, who: Option<&CertificateKeyPair>, body: Vec<u8>) -> (u16, String) {
        let response = http(who)
            .put(self.url(&format!("/deployment/{DSEQ}/manifest")))
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .expect("request");
        let status = response.status().as_u16();
        (status, response.text().await.unwrap_or_default())
    }
}

/// The manifest as the protobuf the SDK sends over gRPC.
pub fn to_proto(group: &ManifestGroup) -> mv::Group {
    let value = |v: &crds::sdl::groups::ResourceValue| {
        Some(res::ResourceValue {
            val: v.val.clone().into_bytes(),
        })
    };
    mv::Group {
        name: group.name.clone(),
        services: group
            .services
            .iter()
            .map(|s| mv::Service {
                name: s.name.clone(),
                image: s.image.clone(),
                command: s.command.clone().unwrap_or_default(),
                args: s.args.clone().unwrap_or_default(),
                env: s.env.clone().unwrap_or_default(),
                resources: Some(res::Resources {
                    id: s.resources.id,
                    cpu: Some(res::Cpu {
                        units: value(&s.resources.cpu.units),
                        attributes: vec![],
                    }),
                    memory: Some(res::Memory {
                        quantity: value(&s.resources.memory.size),
                        attributes: vec![],
                    }),
                    storage: s
                        .resources
                        .storage
                        .iter()
                        .map(|st| res::Storage {
                            name: st.name.clone(),
                            quantity: value(&st.size),
                            attributes: vec![],
                        })
                        .collect(),
                    gpu: Some(res::Gpu {
                        units: value(&s.resources.gpu.units),
                        attributes: vec![],
                    }),
                    endpoints: s
                        .resources
                        .endpoints
                        .iter()
                        .map(|e| res::Endpoint {
                            kind: e.kind.unwrap_or(0),
                            sequence_number: e.sequence_number,
                        })
                        .collect(),
                }),
                count: s.count,
                expose: s
                    .expose
                    .iter()
                    .map(|e| mv::ServiceExpose {
                        port: e.port.into(),
                        external_port: e.external_port.into(),
                        proto: e.proto.clone(),
                        service: e.service.clone(),
                        global: e.global,
                        hosts: e.hosts.clone().unwrap_or_default(),
                        http_options: Some(mv::ServiceExposeHttpOptions {
                            max_body_size: e.http_options.max_body_size as u32,
                            read_timeout: e.http_options.read_timeout as u32,
                            send_timeout: e.http_options.send_timeout as u32,
                            next_tries: e.http_options.next_tries as u32,
                            next_timeout: e.http_options.next_timeout as u32,
                            next_cases: e.http_options.next_cases.clone(),
                        }),
                        ip: e.ip.clone(),
                        endpoint_sequence_number: e.endpoint_sequence_number,
                    })
                    .collect(),
                params: None,
                credentials: None,
            })
            .collect(),
    }
}

pub async fn grpc_channel(world: &World, who: &CertificateKeyPair) -> tonic::transport::Channel {
    grpc_channel_as(world, Some(who)).await
}

/// A gRPC connection presenting `who`'s certificate, or none.
pub async fn grpc_channel_as(
    world: &World,
    who: Option<&CertificateKeyPair>,
) -> tonic::transport::Channel {
    let connector = tokio_rustls::TlsConnector::from(Arc::new(tls_client(who, b"h2")));
    let addr = world.gateway.grpc_addr;
    tonic::transport::Endpoint::from_shared(format!("http://{addr}"))
        .expect("endpoint")
        .connect_with_connector(tower::service_fn(move |_| {
            let connector = connector.clone();
            async move {
                let tcp = tokio::net::TcpStream::connect(addr).await?;
                let tls = connector
                    .connect(ServerName::try_from("localhost").unwrap(), tcp)
                    .await?;
                Ok::<_, std::io::Error>(hyper_util::rt::TokioIo::new(tls))
            }
        }))
        .await
        .expect("gRPC connection")
}
