//! Driver dispatch, release cleanup, emptyDir and hostPath descriptions, volumeMounts.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use aci_storage::volumes::{
    resolve_mounts, EmptyDirDriver, EmptyDirSource, GuestMount, GuestMountSource, HostPathSource, MountError,
    MountRequest, PreparedVolume, Volume, VolumeDriver, VolumeError, VolumeRegistry, VolumeSource,
    VolumeType,
};

fn empty_dir(name: &str) -> Volume {
    Volume::new(name, VolumeSource::EmptyDir(EmptyDirSource::default()))
}

fn host_path(name: &str, path: &Path, read_only: bool) -> Volume {
    Volume::new(name, VolumeSource::HostPath(HostPathSource { path: path.to_owned(), read_only }))
}

/// An emptyDir stand-in that writes a marker file on the host and counts its calls.
#[derive(Default, Clone)]
struct MarkerDriver {
    prepared: Arc<AtomicUsize>,
    released: Arc<AtomicUsize>,
}

impl VolumeDriver for MarkerDriver {
    fn volume_type(&self) -> VolumeType {
        VolumeType::EmptyDir
    }

    fn prepare(&self, group_dir: &Path, volume: &Volume) -> Result<PreparedVolume, VolumeError> {
        self.prepared.fetch_add(1, Ordering::SeqCst);
        let dir = group_dir.join(&volume.name);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("marker"), "x").unwrap();
        Ok(PreparedVolume {
            volume_type: VolumeType::EmptyDir,
            mount: GuestMount {
                name: volume.name.clone(),
                source: GuestMountSource::Tmpfs { size_limit: None },
                read_only: false,
            },
        })
    }

    fn release(&self, _group_dir: &Path, _volume: &PreparedVolume) -> Result<(), VolumeError> {
        self.released.fetch_add(1, Ordering::SeqCst);
        Ok(())
    }
}

#[test]
fn empty_dir_is_a_group_tmpfs_with_an_optional_size() {
    let limited =
        Volume::new("scratch", VolumeSource::EmptyDir(EmptyDirSource { size_limit: Some(1 << 30) }));
    let registry = VolumeRegistry::new();
    let state = tempfile::tempdir().unwrap();
    let prepared = registry.prepare_all(state.path(), &[limited, empty_dir("plain")]).unwrap();
    assert_eq!(
        prepared[0].mount,
        GuestMount {
            name: "scratch".into(),
            source: GuestMountSource::Tmpfs { size_limit: Some(1 << 30) },
            read_only: false,
        }
    );
    assert_eq!(prepared[1].mount.source, GuestMountSource::Tmpfs { size_limit: None });
    assert!(prepared[0].host_share().is_none());
    assert!(std::fs::read_dir(state.path()).unwrap().next().is_none());
}

#[test]
fn host_path_is_a_canonical_virtiofs_share() {
    let host = tempfile::tempdir().unwrap();
    let real = host.path().join("real");
    std::fs::create_dir(&real).unwrap();
    std::os::unix::fs::symlink(&real, host.path().join("link")).unwrap();
    let registry = VolumeRegistry::new();
    let group = Path::new("/nonexistent/group");

    let prepared = registry.prepare(group, &host_path("share", &host.path().join("link/./"), true)).unwrap();
    let share = prepared.host_share().unwrap();
    assert_eq!(share.host_dir, real.canonicalize().unwrap());
    assert_eq!(share.tag, "aci-share");
    assert!(share.read_only && prepared.mount.read_only);
    let rw = registry.prepare(group, &host_path("rw", &real, false)).unwrap();
    assert!(!rw.host_share().unwrap().read_only);

    let missing = registry.prepare(group, &host_path("m", &host.path().join("missing"), false)).unwrap_err();
    assert!(matches!(&missing, VolumeError::ResolveHostPath { volume, .. } if volume == "m"));
    let file = host.path().join("file");
    std::fs::write(&file, "x").unwrap();
    let not_dir = registry.prepare(group, &host_path("f", &file, false)).unwrap_err();
    assert!(matches!(not_dir, VolumeError::HostPathNotDirectory { .. }), "{not_dir:?}");
    let relative = registry.prepare(group, &host_path("r", Path::new("relative/dir"), false)).unwrap_err();
    assert!(matches!(relative, VolumeError::HostPathNotAbsolute { .. }), "{relative:?}");

    // Releasing never touches the user's directory.
    registry.release_all(group, &[prepared, rw]).unwrap();
    assert!(real.is_dir());
}

