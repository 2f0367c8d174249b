//! Network namespaces for the overlay tests: two "datacenters", `a` and `b`, joined by a veth
//! pair and nothing else. Processes inside still reach the control plane and the devnet, which
//! listen on the host's 127.0.0.1: a forwarder listens on the same port on the namespace's own
//! loopback and connects from the host's (the address stays 127.0.0.1, so TLS names hold).
//! Needs root (`ip netns`), as CI runs.

use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::os::fd::AsFd;
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::{Context, bail};

/// Runs `f` on a thread moved into network namespace `ns`: sockets it makes stay there.
pub fn in_netns<T: Send>(ns: &str, f: impl FnOnce() -> T + Send) -> anyhow::Result<T> {
    std::thread::scope(|s| {
        s.spawn(|| {
            let file = std::fs::File::open(format!("/var/run/netns/{ns}"))
                .with_context(|| format!("opening network namespace {ns}"))?;
            rustix::thread::move_into_link_name_space(
                file.as_fd(),
                Some(rustix::thread::LinkNameSpaceType::Network),
            )
            .with_context(|| format!("entering network namespace {ns}"))?;
            Ok(f())
        })
        .join()
        .map_err(|_| anyhow::anyhow!("the thread in network namespace {ns} panicked"))?
    })
}

/// A TCP connection made from inside `ns`.
pub fn connect_in(ns: &str, addr: SocketAddr) -> anyhow::Result<TcpStream> {
    in_netns(ns, || {
        TcpStream::connect_timeout(&addr, Duration::from_secs(5))
    })?
    .with_context(|| format!("connecting {addr} from network namespace {ns}"))
}

/// A TCP connection made from inside `ns`, from source address `source`.
pub fn connect_in_from(
    ns: &str,
    source: SocketAddr,
    addr: SocketAddr,
) -> anyhow::Result<TcpStream> {
    in_netns(ns, || -> anyhow::Result<TcpStream> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let stream = runtime.block_on(async {
            let socket = tokio::net::TcpSocket::new_v4()?;
            socket.bind(source)?;
            socket.connect(addr).await
        })?;
        let stream = stream.into_std()?;
        stream.set_nonblocking(false)?;
        Ok(stream)
    })?
    .with_context(|| format!("connecting {addr} from {source} in network namespace {ns}"))
}

/// A TCP listener bound inside `ns`.
pub fn bind_in(ns: &str, addr: SocketAddr) -> anyhow::Result<TcpListener> {
    in_netns(ns, || TcpListener::bind(addr))?
        .with_context(|| format!("binding {addr} in network namespace {ns}"))
}

