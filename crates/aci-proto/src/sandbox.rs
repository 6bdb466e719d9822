//! Sandbox-wide set-up: identity, network, DNS, and storage mounted in the guest.

use serde::{Deserialize, Serialize};

use crate::secret::Secret;

/// What [`crate::message::Call::ConfigureSandbox`] carries: everything the guest needs before
/// the first container starts.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct SandboxConfig {
    /// The guest's hostname (the group's name, as in ACI).
    pub hostname: String,
    /// The host's wall clock in milliseconds since the Unix epoch; the agent sets the guest
    /// clock from it so log timestamps and exit times agree with the host.
    pub clock_unix_ms: u64,
    /// Network interfaces to configure, matched by MAC address.
    #[serde(default)]
    pub interfaces: Vec<InterfaceConfig>,
    /// `/etc/resolv.conf`.
    #[serde(default)]
    pub dns: DnsConfig,
    /// Extra `/etc/hosts` lines (localhost and the hostname are always written).
    #[serde(default)]
    pub hosts: Vec<HostEntry>,
}

/// One guest network interface.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct InterfaceConfig {
    /// The MAC address the VMM gave the virtio-net device, `aa:bb:cc:dd:ee:ff`.
    pub mac: String,
    /// Addresses with prefix length, e.g. `10.92.0.5/24`.
    pub addresses: Vec<String>,
    /// The default gateway through this interface, if any.
    #[serde(default)]
    pub gateway: Option<String>,
    /// The MTU, when not the default 1500.
    #[serde(default)]
    pub mtu: Option<u32>,
}

/// `/etc/resolv.conf` contents (ACI's `dnsConfig`).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct DnsConfig {
    /// `nameserver` lines.
    #[serde(default)]
    pub name_servers: Vec<String>,
    /// The `search` line.
    #[serde(default)]
    pub search_domains: Vec<String>,
    /// The `options` line (e.g. `ndots:2`).
    #[serde(default)]
    pub options: Vec<String>,
}

/// An `/etc/hosts` line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HostEntry {
    /// The address.
    pub ip: String,
    /// The names for it.
    pub names: Vec<String>,
}

/// What [`crate::message::Call::MountStorage`] carries: one filesystem to mount in the guest
/// (an image's root filesystem, or a volume), at a path containers then bind from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StorageMount {
    /// A name for errors and events (the volume's or image's name).
    pub id: String,
    /// Where the agent mounts it in the guest (absolute, created if missing).
    pub mount_point: String,
    /// What to mount.
    pub source: StorageSource,
    /// Mount read-only.
    #[serde(default)]
    pub read_only: bool,
}

/// The kinds of storage the agent can mount.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum StorageSource {
    /// A virtio-blk disk, found by its serial (`/sys/block/vd*/serial`).
    Block {
        /// The disk's serial as configured in the VMM.
        serial: String,
        /// `erofs` or `ext4`.
        fs_type: String,
    },
    /// A virtio-fs share, by its tag.
    Virtiofs {
        /// The device's tag.
        tag: String,
    },
    /// An SMB share (ACI `azureFile`), mounted with the guest kernel's cifs client.
    Cifs {
        /// `//server/share`.
        unc: String,
        /// The user (the storage account name).
        username: String,
        /// The password (the storage account key); only ever handed to mount(2).
        password: Secret,
        /// Extra mount options, e.g. `vers=3.1.1`.
        #[serde(default)]
        options: Vec<String>,
    },
    /// Memory-backed scratch space (ACI `emptyDir`).
    Tmpfs {
        /// Size limit in bytes; the tmpfs default (half of RAM) when absent.
        #[serde(default)]
        size_bytes: Option<u64>,
    },
    /// Files written to a fresh tmpfs (ACI `secret` volumes); never touches a disk.
    Files {
        /// The files.
        files: Vec<SecretFile>,
    },
}

/// One file of a [`StorageSource::Files`] volume.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SecretFile {
    /// A relative path inside the volume (no `..`, not absolute).
    pub path: String,
    /// The contents, base64-encoded.
    pub contents_base64: Secret,
    /// The file mode (default 0o444 when absent).
    #[serde(default)]
    pub mode: Option<u32>,
}
