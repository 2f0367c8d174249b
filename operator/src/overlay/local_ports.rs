//! The calling side's local listeners bind in one fixed range of ports, so that lease pods may be
//! allowed exactly that range of the provider's pods (NetworkPolicy `port`..`endPort`) and not
//! its gateway, metrics or anything else that listens there.

use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::str::FromStr;

use sha2::{Digest, Sha256};
use tokio::net::TcpListener;

/// The default of `overlay --local-ports` and `run --overlay-ports` (the chart's too).
pub(crate) const DEFAULT_LOCAL_PORTS: &str = "40000-40999";

/// TCP ports `first..=last`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PortRange {
    pub first: u16,
    pub last: u16,
}

impl PortRange {
    /// How many ports it holds (at least one).
    pub fn count(&self) -> u32 {
        u32::from(self.last) - u32::from(self.first) + 1
    }

    pub fn contains(&self, port: u16) -> bool {
        (self.first..=self.last).contains(&port)
    }
}

impl FromStr for PortRange {
    type Err = String;

    /// `START-END` (inclusive), or one port.
    fn from_str(text: &str) -> Result<Self, String> {
        let (a, b) = text.split_once('-').unwrap_or((text, text));
        let port = |s: &str| {
            s.trim()
                .parse::<u16>()
                .ok()
                .filter(|p| *p > 0)
                .ok_or_else(|| format!("{s:?} is not a port (1-65535) in {text:?}"))
        };
        let (first, last) = (port(a)?, port(b)?);
        if first > last {
            return Err(format!("{text:?}: the first port is above the last"));
        }
        Ok(Self { first, last })
    }
}

impl fmt::Display for PortRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", self.first, self.last)
    }
}

/// Binds a listener on `ip` at a free port of `range`. The search starts at a port derived from
/// `key` (a tunnel's name), so a tunnel gets the same port again after a restart when it is
/// free, and goes on through the range; every port in use is an error naming `flag`.
pub(crate) async fn bind_in(
    ip: IpAddr,
    range: PortRange,
    key: &str,
    flag: &str,
) -> std::io::Result<TcpListener> {
    let digest = Sha256::digest(key.as_bytes());
    let start = u32::from_be_bytes([digest[0], digest[1], digest[2], digest[3]]) % range.count();
    for i in 0..range.count() {
        let offset = (start + i) % range.count();
        let port = u16::try_from(u32::from(range.first) + offset).unwrap_or(range.last);
        match TcpListener::bind(SocketAddr::new(ip, port)).await {
            Ok(listener) => return Ok(listener),
            Err(e) if e.kind() == std::io::ErrorKind::AddrInUse => continue,
            Err(e) => return Err(e),
        }
    }
    Err(std::io::Error::new(
        std::io::ErrorKind::AddrInUse,
        format!(
            "every port of {range} ({flag}) on {ip} is in use: widen the range for more tunnels"
        ),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_parse_as_start_dash_end_or_one_port_and_name_what_is_wrong() {
        let r: PortRange = DEFAULT_LOCAL_PORTS.parse().unwrap();
        assert_eq!((r.first, r.last, r.count()), (40000, 40999, 1000));
        assert_eq!(r.to_string(), "40000-40999");
        let one: PortRange = "45000".parse().unwrap();
        assert_eq!((one.first, one.last), (45000, 45000));
        assert!(r.contains(40000) && r.contains(40999) && !r.contains(41000));
        assert!("2-1".parse::<PortRange>().unwrap_err().contains("above"));
        assert!("0-10".parse::<PortRange>().unwrap_err().contains("\"0\""));
        assert!(
            "1-70000"
                .parse::<PortRange>()
                .unwrap_err()
                .contains("70000")
        );
        assert!("a-b".parse::<PortRange>().is_err());
    }

    #[tokio::test]
    async fn listeners_bind_inside_the_range_and_a_full_range_is_an_error_naming_the_flag() {
        let ip: IpAddr = "127.0.0.1".parse().unwrap();
        // A port nobody holds now: the range of one port is it.
        let probe = TcpListener::bind(SocketAddr::new(ip, 0)).await.unwrap();
        let port = probe.local_addr().unwrap().port();
        let one = PortRange {
            first: port,
            last: port,
        };
        let err = bind_in(ip, one, "tun-a", "--local-ports")
            .await
            .unwrap_err();
        assert_eq!(err.kind(), std::io::ErrorKind::AddrInUse);
        assert!(err.to_string().contains("--local-ports"), "{err}");
        drop(probe);
        let got = bind_in(ip, one, "tun-a", "--local-ports").await.unwrap();
        assert_eq!(got.local_addr().unwrap().port(), port);
        drop(got);

        // Several tunnels: distinct ports, all inside the range.
        let range = PortRange {
            first: port.saturating_sub(64).max(1024),
            last: port.saturating_sub(64).max(1024) + 63,
        };
        let mut held = Vec::new();
        for key in ["tun-a", "tun-b", "tun-c", "tun-d"] {
            let l = bind_in(ip, range, key, "--local-ports").await.unwrap();
            let p = l.local_addr().unwrap().port();
            assert!(range.contains(p), "{p} outside {range}");
            assert!(held.iter().all(|(q, _)| *q != p));
            held.push((p, l));
        }
    }
}
