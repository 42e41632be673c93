//! Who may change the cluster configuration when authentication is off.
//!
//! The rule is a list of networks (`--cluster-admin 10.0.0.0/8,::1`); the
//! default is loopback only, so on a host where clients connect over the
//! network no ordinary client can rewrite the node list, while an operator
//! on the node itself can. `none` forbids every change (the list then comes
//! only from the node file, joins and failure detection).

use std::net::IpAddr;

/// One network: an address and a prefix length.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Net {
    addr: IpAddr,
    prefix: u8,
}

impl Net {
    /// Parses `ADDR` or `ADDR/PREFIX`.
    pub fn parse(s: &str) -> Result<Net, String> {
        let (a, p) = match s.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (s, None),
        };
        let addr: IpAddr = a
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse()
            .map_err(|_| format!("'{s}' is not an address or network"))?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = match p {
            None => max,
            Some(p) => match p.parse::<u8>() {
                Ok(n) if n <= max => n,
                _ => return Err(format!("'{s}': bad prefix length")),
            },
        };
        Ok(Net { addr, prefix })
    }

    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = match (self.addr, ip) {
            (IpAddr::V4(_), IpAddr::V6(v6)) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(ip),
            _ => ip,
        };
        match (self.addr, ip) {
            (IpAddr::V4(n), IpAddr::V4(a)) => {
                let mask = u32::MAX
                    .checked_shl(32 - u32::from(self.prefix))
                    .unwrap_or(0);
                u32::from(n) & mask == u32::from(a) & mask
            }
            (IpAddr::V6(n), IpAddr::V6(a)) => {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(self.prefix))
                    .unwrap_or(0);
                u128::from(n) & mask == u128::from(a) & mask
            }
            _ => false,
        }
    }
}

/// The networks allowed to administer the cluster.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AdminRule {
    nets: Vec<Net>,
}

impl Default for AdminRule {
    /// Loopback only.
    fn default() -> Self {
        AdminRule {
            nets: vec![
                Net::parse("127.0.0.0/8").expect("valid"),
                Net::parse("::1").expect("valid"),
            ],
        }
    }
}

impl AdminRule {
    /// Parses `--cluster-admin`: `none`, `loopback`, or networks separated
    /// by commas.
    pub fn parse(s: &str) -> Result<AdminRule, String> {
        let mut nets = Vec::new();
        for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            match part {
                "none" => {}
                "loopback" => nets.extend(AdminRule::default().nets),
                _ => nets.push(Net::parse(part)?),
            }
        }
        Ok(AdminRule { nets })
    }

    pub fn allows(&self, ip: IpAddr) -> bool {
        self.nets.iter().any(|n| n.contains(ip))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn default_is_loopback() {
        let r = AdminRule::default();
        assert!(r.allows(ip("127.0.0.1")) && r.allows(ip("127.0.0.3")) && r.allows(ip("::1")));
        assert!(r.allows(ip("::ffff:127.0.0.1")));
        assert!(!r.allows(ip("10.0.0.1")) && !r.allows(ip("::2")));
    }

    #[test]
    fn networks() {
        let r = AdminRule::parse("10.1.0.0/16, 192.168.1.7,fe80::/10").unwrap();
        assert!(r.allows(ip("10.1.200.3")) && !r.allows(ip("10.2.0.1")));
        assert!(r.allows(ip("192.168.1.7")) && !r.allows(ip("192.168.1.8")));
        assert!(r.allows(ip("fe80::1")) && !r.allows(ip("127.0.0.1")));
        assert!(!AdminRule::parse("none").unwrap().allows(ip("127.0.0.1")));
        assert!(AdminRule::parse("0.0.0.0/0").unwrap().allows(ip("8.8.8.8")));
        for bad in ["10.0.0.0/33", "x", "::/129"] {
            assert!(AdminRule::parse(bad).is_err(), "{bad}");
        }
    }
}
