//! [`NetworkManager`]: the runtime's entry point. Owns the state dir (network specs and leases)
//! and turns [`NetworkConfig`]s into running networks and groups into attachments.

use std::collections::HashMap;
use std::sync::Mutex;

use crate::config::{self, ManagerConfig, NetworkConfig};
use crate::ipam::{Ipam, IpamError};
use crate::links::LinkError;
use crate::netns::{self, NetnsError};
use crate::network::{self, NetworkError, UplinkPlan};
use crate::nft::{self, HostUplink, NftError};
use crate::ports::PortError;
use crate::state::{StateDir, StateError, StoredNetwork};
use crate::tap::TapError;

/// Errors of [`NetworkManager`] operations.
#[derive(Debug, thiserror::Error)]
pub enum ManagerError {
    /// The state dir or a network spec could not be read or written.
    #[error("network state failed")]
    State(#[source] StateError),
    /// Updating aci's host table (NAT networks) failed.
    #[error("cannot update aci's host nftables table")]
    HostRules(#[source] NftError),
    /// Creating the network-side DNS socket failed.
    #[error("cannot open the DNS socket of network {network}")]
    DnsSocket {
        /// Network name.
        network: String,
        /// Cause.
        #[source]
        source: std::io::Error,
    },
    /// A network name is invalid.
    #[error("invalid network name {0:?} (lowercase letters, digits, '-', at most 32 bytes)")]
    InvalidName(String),
    /// A network config is invalid.
    #[error("invalid network {name}: prefix {prefix} is outside 16..=29")]
    InvalidPrefix {
        /// Network name.
        name: String,
        /// Rejected prefix.
        prefix: u8,
    },
    /// The network already exists with another config.
    #[error("network {0} already exists with a different subnet")]
    NetworkConflict(String),
    /// The network does not exist.
    #[error("network {0} does not exist")]
    UnknownNetwork(String),
    /// Building or tearing down the network failed.
    #[error("network operation failed")]
    Network(#[source] Box<NetworkError>),
    /// Leasing or releasing an address failed.
    #[error("address management failed for network {network}")]
    Ipam {
        /// Network name.
        network: String,
        /// Cause.
        #[source]
        source: IpamError,
    },
    /// Creating the group's tap failed.
    #[error("cannot create the tap of group {group}")]
    CreateTap {
        /// Group id.
        group: String,
        /// Cause.
        #[source]
        source: TapError,
    },
    /// Attaching or deleting the group's tap failed.
    #[error("cannot wire the tap of group {group}")]
    WireTap {
        /// Group id.
        group: String,
        /// Cause.
        #[source]
        source: LinkError,
    },
    /// Publishing the group's ports failed; nothing was left bound.
    #[error("cannot publish the ports of group {group}")]
    Publish {
        /// Group id.
        group: String,
        /// Cause.
        #[source]
        source: PortError,
    },
    /// Listing namespaces for recovery failed.
    #[error("cannot scan namespaces for recovery")]
    Scan(#[source] NetnsError),
}

/// What [`NetworkManager::recover`] removed.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct RecoveryReport {
    /// Orphan namespaces deleted (prefix matched, no spec in the state dir).
    pub removed_namespaces: Vec<String>,
    /// Networks rebuilt because their namespace was missing.
    pub rebuilt_networks: Vec<String>,
    /// `(network, group)` leases released because the group is not live.
    pub released_leases: Vec<(String, String)>,
}

/// Host networking for container groups. See the crate docs for an example.
#[derive(Debug)]
pub struct NetworkManager {
    pub(crate) cfg: ManagerConfig,
    pub(crate) state: StateDir,
    ipams: Mutex<HashMap<String, Ipam>>,
}

impl NetworkManager {
    /// Opens the manager on `cfg.state_dir` (created if missing). Touches no networking.
    pub fn open(cfg: ManagerConfig) -> Result<Self, ManagerError> {
        let state = StateDir::open(&cfg.state_dir).map_err(ManagerError::State)?;
        Ok(Self { cfg, state, ipams: Mutex::new(HashMap::new()) })
    }

    /// The namespace name of `network`.
    pub fn namespace_of(&self, network: &str) -> String {
        format!("{}{network}", self.cfg.name_prefix)
    }

    /// aci's host nftables table (`inet`), named after the prefix (`aci-` → `aci`).
    pub fn host_table(&self) -> String {
        let t: String =
            self.cfg.name_prefix.chars().map(|c| if c.is_ascii_alphanumeric() { c } else { '_' }).collect();
        t.trim_end_matches('_').to_owned()
    }

    /// The uplink of a stored NAT network.
    pub(crate) fn uplink_of(&self, net: &StoredNetwork) -> Option<UplinkPlan> {
        net.uplink_slot.map(|slot| network::uplink_plan(&self.cfg.name_prefix, &net.config.name, slot))
    }

    /// The stored config of `network`, if it exists.
    pub fn network_config(&self, network: &str) -> Result<Option<NetworkConfig>, ManagerError> {
        Ok(self.state.load(network).map_err(ManagerError::State)?.map(|s| s.config))
    }

    pub(crate) fn require(&self, network: &str) -> Result<NetworkConfig, ManagerError> {
        self.network_config(network)?.ok_or_else(|| ManagerError::UnknownNetwork(network.to_owned()))
    }

    /// Creates network `cfg` (idempotent for an identical existing one; rebuilds its namespace
    /// if missing). Steps: validate → store spec → build (namespace, bridge, uplink, rules) →
    /// host table (NAT networks).
    pub async fn create_network(&self, cfg: &NetworkConfig) -> Result<(), ManagerError> {
        if !config::valid_name(&cfg.name) {
            return Err(ManagerError::InvalidName(cfg.name.clone()));
        }
        if !(16..=29).contains(&cfg.prefix) {
            return Err(ManagerError::InvalidPrefix { name: cfg.name.clone(), prefix: cfg.prefix });
        }
        let stored = match self.state.load(&cfg.name).map_err(ManagerError::State)? {
            Some(old) if &old.config != cfg => return Err(ManagerError::NetworkConflict(cfg.name.clone())),
            Some(old) => old,
            None => {
                let uplink_slot = if cfg.outbound_nat {
                    let preferred = network::slot_hint(&self.cfg.name_prefix, &cfg.name);
                    Some(self.state.free_slot(preferred).map_err(ManagerError::State)?)
                } else {
                    None
                };
                let new = StoredNetwork { config: cfg.clone(), uplink_slot };
                self.state.store(&new).map_err(ManagerError::State)?;
                new
            }
        };
        let ns = self.namespace_of(&cfg.name);
        if !netns::exists(&ns) {
            let uplink = self.uplink_of(&stored);
            if let Err(e) = network::build(&ns, cfg, uplink.as_ref()).await {
                let _ = self.state.remove(&cfg.name);
                return Err(ManagerError::Network(Box::new(e)));
            }
        }
        if cfg.outbound_nat {
            if std::fs::read_to_string("/proc/sys/net/ipv4/ip_forward").is_ok_and(|v| v.trim() == "0") {
                tracing::warn!(network = %cfg.name, "net.ipv4.ip_forward is 0: outbound NAT traffic will not be forwarded");
            }
            self.sync_host_table().await?;
        }
        Ok(())
    }

    /// Rewrites aci's host table from the stored NAT networks (removes it when there are none).
    pub(crate) async fn sync_host_table(&self) -> Result<(), ManagerError> {
        let uplinks: Vec<HostUplink> = self
            .state
            .all()
            .map_err(ManagerError::State)?
            .iter()
            .filter_map(|n| self.uplink_of(n))
            .map(|u| HostUplink { host_if: u.host_if, ns_addr: u.ns_addr })
            .collect();
        let table = self.host_table();
        tokio::task::spawn_blocking(move || nft::apply_host(&table, &uplinks))
            .await
            .map_err(|_| ManagerError::HostRules(NftError::Apply { stderr: "nft task panicked".into() }))?
            .map_err(ManagerError::HostRules)
    }

    /// Ensures the default network exists and returns its name.
    pub async fn default_network(&self) -> Result<String, ManagerError> {
        let cfg = self.cfg.default_network.clone();
        self.create_network(&cfg).await?;
        Ok(cfg.name)
    }

    /// Deletes `network`: its uplink, namespace (bridge, taps, rules), host rules and state.
    pub async fn delete_network(&self, network: &str) -> Result<(), ManagerError> {
        let stored = self.state.load(network).map_err(ManagerError::State)?;
        let host_if = stored.as_ref().and_then(|s| self.uplink_of(s)).map(|u| u.host_if);
        network::teardown(&self.namespace_of(network), network, host_if.as_deref())
            .await
            .map_err(|e| ManagerError::Network(Box::new(e)))?;
        self.lock().remove(network);
        self.state.remove(network).map_err(ManagerError::State)?;
        if host_if.is_some() {
            self.sync_host_table().await?;
        }
        Ok(())
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Ipam>> {
        self.ipams.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Runs `f` on `network`'s allocator (opened from the state dir on first use).
    pub(crate) fn with_ipam<T>(
        &self,
        network: &str,
        f: impl FnOnce(&mut Ipam) -> Result<T, IpamError>,
    ) -> Result<T, ManagerError> {
        let cfg = self.require(network)?;
        let ipam_err = |source| ManagerError::Ipam { network: network.to_owned(), source };
        let mut map = self.lock();
        let ipam = match map.entry(network.to_owned()) {
            std::collections::hash_map::Entry::Occupied(e) => e.into_mut(),
            std::collections::hash_map::Entry::Vacant(v) => v.insert(
                Ipam::open(&self.state.leases_path(network), cfg.subnet, cfg.prefix).map_err(ipam_err)?,
            ),
        };
        f(ipam).map_err(ipam_err)
    }
}
