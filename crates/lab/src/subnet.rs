//! The lab's IPv4 subnet and who gets which address in it.
//!
//! Layout (offsets from the network address, so `10.213.7.0/24` gives `10.213.7.11` for `pg1`):
//! - `.1` the bridge, so this machine reaches the hosts
//! - `.11`–`.19` `pg1`–`pg9`, `.21`–`.29` `lb1`–`lb9`
//! - `.100` kept free for the VIP (`lab_vip` in the inventory), never assigned by the lab
//! - `.110`–`.149` `pg10`–`pg49`, `.160`–`.199` `lb10`–`lb49`

use std::fmt;
use std::net::Ipv4Addr;
use std::str::FromStr;

/// Largest number of hosts of one role
pub const MAX_PER_ROLE: u32 = 49;

/// An IPv4 network in CIDR form
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Subnet {
    network: Ipv4Addr,
    prefix: u8,
}

/// A subnet that cannot hold the lab
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SubnetError {
    #[error("`{0}` is not an IPv4 subnet in CIDR form like `10.213.7.0/24`")]
    Syntax(String),
    #[error("`{0}` has host bits set; did you mean `{1}`?")]
    HostBits(String, String),
    #[error("`{0}` is too small for the lab: use a /24 or larger")]
    TooSmall(String),
}

impl FromStr for Subnet {
    type Err = SubnetError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let syntax = || SubnetError::Syntax(s.to_string());
        let (addr, prefix) = s.split_once('/').ok_or_else(syntax)?;
        let addr: Ipv4Addr = addr.parse().map_err(|_| syntax())?;
        let prefix: u8 = prefix.parse().map_err(|_| syntax())?;
        if prefix > 32 {
            return Err(syntax());
        }
        let subnet = Subnet {
            network: Ipv4Addr::from(u32::from(addr) & mask(prefix)),
            prefix,
        };
        if subnet.network != addr {
            return Err(SubnetError::HostBits(s.to_string(), subnet.to_string()));
        }
        if prefix > 24 {
            return Err(SubnetError::TooSmall(s.to_string()));
        }
        Ok(subnet)
    }
}

impl fmt::Display for Subnet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.network, self.prefix)
    }
}

fn mask(prefix: u8) -> u32 {
    if prefix == 0 {
        0
    } else {
        u32::MAX << (32 - prefix)
    }
}

/// The two kinds of lab host
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// `pgN`: PostgreSQL, Patroni, etcd
    Postgres,
    /// `lbN`: HAProxy, keepalived
    Balancer,
}

impl Role {
    /// Host name prefix
    pub fn prefix(self) -> &'static str {
        match self {
            Role::Postgres => "pg",
            Role::Balancer => "lb",
        }
    }
}

impl Subnet {
    pub fn prefix_len(&self) -> u8 {
        self.prefix
    }

    /// The address at `offset` from the network address
    pub fn at(&self, offset: u32) -> Ipv4Addr {
        Ipv4Addr::from(u32::from(self.network) + offset)
    }

    /// The bridge's address: the first of the subnet
    pub fn gateway(&self) -> Ipv4Addr {
        self.at(1)
    }

    /// Where a VIP goes; the lab never assigns it
    pub fn vip(&self) -> Ipv4Addr {
        self.at(100)
    }

    /// Where a second VIP goes (seed 004's VIP on the Patroni leader); never assigned either
    pub fn leader_vip(&self) -> Ipv4Addr {
        self.at(101)
    }

    /// Address of host number `index` (1-based) of `role`, see the module doc for the layout
    pub fn host(&self, role: Role, index: u32) -> Option<Ipv4Addr> {
        let offset = match (role, index) {
            (_, 0) => return None,
            (Role::Postgres, 1..=9) => 10 + index,
            (Role::Balancer, 1..=9) => 20 + index,
            (Role::Postgres, 10..=MAX_PER_ROLE) => 100 + index,
            (Role::Balancer, 10..=MAX_PER_ROLE) => 150 + index,
            _ => return None,
        };
        Some(self.at(offset))
    }

    /// True when the two networks share an address
    pub fn overlaps(&self, other: &Subnet) -> bool {
        let common = self.prefix.min(other.prefix);
        u32::from(self.network) & mask(common) == u32::from(other.network) & mask(common)
    }

    /// A route destination as `ip -j route` prints it (`10.0.0.0/8`, `192.0.2.1`), any prefix
    pub fn parse_route(dst: &str) -> Option<Subnet> {
        let (addr, prefix) = match dst.split_once('/') {
            Some((a, p)) => (a.parse::<Ipv4Addr>().ok()?, p.parse::<u8>().ok()?),
            None => (dst.parse::<Ipv4Addr>().ok()?, 32),
        };
        if prefix > 32 {
            return None;
        }
        Some(Subnet {
            network: Ipv4Addr::from(u32::from(addr) & mask(prefix)),
            prefix,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_lays_out() {
        let s: Subnet = "10.213.7.0/24".parse().unwrap();
        assert_eq!(s.gateway(), Ipv4Addr::new(10, 213, 7, 1));
        assert_eq!(s.vip(), Ipv4Addr::new(10, 213, 7, 100));
        assert_eq!(
            s.host(Role::Postgres, 1),
            Some(Ipv4Addr::new(10, 213, 7, 11))
        );
        assert_eq!(
            s.host(Role::Balancer, 1),
            Some(Ipv4Addr::new(10, 213, 7, 21))
        );
        assert_eq!(
            s.host(Role::Postgres, 10),
            Some(Ipv4Addr::new(10, 213, 7, 110))
        );
        assert_eq!(
            s.host(Role::Balancer, 49),
            Some(Ipv4Addr::new(10, 213, 7, 199))
        );
        assert_eq!(s.host(Role::Balancer, 50), None);
        assert_eq!(s.to_string(), "10.213.7.0/24");
    }

    #[test]
    fn rejects_bad_subnets() {
        assert!(matches!(
            "10.1.2.3/24".parse::<Subnet>(),
            Err(SubnetError::HostBits(..))
        ));
        assert!(matches!(
            "10.1.2.0/25".parse::<Subnet>(),
            Err(SubnetError::TooSmall(..))
        ));
        assert!(matches!(
            "10.1.2.0".parse::<Subnet>(),
            Err(SubnetError::Syntax(..))
        ));
    }

    #[test]
    fn overlap() {
        let s: Subnet = "10.213.7.0/24".parse().unwrap();
        assert!(s.overlaps(&Subnet::parse_route("10.0.0.0/8").unwrap()));
        assert!(s.overlaps(&Subnet::parse_route("10.213.7.5").unwrap()));
        assert!(!s.overlaps(&Subnet::parse_route("10.213.8.0/24").unwrap()));
        assert!(!s.overlaps(&Subnet::parse_route("192.0.2.0/24").unwrap()));
    }
}
