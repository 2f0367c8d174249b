//! The addresses of a MetalLB `IPAddressPool` (`spec.addresses`: CIDRs such as `10.0.0.0/30` and
//! ranges such as `10.0.0.1-10.0.0.5`), counted for the inventory's leased IPs.

use std::net::IpAddr;

/// One pool's address ranges, inclusive, as 128-bit numbers (IPv4 mapped).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct IpPool {
    ranges: Vec<(u128, u128)>,
}

/// How much of a pool leases may still take: its size, and the addresses other Services hold.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct IpPoolUse {
    pub capacity: u32,
    pub in_use: u32,
}

fn number(ip: IpAddr) -> u128 {
    match ip {
        IpAddr::V4(v4) => u128::from(v4.to_ipv6_mapped()),
        IpAddr::V6(v6) => u128::from(v6),
    }
}

impl IpPool {
    /// Parses `spec.addresses`; an entry that is neither a CIDR nor a range is an error naming it.
    pub(crate) fn parse<'a>(addresses: impl IntoIterator<Item = &'a str>) -> Result<Self, String> {
        let mut ranges = Vec::new();
        for entry in addresses {
            let entry = entry.trim();
            let range = if let Some((first, last)) = entry.split_once('-') {
                let parse = |s: &str| {
                    s.trim()
                        .parse::<IpAddr>()
                        .map_err(|_| format!("{entry:?}: {s:?} is not an IP address"))
                };
                let (first, last) = (parse(first)?, parse(last)?);
                if first.is_ipv4() != last.is_ipv4() || number(first) > number(last) {
                    return Err(format!("{entry:?} is not a range"));
                }
                (number(first), number(last))
            } else {
                let (ip, prefix) = entry
                    .split_once('/')
                    .ok_or_else(|| format!("{entry:?} is neither a CIDR nor a range"))?;
                let ip: IpAddr = ip
                    .parse()
                    .map_err(|_| format!("{entry:?}: {ip:?} is not an IP address"))?;
                let bits: u32 = if ip.is_ipv4() { 32 } else { 128 };
                let prefix: u32 = prefix
                    .parse()
                    .ok()
                    .filter(|p| *p <= bits)
                    .ok_or_else(|| format!("{entry:?}: bad prefix length"))?;
                let host_bits = bits - prefix;
                let mask = if host_bits == 128 {
                    u128::MAX
                } else {
                    (1u128 << host_bits) - 1
                };
                let first = number(ip) & !mask;
                (first, first | mask)
            };
            ranges.push(range);
        }
        Ok(IpPool { ranges })
    }

    /// The number of addresses (at most `u32::MAX`; an IPv6 /64 is "very many").
    pub(crate) fn size(&self) -> u32 {
        let total = self
            .ranges
            .iter()
            .fold(0u128, |sum, (a, b)| sum.saturating_add(b - a + 1));
        u32::try_from(total).unwrap_or(u32::MAX)
    }

    pub(crate) fn contains(&self, ip: IpAddr) -> bool {
        let n = number(ip);
        self.ranges.iter().any(|(a, b)| (*a..=*b).contains(&n))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cidrs_and_ranges_count_their_addresses() {
        let pool = IpPool::parse(["10.87.0.200-10.87.0.209", "192.0.2.0/30"]).unwrap();
        assert_eq!(pool.size(), 14);
        assert!(pool.contains("10.87.0.209".parse().unwrap()));
        assert!(pool.contains("192.0.2.3".parse().unwrap()));
        assert!(!pool.contains("10.87.0.210".parse().unwrap()));
        assert!(!pool.contains("192.0.2.4".parse().unwrap()));
        assert_eq!(IpPool::parse(["10.0.0.7/32"]).unwrap().size(), 1);
        assert_eq!(IpPool::parse(["2001:db8::/64"]).unwrap().size(), u32::MAX);
    }

    #[test]
    fn a_malformed_entry_is_named() {
        for bad in ["10.0.0.1", "10.0.0.0/33", "10.0.0.5-10.0.0.1", "x-10.0.0.1"] {
            let err = IpPool::parse([bad]).expect_err(bad);
            assert!(err.contains(bad), "{err}");
        }
    }
}
