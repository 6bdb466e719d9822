//! `properties.volumes[]`: the group's volumes, one kind each.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::secret::Secret;
use super::serde_util;

/// A volume the group's containers can mount. Exactly one kind must be set; ACI's file format
/// keeps them as sibling fields, so this does too (see [`Volume::kind`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Volume {
    /// The name `volumeMounts` refer to.
    pub name: String,
    /// An Azure Files (SMB) share.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub azure_file: Option<AzureFileVolume>,
    /// A scratch directory shared by the group's containers, empty at start.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub empty_dir: Option<EmptyDirVolume>,
    /// Files from secrets: file name → base64 content. Never shown back.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret: Option<BTreeMap<String, Secret>>,
    /// A git repository cloned at start.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub git_repo: Option<GitRepoVolume>,
    /// **aci extension, not in ACI**: a host directory shared into the microVM (virtio-fs).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host_path: Option<HostPathVolume>,
}

/// A borrowed view of the one kind a [`Volume`] has.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VolumeKind<'a> {
    /// `azureFile`.
    AzureFile(&'a AzureFileVolume),
    /// `emptyDir`.
    EmptyDir(&'a EmptyDirVolume),
    /// `secret`.
    Secret(&'a BTreeMap<String, Secret>),
    /// `gitRepo`.
    GitRepo(&'a GitRepoVolume),
    /// `hostPath` (aci extension).
    HostPath(&'a HostPathVolume),
}

impl Volume {
    fn named(name: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            azure_file: None,
            empty_dir: None,
            secret: None,
            git_repo: None,
            host_path: None,
        }
    }

    /// An `emptyDir` volume.
    pub fn empty_dir(name: impl Into<String>) -> Self {
        Self { empty_dir: Some(EmptyDirVolume {}), ..Self::named(name) }
    }

    /// A `secret` volume from (file name, base64 content) pairs.
    pub fn secret<K, V>(name: impl Into<String>, files: impl IntoIterator<Item = (K, V)>) -> Self
    where
        K: Into<String>,
        V: Into<Secret>,
    {
        let files = files.into_iter().map(|(k, v)| (k.into(), v.into())).collect();
        Self { secret: Some(files), ..Self::named(name) }
    }

    /// A `gitRepo` volume cloning `repository` (default branch, into the volume's root).
    pub fn git_repo(name: impl Into<String>, repository: impl Into<String>) -> Self {
        let git = GitRepoVolume { repository: repository.into(), directory: None, revision: None };
        Self { git_repo: Some(git), ..Self::named(name) }
    }

    /// An `azureFile` volume.
    pub fn azure_file(name: impl Into<String>, share: AzureFileVolume) -> Self {
        Self { azure_file: Some(share), ..Self::named(name) }
    }

    /// A `hostPath` volume (aci extension): `path` on the host, shared into the microVM.
    pub fn host_path(name: impl Into<String>, path: impl Into<String>) -> Self {
        let host = HostPathVolume { path: path.into(), read_only: None };
        Self { host_path: Some(host), ..Self::named(name) }
    }

    /// Every kind set on this volume (a valid volume has exactly one).
    pub fn kinds(&self) -> Vec<VolumeKind<'_>> {
        let mut kinds = Vec::with_capacity(1);
        kinds.extend(self.azure_file.as_ref().map(VolumeKind::AzureFile));
        kinds.extend(self.empty_dir.as_ref().map(VolumeKind::EmptyDir));
        kinds.extend(self.secret.as_ref().map(VolumeKind::Secret));
        kinds.extend(self.git_repo.as_ref().map(VolumeKind::GitRepo));
        kinds.extend(self.host_path.as_ref().map(VolumeKind::HostPath));
        kinds
    }

    /// The volume's kind, if exactly one is set.
    pub fn kind(&self) -> Option<VolumeKind<'_>> {
        match self.kinds().as_slice() {
            [one] => Some(*one),
            _ => None,
        }
    }
}

/// `azureFile`: an Azure Files share mounted over SMB.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AzureFileVolume {
    /// The share's name.
    pub share_name: String,
    /// The storage account holding the share.
    pub storage_account_name: String,
    /// The storage account key. Never shown back.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub storage_account_key: Option<Secret>,
    /// Mount read-only.
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "serde_util::opt_bool")]
    pub read_only: Option<bool>,
}

/// `emptyDir: {}`: takes no settings.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EmptyDirVolume {}

/// `gitRepo`: a repository cloned into the volume before the containers start.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct GitRepoVolume {
    /// The repository URL.
    pub repository: String,
    /// Target directory inside the volume: relative, without `..`; `.` clones into the root.
    /// When absent, the repository is cloned into a subdirectory named after it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub directory: Option<String>,
    /// The commit hash to check out.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revision: Option<String>,
}

/// **aci extension**: `hostPath` `{path, readOnly}`, a host directory shared with virtio-fs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct HostPathVolume {
    /// Absolute path of the directory on the host.
    pub path: String,
    /// Share read-only.
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "serde_util::opt_bool")]
    pub read_only: Option<bool>,
}
