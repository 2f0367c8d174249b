//! Overlay tunnel cost against plain loopback TCP, in the same run: throughput through one
//! connection (a sink target that acknowledges the end) and connection setup (sequential connect
//! plus a one-byte echo). Prints numbers only; no timed assertions.
//!
//! Run with `cargo bench -p operator --bench overlay_tunnel`. `OVERLAY_BENCH_MIB` (default 512) sets
//! the bytes sent, `OVERLAY_BENCH_CONNECTIONS` (default 500) the connections made. `cargo test`
//! runs it with 8 MiB and 20 connections.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use chain_client::cert::{CertificateRole, OnChainCertificate, generate};
use operator::overlay::tunnel_cert::{issue, verify};
use operator::overlay::{
    AuthorizedTarget, Authorizer, Counters, IssuingServerCerts, OnChainServerVerifier, Refusal,
    TunnelClient, TunnelClientConfig, TunnelRequest, TunnelServer,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

const HOUR: Duration = Duration::from_secs(3600);
const CHUNK: usize = 256 * 1024;

fn env(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(default)
}

/// Reads the first byte: 'S' = sink (read to the end, answer the byte count), else echo.
async fn target() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            let _ = stream.set_nodelay(true);
            tokio::spawn(async move {
                let mut first = [0u8; 1];
                if stream.read_exact(&mut first).await.is_err() {
                    return;
                }
                if first[0] == b'S' {
                    let mut buf = vec![0u8; CHUNK];
                    let mut total = 0u64;
                    while let Ok(n) = stream.read(&mut buf).await {
                        if n == 0 {
                            break;
                        }
                        total += n as u64;
                    }
                    let _ = stream.write_all(&total.to_be_bytes()).await;
                } else {
                    let _ = stream.write_all(&first).await;
                    let (mut r, mut w) = stream.split();
                    let _ = tokio::io::copy(&mut r, &mut w).await;
                }
                let _ = stream.shutdown().await;
            });
        }
    });
    addr
}

async fn throughput(addr: SocketAddr, mib: usize) -> f64 {
    let mut stream = TcpStream::connect(addr).await.expect("connect");
    let _ = stream.set_nodelay(true);
    let chunk = vec![0xa5u8; CHUNK];
    let start = Instant::now();
    stream.write_all(b"S").await.expect("write");
    for _ in 0..(mib << 20) / CHUNK {
        stream.write_all(&chunk).await.expect("write");
    }
    stream.shutdown().await.expect("shutdown");
    let mut total = [0u8; 8];
    stream.read_exact(&mut total).await.expect("ack");
    let seconds = start.elapsed().as_secs_f64();
    assert_eq!(u64::from_be_bytes(total), (mib << 20) as u64, "bytes lost");
    mib as f64 / seconds
}

async fn setup_times(addr: SocketAddr, n: usize) -> (f64, f64) {
    let mut ms = Vec::with_capacity(n);
    for _ in 0..n {
        let start = Instant::now();
        let mut stream = TcpStream::connect(addr).await.expect("connect");
        let _ = stream.set_nodelay(true);
        stream.write_all(b"E").await.expect("write");
        let mut one = [0u8; 1];
        stream.read_exact(&mut one).await.expect("echo");
        ms.push(start.elapsed().as_secs_f64() * 1000.0);
    }
    ms.sort_by(f64::total_cmp);
    let at = |q: f64| ms[((ms.len() as f64 * q) as usize).min(ms.len() - 1)];
    (at(0.50), at(0.99))
}

struct Allow(Vec<OnChainCertificate>, String);

#[async_trait::async_trait]
impl Authorizer for Allow {
    async fn authorize(
        &self,
        chain: &[Vec<u8>],
        req: &TunnelRequest,
    ) -> Result<AuthorizedTarget, Refusal> {
        let peer = verify(chain, &self.0, SystemTime::now()).map_err(|e| Refusal {
            reason: e.to_string(),
        })?;
        if peer.claim != req.client_claim() {
            return Err(Refusal {
                reason: "claim".into(),
            });
        }
        Ok(AuthorizedTarget {
            target: self.1.clone(),
            tunnel_key: "bench".into(),
            wireguard: None,
        })
    }
}

