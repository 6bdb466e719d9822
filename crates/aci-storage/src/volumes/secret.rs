//! `secret`: files decoded from base64, carried to the guest in memory.

use std::path::Path;

use base64::Engine as _;

use super::names::is_single_component;
use super::{GuestMount, GuestMountSource, PreparedVolume, SecretFile, SecretValue, Volume};
use super::{VolumeDriver, VolumeError, VolumeSource, VolumeType};

/// Permission bits of secret files: readable by every user of the container, like ACI.
pub const SECRET_FILE_MODE: u32 = 0o444;

/// Serves `secret` volumes: decodes each file's base64 value and hands the files to the
/// agent inside the mount description, for a read-only tmpfs. The files are never written
/// to host disk, and every value stays wrapped in [`SecretValue`] (redacted `Debug`).
#[derive(Debug, Clone, Copy, Default)]
pub struct SecretDriver;

impl VolumeDriver for SecretDriver {
    fn volume_type(&self) -> VolumeType {
        VolumeType::Secret
    }

    fn prepare(&self, _group_dir: &Path, volume: &Volume) -> Result<PreparedVolume, VolumeError> {
        let VolumeSource::Secret(values) = &volume.source else {
            return Err(VolumeError::wrong_driver(self.volume_type(), volume));
        };
        let files = values
            .iter()
            .map(|(name, value)| decode_file(&volume.name, name, value))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(PreparedVolume {
            volume_type: VolumeType::Secret,
            mount: GuestMount {
                name: volume.name.clone(),
                source: GuestMountSource::SecretFiles { files },
                read_only: true,
            },
        })
    }
}

/// Checks `name` and decodes `value` (standard base64; ASCII whitespace such as line wraps
/// ignored).
fn decode_file(volume: &str, name: &str, value: &SecretValue) -> Result<SecretFile, VolumeError> {
    if !is_single_component(name) {
        return Err(VolumeError::InvalidSecretFileName { volume: volume.to_owned(), file: name.to_owned() });
    }
    let compact = SecretValue::new(
        value.expose().iter().copied().filter(|b| !b.is_ascii_whitespace()).collect::<Vec<u8>>(),
    );
    let contents = base64::engine::general_purpose::STANDARD
        .decode(compact.expose())
        .map_err(|_| VolumeError::DecodeSecret { volume: volume.to_owned(), file: name.to_owned() })?;
    Ok(SecretFile { name: name.to_owned(), mode: SECRET_FILE_MODE, contents: SecretValue::new(contents) })
}
