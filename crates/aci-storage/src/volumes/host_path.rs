//! `hostPath` (aci extension): a host directory shared over virtio-fs.

use std::path::Path;

use super::names::virtiofs_tag;
use super::{GuestMount, GuestMountSource, PreparedVolume, Volume, VolumeDriver, VolumeError};
use super::{VolumeSource, VolumeType};

/// Serves `hostPath` volumes: checks that the path is an existing directory, canonicalizes
/// it (symlinks resolved, so the share's root is fixed now), and describes a virtio-fs share
/// of it for the VMM. Release leaves the directory alone: it belongs to the user.
#[derive(Debug, Clone, Copy, Default)]
pub struct HostPathDriver;

impl VolumeDriver for HostPathDriver {
    fn volume_type(&self) -> VolumeType {
        VolumeType::HostPath
    }

    fn prepare(&self, _group_dir: &Path, volume: &Volume) -> Result<PreparedVolume, VolumeError> {
        let VolumeSource::HostPath(source) = &volume.source else {
            return Err(VolumeError::wrong_driver(self.volume_type(), volume));
        };
        if !source.path.is_absolute() {
            return Err(VolumeError::HostPathNotAbsolute {
                volume: volume.name.clone(),
                path: source.path.clone(),
            });
        }
        let host_dir = std::fs::canonicalize(&source.path).map_err(|err| VolumeError::ResolveHostPath {
            volume: volume.name.clone(),
            path: source.path.clone(),
            source: err,
        })?;
        if !host_dir.is_dir() {
            return Err(VolumeError::HostPathNotDirectory { volume: volume.name.clone(), path: host_dir });
        }
        Ok(PreparedVolume {
            volume_type: VolumeType::HostPath,
            mount: GuestMount {
                name: volume.name.clone(),
                source: GuestMountSource::VirtioFs { tag: virtiofs_tag(&volume.name), host_dir },
                read_only: source.read_only,
            },
        })
    }
}
