//! What a prepared volume looks like to the guest agent and to the VMM.

use std::path::PathBuf;

use super::{SecretValue, VolumeType};

/// A volume prepared on the host: the guest mount description for the agent, and the kind
/// of driver that made it (to release it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PreparedVolume {
    /// The driver that prepared the volume.
    pub volume_type: VolumeType,
    /// How the agent mounts the volume inside the guest.
    pub mount: GuestMount,
}

impl PreparedVolume {
    /// The volume's name.
    pub fn name(&self) -> &str {
        &self.mount.name
    }

    /// The virtio-fs share the VMM must serve for this volume, if it has one.
    pub fn host_share(&self) -> Option<HostShare> {
        match &self.mount.source {
            GuestMountSource::VirtioFs { tag, host_dir } => Some(HostShare {
                tag: tag.clone(),
                host_dir: host_dir.clone(),
                read_only: self.mount.read_only,
            }),
            _ => None,
        }
    }
}

/// A volume as the guest agent mounts it, once per group; containers then bind-mount it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GuestMount {
    /// The volume's name, what `volumeMounts` refer to.
    pub name: String,
    /// What to mount.
    pub source: GuestMountSource,
    /// Mount read-only for every container.
    pub read_only: bool,
}

/// What the agent mounts for a volume.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GuestMountSource {
    /// An empty tmpfs. It lives as long as the microVM: container restarts keep its
    /// contents, deleting the group drops them.
    Tmpfs {
        /// Size limit in bytes (`size=` mount option); `None` for the kernel default.
        size_limit: Option<u64>,
    },
    /// A read-only tmpfs holding these files. The files exist only in guest memory: the
    /// host never writes them to disk.
    SecretFiles {
        /// The decoded files.
        files: Vec<SecretFile>,
    },
    /// A virtio-fs share served by the VMM from a host directory.
    VirtioFs {
        /// The virtio-fs tag the guest mounts (`mount -t virtiofs <tag>`).
        tag: String,
        /// The host directory the VMM serves; the root the guest cannot leave.
        host_dir: PathBuf,
    },
    /// An SMB share mounted by the guest kernel (`mount -t cifs`).
    Cifs {
        /// `//<server>/<share>`.
        unc: String,
        /// Mount options without the password (`vers=3.1.1,username=…,…`).
        options: String,
        /// The password, appended by the agent as `password=` when it calls mount(2) and
        /// nowhere else. Redacted in `Debug`.
        password: SecretValue,
    },
}

/// A file of a `secret` volume.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecretFile {
    /// The file name: one path component, checked.
    pub name: String,
    /// Permission bits to create the file with.
    pub mode: u32,
    /// The decoded contents. Redacted in `Debug`.
    pub contents: SecretValue,
}

/// A host directory the VMM exposes through a virtio-fs device.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostShare {
    /// The device's tag (at most 36 bytes).
    pub tag: String,
    /// The shared directory, canonical.
    pub host_dir: PathBuf,
    /// Refuse guest writes.
    pub read_only: bool,
}
