//! Building and tearing down one network, by named steps: namespace → bridge with the gateway
//! address → isolation rules. A failed step undoes the earlier ones (deleting the namespace
//! takes the bridge and the table with it).

use std::net::Ipv4Addr;

use crate::config::NetworkConfig;
use crate::links::{self, LinkError};
use crate::netns::{self, NetnsError};
use crate::nft::{self, Isolation, NftError};

/// The host side of a NAT network: veth `host_if` (`host_addr/30`) ↔ `up0` (`ns_addr/30`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UplinkPlan {
    /// Host-side veth name: `acu` + 8 hex digits of a hash of prefix and network name.
    pub host_if: String,
    /// Host-side transit address (the namespace's default gateway).
    pub host_addr: Ipv4Addr,
    /// Namespace-side transit address (what the host masquerades).
    pub ns_addr: Ipv4Addr,
}

/// Preferred transit slot of `network` under `prefix`: a hash, so managers with different state
/// dirs rarely pick the same transit addresses.
pub fn slot_hint(prefix: &str, network: &str) -> u16 {
    use sha2::{Digest, Sha256};
    let d = Sha256::digest(format!("slot:{prefix}{network}").as_bytes());
    u16::from_be_bytes([d[0], d[1]]) % 8192
}

/// The uplink of `network` under `prefix` using transit slot `slot` (a /30 in 169.254.128.0/17).
pub fn uplink_plan(prefix: &str, network: &str, slot: u16) -> UplinkPlan {
    use sha2::{Digest, Sha256};
    let digest = hex::encode(Sha256::digest(format!("{prefix}{network}").as_bytes()));
    let base = u32::from(Ipv4Addr::new(169, 254, 128, 0)) + u32::from(slot % 8192) * 4;
    UplinkPlan {
        host_if: format!("acu{}", digest.get(..8).unwrap_or(&digest)),
        host_addr: Ipv4Addr::from(base + 1),
        ns_addr: Ipv4Addr::from(base + 2),
    }
}

/// The bridge's name inside every network namespace.
pub const BRIDGE: &str = "br0";

/// Errors of network build and teardown, one variant per step.
#[derive(Debug, thiserror::Error)]
pub enum NetworkError {
    /// Step 1: creating the namespace.
    #[error("cannot create the namespace of network {network}")]
    CreateNamespace {
        /// Network name.
        network: String,
        /// Cause.
        #[source]
        source: NetnsError,
    },
    /// Step 2: creating the bridge and its gateway address.
    #[error("cannot create the bridge of network {network}")]
    CreateBridge {
        /// Network name.
        network: String,
        /// Cause.
        #[source]
        source: LinkError,
    },
    /// Step 3 (NAT networks): creating the uplink to the host.
    #[error("cannot create the uplink of network {network}")]
    CreateUplink {
        /// Network name.
        network: String,
        /// Cause.
        #[source]
        source: LinkError,
    },
    /// Teardown: deleting the uplink's host end.
    #[error("cannot delete the uplink of network {network}")]
    DeleteUplink {
        /// Network name.
        network: String,
        /// Cause.
        #[source]
        source: LinkError,
    },
    /// Step 3 (NAT networks): turning on forwarding inside the namespace.
    #[error("cannot enable forwarding in the namespace of network {network}")]
    EnableForwarding {
        /// Network name.
        network: String,
        /// Cause.
        #[source]
        source: NetnsError,
    },
    /// Step 4: installing the isolation rules.
    #[error("cannot install the isolation rules of network {network}")]
    ApplyRules {
        /// Network name.
        network: String,
        /// Cause.
        #[source]
        source: NftError,
    },
    /// Teardown: deleting the namespace.
    #[error("cannot delete the namespace of network {network}")]
    DeleteNamespace {
        /// Network name.
        network: String,
        /// Cause.
        #[source]
        source: NetnsError,
    },
}

/// The gateway of `cfg`: the subnet's first host.
pub fn gateway_of(cfg: &NetworkConfig) -> Ipv4Addr {
    let mask = if cfg.prefix == 0 { 0 } else { u32::MAX << (32 - u32::from(cfg.prefix)) };
    Ipv4Addr::from((u32::from(cfg.subnet) & mask) + 1)
}

/// Builds network `cfg` in namespace `ns` (with `uplink` when it has outbound NAT).
pub async fn build(ns: &str, cfg: &NetworkConfig, uplink: Option<&UplinkPlan>) -> Result<(), NetworkError> {
    let network = || cfg.name.clone();
    netns::create(ns).map_err(|source| NetworkError::CreateNamespace { network: network(), source })?;
    let gateway = gateway_of(cfg);
    if let Err(source) = links::create_bridge(ns, BRIDGE, gateway, cfg.prefix).await {
        let _ = netns::delete(ns);
        return Err(NetworkError::CreateBridge { network: network(), source });
    }
    if let Some(up) = uplink {
        if let Err(source) = links::create_uplink(ns, &up.host_if, up.host_addr, up.ns_addr).await {
            let _ = netns::delete(ns);
            return Err(NetworkError::CreateUplink { network: network(), source });
        }
        if let Err(source) = netns::enable_forwarding(ns) {
            let _ = teardown(ns, &cfg.name, Some(&up.host_if)).await;
            return Err(NetworkError::EnableForwarding { network: network(), source });
        }
    }
    let iso = Isolation { subnet: cfg.subnet, prefix: cfg.prefix, gateway, outbound_nat: uplink.is_some() };
    let rules = nft::ruleset(&iso);
    let ns_owned = ns.to_owned();
    let applied = tokio::task::spawn_blocking(move || nft::apply(&ns_owned, rules)).await;
    let applied = match applied {
        Ok(r) => r,
        Err(_) => Err(NftError::Apply { stderr: "nft task panicked".into() }),
    };
    if let Err(source) = applied {
        let _ = teardown(ns, &cfg.name, uplink.map(|u| u.host_if.as_str())).await;
        return Err(NetworkError::ApplyRules { network: network(), source });
    }
    tracing::info!(network = %cfg.name, %ns, %gateway, "network built");
    Ok(())
}

/// Tears down the network in namespace `ns`: the host end of its uplink (if any; deleting it
/// takes the pair), then the namespace, and with it the bridge, every tap and aci's table.
pub async fn teardown(ns: &str, network: &str, host_if: Option<&str>) -> Result<(), NetworkError> {
    if let Some(host_if) = host_if {
        links::delete_host_link(host_if)
            .await
            .map_err(|source| NetworkError::DeleteUplink { network: network.to_owned(), source })?;
    }
    netns::delete(ns).map_err(|source| NetworkError::DeleteNamespace { network: network.to_owned(), source })
}