#[test]
fn dispatch_goes_through_the_registered_driver_and_release_cleans_up() {
    let marker = MarkerDriver::default();
    let registry = VolumeRegistry::new().with(marker.clone());
    let state = tempfile::tempdir().unwrap();
    let group = state.path().join("group");
    let prepared = registry.prepare_all(&group, &[empty_dir("a"), empty_dir("b")]).unwrap();
    assert_eq!(marker.prepared.load(Ordering::SeqCst), 2);
    assert!(group.join("a/marker").is_file());
    registry.release_all(&group, &prepared).unwrap();
    assert_eq!(marker.released.load(Ordering::SeqCst), 2);
    assert!(!group.exists());
    // Releasing again is fine.
    registry.release_all(&group, &prepared).unwrap();
}

#[test]
fn a_failed_volume_rolls_back_the_ones_before_it() {
    let marker = MarkerDriver::default();
    let registry = VolumeRegistry::new().with(marker.clone());
    let state = tempfile::tempdir().unwrap();
    let group = state.path().join("group");
    let volumes = [empty_dir("a"), host_path("h", &state.path().join("missing"), false)];
    let err = registry.prepare_all(&group, &volumes).unwrap_err();
    assert!(matches!(&err, VolumeError::ResolveHostPath { volume, .. } if volume == "h"));
    assert_eq!(marker.released.load(Ordering::SeqCst), 1);
    assert!(!group.exists());
}

#[test]
fn missing_drivers_bad_names_and_duplicates_are_typed_errors() {
    let group = Path::new("/nonexistent");
    let err = VolumeRegistry::empty().prepare(group, &empty_dir("a")).unwrap_err();
    assert!(matches!(
        &err,
        VolumeError::NoDriver { volume, volume_type: VolumeType::EmptyDir } if volume == "a"
    ));
    let registry = VolumeRegistry::new();
    for name in ["", "..", "a/b"] {
        let err = registry.prepare(group, &empty_dir(name)).unwrap_err();
        assert!(matches!(err, VolumeError::InvalidVolumeName { .. }), "{name:?}");
    }
    let err = registry.prepare_all(group, &[empty_dir("a"), empty_dir("a")]).unwrap_err();
    assert!(matches!(&err, VolumeError::DuplicateVolume { volume } if volume == "a"));
    let secret = Volume::new("s", VolumeSource::Secret(BTreeMap::new()));
    let err = EmptyDirDriver.prepare(group, &secret).unwrap_err();
    assert!(matches!(
        err,
        VolumeError::WrongDriver { driver: VolumeType::EmptyDir, volume_type: VolumeType::Secret, .. }
    ));
}

fn mount(volume: &str, path: &str, read_only: bool) -> MountRequest {
    MountRequest { volume: volume.into(), mount_path: path.into(), read_only }
}

#[test]
fn volume_mounts_resolve_against_prepared_volumes() {
    let registry = VolumeRegistry::new();
    let state = tempfile::tempdir().unwrap();
    let volumes = [empty_dir("shared"), Volume::new("creds", VolumeSource::Secret(BTreeMap::new()))];
    let prepared = registry.prepare_all(state.path(), &volumes).unwrap();

    // One volume, two containers, different paths and modes.
    let web = resolve_mounts(
        "web",
        &[mount("shared", "/data/", false), mount("creds", "/etc/creds", false)],
        &prepared,
    )
    .unwrap();
    let side = resolve_mounts("sidecar", &[mount("shared", "/in", true)], &prepared).unwrap();
    assert_eq!(web[0].mount_path, Path::new("/data"));
    assert!(!web[0].read_only);
    // A secret volume is read-only whatever the mount says.
    assert!(web[1].read_only);
    assert_eq!(side[0].volume, "shared");
    assert!(side[0].read_only);

    let err = resolve_mounts("web", &[mount("nope", "/x", false)], &prepared).unwrap_err();
    assert!(matches!(
        &err,
        MountError::UnknownVolume { container, volume } if container == "web" && volume == "nope"
    ));
    for path in ["relative", "/a/../b", "/", "/a:b"] {
        let err = resolve_mounts("web", &[mount("shared", path, false)], &prepared).unwrap_err();
        assert!(matches!(err, MountError::InvalidMountPath { .. }), "{path}: {err:?}");
    }
    let twice = [mount("shared", "/d", false), mount("creds", "/d/", false)];
    let err = resolve_mounts("web", &twice, &prepared).unwrap_err();
    assert!(matches!(err, MountError::DuplicateMountPath { .. }), "{err:?}");
}
