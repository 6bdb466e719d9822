//! [`VolumeError`]: why preparing or releasing a volume failed. Every variant names the
//! volume; none carries a secret, a storage key or repository credentials.

use std::io;
use std::path::PathBuf;

use super::VolumeType;

/// Errors of preparing and releasing group volumes.
#[derive(Debug, thiserror::Error)]
pub enum VolumeError {
    /// The volume's name is not usable as a single path component.
    #[error("volume name {volume:?} is invalid: it must be one path component")]
    InvalidVolumeName {
        /// The volume.
        volume: String,
    },
    /// Two volumes of the group have the same name.
    #[error("volume {volume:?} is defined twice")]
    DuplicateVolume {
        /// The volume.
        volume: String,
    },
    /// No driver is registered for the volume's type.
    #[error("volume {volume:?}: no driver for {volume_type} volumes")]
    NoDriver {
        /// The volume.
        volume: String,
        /// Its type.
        volume_type: VolumeType,
    },
    /// A driver was handed a volume of another type.
    #[error("volume {volume:?}: the {driver} driver cannot prepare a {volume_type} volume")]
    WrongDriver {
        /// The volume.
        volume: String,
        /// The driver's type.
        driver: VolumeType,
        /// The volume's type.
        volume_type: VolumeType,
    },
    /// The volume's host directory could not be created.
    #[error("volume {volume:?}: cannot create {path}")]
    CreateVolumeDir {
        /// The volume.
        volume: String,
        /// The directory.
        path: PathBuf,
        /// The cause.
        #[source]
        source: io::Error,
    },
    /// The volume's host directory could not be removed.
    #[error("volume {volume:?}: cannot remove {path}")]
    RemoveVolumeDir {
        /// The volume.
        volume: String,
        /// The directory.
        path: PathBuf,
        /// The cause.
        #[source]
        source: io::Error,
    },
    /// The group's volume directory could not be removed.
    #[error("cannot remove the group volume directory {path}")]
    RemoveGroupDir {
        /// The directory.
        path: PathBuf,
        /// The cause.
        #[source]
        source: io::Error,
    },
    /// A secret file's name is empty, `.`, `..`, or holds `/` or NUL.
    #[error("secret volume {volume:?}: file name {file:?} is invalid: it must be one path component")]
    InvalidSecretFileName {
        /// The volume.
        volume: String,
        /// The file name.
        file: String,
    },
    /// A secret file's value is not base64. The decoder's message is left out: it would
    /// quote a byte of the secret.
    #[error("secret volume {volume:?}: file {file:?} is not valid base64")]
    DecodeSecret {
        /// The volume.
        volume: String,
        /// The file name.
        file: String,
    },
    /// The `gitRepo` repository is empty, starts with `-`, or has no name to clone into.
    #[error("gitRepo volume {volume:?}: repository {repository:?} is invalid: {reason}")]
    InvalidRepository {
        /// The volume.
        volume: String,
        /// The repository, credentials removed.
        repository: String,
        /// What is wrong.
        reason: &'static str,
    },
    /// The `gitRepo` directory is absolute or has a `..` component.
    #[error("gitRepo volume {volume:?}: directory {directory:?} is invalid: {reason}")]
    InvalidGitDirectory {
        /// The volume.
        volume: String,
        /// The directory.
        directory: String,
        /// What is wrong.
        reason: &'static str,
    },
    /// The `gitRepo` revision is empty or looks like an option.
    #[error("gitRepo volume {volume:?}: revision {revision:?} is invalid")]
    InvalidGitRevision {
        /// The volume.
        volume: String,
        /// The revision.
        revision: String,
    },
    /// The `git` program could not be run.
    #[error("gitRepo volume {volume:?}: cannot run {program}")]
    RunGit {
        /// The volume.
        volume: String,
        /// The program.
        program: PathBuf,
        /// The cause.
        #[source]
        source: io::Error,
    },
    /// `git clone` failed.
    #[error("gitRepo volume {volume:?}: cannot clone {repository}: {detail}")]
    CloneRepository {
        /// The volume.
        volume: String,
        /// The repository, credentials removed.
        repository: String,
        /// git's last error line, credentials removed.
        detail: String,
    },
    /// The revision does not exist in the repository or cannot be checked out.
    #[error("gitRepo volume {volume:?}: cannot check out {revision:?} of {repository}: {detail}")]
    CheckoutRevision {
        /// The volume.
        volume: String,
        /// The repository, credentials removed.
        repository: String,
        /// The revision.
        revision: String,
        /// git's last error line, credentials removed.
        detail: String,
    },
    /// An `azureFile` field cannot be put into a UNC path or mount options.
    #[error("azureFile volume {volume:?}: {field} {value:?} is invalid: {reason}")]
    InvalidAzureFile {
        /// The volume.
        volume: String,
        /// The field (`shareName`, `storageAccountName`, or the resolved server).
        field: &'static str,
        /// Its value (never the key).
        value: String,
        /// What is wrong.
        reason: &'static str,
    },
    /// The `azureFile` storage account key is empty.
    #[error("azureFile volume {volume:?}: the storage account key is empty")]
    EmptyStorageAccountKey {
        /// The volume.
        volume: String,
    },
    /// The `hostPath` path is relative.
    #[error("hostPath volume {volume:?}: {path} is not absolute")]
    HostPathNotAbsolute {
        /// The volume.
        volume: String,
        /// The path.
        path: PathBuf,
    },
    /// The `hostPath` path does not exist or cannot be canonicalized.
    #[error("hostPath volume {volume:?}: cannot resolve {path}")]
    ResolveHostPath {
        /// The volume.
        volume: String,
        /// The path.
        path: PathBuf,
        /// The cause.
        #[source]
        source: io::Error,
    },
    /// The `hostPath` path is not a directory.
    #[error("hostPath volume {volume:?}: {path} is not a directory")]
    HostPathNotDirectory {
        /// The volume.
        volume: String,
        /// The canonical path.
        path: PathBuf,
    },
}

impl VolumeError {
    /// `driver` was handed `volume`, which is of another type.
    pub(crate) fn wrong_driver(driver: VolumeType, volume: &super::Volume) -> Self {
        Self::WrongDriver { volume: volume.name.clone(), driver, volume_type: volume.volume_type() }
    }
}
