//! Tunnel throughput and connection setup through the whole overlay, in mTLS and in WireGuard
//! mode, against plain loopback TCP in the same run (issue "cross-datacenter overlay").
//!
//! `cargo bench -p e2e --bench overlay_modes` builds `akash-provider` in release, starts the
//! overlay world of the e2e tests once per mode (devnet, providers, two sidecars in their own
//! network namespaces joined by a veth pair, userspace `wireguard-go` in WireGuard mode) and,
//! from the web side's namespace, connects to `db:5432` as the Service says: web side's local
//! listener → tunnel → serving sidecar → the echoing database. Plain: the same echo server on
//! the host's loopback, connected directly. Needs root (network namespaces).
//!
//! - throughput: one connection echoes `BENCH_MIB` MiB (default 256), written by one thread while
//!   another reads it back; MiB/s of payload (each byte crosses the tunnel both ways);
//! - setup: `BENCH_CONNECTIONS` (default 200) times: connect, send one byte, read it back;
//!   p50 and p90.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::Context;
use crds::resources::{TunnelMode, TunnelRole};
use e2e::bench::percentile;
use e2e::market::unique_dseq;
use e2e::netns::{EchoServer, connect_in};
use e2e::overlay_world::{DB_PORT, World, established, resolve};
use e2e::wait::until;

fn main() -> ExitCode {
    e2e::bench::main("overlay_modes", run, || async {})
}

struct Numbers {
    mib_per_s: f64,
    setup_p50_ms: f64,
    setup_p90_ms: f64,
}

fn env_usize(name: &str, default: usize) -> anyhow::Result<usize> {
    std::env::var(name)
        .ok()
        .map(|v| v.parse().with_context(|| format!("{name}={v:?}")))
        .transpose()
        .map(|v| v.unwrap_or(default))
}

async fn run() -> anyhow::Result<()> {
    let mib = env_usize("BENCH_MIB", 256)?;
    let connections = env_usize("BENCH_CONNECTIONS", 200)?;
    let profile = e2e::bench::build_binaries()?;
    e2e::binaries::wireguard_go()?;
    eprintln!("overlay_modes: {profile} build, {mib} MiB, {connections} connections");

    let plain_server = EchoServer::start(std::net::TcpListener::bind("127.0.0.1:0")?)?;
    let plain_addr = plain_server.local_addr;
    let plain = tokio::task::spawn_blocking(move || {
        measure(|| Ok(TcpStream::connect(plain_addr)?), mib, connections)
    })
    .await??;

    let mut rows = Vec::new();
    for (mode, tag, wireguard, dseq) in [
        (TunnelMode::Mtls, "bnm", false, unique_dseq(64)),
        (TunnelMode::WireGuard, "bnw", true, unique_dseq(65)),
    ] {
        let w = World::start(tag, wireguard).await?;
        let web_ns = w.deploy(dseq).await?;
        established(&w, 0, TunnelRole::Client, mode).await?;
        let addr = until("db's endpoint", Duration::from_secs(60), || async {
            resolve(&w.client, &web_ns, "db", DB_PORT).await
        })
        .await?;
        let ns = w.net.a.clone();
        let numbers = tokio::task::spawn_blocking(move || {
            measure(|| connect_in(&ns, addr), mib, connections)
        })
        .await??;
        rows.push((mode, numbers));
        drop(w);
    }

    println!();
    println!(
        "| | plain loopback TCP | {} | {} |",
        mode_name(rows[0].0),
        mode_name(rows[1].0)
    );
    println!("|---|---|---|---|");
    let ratio = |x: f64, base: f64| if base > 0.0 { x / base } else { 0.0 };
    println!(
        "| throughput (MiB/s) | {:.0} | {:.0} ({:.2}×) | {:.0} ({:.2}×) |",
        plain.mib_per_s,
        rows[0].1.mib_per_s,
        ratio(rows[0].1.mib_per_s, plain.mib_per_s),
        rows[1].1.mib_per_s,
        ratio(rows[1].1.mib_per_s, plain.mib_per_s),
    );
    for (label, get) in [
        (
            "setup p50 (ms)",
            (|n: &Numbers| n.setup_p50_ms) as fn(&Numbers) -> f64,
        ),
        ("setup p90 (ms)", |n: &Numbers| n.setup_p90_ms),
    ] {
        println!(
            "| {label} | {:.2} | {:.2} ({:.1}×) | {:.2} ({:.1}×) |",
            get(&plain),
            get(&rows[0].1),
            ratio(get(&rows[0].1), get(&plain)),
            get(&rows[1].1),
            ratio(get(&rows[1].1), get(&plain)),
        );
    }
    Ok(())
}

fn mode_name(mode: TunnelMode) -> &'static str {
    match mode {
        TunnelMode::Mtls => "mTLS tunnel",
        TunnelMode::WireGuard => "WireGuard tunnel",
    }
}

/// Throughput of one echoed stream and the setup time of `connections` one-byte round trips.
fn measure(
    connect: impl Fn() -> anyhow::Result<TcpStream>,
    mib: usize,
    connections: usize,
) -> anyhow::Result<Numbers> {
    // Warm up (first handshakes, WireGuard's included).
    round_trip(&connect()?)?;

    let conn = connect()?;
    conn.set_nodelay(true)?;
    let mut writer = conn.try_clone()?;
    let total = mib << 20;
    let start = Instant::now();
    let write = std::thread::spawn(move || -> std::io::Result<()> {
        let chunk = vec![0x5au8; 64 << 10];
        let mut left = total;
        while left > 0 {
            let n = left.min(chunk.len());
            writer.write_all(&chunk[..n])?;
            left -= n;
        }
        Ok(())
    });
    let mut reader = conn;
    reader.set_read_timeout(Some(Duration::from_secs(60)))?;
    let mut buf = vec![0u8; 64 << 10];
    let mut got = 0;
    while got < total {
        let n = reader.read(&mut buf)?;
        anyhow::ensure!(n > 0, "the stream ended after {got} of {total} bytes");
        anyhow::ensure!(buf[..n].iter().all(|b| *b == 0x5a), "corrupted bytes");
        got += n;
    }
    let elapsed = start.elapsed().as_secs_f64();
    write
        .join()
        .map_err(|_| anyhow::anyhow!("writer panicked"))??;

    let mut setups = Vec::with_capacity(connections);
    for _ in 0..connections {
        let t = Instant::now();
        let conn = connect()?;
        round_trip(&conn)?;
        setups.push(t.elapsed().as_secs_f64() * 1000.0);
    }
    Ok(Numbers {
        mib_per_s: mib as f64 / elapsed,
        setup_p50_ms: percentile(&setups, 0.5),
        setup_p90_ms: percentile(&setups, 0.9),
    })
}

fn round_trip(conn: &TcpStream) -> anyhow::Result<()> {
    conn.set_nodelay(true)?;
    conn.set_read_timeout(Some(Duration::from_secs(20)))?;
    let mut c = conn;
    c.write_all(b"x")?;
    let mut one = [0u8; 1];
    c.read_exact(&mut one)?;
    Ok(())
}
