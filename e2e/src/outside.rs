//! Stand-ins for places a lease's pods must not reach, inside this machine: a network namespace
//! holding 169.254.169.254 (cloud metadata), 100.64.0.10 (carrier-grade NAT space) and 203.0.113.10
//! (a public "internet" address), each with a listener on port 80 that counts connections. The host
//! routes those three addresses (for itself and for pods) to the namespace, more specifically than
//! the blackholes `deploy/node-network.sh` sets, so nothing is sent off the machine and a probe
//! that gets through is seen here. One instance per test process, shared by its tests.

use std::net::{Ipv4Addr, SocketAddr, TcpListener};
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use anyhow::{Context, bail};

use crate::netns::in_netns;

pub const METADATA: Ipv4Addr = Ipv4Addr::new(169, 254, 169, 254);
pub const SHARED_SPACE: Ipv4Addr = Ipv4Addr::new(100, 64, 0, 10);
pub const INTERNET: Ipv4Addr = Ipv4Addr::new(203, 0, 113, 10);
const TARGETS: [Ipv4Addr; 3] = [METADATA, SHARED_SPACE, INTERNET];

/// The routing table of pods' packets (`POD_ROUTE_TABLE` in deploy/cluster.env).
fn pod_route_table() -> String {
    std::env::var("POD_ROUTE_TABLE").unwrap_or_else(|_| "188".into())
}

fn ip(args: &[&str]) -> anyhow::Result<()> {
    let out = Command::new("ip")
        .args(args)
        .output()
        .context("running ip")?;
    if !out.status.success() {
        bail!(
            "ip {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(())
}

/// The stand-ins; removed (routes, namespace, listeners) when the last user drops it.
pub struct Outside {
    ns: String,
    host_veth: String,
    stop: Arc<AtomicBool>,
    accepted: Arc<[AtomicU64; 3]>,
}

impl Outside {
    /// The process's stand-ins, created by the first caller.
    pub fn shared() -> anyhow::Result<Arc<Self>> {
        static SHARED: Mutex<Weak<Outside>> = Mutex::new(Weak::new());
        let mut slot = SHARED.lock().expect("not poisoned");
        if let Some(existing) = slot.upgrade() {
            return Ok(existing);
        }
        let created = Arc::new(Self::create()?);
        *slot = Arc::downgrade(&created);
        Ok(created)
    }

    fn create() -> anyhow::Result<Self> {
        let id = std::process::id() % 100_000;
        let ns = format!("outside-{id}");
        let (host_veth, inner_veth) = (format!("out{id}h"), format!("out{id}n"));
        // A /30 of 10.86.0.0/16 per process.
        let block = (id % 16_000) * 4;
        let host_ip = Ipv4Addr::new(10, 86, (block >> 8) as u8, (block & 255) as u8 + 1);
        let inner_ip = Ipv4Addr::new(10, 86, (block >> 8) as u8, (block & 255) as u8 + 2);
        let _ = ip(&["netns", "del", &ns]);
        let _ = ip(&["link", "del", &host_veth]);
        ip(&["netns", "add", &ns])?;
        ip(&["-n", &ns, "link", "set", "lo", "up"])?;
        ip(&[
            "link",
            "add",
            &host_veth,
            "type",
            "veth",
            "peer",
            "name",
            &inner_veth,
        ])?;
        ip(&["link", "set", &inner_veth, "netns", &ns])?;
        ip(&["addr", "add", &format!("{host_ip}/30"), "dev", &host_veth])?;
        ip(&["link", "set", &host_veth, "up"])?;
        ip(&[
            "-n",
            &ns,
            "addr",
            "add",
            &format!("{inner_ip}/30"),
            "dev",
            &inner_veth,
        ])?;
        ip(&["-n", &ns, "link", "set", &inner_veth, "up"])?;
        ip(&[
            "-n",
            &ns,
            "route",
            "add",
            "default",
            "via",
            &host_ip.to_string(),
        ])?;
        let table = pod_route_table();
        for target in TARGETS {
            ip(&[
                "-n",
                &ns,
                "addr",
                "add",
                &format!("{target}/32"),
                "dev",
                "lo",
            ])?;
            let dest = format!("{target}/32");
            let via = inner_ip.to_string();
            ip(&["route", "replace", &dest, "via", &via])?;
            ip(&["route", "replace", &dest, "via", &via, "table", &table])?;
        }
        let outside = Self {
            ns,
            host_veth,
            stop: Arc::new(AtomicBool::new(false)),
            accepted: Arc::new([AtomicU64::new(0), AtomicU64::new(0), AtomicU64::new(0)]),
        };
        for (i, target) in TARGETS.into_iter().enumerate() {
            let listener = in_netns(&outside.ns, || TcpListener::bind((target, 80)))?
                .with_context(|| format!("listening on {target}:80 in {}", outside.ns))?;
            listener.set_nonblocking(true)?;
            let (stop, accepted) = (outside.stop.clone(), outside.accepted.clone());
            std::thread::spawn(move || serve(listener, &stop, &accepted[i]));
        }
        Ok(outside)
    }

    /// Connections the stand-in at `target` accepted so far.
    pub fn accepted(&self, target: Ipv4Addr) -> u64 {
        TARGETS
            .iter()
            .position(|t| *t == target)
            .map_or(0, |i| self.accepted[i].load(Ordering::SeqCst))
    }

    pub fn address(target: Ipv4Addr) -> SocketAddr {
        SocketAddr::from((target, 80))
    }
}

/// Answers each connection with one line and closes it.
fn serve(listener: TcpListener, stop: &AtomicBool, accepted: &AtomicU64) {
    use std::io::Write;
    while !stop.load(Ordering::SeqCst) {
        match listener.accept() {
            Ok((mut stream, _)) => {
                accepted.fetch_add(1, Ordering::SeqCst);
                let _ = stream.write_all(b"HTTP/1.0 200 OK\r\n\r\noutside\n");
            }
            Err(_) => std::thread::sleep(Duration::from_millis(20)),
        }
    }
}

impl Drop for Outside {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let table = pod_route_table();
        for target in TARGETS {
            let dest = format!("{target}/32");
            let _ = ip(&["route", "del", &dest]);
            let _ = ip(&["route", "del", &dest, "table", &table]);
        }
        let _ = ip(&["link", "del", &self.host_veth]);
        let _ = ip(&["netns", "del", &self.ns]);
    }
}
