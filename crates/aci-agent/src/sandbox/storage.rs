//! `MountStorage`: one storage (disk, share, tmpfs, secret files) mounted at a guest path.
//!
//! Each [`StorageSource`] kind has one function here; everything a kind needs is checked
//! before mount(2) is called, and a kind that mounts in several steps (secret files) undoes
//! its mount when a later step fails.

use std::io;
use std::path::{Component, Path, PathBuf};

use aci_proto::sandbox::{StorageMount, StorageSource};

use super::block::{self, BlockError};
use super::cifs::{self, CifsError};
use super::secret_files::{self, FileError};
use super::sys;

/// Where the guest's virtio-blk disks are listed.
const SYS_BLOCK: &str = "/sys/block";
/// The mount table.
const MOUNTINFO: &str = "/proc/self/mountinfo";
/// Names the CIFS server may be given in (written by `ConfigureSandbox`).
const ETC_HOSTS: &str = "/etc/hosts";
/// The longest virtio-fs tag the device can carry.
const MAX_TAG_LEN: usize = 36;

const NOSUID_NODEV: libc::c_ulong = libc::MS_NOSUID | libc::MS_NODEV;

/// Errors of a storage mount (the caller adds the storage's id).
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    /// The mount point is not a plain absolute path other than `/`.
    #[error("mount point {0:?} must be an absolute path other than / without `.` or `..`")]
    MountPoint(String),
    /// Something is already mounted there.
    #[error("mount point {0} is busy: something is already mounted there")]
    Busy(PathBuf),
    /// The mount table could not be read.
    #[error("cannot read the mount table")]
    MountTable(#[source] io::Error),
    /// The mount point could not be created.
    #[error("cannot create mount point {path}")]
    CreateMountPoint {
        /// The mount point.
        path: PathBuf,
        /// Cause.
        #[source]
        source: io::Error,
    },
    /// The disk could not be found or its filesystem type is not supported.
    #[error(transparent)]
    Block(#[from] BlockError),
    /// A secret file is invalid or could not be written.
    #[error(transparent)]
    Files(#[from] FileError),
    /// The share's description is invalid.
    #[error(transparent)]
    Cifs(#[from] CifsError),
    /// The virtio-fs tag is empty or too long.
    #[error("virtio-fs tag {0:?} is empty or longer than 36 bytes")]
    Tag(String),
    /// A zero tmpfs size (tmpfs reads `size=0` as "unlimited").
    #[error("tmpfs size must be at least 1 byte")]
    ZeroSize,
    /// mount(2) failed.
    #[error("mounting {what} at {mount_point} (options: {options}) failed")]
    Mount {
        /// What was mounted (`/dev/vdb (ext4)`, `//server/share (cifs)`).
        what: String,
        /// Where.
        mount_point: PathBuf,
        /// The options, secrets redacted.
        options: String,
        /// Cause.
        #[source]
        source: io::Error,
    },
}

/// Checks the mount point: absolute, normal components only, not `/`.
pub fn check_mount_point(mount_point: &str) -> Result<PathBuf, StorageError> {
    let path = PathBuf::from(mount_point);
    let plain = path.is_absolute()
        && path.components().skip(1).all(|c| matches!(c, Component::Normal(_)))
        && path.components().count() > 1
        && !mount_point.contains(['\0', '\n'])
        && !mount_point.contains("/./")
        && !mount_point.ends_with("/.");
    if plain {
        Ok(path)
    } else {
        Err(StorageError::MountPoint(mount_point.to_owned()))
    }
}

/// Mounts `mount`; returns where it was mounted.
pub fn mount(mount: &StorageMount) -> Result<PathBuf, StorageError> {
    let target = check_mount_point(&mount.mount_point)?;
    // Everything checkable is checked before the mount point is touched.
    let plan = plan(mount)?;
    let mountinfo = std::fs::read_to_string(MOUNTINFO).map_err(StorageError::MountTable)?;
    if sys::is_mount_point(&mountinfo, &target) {
        return Err(StorageError::Busy(target));
    }
    std::fs::create_dir_all(&target)
        .map_err(|source| StorageError::CreateMountPoint { path: target.clone(), source })?;
    let read_only = if mount.read_only { libc::MS_RDONLY } else { 0 };
    match plan {
        Plan::Simple { what, source, fstype, flags, data, shown } => {
            do_mount(&what, &source, &target, Some(&fstype), flags | read_only, &data, &shown)?;
        }
        Plan::Files(files) => mount_files(&target, &files)?,
    }
    Ok(target)
}

/// What a storage mount will do, decided before anything is mounted.
enum Plan {
    /// One mount(2).
    Simple {
        /// Shown in errors.
        what: String,
        source: String,
        fstype: String,
        flags: libc::c_ulong,
        /// The mount data (a CIFS mount's holds the password; wiped on drop).
        data: Data,
        /// The options as shown in errors.
        shown: String,
    },
    /// A tmpfs filled with files, then made read-only.
    Files(Vec<secret_files::DecodedFile>),
}

/// Mount data, possibly secret.
enum Data {
    Plain(String),
    Cifs(cifs::CifsMount),
}

impl Data {
    fn bytes(&self) -> &[u8] {
        match self {
            Self::Plain(s) => s.as_bytes(),
            Self::Cifs(m) => m.data(),
        }
    }
}

fn plan(mount: &StorageMount) -> Result<Plan, StorageError> {
    let simple = |what: String, source: String, fstype: &str, flags, data: Data, shown: String| {
        Plan::Simple { what, source, fstype: fstype.to_owned(), flags, data, shown }
    };
    Ok(match &mount.source {
        StorageSource::Block { serial, fs_type } => {
            block::check_fs_type(fs_type)?;
            let device = block::find_by_serial(Path::new(SYS_BLOCK), serial)?;
            let dev = device.display().to_string();
            let what = format!("{dev} (serial {serial:?}, {fs_type})");
            simple(what, dev, fs_type, 0, Data::Plain(String::new()), "none".into())
        }
        StorageSource::Tmpfs { size_bytes } => {
            let mut options = "mode=0777".to_owned();
            match size_bytes {
                Some(0) => return Err(StorageError::ZeroSize),
                Some(size) => options.push_str(&format!(",size={size}")),
                None => {}
            }
            simple(
                "tmpfs".into(),
                "tmpfs".into(),
                "tmpfs",
                NOSUID_NODEV,
                Data::Plain(options.clone()),
                options,
            )
        }
        StorageSource::Files { files } => Plan::Files(secret_files::decode(files)?),
        StorageSource::Cifs { unc, username, password, options } => {
            let hosts = std::fs::read_to_string(ETC_HOSTS).unwrap_or_default();
            let built = cifs::build(unc, username, password, options, &hosts)?;
            let what = format!("share {unc} (cifs)");
            let (source, shown) = (built.source.clone(), built.shown.clone());
            simple(what, source, "cifs", NOSUID_NODEV, Data::Cifs(built), shown)
        }
        StorageSource::Virtiofs { tag } => {
            if tag.is_empty() || tag.len() > MAX_TAG_LEN || tag.contains(['\0', '\n']) {
                return Err(StorageError::Tag(tag.clone()));
            }
            let what = format!("virtio-fs tag {tag:?} (the kernel says EINVAL when no device has it)");
            simple(what, tag.clone(), "virtiofs", NOSUID_NODEV, Data::Plain(String::new()), "none".into())
        }
    })
}

fn do_mount(
    what: &str,
    source: &str,
    target: &Path,
    fstype: Option<&str>,
    flags: libc::c_ulong,
    data: &Data,
    shown: &str,
) -> Result<(), StorageError> {
    sys::mount(source, target, fstype, flags, data.bytes()).map_err(|source| StorageError::Mount {
        what: what.to_owned(),
        mount_point: target.to_path_buf(),
        options: shown.to_owned(),
        source,
    })
}

/// Secret files: a fresh tmpfs, the files, then read-only. Nothing stays mounted on failure.
fn mount_files(target: &Path, files: &[secret_files::DecodedFile]) -> Result<(), StorageError> {
    let flags = NOSUID_NODEV | libc::MS_NOEXEC;
    let options = "mode=0755".to_owned();
    let data = Data::Plain(options.clone());
    do_mount("tmpfs for files", "tmpfs", target, Some("tmpfs"), flags, &data, &options)?;
    let filled = secret_files::write_all(target, files).map_err(StorageError::from).and_then(|()| {
        let remount = flags | libc::MS_REMOUNT | libc::MS_RDONLY;
        do_mount("tmpfs for files (read-only remount)", "tmpfs", target, None, remount, &data, &options)
    });
    if filled.is_err() {
        let _ = sys::umount(target, libc::MNT_DETACH);
    }
    filled
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mount_points_must_be_plain_absolute_paths() {
        for good in ["/run/aci/disk", "/mnt/a b", "/x/"] {
            assert!(check_mount_point(good).is_ok(), "{good}");
        }
        for bad in ["", "/", "relative/path", "/a/../b", "/a/./b", "/a/.", "/a\nb"] {
            let err = check_mount_point(bad).unwrap_err().to_string();
            assert!(err.contains(&format!("{bad:?}")), "{bad:?}: {err}");
        }
    }

    #[test]
    fn plans_check_before_mounting() {
        let m =
            |source| StorageMount { id: "v".into(), mount_point: "/mnt/v".into(), source, read_only: false };
        let err = plan(&m(StorageSource::Tmpfs { size_bytes: Some(0) })).err().unwrap();
        assert!(matches!(err, StorageError::ZeroSize));
        let Plan::Simple { data, shown, .. } =
            plan(&m(StorageSource::Tmpfs { size_bytes: Some(1 << 20) })).unwrap()
        else {
            panic!("tmpfs is one mount");
        };
        assert_eq!(data.bytes(), b"mode=0777,size=1048576");
        assert_eq!(shown, "mode=0777,size=1048576");
        let err = plan(&m(StorageSource::Virtiofs { tag: "t".repeat(37) })).err().unwrap();
        assert!(err.to_string().contains("longer than 36"), "{err}");
        let err = plan(&m(StorageSource::Block { serial: "s".into(), fs_type: "xfs".into() })).err().unwrap();
        assert!(err.to_string().contains("\"xfs\""), "{err}");
    }
}
