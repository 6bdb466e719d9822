//! `azureFile`: an SMB share the guest kernel mounts with CIFS.

use std::fmt;
use std::path::Path;
use std::sync::Arc;

use super::{GuestMount, GuestMountSource, PreparedVolume, Volume, VolumeDriver, VolumeError};
use super::{VolumeSource, VolumeType};

/// SMB dialect and client options of every share, as Azure Files recommends for Linux.
const BASE_OPTIONS: &str = "vers=3.1.1,dir_mode=0777,file_mode=0777,serverino,nosharesock,actimeo=30";

/// Maps a storage account name to the SMB server (host name or address) holding its shares.
///
/// Closures `Fn(&str) -> String` are resolvers, so a test can point every account at a
/// local Samba: `AzureFileDriver::new(|_: &str| "127.0.0.1".to_owned())`.
pub trait ServerResolver: Send + Sync {
    /// The server for `storage_account`.
    fn server(&self, storage_account: &str) -> String;
}

impl<F: Fn(&str) -> String + Send + Sync> ServerResolver for F {
    fn server(&self, storage_account: &str) -> String {
        self(storage_account)
    }
}

/// The default resolver: Azure's public cloud, `<account>.file.core.windows.net`.
#[derive(Debug, Clone, Copy, Default)]
pub struct AzureCloudServers;

impl ServerResolver for AzureCloudServers {
    fn server(&self, storage_account: &str) -> String {
        format!("{storage_account}.file.core.windows.net")
    }
}

/// Serves `azureFile` volumes: describes a CIFS mount of `//<server>/<share>` (SMB 3.1.1,
/// user = storage account) for the guest kernel. The storage account key travels apart
/// from the options, as a [`SecretValue`](super::SecretValue) the agent hands to mount(2)
/// only; it is in no string this crate builds. Nothing is done on the host.
#[derive(Clone)]
pub struct AzureFileDriver {
    resolver: Arc<dyn ServerResolver>,
}

impl AzureFileDriver {
    /// A driver resolving servers with `resolver`.
    pub fn new(resolver: impl ServerResolver + 'static) -> Self {
        Self { resolver: Arc::new(resolver) }
    }
}

impl Default for AzureFileDriver {
    fn default() -> Self {
        Self::new(AzureCloudServers)
    }
}

impl fmt::Debug for AzureFileDriver {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AzureFileDriver").finish_non_exhaustive()
    }
}

impl VolumeDriver for AzureFileDriver {
    fn volume_type(&self) -> VolumeType {
        VolumeType::AzureFile
    }

    fn prepare(&self, _group_dir: &Path, volume: &Volume) -> Result<PreparedVolume, VolumeError> {
        let VolumeSource::AzureFile(share) = &volume.source else {
            return Err(VolumeError::wrong_driver(self.volume_type(), volume));
        };
        let name = &volume.name;
        check(name, "shareName", &share.share_name, &['/', '\\'])?;
        check(name, "storageAccountName", &share.storage_account_name, OPTION_BREAKERS)?;
        let server = self.resolver.server(&share.storage_account_name);
        check(name, "server", &server, OPTION_BREAKERS)?;
        if share.storage_account_key.is_empty() {
            return Err(VolumeError::EmptyStorageAccountKey { volume: name.clone() });
        }
        Ok(PreparedVolume {
            volume_type: VolumeType::AzureFile,
            mount: GuestMount {
                name: name.clone(),
                source: GuestMountSource::Cifs {
                    unc: format!("//{server}/{}", share.share_name),
                    options: format!("{BASE_OPTIONS},username={}", share.storage_account_name),
                    password: share.storage_account_key.clone(),
                },
                read_only: share.read_only,
            },
        })
    }
}

/// Characters that would split or extend a mount option string or a UNC host.
const OPTION_BREAKERS: &[char] = &[',', '=', '/', '\\'];

/// Refuses an empty `value`, or one with whitespace, control characters or `forbidden`.
fn check(volume: &str, field: &'static str, value: &str, forbidden: &[char]) -> Result<(), VolumeError> {
    let reason = if value.is_empty() {
        Some("it is empty")
    } else if value.chars().any(|c| c.is_whitespace() || c.is_control()) {
        Some("it has whitespace or control characters")
    } else if value.contains(forbidden) {
        Some("it has a character that cannot appear there")
    } else {
        None
    };
    match reason {
        None => Ok(()),
        Some(reason) => Err(VolumeError::InvalidAzureFile {
            volume: volume.to_owned(),
            field,
            value: value.to_owned(),
            reason,
        }),
    }
}