fn ip(args: &[&str]) -> anyhow::Result<()> {
    let out = Command::new("ip")
        .args(args)
        .output()
        .context("running ip (iproute2)")?;
    if !out.status.success() {
        bail!(
            "ip {} failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(())
}

/// Two network namespaces joined by a veth pair; deleted on drop.
pub struct NetPair {
    pub a: String,
    pub b: String,
    pub a_ip: Ipv4Addr,
    pub b_ip: Ipv4Addr,
    tag: String,
    forwarders: Vec<Forwarder>,
    wireguard_interfaces: Vec<String>,
}

impl NetPair {
    /// Namespaces `<tag>-<pid>-a` and `-b`, with 10.77.0.1 and 10.77.0.2 on the veth ends;
    /// `tag` is at most 8 characters (interface names are short).
    pub fn create(tag: &str) -> anyhow::Result<Self> {
        let id = std::process::id() % 100_000;
        let a = format!("{tag}-{id}-a");
        let b = format!("{tag}-{id}-b");
        // Interface names are at most 15 bytes; they live inside the namespaces, so they need
        // not be unique on the host once moved.
        let (va, vb) = (format!("{tag}{id}a"), format!("{tag}{id}b"));
        let pair = Self {
            a: a.clone(),
            b: b.clone(),
            a_ip: Ipv4Addr::new(10, 77, 0, 1),
            b_ip: Ipv4Addr::new(10, 77, 0, 2),
            tag: tag.to_owned(),
            forwarders: Vec::new(),
            wireguard_interfaces: Vec::new(),
        };
        for ns in [&a, &b] {
            let _ = ip(&["netns", "del", ns]);
            ip(&["netns", "add", ns])?;
            ip(&["-n", ns, "link", "set", "lo", "up"])?;
        }
        ip(&["link", "add", &va, "type", "veth", "peer", "name", &vb])?;
        ip(&["link", "set", &va, "netns", &a])?;
        ip(&["link", "set", &vb, "netns", &b])?;
        for (ns, dev, addr) in [(&a, &va, "10.77.0.1/24"), (&b, &vb, "10.77.0.2/24")] {
            ip(&["-n", ns, "addr", "add", addr, "dev", dev])?;
            ip(&["-n", ns, "link", "set", dev, "up"])?;
        }
        Ok(pair)
    }

    /// A WireGuard interface name for side `side` (`a` or `b`), unique on the host (the
    /// userspace sockets share /var/run/wireguard); its daemon is stopped on drop.
    pub fn wireguard_interface(&mut self, side: char) -> String {
        let name = format!("w{}{}{side}", self.tag, std::process::id() % 100_000);
        self.wireguard_interfaces.push(name.clone());
        name
    }

    /// In both namespaces, 127.0.0.1:`port` leads to the host's 127.0.0.1:`port`.
    pub fn forward_host_port(&mut self, port: u16) -> anyhow::Result<()> {
        let target: SocketAddr = (Ipv4Addr::LOCALHOST, port).into();
        for ns in [self.a.clone(), self.b.clone()] {
            let listener = bind_in(&ns, target)?;
            self.forwarders.push(Forwarder::start(listener, move || {
                TcpStream::connect(target).map_err(anyhow::Error::from)
            })?);
        }
        Ok(())
    }

    /// A host loopback address that leads to `addr` as seen from inside `ns`.
    pub fn expose(&mut self, ns: &str, addr: SocketAddr) -> anyhow::Result<SocketAddr> {
        let listener = TcpListener::bind("127.0.0.1:0")?;
        let local = listener.local_addr()?;
        let ns = ns.to_owned();
        self.forwarders
            .push(Forwarder::start(listener, move || connect_in(&ns, addr))?);
        Ok(local)
    }
}

impl Drop for NetPair {
    fn drop(&mut self) {
        for f in &self.forwarders {
            f.stop.store(true, Ordering::SeqCst);
        }
        for iface in &self.wireguard_interfaces {
            // A userspace WireGuard daemonizes and outlives the sidecar that started it.
            let _ = Command::new("pkill")
                .args(["-f", &format!("wireguard-go-.* {iface}$")])
                .status();
            let _ = std::fs::remove_file(format!("/var/run/wireguard/{iface}.sock"));
        }
        for ns in [&self.a, &self.b] {
            let _ = ip(&["netns", "del", ns]);
        }
    }
}

/// Accepts on a listener and joins each connection to a new one from `connect`.
struct Forwarder {
    stop: Arc<AtomicBool>,
}

impl Forwarder {
    fn start(
        listener: TcpListener,
        connect: impl Fn() -> anyhow::Result<TcpStream> + Send + Sync + 'static,
    ) -> anyhow::Result<Self> {
        listener.set_nonblocking(true)?;
        let stop = Arc::new(AtomicBool::new(false));
        let stopped = stop.clone();
        let connect = Arc::new(connect);
        std::thread::spawn(move || {
            while !stopped.load(Ordering::SeqCst) {
                match listener.accept() {
                    Ok((inbound, _)) => {
                        let connect = connect.clone();
                        std::thread::spawn(move || {
                            let _ = inbound.set_nonblocking(false);
                            if let Ok(outbound) = connect() {
                                join(inbound, outbound);
                            }
                        });
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                        std::thread::sleep(Duration::from_millis(20));
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(20)),
                }
            }
        });
        Ok(Self { stop })
    }
}

/// Copies both ways until either side closes.
fn join(a: TcpStream, b: TcpStream) {
    let (Ok(a2), Ok(b2)) = (a.try_clone(), b.try_clone()) else {
        return;
    };
    let one = std::thread::spawn(move || pipe(a, b2));
    pipe(b, a2);
    let _ = one.join();
}

fn pipe(mut from: TcpStream, mut to: TcpStream) {
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        match from.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                if to.write_all(&buf[..n]).is_err() {
                    break;
                }
            }
        }
    }
    let _ = to.shutdown(std::net::Shutdown::Write);
    let _ = from.shutdown(std::net::Shutdown::Read);
}