fn provider() -> (
    String,
    chain_client::cert::CertificateKeyPair,
    OnChainCertificate,
) {
    let address = chain_client::keys::Key::random("akash")
        .expect("key")
        .address()
        .to_string();
    let role = CertificateRole::Server {
        dns_names: vec!["provider.bench".into()],
    };
    let pair = generate(&address, &role, HOUR).expect("certificate");
    let on_chain = OnChainCertificate {
        owner: address.clone(),
        serial: pair.serial.clone(),
        valid: true,
        cert_pem: pair.cert_pem.clone().into_bytes(),
    };
    (address, pair, on_chain)
}

#[tokio::main]
async fn main() {
    // `cargo bench` passes `--bench`; under `cargo test` (the target has `test = true`) the bench
    // runs at a small size, so that it cannot rot.
    let small = !std::env::args().any(|a| a == "--bench");
    let mib = env("OVERLAY_BENCH_MIB", if small { 8 } else { 512 });
    let connections = env("OVERLAY_BENCH_CONNECTIONS", if small { 20 } else { 500 });
    let target = target().await;

    let (a_addr, a, a_chain) = provider();
    let (_, b, b_chain) = provider();
    let tenant = chain_client::keys::Key::random("akash")
        .expect("key")
        .address()
        .to_string();
    let req = TunnelRequest {
        owner: tenant,
        dseq: 1,
        from_gseq: 1,
        from_service: "web".into(),
        to_gseq: 2,
        to_service: "db".into(),
        port: 5432,
        probe: false,
        wireguard: None,
    };
    let certs = Arc::new(IssuingServerCerts::new(&a.cert_pem, a.key_pem(), HOUR));
    certs.allow(&req);
    let authorizer = Arc::new(Allow(vec![a_chain.clone(), b_chain], target.to_string()));
    let server = TunnelServer::bind("127.0.0.1:0".parse().unwrap(), certs, authorizer)
        .await
        .expect("server");
    let server_addr = server.local_addr().expect("addr");
    let (_stop, shutdown) = tokio::sync::watch::channel(false);
    tokio::spawn(server.run(shutdown));
    let client = TunnelClient::new(TunnelClientConfig {
        peer: server_addr.to_string(),
        request: req.clone(),
        cert: issue(&b.cert_pem, b.key_pem(), &req.client_claim(), HOUR).expect("cert"),
        verifier: Arc::new(OnChainServerVerifier {
            provider: a_addr,
            on_chain: vec![a_chain],
            request: req,
        }),
        tunnel_key: "bench".into(),
        counters: Counters::new(),
    })
    .expect("client");
    let handle = client
        .listen("127.0.0.1:0".parse().unwrap())
        .await
        .expect("listen");
    let tunnel = handle.local_addr();

    println!(
        "overlay tunnel benchmark: {mib} MiB through one connection, {connections} sequential connections"
    );
    let plain_mibs = throughput(target, mib).await;
    let tunnel_mibs = throughput(tunnel, mib).await;
    let (plain_p50, plain_p99) = setup_times(target, connections).await;
    let (tunnel_p50, tunnel_p99) = setup_times(tunnel, connections).await;
    println!(
        "{:<22}{:>14}{:>14}{:>14}",
        "", "MiB/s", "setup p50 ms", "setup p99 ms"
    );
    println!(
        "{:<22}{:>14.0}{:>14.3}{:>14.3}",
        "plain loopback TCP", plain_mibs, plain_p50, plain_p99
    );
    println!(
        "{:<22}{:>14.0}{:>14.3}{:>14.3}",
        "mTLS tunnel", tunnel_mibs, tunnel_p50, tunnel_p99
    );
    println!(
        "{:<22}{:>14.2}{:>14.1}{:>14.1}",
        "tunnel / plain",
        tunnel_mibs / plain_mibs,
        tunnel_p50 / plain_p50,
        tunnel_p99 / plain_p99
    );
    let stats = client.stats().snapshot();
    println!(
        "tunnel counters: sent {} B, received {} B, connections {}, failures {}",
        stats.sent, stats.received, stats.connections, stats.failures
    );
    handle.stop().await;
}
