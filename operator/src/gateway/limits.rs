//! How much of the gateway one client, and all clients together, may hold: the flags
//! ([`GatewayLimits`]) and the per-source accounting of connections ([`SourceLimits`]).
//!
//! A source is one IPv4 address, or one IPv6 /64 (what a single host is usually given).

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use clap::Args;

/// The gateway's limits and timeouts (`akash-provider run` flags).
#[derive(Debug, Clone, Args)]
pub struct GatewayLimits {
    /// Connections open at once, per server (REST, gRPC), handshakes included; more wait in the
    /// kernel's backlog.
    #[arg(
        long = "gateway-max-connections",
        env = "AKASH_GATEWAY_MAX_CONNECTIONS",
        default_value_t = 1024
    )]
    pub max_connections: usize,
    /// Connections open at once from one source (an IPv4 address, an IPv6 /64), per server;
    /// more are closed as they arrive.
    #[arg(
        long = "gateway-max-connections-per-source",
        env = "AKASH_GATEWAY_MAX_CONNECTIONS_PER_SOURCE",
        default_value_t = 128
    )]
    pub max_connections_per_source: usize,
    /// TLS handshakes in progress at once, per server; more wait in the kernel's backlog.
    #[arg(
        long = "gateway-max-handshakes",
        env = "AKASH_GATEWAY_MAX_HANDSHAKES",
        default_value_t = 256
    )]
    pub max_handshakes: usize,
    /// TLS handshakes in progress at once from one source, per server; more are closed as they
    /// arrive.
    #[arg(
        long = "gateway-max-handshakes-per-source",
        env = "AKASH_GATEWAY_MAX_HANDSHAKES_PER_SOURCE",
        default_value_t = 32
    )]
    pub max_handshakes_per_source: usize,
    /// A client that has not completed its TLS handshake within this time is disconnected.
    #[arg(long = "gateway-handshake-timeout", env = "AKASH_GATEWAY_HANDSHAKE_TIMEOUT", default_value = "10s", value_parser = humantime::parse_duration)]
    pub handshake_timeout: Duration,
    /// REST: a request's line and headers must arrive within this time once the connection
    /// waits for a request (a new connection, or an idle keep-alive one).
    #[arg(long = "gateway-header-timeout", env = "AKASH_GATEWAY_HEADER_TIMEOUT", default_value = "10s", value_parser = humantime::parse_duration)]
    pub header_timeout: Duration,
    /// A connection on which nothing was received or sent for this long is closed (longer than
    /// the 60 s a request may take).
    #[arg(long = "gateway-idle-timeout", env = "AKASH_GATEWAY_IDLE_TIMEOUT", default_value = "120s", value_parser = humantime::parse_duration)]
    pub idle_timeout: Duration,
    /// How long a client certificate found valid on chain is trusted without asking the chain
    /// again; its revocation on chain ends this at once.
    #[arg(long = "gateway-cert-cache-ttl", env = "AKASH_GATEWAY_CERT_CACHE_TTL", default_value = "60s", value_parser = humantime::parse_duration)]
    pub cert_cache_ttl: Duration,
    /// How long a client certificate the chain does not hold as valid is refused without asking
    /// the chain again; its owner publishing a certificate ends this at once.
    #[arg(long = "gateway-cert-refusal-ttl", env = "AKASH_GATEWAY_CERT_REFUSAL_TTL", default_value = "10s", value_parser = humantime::parse_duration)]
    pub cert_refusal_ttl: Duration,
}

impl Default for GatewayLimits {
    /// The flags' defaults.
    fn default() -> Self {
        Self {
            max_connections: 1024,
            max_connections_per_source: 128,
            max_handshakes: 256,
            max_handshakes_per_source: 32,
            handshake_timeout: Duration::from_secs(10),
            header_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(120),
            cert_cache_ttl: Duration::from_secs(60),
            cert_refusal_ttl: Duration::from_secs(10),
        }
    }
}

/// Where a connection comes from, as far as limits go.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Source {
    V4(Ipv4Addr),
    /// The first 64 bits of an IPv6 address.
    V6Prefix(u64),
}

impl Source {
    pub(crate) fn of(ip: IpAddr) -> Self {
        match ip {
            IpAddr::V4(v4) => Self::V4(v4),
            IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                Some(v4) => Self::V4(v4),
                None => Self::V6Prefix((u128::from(v6) >> 64) as u64),
            },
        }
    }
}

impl std::fmt::Display for Source {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::V4(v4) => write!(f, "{v4}"),
            Self::V6Prefix(prefix) => {
                let address = std::net::Ipv6Addr::from(u128::from(*prefix) << 64);
                write!(f, "{address}/64")
            }
        }
    }
}

#[derive(Default)]
struct Held {
    connections: usize,
    handshakes: usize,
    /// A refusal was logged since this source last held nothing (one line per episode).
    told: bool,
}

/// Connections and handshakes held by each source, against the per-source limits.
pub(crate) struct SourceLimits {
    connections: usize,
    handshakes: usize,
    held: Mutex<HashMap<Source, Held>>,
}

