//! CIDR blocks for IPv4 and IPv6, and the `ipBlock` peer of a NetworkPolicy.
//!
//! Parsing is strict: `address/prefix` with a prefix no longer than the address family allows.
//! Host bits after the prefix are ignored (`10.0.0.1/24` is `10.0.0.0/24`), as the apiserver
//! accepts them. Anything else is malformed, and a malformed block simply matches nothing.

use std::net::IpAddr;

use k8s_openapi::api::networking::v1::IPBlock;

/// A parsed CIDR block: a network address and a prefix length.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Cidr {
    network: IpAddr,
    prefix: u8,
}

impl Cidr {
    /// Parses `address/prefix` (IPv4 or IPv6). Returns `None` for anything malformed: no `/`,
    /// a bad address, a non-numeric prefix, or a prefix longer than 32 (IPv4) or 128 (IPv6).
    pub fn parse(text: &str) -> Option<Cidr> {
        let (address, prefix) = text.split_once('/')?;
        if prefix.is_empty() || prefix.len() > 3 || !prefix.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        let prefix: u8 = prefix.parse().ok()?;
        let network: IpAddr = address.parse().ok()?;
        let max = if network.is_ipv4() { 32 } else { 128 };
        (prefix <= max).then_some(Cidr { network, prefix })
    }

    /// The network address as written (host bits are not cleared).
    pub fn network(&self) -> IpAddr {
        self.network
    }

    /// The prefix length.
    pub fn prefix(&self) -> u8 {
        self.prefix
    }

    /// Whether `ip` lies in this block. Families must agree, except that an IPv4-mapped IPv6
    /// address (`::ffff:a.b.c.d`) is compared as the IPv4 address it maps.
    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.network, ip.to_canonical()) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                let mask = mask_u32(self.prefix);
                u32::from(net) & mask == u32::from(ip) & mask
            }
            (IpAddr::V6(net), _) => {
                let IpAddr::V6(ip) = ip else { return false };
                let mask = mask_u128(self.prefix);
                u128::from(net) & mask == u128::from(ip) & mask
            }
            (IpAddr::V4(_), IpAddr::V6(_)) => false,
        }
    }

    /// Whether every address of `other` lies in this block.
    pub fn covers(&self, other: &Cidr) -> bool {
        self.network.is_ipv4() == other.network.is_ipv4()
            && self.prefix <= other.prefix
            && self.contains(other.network)
    }
}

impl std::fmt::Display for Cidr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.network, self.prefix)
    }
}

fn mask_u32(prefix: u8) -> u32 {
    u32::MAX.checked_shl(32 - u32::from(prefix.min(32))).unwrap_or(0)
}

fn mask_u128(prefix: u8) -> u128 {
    u128::MAX.checked_shl(128 - u32::from(prefix.min(128))).unwrap_or(0)
}

/// Whether `ip` is in the block's `cidr` and in none of its `except` blocks.
///
/// A malformed `cidr` matches nothing. A malformed `except` entry excludes nothing (it matches
/// no address), so the rest of the block still applies: an auditor would rather over-report
/// what is reachable than hide it. The apiserver rejects both, so neither occurs in a cluster.
pub fn ip_block_contains(block: &IPBlock, ip: IpAddr) -> bool {
    let Some(cidr) = Cidr::parse(&block.cidr) else { return false };
    cidr.contains(ip) && !block.except.iter().flatten().filter_map(|e| Cidr::parse(e)).any(|e| e.contains(ip))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn parse_accepts_and_rejects() {
        let cases: &[(&str, bool)] = &[
            ("10.0.0.0/8", true),
            ("10.0.0.1/24", true),
            ("0.0.0.0/0", true),
            ("1.2.3.4/32", true),
            ("2001:db8::/32", true),
            ("::/0", true),
            ("::1/128", true),
            ("10.0.0.0", false),
            ("10.0.0.0/33", false),
            ("2001:db8::/129", false),
            ("10.0.0.0/", false),
            ("10.0.0.0/+8", false),
            ("10.0.0.0/-1", false),
            ("10.0.0.0/0008", false),
            ("10.0.0/8", false),
            ("nonsense/8", false),
            ("", false),
            ("/", false),
        ];
        for (text, ok) in cases {
            assert_eq!(Cidr::parse(text).is_some(), *ok, "{text}");
        }
    }

    #[test]
    fn contains() {
        let cases: &[(&str, &str, bool)] = &[
            ("10.0.0.0/24", "10.0.0.0", true),
            ("10.0.0.0/24", "10.0.0.255", true),
            ("10.0.0.0/24", "10.0.1.0", false),
            ("10.0.0.1/24", "10.0.0.200", true),
            ("0.0.0.0/0", "203.0.113.9", true),
            ("1.2.3.4/32", "1.2.3.4", true),
            ("1.2.3.4/32", "1.2.3.5", false),
            ("172.16.0.0/12", "172.31.255.255", true),
            ("172.16.0.0/12", "172.32.0.0", false),
            ("2001:db8::/32", "2001:db8:ffff::1", true),
            ("2001:db8::/32", "2001:db9::1", false),
            ("::/0", "fe80::1", true),
            ("::/0", "10.0.0.1", false),
            ("0.0.0.0/0", "2001:db8::1", false),
            ("10.0.0.0/8", "::ffff:10.1.2.3", true),
            ("fd00::/8", "fdff:1::5", true),
            ("fd00::/8", "fe00::5", false),
        ];
        for (cidr, addr, want) in cases {
            let block = Cidr::parse(cidr).unwrap();
            assert_eq!(block.contains(ip(addr)), *want, "{cidr} contains {addr}");
        }
    }

    #[test]
    fn ip_block_with_except() {
        let block = IPBlock {
            cidr: "172.17.0.0/16".into(),
            except: Some(vec!["172.17.1.0/24".into(), "not-a-cidr".into()]),
        };
        assert!(ip_block_contains(&block, ip("172.17.0.1")));
        assert!(!ip_block_contains(&block, ip("172.17.1.1")));
        assert!(!ip_block_contains(&block, ip("172.18.0.1")));
        let broken = IPBlock { cidr: "172.17.0.0".into(), except: None };
        assert!(!ip_block_contains(&broken, ip("172.17.0.0")));
    }
}
