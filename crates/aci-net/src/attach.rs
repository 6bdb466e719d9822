//! Per-group operations of [`NetworkManager`]: attach (lease → tap on the bridge), detach,
//! publish ports, and the network-side DNS socket.

use std::net::{IpAddr, Ipv4Addr};
use std::os::fd::OwnedFd;

use crate::config::{self, GuestNetConfig};
use crate::links;
use crate::manager::{ManagerError, NetworkManager};
use crate::netns;
use crate::network::{self, BRIDGE};
use crate::ports::{self, PortSpec, PublishedPorts};
use crate::tap::{self, TapError};

/// A group's place on a network: the tap fd for the VMM and what the guest must configure.
#[derive(Debug)]
pub struct Attachment {
    /// Network name.
    pub network: String,
    /// Tap device name (inside the network's namespace).
    pub tap_name: String,
    /// Owned tap fd; closing it removes the tap.
    pub tap: OwnedFd,
    /// Guest interface configuration.
    pub guest: GuestNetConfig,
}

impl NetworkManager {
    /// Groups holding an address on `network`.
    pub fn leased_groups(&self, network: &str) -> Result<Vec<String>, ManagerError> {
        self.with_ipam(network, |i| Ok(i.leases().map(|(_, g)| g.to_owned()).collect()))
    }

    /// Attaches group `group` to `network`: leases an address, creates tap `t<hex address>` on
    /// the bridge and returns its fd (with `IFF_VNET_HDR` when `vnet_hdr`). All-or-nothing.
    pub async fn attach(
        &self,
        network: &str,
        group: &str,
        vnet_hdr: bool,
    ) -> Result<Attachment, ManagerError> {
        let cfg = self.require(network)?;
        let address = self.with_ipam(network, |i| i.allocate(group))?;
        match self.wire_tap(network, group, address, vnet_hdr).await {
            Ok((tap_name, tap)) => {
                let gateway = network::gateway_of(&cfg);
                let guest = GuestNetConfig {
                    address,
                    prefix: cfg.prefix,
                    gateway,
                    dns_servers: vec![gateway],
                    mac: config::mac_for(address),
                };
                Ok(Attachment { network: network.to_owned(), tap_name, tap, guest })
            }
            Err(e) => {
                let _ = self.with_ipam(network, |i| i.release(group));
                Err(e)
            }
        }
    }

    async fn wire_tap(
        &self,
        network: &str,
        group: &str,
        address: Ipv4Addr,
        vnet_hdr: bool,
    ) -> Result<(String, OwnedFd), ManagerError> {
        let ns = self.namespace_of(network);
        let name = tap_name(address);
        let (ns2, name2) = (ns.clone(), name.clone());
        let fd = tokio::task::spawn_blocking(move || tap::open_in(&ns2, &name2, vnet_hdr))
            .await
            .map_err(|_| ManagerError::CreateTap {
                group: group.to_owned(),
                source: TapError::Name(name.clone()),
            })?
            .map_err(|source| ManagerError::CreateTap { group: group.to_owned(), source })?;
        links::attach_port(&ns, &name, BRIDGE)
            .await
            .map_err(|source| ManagerError::WireTap { group: group.to_owned(), source })?;
        Ok((name, fd))
    }

    /// Detaches `group` from `network`: deletes its tap (the VMM's fd then reads EOF/EIO) and
    /// releases its address.
    pub async fn detach(&self, network: &str, group: &str) -> Result<(), ManagerError> {
        let Some(address) = self.with_ipam(network, |i| Ok(i.lease_of(group)))? else {
            return Ok(());
        };
        links::delete_link(&self.namespace_of(network), &tap_name(address))
            .await
            .map_err(|source| ManagerError::WireTap { group: group.to_owned(), source })?;
        self.with_ipam(network, |i| i.release(group))?;
        Ok(())
    }

    /// Publishes `ports` of the group at `group_ip` on `network` at `bind`; see [`ports`].
    pub async fn publish(
        &self,
        network: &str,
        group: &str,
        group_ip: Ipv4Addr,
        bind: IpAddr,
        specs: &[PortSpec],
    ) -> Result<PublishedPorts, ManagerError> {
        ports::publish(&self.namespace_of(network), group_ip, bind, specs)
            .await
            .map_err(|source| ManagerError::Publish { group: group.to_owned(), source })
    }

    /// A UDP socket bound to `network`'s gateway port 53 inside its namespace, for the DNS server
    /// to answer the network's guests.
    pub fn dns_socket(&self, network: &str) -> Result<std::net::UdpSocket, ManagerError> {
        let gw = network::gateway_of(&self.require(network)?);
        let err = |source| ManagerError::DnsSocket { network: network.to_owned(), source };
        let sock = netns::run_in(&self.namespace_of(network), move || std::net::UdpSocket::bind((gw, 53)))
            .map_err(|e| err(std::io::Error::other(e)))?
            .map_err(err)?;
        sock.set_nonblocking(true).map_err(err)?;
        Ok(sock)
    }
}

/// Tap name for a guest address: `t` + 8 hex digits (fits IFNAMSIZ, unique per network).
fn tap_name(address: Ipv4Addr) -> String {
    format!("t{:08x}", u32::from(address))
}
