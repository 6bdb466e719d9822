//! `emptyDir`: group scratch space in guest memory.

use std::path::Path;

use super::{GuestMount, GuestMountSource, PreparedVolume, Volume, VolumeDriver, VolumeError};
use super::{VolumeSource, VolumeType};

/// Serves `emptyDir` volumes as a tmpfs in the guest, mounted once for the group and
/// bind-mounted into each container that names it.
///
/// The tmpfs lives as long as the microVM: a container restart keeps its contents, deleting
/// (or re-creating) the group starts empty. Nothing is written on the host.
#[derive(Debug, Clone, Copy, Default)]
pub struct EmptyDirDriver;

impl VolumeDriver for EmptyDirDriver {
    fn volume_type(&self) -> VolumeType {
        VolumeType::EmptyDir
    }

    fn prepare(&self, _group_dir: &Path, volume: &Volume) -> Result<PreparedVolume, VolumeError> {
        let VolumeSource::EmptyDir(source) = &volume.source else {
            return Err(VolumeError::wrong_driver(self.volume_type(), volume));
        };
        Ok(PreparedVolume {
            volume_type: VolumeType::EmptyDir,
            mount: GuestMount {
                name: volume.name.clone(),
                source: GuestMountSource::Tmpfs { size_limit: source.size_limit },
                read_only: false,
            },
        })
    }
}
