//! Address management for one network: a JSON lease file in the state dir, rewritten atomically
//! on every change, so no address is handed out twice, even across a restart of the manager.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// Errors of address management.
#[derive(Debug, thiserror::Error)]
pub enum IpamError {
    /// Reading the lease file failed.
    #[error("cannot read leases {path}")]
    Load {
        /// The file.
        path: PathBuf,
        /// Cause.
        #[source]
        source: std::io::Error,
    },
    /// The lease file is not valid JSON for this format.
    #[error("lease file {path} is corrupt")]
    Parse {
        /// The file.
        path: PathBuf,
        /// Cause.
        #[source]
        source: serde_json::Error,
    },
    /// Writing the lease file failed.
    #[error("cannot write leases {path}")]
    Store {
        /// The file.
        path: PathBuf,
        /// Cause.
        #[source]
        source: std::io::Error,
    },
    /// Every host address of the subnet is leased.
    #[error("subnet {subnet}/{prefix} has no free address")]
    Exhausted {
        /// Subnet.
        subnet: Ipv4Addr,
        /// Prefix length.
        prefix: u8,
    },
    /// The owner already holds an address.
    #[error("{owner} already holds {address}")]
    AlreadyLeased {
        /// The owner.
        owner: String,
        /// Its address.
        address: Ipv4Addr,
    },
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct Leases {
    /// Address → owner (group id).
    leases: BTreeMap<Ipv4Addr, String>,
}

/// The allocator of one subnet. The network address, the gateway (first host) and the broadcast
/// address are never handed out.
#[derive(Debug)]
pub struct Ipam {
    path: PathBuf,
    subnet: u32,
    prefix: u8,
    state: Leases,
}

impl Ipam {
    /// Opens (or starts) the lease file at `path` for `subnet/prefix`.
    pub fn open(path: &Path, subnet: Ipv4Addr, prefix: u8) -> Result<Self, IpamError> {
        let state = match std::fs::read(path) {
            Ok(bytes) => serde_json::from_slice(&bytes)
                .map_err(|source| IpamError::Parse { path: path.to_owned(), source })?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Leases::default(),
            Err(source) => return Err(IpamError::Load { path: path.to_owned(), source }),
        };
        Ok(Self { path: path.to_owned(), subnet: u32::from(subnet) & mask(prefix), prefix, state })
    }

    /// The gateway address: the subnet's first host.
    pub fn gateway(&self) -> Ipv4Addr {
        Ipv4Addr::from(self.subnet + 1)
    }

    /// Leases the lowest free address to `owner` and persists the lease.
    pub fn allocate(&mut self, owner: &str) -> Result<Ipv4Addr, IpamError> {
        if let Some(address) = self.lease_of(owner) {
            return Err(IpamError::AlreadyLeased { owner: owner.to_owned(), address });
        }
        let size = 1u64 << (32 - u32::from(self.prefix));
        let last = (u64::from(self.subnet) + size - 1) as u32; // broadcast
        let free = (self.subnet + 2..last).map(Ipv4Addr::from).find(|a| !self.state.leases.contains_key(a));
        let address =
            free.ok_or(IpamError::Exhausted { subnet: Ipv4Addr::from(self.subnet), prefix: self.prefix })?;
        self.state.leases.insert(address, owner.to_owned());
        if let Err(e) = self.store() {
            self.state.leases.remove(&address);
            return Err(e);
        }
        Ok(address)
    }

    /// Releases `owner`'s address (if any) and persists; returns it.
    pub fn release(&mut self, owner: &str) -> Result<Option<Ipv4Addr>, IpamError> {
        let Some(address) = self.lease_of(owner) else {
            return Ok(None);
        };
        self.state.leases.remove(&address);
        self.store()?;
        Ok(Some(address))
    }

    /// The address leased to `owner`.
    pub fn lease_of(&self, owner: &str) -> Option<Ipv4Addr> {
        self.state.leases.iter().find(|(_, o)| o.as_str() == owner).map(|(a, _)| *a)
    }

    /// All leases, address → owner.
    pub fn leases(&self) -> impl Iterator<Item = (Ipv4Addr, &str)> {
        self.state.leases.iter().map(|(a, o)| (*a, o.as_str()))
    }

    fn store(&self) -> Result<(), IpamError> {
        let err = |source| IpamError::Store { path: self.path.clone(), source };
        let bytes = serde_json::to_vec_pretty(&self.state)
            .map_err(|e| err(std::io::Error::new(std::io::ErrorKind::InvalidData, e)))?;
        let tmp = self.path.with_extension("tmp");
        std::fs::write(&tmp, bytes).map_err(err)?;
        std::fs::rename(&tmp, &self.path).map_err(err)
    }
}

fn mask(prefix: u8) -> u32 {
    if prefix == 0 {
        0
    } else {
        u32::MAX << (32 - u32::from(prefix.min(32)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn leases_persist_exhaust_and_release() -> Result<(), IpamError> {
        let dir = tempfile::tempdir().map_err(|source| IpamError::Load { path: "tmp".into(), source })?;
        let path = dir.path().join("leases.json");
        let net = Ipv4Addr::new(10, 1, 2, 0);
        let mut ipam = Ipam::open(&path, net, 29)?; // hosts .1-.6, .1 is the gateway
        assert_eq!(ipam.gateway(), Ipv4Addr::new(10, 1, 2, 1));
        let got: Vec<_> = (0..5).map(|i| ipam.allocate(&format!("g{i}"))).collect::<Result<_, _>>()?;
        assert_eq!(got.first(), Some(&Ipv4Addr::new(10, 1, 2, 2)));
        assert_eq!(got.last(), Some(&Ipv4Addr::new(10, 1, 2, 6)));
        assert!(matches!(ipam.allocate("g9"), Err(IpamError::Exhausted { .. })));
        assert!(matches!(ipam.allocate("g0"), Err(IpamError::AlreadyLeased { .. })));
        drop(ipam);
        let mut again = Ipam::open(&path, net, 29)?; // a restarted manager
        assert_eq!(again.lease_of("g3"), Some(Ipv4Addr::new(10, 1, 2, 5)));
        assert!(matches!(again.allocate("g9"), Err(IpamError::Exhausted { .. })));
        assert_eq!(again.release("g1")?, Some(Ipv4Addr::new(10, 1, 2, 3)));
        assert_eq!(again.allocate("g9")?, Ipv4Addr::new(10, 1, 2, 3));
        Ok(())
    }
}
