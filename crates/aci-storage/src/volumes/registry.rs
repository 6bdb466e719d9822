//! [`VolumeRegistry`]: the volume drivers, keyed by volume type.

use std::collections::{BTreeSet, HashMap};
use std::io;
use std::path::Path;

use super::names::is_single_component;
use super::{
    AzureFileDriver, EmptyDirDriver, GitRepoDriver, HostPathDriver, PreparedVolume, SecretDriver, Volume,
    VolumeError, VolumeType,
};

/// One kind of volume: the host-side work before the microVM starts, and its undoing.
pub trait VolumeDriver: Send + Sync {
    /// The volume type this driver serves, its key in the registry.
    fn volume_type(&self) -> VolumeType;

    /// Does the host-side work for `volume` (a clone, a check, nothing) and describes the
    /// guest mount. Anything written on the host goes under `group_dir/<volume name>`.
    fn prepare(&self, group_dir: &Path, volume: &Volume) -> Result<PreparedVolume, VolumeError>;

    /// Undoes [`prepare`](Self::prepare): removes what it wrote on the host. Never touches
    /// data the volume does not own (a `hostPath` directory, an SMB share).
    fn release(&self, group_dir: &Path, volume: &PreparedVolume) -> Result<(), VolumeError> {
        let _ = (group_dir, volume);
        Ok(())
    }
}

/// The volume drivers of a runtime, one per [`VolumeType`]; dispatch is a map look-up.
///
/// `group_dir` is a directory the registry owns for one group's volumes (say
/// `<state>/groups/<id>/volumes`): drivers write under it, [`release_all`](Self::release_all)
/// removes it.
///
/// ```
/// use std::collections::BTreeMap;
/// use aci_storage::volumes::{
///     EmptyDirSource, GuestMountSource, Volume, VolumeRegistry, VolumeSource,
/// };
///
/// let state = tempfile::tempdir()?;
/// let group_dir = state.path().join("group-1");
/// let registry = VolumeRegistry::new();
/// let volumes = [
///     Volume::new("scratch", VolumeSource::EmptyDir(EmptyDirSource { size_limit: Some(64 << 20) })),
///     Volume::new("creds", VolumeSource::Secret(BTreeMap::from([
///         ("token".to_owned(), "aGk=".into()),
///     ]))),
/// ];
/// let prepared = registry.prepare_all(&group_dir, &volumes)?;
/// assert_eq!(
///     prepared[0].mount.source,
///     GuestMountSource::Tmpfs { size_limit: Some(64 << 20) },
/// );
/// assert!(prepared[1].mount.read_only);
/// registry.release_all(&group_dir, &prepared)?;
/// assert!(!group_dir.exists());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct VolumeRegistry {
    drivers: HashMap<VolumeType, Box<dyn VolumeDriver>>,
}

impl VolumeRegistry {
    /// A registry with every built-in driver: `azureFile` with the default server resolver
    /// (`<account>.file.core.windows.net`), `gitRepo` with `git` from `PATH`.
    pub fn new() -> Self {
        Self::empty()
            .with(EmptyDirDriver)
            .with(SecretDriver)
            .with(GitRepoDriver::default())
            .with(AzureFileDriver::default())
            .with(HostPathDriver)
    }

    /// A registry with no drivers.
    pub fn empty() -> Self {
        Self { drivers: HashMap::new() }
    }

    /// Adds `driver`, replacing the one registered for its type (returned).
    pub fn register(&mut self, driver: impl VolumeDriver + 'static) -> Option<Box<dyn VolumeDriver>> {
        self.drivers.insert(driver.volume_type(), Box::new(driver))
    }

    /// [`register`](Self::register) in builder style.
    #[must_use]
    pub fn with(mut self, driver: impl VolumeDriver + 'static) -> Self {
        self.register(driver);
        self
    }

    /// The driver for `volume_type`, if one is registered.
    pub fn driver(&self, volume_type: VolumeType) -> Option<&dyn VolumeDriver> {
        self.drivers.get(&volume_type).map(|d| &**d)
    }

    fn driver_for(&self, volume: &str, volume_type: VolumeType) -> Result<&dyn VolumeDriver, VolumeError> {
        self.driver(volume_type)
            .ok_or_else(|| VolumeError::NoDriver { volume: volume.to_owned(), volume_type })
    }

    /// Prepares one volume with the driver of its type.
    pub fn prepare(&self, group_dir: &Path, volume: &Volume) -> Result<PreparedVolume, VolumeError> {
        if !is_single_component(&volume.name) {
            return Err(VolumeError::InvalidVolumeName { volume: volume.name.clone() });
        }
        self.driver_for(&volume.name, volume.volume_type())?.prepare(group_dir, volume)
    }

    /// Prepares a group's volumes in order. On the first failure the volumes already
    /// prepared are released and `group_dir` removed, then the error is returned.
    pub fn prepare_all(
        &self,
        group_dir: &Path,
        volumes: &[Volume],
    ) -> Result<Vec<PreparedVolume>, VolumeError> {
        let mut names = BTreeSet::new();
        if let Some(dup) = volumes.iter().find(|v| !names.insert(v.name.as_str())) {
            return Err(VolumeError::DuplicateVolume { volume: dup.name.clone() });
        }
        let mut prepared = Vec::with_capacity(volumes.len());
        for volume in volumes {
            match self.prepare(group_dir, volume) {
                Ok(p) => prepared.push(p),
                Err(err) => {
                    // The prepare error is the one worth reporting; a cleanup failure
                    // after it adds nothing the caller can act on.
                    let _ = self.release_all(group_dir, &prepared);
                    return Err(err);
                }
            }
        }
        Ok(prepared)
    }

    /// Releases one volume with the driver that prepared it.
    pub fn release(&self, group_dir: &Path, volume: &PreparedVolume) -> Result<(), VolumeError> {
        self.driver_for(volume.name(), volume.volume_type)?.release(group_dir, volume)
    }

    /// Releases every volume, then removes `group_dir`. Goes on past failures and returns
    /// the first.
    pub fn release_all(&self, group_dir: &Path, volumes: &[PreparedVolume]) -> Result<(), VolumeError> {
        let mut first = None;
        for volume in volumes {
            if let Err(err) = self.release(group_dir, volume) {
                first.get_or_insert(err);
            }
        }
        match std::fs::remove_dir_all(group_dir) {
            Ok(()) => {}
            Err(err) if err.kind() == io::ErrorKind::NotFound => {}
            Err(source) => {
                first.get_or_insert(VolumeError::RemoveGroupDir { path: group_dir.to_owned(), source });
            }
        }
        first.map_or(Ok(()), Err)
    }
}

impl Default for VolumeRegistry {
    fn default() -> Self {
        Self::new()
    }
}

impl std::fmt::Debug for VolumeRegistry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut types: Vec<_> = self.drivers.keys().collect();
        types.sort();
        f.debug_struct("VolumeRegistry").field("drivers", &types).finish()
    }
}
