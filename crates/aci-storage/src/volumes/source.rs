//! The plain-data volume inputs: what the runtime maps a group spec's `volumes[]` onto.
//!
//! aci-storage does not know the spec types (aci-core depends on this crate, not the other
//! way round); these mirror them with the values already checked for presence.

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;

use super::SecretValue;

/// One group volume: the name `volumeMounts` refer to, and its kind.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Volume {
    /// The volume's name; also its directory name on the host, so one path component.
    pub name: String,
    /// What the volume is made of.
    pub source: VolumeSource,
}

impl Volume {
    /// A volume named `name` made of `source`.
    pub fn new(name: impl Into<String>, source: VolumeSource) -> Self {
        Self { name: name.into(), source }
    }

    /// The kind of the volume, the key of the driver registry.
    pub fn volume_type(&self) -> VolumeType {
        self.source.volume_type()
    }
}

/// What a volume is made of: one variant per volume type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VolumeSource {
    /// `azureFile`: an SMB share mounted by the guest kernel.
    AzureFile(AzureFileSource),
    /// `emptyDir`: scratch space in guest memory.
    EmptyDir(EmptyDirSource),
    /// `secret`: file name → base64 content.
    Secret(BTreeMap<String, SecretValue>),
    /// `gitRepo`: a repository cloned on the host before the containers start.
    GitRepo(GitRepoSource),
    /// `hostPath` (aci extension): a host directory shared over virtio-fs.
    HostPath(HostPathSource),
}

impl VolumeSource {
    /// The volume type of this source.
    pub fn volume_type(&self) -> VolumeType {
        match self {
            Self::AzureFile(_) => VolumeType::AzureFile,
            Self::EmptyDir(_) => VolumeType::EmptyDir,
            Self::Secret(_) => VolumeType::Secret,
            Self::GitRepo(_) => VolumeType::GitRepo,
            Self::HostPath(_) => VolumeType::HostPath,
        }
    }
}

/// The kinds of volume, each served by one [`VolumeDriver`](super::VolumeDriver).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum VolumeType {
    /// `azureFile`.
    AzureFile,
    /// `emptyDir`.
    EmptyDir,
    /// `secret`.
    Secret,
    /// `gitRepo`.
    GitRepo,
    /// `hostPath`.
    HostPath,
}

impl VolumeType {
    /// The name the group spec uses for this kind.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::AzureFile => "azureFile",
            Self::EmptyDir => "emptyDir",
            Self::Secret => "secret",
            Self::GitRepo => "gitRepo",
            Self::HostPath => "hostPath",
        }
    }
}

impl fmt::Display for VolumeType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// `azureFile` inputs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AzureFileSource {
    /// The share's name.
    pub share_name: String,
    /// The storage account: the SMB user name, and what the server is resolved from.
    pub storage_account_name: String,
    /// The storage account key: the SMB password. Redacted in `Debug`.
    pub storage_account_key: SecretValue,
    /// Mount read-only.
    pub read_only: bool,
}

/// `emptyDir` inputs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct EmptyDirSource {
    /// Upper bound of the tmpfs in bytes; `None` leaves the guest kernel's default (half the
    /// guest memory).
    pub size_limit: Option<u64>,
}

/// `gitRepo` inputs. `Debug` shows the repository without `user:password@`.
#[derive(Clone, PartialEq, Eq)]
pub struct GitRepoSource {
    /// The repository URL (any form `git clone` takes).
    pub repository: String,
    /// Where to clone inside the volume: relative, without `..`; `.` is the volume's root.
    /// `None` (or empty) clones into a subdirectory named after the repository.
    pub directory: Option<String>,
    /// A commit, branch or tag to check out; `None` keeps the remote's default branch.
    pub revision: Option<String>,
}

impl fmt::Debug for GitRepoSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GitRepoSource")
            .field("repository", &super::names::redact_url(&self.repository))
            .field("directory", &self.directory)
            .field("revision", &self.revision)
            .finish()
    }
}

/// `hostPath` inputs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostPathSource {
    /// Absolute path of an existing host directory.
    pub path: PathBuf,
    /// Share read-only.
    pub read_only: bool,
}
