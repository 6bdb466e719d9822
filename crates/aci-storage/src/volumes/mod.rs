//! Group volumes: the host side of `azureFile`, `emptyDir`, `secret`, `gitRepo` and
//! `hostPath`, and the guest mount each one becomes.
//!
//! The runtime maps a group spec's `volumes[]` onto plain-data [`Volume`]s (this crate does
//! not know the spec types) and hands them to a [`VolumeRegistry`], which dispatches each one
//! to the [`VolumeDriver`] of its [`VolumeType`]:
//!
//! | type | host side ([`VolumeDriver::prepare`]) | guest mount ([`GuestMountSource`]) |
//! | --- | --- | --- |
//! | `emptyDir` ([`EmptyDirDriver`]) | nothing | `Tmpfs`, optional size; lives as long as the microVM |
//! | `secret` ([`SecretDriver`]) | decode base64, check file names | `SecretFiles`, read-only tmpfs; never on host disk |
//! | `gitRepo` ([`GitRepoDriver`]) | `git clone` + checkout into `group_dir/<name>` | `VirtioFs` share of that directory |
//! | `azureFile` ([`AzureFileDriver`]) | resolve the server ([`ServerResolver`]) | `Cifs` `//<server>/<share>`, `vers=3.1.1`; key apart |
//! | `hostPath` ([`HostPathDriver`]) | check and canonicalize the directory | `VirtioFs` share of it |
//!
//! The [`PreparedVolume`]s go to the agent (their [`GuestMount`]s, mounted once per group)
//! and to the VMM ([`PreparedVolume::host_share`] for virtio-fs devices). Each container's
//! `volumeMounts` are then checked with [`resolve_mounts`]. [`VolumeRegistry::release_all`]
//! undoes the host side and removes the group's volume directory.
//!
//! Secrets (secret files, storage account keys) stay in [`SecretValue`], whose `Debug` is
//! redacted; no error message, option string or path carries one.

mod azure_file;
mod empty_dir;
mod error;
mod git_command;
mod git_repo;
mod guest;
mod host_path;
mod mounts;
mod names;
mod registry;
mod secret;
mod secret_value;
mod source;

pub use azure_file::{AzureCloudServers, AzureFileDriver, ServerResolver};
pub use empty_dir::EmptyDirDriver;
pub use error::VolumeError;
pub use git_repo::{GitRepoDriver, DEFAULT_GIT_TIMEOUT};
pub use guest::{GuestMount, GuestMountSource, HostShare, PreparedVolume, SecretFile};
pub use host_path::HostPathDriver;
pub use mounts::{resolve_mounts, ContainerMount, MountError, MountRequest};
pub use registry::{VolumeDriver, VolumeRegistry};
pub use secret::{SecretDriver, SECRET_FILE_MODE};
pub use secret_value::SecretValue;
pub use source::{
    AzureFileSource, EmptyDirSource, GitRepoSource, HostPathSource, Volume, VolumeSource, VolumeType,
};
