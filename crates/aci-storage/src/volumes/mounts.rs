//! `volumeMounts`: a container's mounts resolved against the group's prepared volumes.

use std::collections::BTreeSet;
use std::path::{Component, Path, PathBuf};

use super::PreparedVolume;

/// One entry of a container's `volumeMounts`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MountRequest {
    /// The volume's name.
    pub volume: String,
    /// Absolute path in the container.
    pub mount_path: String,
    /// Mount read-only in this container.
    pub read_only: bool,
}

/// A resolved mount: the agent bind-mounts the group-wide mount of `volume` at
/// `mount_path` in the container.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContainerMount {
    /// The volume's name (its [`GuestMount`](super::GuestMount)).
    pub volume: String,
    /// Absolute, normalized path in the container.
    pub mount_path: PathBuf,
    /// Read-only: asked by the mount, or forced by the volume (`secret`, read-only shares).
    pub read_only: bool,
}

/// Errors of resolving `volumeMounts`.
#[derive(Debug, thiserror::Error)]
pub enum MountError {
    /// The mount names a volume the group does not have.
    #[error("container {container:?} mounts volume {volume:?}, which the group does not define")]
    UnknownVolume {
        /// The container.
        container: String,
        /// The volume.
        volume: String,
    },
    /// The mount path is not absolute, has `..`, `:` or NUL.
    #[error("container {container:?}: mount path {path:?} of volume {volume:?} is invalid: {reason}")]
    InvalidMountPath {
        /// The container.
        container: String,
        /// The volume.
        volume: String,
        /// The path.
        path: String,
        /// What is wrong.
        reason: &'static str,
    },
    /// Two mounts of the container use the same path.
    #[error("container {container:?}: two volumes are mounted at {path:?}")]
    DuplicateMountPath {
        /// The container.
        container: String,
        /// The path.
        path: String,
    },
}

/// Resolves `container`'s `requests` against the group's `volumes`. A volume may be mounted
/// by several containers, at different paths, each with its own `readOnly`; a read-only
/// volume stays read-only whatever the mount asks.
///
/// ```
/// use aci_storage::volumes::{
///     resolve_mounts, EmptyDirSource, MountRequest, Volume, VolumeRegistry, VolumeSource,
/// };
///
/// let dir = tempfile::tempdir()?;
/// let volumes = [Volume::new("scratch", VolumeSource::EmptyDir(EmptyDirSource::default()))];
/// let prepared = VolumeRegistry::new().prepare_all(dir.path(), &volumes)?;
/// let mount = |path: &str, read_only| MountRequest {
///     volume: "scratch".into(), mount_path: path.into(), read_only,
/// };
/// let web = resolve_mounts("web", &[mount("/data", false)], &prepared)?;
/// let sidecar = resolve_mounts("sidecar", &[mount("/mnt/in", true)], &prepared)?;
/// assert!(!web[0].read_only && sidecar[0].read_only);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn resolve_mounts(
    container: &str,
    requests: &[MountRequest],
    volumes: &[PreparedVolume],
) -> Result<Vec<ContainerMount>, MountError> {
    let mut seen = BTreeSet::new();
    requests
        .iter()
        .map(|request| {
            let volume = volumes.iter().find(|v| v.name() == request.volume).ok_or_else(|| {
                MountError::UnknownVolume { container: container.to_owned(), volume: request.volume.clone() }
            })?;
            let mount_path =
                mount_path(&request.mount_path).map_err(|reason| MountError::InvalidMountPath {
                    container: container.to_owned(),
                    volume: request.volume.clone(),
                    path: request.mount_path.clone(),
                    reason,
                })?;
            if !seen.insert(mount_path.clone()) {
                return Err(MountError::DuplicateMountPath {
                    container: container.to_owned(),
                    path: request.mount_path.clone(),
                });
            }
            Ok(ContainerMount {
                volume: request.volume.clone(),
                mount_path,
                read_only: request.read_only || volume.mount.read_only,
            })
        })
        .collect()
}

/// `path` normalized (`.` and repeated `/` dropped), if it is absolute, not `/` itself, and
/// free of `..`, `:` and NUL.
fn mount_path(path: &str) -> Result<PathBuf, &'static str> {
    if path.contains([':', '\0']) {
        return Err("it contains `:` or NUL");
    }
    if !path.starts_with('/') {
        return Err("it is not absolute");
    }
    let mut out = PathBuf::from("/");
    for component in Path::new(path).components() {
        match component {
            Component::Normal(part) => out.push(part),
            Component::RootDir | Component::CurDir => {}
            Component::ParentDir => return Err("it has a `..` component"),
            Component::Prefix(_) => return Err("it is not a Unix path"),
        }
    }
    if out == Path::new("/") {
        return Err("it is the container's root");
    }
    Ok(out)
}
