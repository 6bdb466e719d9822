//! Plain-data configuration: what the runtime hands to [`crate::NetworkManager`].

use std::net::Ipv4Addr;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// One virtual network: a bridge with `subnet/prefix` inside namespace `<prefix><name>`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NetworkConfig {
    /// Name: lowercase letters, digits and `-`, at most 32 bytes.
    pub name: String,
    /// Subnet address (host bits are ignored).
    pub subnet: Ipv4Addr,
    /// Prefix length, 16..=29.
    pub prefix: u8,
    /// Outbound NAT: guests may open connections to the outside through the host (masqueraded);
    /// off, the network has no path out of its namespace at all.
    #[serde(default)]
    pub outbound_nat: bool,
}

/// Settings of a [`crate::NetworkManager`].
#[derive(Debug, Clone)]
pub struct ManagerConfig {
    /// Directory for network specs and leases (created if missing).
    pub state_dir: PathBuf,
    /// Prefix of every namespace aci creates; recovery removes orphans with this prefix only.
    pub name_prefix: String,
    /// The network for groups without `subnetIds`.
    pub default_network: NetworkConfig,
}

impl ManagerConfig {
    /// Defaults: prefix `aci-`, default network `default` on `10.88.0.0/16` with outbound NAT.
    pub fn new(state_dir: impl Into<PathBuf>) -> Self {
        Self {
            state_dir: state_dir.into(),
            name_prefix: "aci-".into(),
            default_network: NetworkConfig {
                name: "default".into(),
                subnet: Ipv4Addr::new(10, 88, 0, 0),
                prefix: 16,
                outbound_nat: true,
            },
        }
    }
}

/// What a group's guest must configure on its interface (sent to the agent).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GuestNetConfig {
    /// The guest's address.
    pub address: Ipv4Addr,
    /// Prefix length of the network.
    pub prefix: u8,
    /// Default gateway (the bridge).
    pub gateway: Ipv4Addr,
    /// DNS servers (the gateway, where aci serves DNS for the network).
    pub dns_servers: Vec<Ipv4Addr>,
    /// MAC address of the guest's NIC (locally administered, derived from the address).
    pub mac: [u8; 6],
}

/// Maps a group's `subnetIds` entry to a network name: `None` → the default network; an ARM id
/// `…/virtualNetworks/<vnet>/subnets/<subnet>` → `<vnet>-<subnet>`; anything else is sanitised.
pub fn network_name_for(subnet_id: Option<&str>, default: &str) -> String {
    let Some(id) = subnet_id else {
        return default.to_owned();
    };
    let parts: Vec<&str> = id.split('/').filter(|s| !s.is_empty()).collect();
    let lower: Vec<String> = parts.iter().map(|p| p.to_ascii_lowercase()).collect();
    let raw = match lower.iter().position(|p| p == "virtualnetworks") {
        Some(i) if lower.get(i + 2).map(String::as_str) == Some("subnets") => {
            format!("{}-{}", lower.get(i + 1).map_or("", |s| s), lower.get(i + 3).map_or("", |s| s))
        }
        _ => id.to_ascii_lowercase(),
    };
    let mut name: String = raw.chars().map(|c| if c.is_ascii_alphanumeric() { c } else { '-' }).collect();
    name.truncate(32);
    name
}

/// Checks a network name (see [`NetworkConfig::name`]).
pub fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 32
        && name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

/// The guest MAC for `address`: `02:ac:` followed by the address bytes.
pub fn mac_for(address: Ipv4Addr) -> [u8; 6] {
    let o = address.octets();
    [0x02, 0xac, o[0], o[1], o[2], o[3]]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subnet_ids_map_to_names() {
        let id = "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Network/virtualNetworks/VNet1/subnets/Sub_A";
        assert_eq!(network_name_for(Some(id), "default"), "vnet1-sub-a");
        assert_eq!(network_name_for(None, "default"), "default");
        assert!(valid_name(&network_name_for(Some("weird id!"), "d")));
        assert_eq!(mac_for(Ipv4Addr::new(10, 0, 0, 2)), [2, 0xac, 10, 0, 0, 2]);
    }
}