impl SourceLimits {
    pub(crate) fn new(connections: usize, handshakes: usize) -> Arc<Self> {
        Arc::new(Self {
            connections: connections.max(1),
            handshakes: handshakes.max(1),
            held: Mutex::new(HashMap::new()),
        })
    }

    /// A slot for a new connection from `source`, handshaking; `None` when the source holds as
    /// many connections or handshakes as it may.
    pub(crate) fn admit(self: &Arc<Self>, source: Source) -> Option<SourceSlot> {
        let mut held = self.held.lock().unwrap_or_else(|p| p.into_inner());
        let entry = held.entry(source).or_default();
        let over = if entry.connections >= self.connections {
            Some(("connections", self.connections))
        } else if entry.handshakes >= self.handshakes {
            Some(("TLS handshakes", self.handshakes))
        } else {
            None
        };
        if let Some((what, limit)) = over {
            if !entry.told {
                entry.told = true;
                tracing::warn!(%source, limit, "a source holds as many gateway {what} as it may; refusing more until it holds fewer");
            }
            return None;
        }
        entry.connections += 1;
        entry.handshakes += 1;
        Some(SourceSlot {
            limits: self.clone(),
            source,
            handshaking: true,
        })
    }

    /// (connections, handshakes) `source` holds.
    #[cfg(test)]
    pub(crate) fn held(&self, source: Source) -> (usize, usize) {
        let held = self.held.lock().unwrap_or_else(|p| p.into_inner());
        held.get(&source)
            .map_or((0, 0), |h| (h.connections, h.handshakes))
    }

    fn release(&self, source: Source, handshaking: bool, connection: bool) {
        let mut held = self.held.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(entry) = held.get_mut(&source) {
            if handshaking {
                entry.handshakes -= 1;
            }
            if connection {
                entry.connections -= 1;
            }
            if entry.connections == 0 {
                held.remove(&source);
            }
        }
    }
}

/// One connection of a source, counted until dropped.
pub(crate) struct SourceSlot {
    limits: Arc<SourceLimits>,
    source: Source,
    handshaking: bool,
}

impl SourceSlot {
    /// The handshake is over (the connection stays counted).
    pub(crate) fn handshake_done(&mut self) {
        if std::mem::take(&mut self.handshaking) {
            self.limits.release(self.source, true, false);
        }
    }
}

impl Drop for SourceSlot {
    fn drop(&mut self) {
        self.limits.release(self.source, self.handshaking, true);
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[derive(Parser)]
    struct Flags {
        #[command(flatten)]
        limits: GatewayLimits,
    }

    #[test]
    fn the_defaults_are_the_flags_defaults() {
        let parsed = Flags::parse_from(["test"]).limits;
        assert_eq!(
            format!("{parsed:?}"),
            format!("{:?}", GatewayLimits::default())
        );
        let set = Flags::parse_from([
            "test",
            "--gateway-max-connections-per-source",
            "4",
            "--gateway-idle-timeout",
            "5m",
        ])
        .limits;
        assert_eq!(set.max_connections_per_source, 4);
        assert_eq!(set.idle_timeout, Duration::from_secs(300));
    }

    #[test]
    fn an_ipv6_source_is_its_64_prefix_and_a_mapped_ipv4_its_address() {
        let a: IpAddr = "2001:db8:1:2:aaaa::1".parse().unwrap();
        let b: IpAddr = "2001:db8:1:2:bbbb::9".parse().unwrap();
        let c: IpAddr = "2001:db8:1:3::1".parse().unwrap();
        assert_eq!(Source::of(a), Source::of(b));
        assert_ne!(Source::of(a), Source::of(c));
        assert_eq!(Source::of(a).to_string(), "2001:db8:1:2::/64");
        let mapped: IpAddr = "::ffff:10.1.2.3".parse().unwrap();
        assert_eq!(Source::of(mapped), Source::V4(Ipv4Addr::new(10, 1, 2, 3)));
    }

    #[test]
    fn a_source_gets_no_more_connections_or_handshakes_than_its_limits() {
        let limits = SourceLimits::new(3, 2);
        let one = Source::V4(Ipv4Addr::new(192, 0, 2, 1));
        let other = Source::V4(Ipv4Addr::new(192, 0, 2, 2));
        let mut a = limits.admit(one).expect("first");
        let _b = limits.admit(one).expect("second");
        assert!(
            limits.admit(one).is_none(),
            "two handshakes at once at most"
        );
        assert!(
            limits.admit(other).is_some(),
            "another source is not affected"
        );
        a.handshake_done();
        let _c = limits.admit(one).expect("a handshake finished: room again");
        assert_eq!(limits.held(one), (3, 2));
        assert!(limits.admit(one).is_none(), "three connections at most");
        drop(a);
        assert_eq!(limits.held(one), (2, 2));
        drop(_b);
        drop(_c);
        assert_eq!(limits.held(one), (0, 0));
    }
}