/// A TCP echo server standing in for a database: every connection gets its bytes back. It
/// counts the connections it accepted.
pub struct EchoServer {
    pub accepted: Arc<std::sync::atomic::AtomicU64>,
    pub local_addr: SocketAddr,
    stop: Arc<AtomicBool>,
}

impl EchoServer {
    pub fn start(listener: TcpListener) -> anyhow::Result<Self> {
        // Blocking accepts: no polling delay in the connection setup that benchmarks measure.
        listener.set_nonblocking(false)?;
        let local_addr = listener.local_addr()?;
        let accepted = Arc::new(std::sync::atomic::AtomicU64::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let (count, stopped) = (accepted.clone(), stop.clone());
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                if stopped.load(Ordering::SeqCst) {
                    return;
                }
                let Ok(conn) = conn else { continue };
                count.fetch_add(1, Ordering::SeqCst);
                std::thread::spawn(move || {
                    let _ = conn.set_nodelay(true);
                    if let Ok(back) = conn.try_clone() {
                        pipe(conn, back);
                    }
                });
            }
        });
        Ok(Self {
            accepted,
            local_addr,
            stop,
        })
    }
}

impl Drop for EchoServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wakes the accepting thread (reachable when it listens in this namespace).
        let _ = TcpStream::connect_timeout(&self.local_addr, Duration::from_millis(100));
    }
}

/// A network namespace plugged into a host bridge (the real node's LAN) by a veth pair, with an
/// address of that LAN: a machine beside the node, as a client of a leased IP is. Deleted (with
/// its veth pair) on drop.
pub struct LanClient {
    pub ns: String,
    pub ip: Ipv4Addr,
}

impl LanClient {
    /// Namespace `<tag>-<pid>` holding `ip/prefix` on a veth whose peer joins `bridge`.
    pub fn attach(tag: &str, bridge: &str, ip: Ipv4Addr, prefix: u8) -> anyhow::Result<Self> {
        let id = std::process::id() % 100_000;
        let ns = format!("{tag}-{id}");
        let (inside, outside) = (format!("{tag}{id}i"), format!("{tag}{id}o"));
        let _ = self::ip(&["netns", "del", &ns]);
        let _ = self::ip(&["link", "del", &outside]);
        self::ip(&["netns", "add", &ns])?;
        let client = Self { ns: ns.clone(), ip };
        self::ip(&["-n", &ns, "link", "set", "lo", "up"])?;
        self::ip(&[
            "link", "add", &inside, "type", "veth", "peer", "name", &outside,
        ])?;
        self::ip(&["link", "set", &inside, "netns", &ns])?;
        self::ip(&["link", "set", &outside, "master", bridge])?;
        self::ip(&["link", "set", &outside, "up"])?;
        self::ip(&[
            "-n",
            &ns,
            "addr",
            "add",
            &format!("{ip}/{prefix}"),
            "dev",
            &inside,
        ])?;
        self::ip(&["-n", &ns, "link", "set", &inside, "up"])?;
        Ok(client)
    }

    /// `GET path` over HTTP/1.0 to `addr` from inside the namespace: the status code and body.
    pub fn http_get(&self, addr: SocketAddr, path: &str) -> anyhow::Result<(u16, String)> {
        let mut conn = connect_in(&self.ns, addr)?;
        conn.set_read_timeout(Some(Duration::from_secs(10)))?;
        write!(conn, "GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n")?;
        let mut answer = String::new();
        conn.read_to_string(&mut answer)?;
        let (head, body) = answer.split_once("\r\n\r\n").unwrap_or((&answer, ""));
        let code = head
            .split_whitespace()
            .nth(1)
            .and_then(|c| c.parse().ok())
            .with_context(|| format!("no HTTP status in {head:?}"))?;
        Ok((code, body.to_owned()))
    }
}

impl Drop for LanClient {
    fn drop(&mut self) {
        let _ = ip(&["netns", "del", &self.ns]);
    }
}
