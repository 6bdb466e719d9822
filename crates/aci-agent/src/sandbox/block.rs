//! Finding a virtio-blk disk by the serial the VMM gave it (`/sys/block/vdX/serial`).

use std::path::{Path, PathBuf};

/// Filesystems a [`aci_proto::sandbox::StorageSource::Block`] disk may hold.
pub const FS_TYPES: &[&str] = &["erofs", "ext4"];

/// Errors of the disk lookup.
#[derive(Debug, thiserror::Error)]
pub enum BlockError {
    /// No disk has the serial.
    #[error("no virtio-blk disk has serial {serial:?} (serials present: {})", list(.present))]
    NoSuchSerial {
        /// The serial asked for.
        serial: String,
        /// The serials of the disks the guest has.
        present: Vec<String>,
    },
    /// Two disks have the serial.
    #[error("more than one virtio-blk disk has serial {serial:?}: {}", list(.disks))]
    Ambiguous {
        /// The serial asked for.
        serial: String,
        /// The disks that have it.
        disks: Vec<String>,
    },
    /// The filesystem type is not one the agent mounts from a disk.
    #[error("filesystem type {0:?} is not supported for disks (supported: erofs, ext4)")]
    FsType(String),
    /// `/sys/block` could not be read.
    #[error("cannot list {path}")]
    List {
        /// The directory.
        path: PathBuf,
        /// Cause.
        #[source]
        source: std::io::Error,
    },
}

fn list(items: &[String]) -> String {
    if items.is_empty() {
        "none".to_owned()
    } else {
        items.join(", ")
    }
}

/// Checks that `fs_type` is one of [`FS_TYPES`].
pub fn check_fs_type(fs_type: &str) -> Result<(), BlockError> {
    if FS_TYPES.contains(&fs_type) {
        Ok(())
    } else {
        Err(BlockError::FsType(fs_type.to_owned()))
    }
}

/// The device node (`/dev/vdX`) of the virtio-blk disk in `sys_block` (normally
/// `/sys/block`) whose serial is `serial`.
pub fn find_by_serial(sys_block: &Path, serial: &str) -> Result<PathBuf, BlockError> {
    let entries = std::fs::read_dir(sys_block)
        .map_err(|source| BlockError::List { path: sys_block.to_path_buf(), source })?;
    let mut names: Vec<String> = entries
        .filter_map(Result::ok)
        .filter_map(|e| e.file_name().to_str().map(str::to_owned))
        .filter(|name| name.starts_with("vd"))
        .collect();
    names.sort();
    let mut present = Vec::new();
    let mut matches = Vec::new();
    for name in names {
        let Ok(raw) = std::fs::read_to_string(sys_block.join(&name).join("serial")) else {
            continue;
        };
        let found = raw.trim_end_matches(['\n', '\0', ' ']).to_owned();
        if found == serial {
            matches.push(name);
        } else {
            present.push(found);
        }
    }
    match matches.len() {
        0 => Err(BlockError::NoSuchSerial { serial: serial.to_owned(), present }),
        1 => Ok(Path::new("/dev").join(&matches[0])),
        _ => Err(BlockError::Ambiguous { serial: serial.to_owned(), disks: matches }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn disk(root: &Path, name: &str, serial: &str) {
        std::fs::create_dir_all(root.join(name)).unwrap();
        std::fs::write(root.join(name).join("serial"), serial).unwrap();
    }

    #[test]
    fn disks_are_found_by_serial_and_misses_name_what_exists() {
        let dir = tempfile::tempdir().unwrap();
        disk(dir.path(), "vda", "aci-rootfs\n");
        disk(dir.path(), "vdb", "aci-data");
        std::fs::create_dir_all(dir.path().join("loop0")).unwrap();
        assert_eq!(find_by_serial(dir.path(), "aci-data").unwrap(), Path::new("/dev/vdb"));
        assert_eq!(find_by_serial(dir.path(), "aci-rootfs").unwrap(), Path::new("/dev/vda"));
        let err = find_by_serial(dir.path(), "nope").unwrap_err().to_string();
        assert!(err.contains("\"nope\"") && err.contains("aci-rootfs, aci-data"), "{err}");
        disk(dir.path(), "vdc", "aci-data");
        let err = find_by_serial(dir.path(), "aci-data").unwrap_err().to_string();
        assert!(err.contains("vdb, vdc"), "{err}");
    }

    #[test]
    fn only_disk_filesystems_are_accepted() {
        assert!(check_fs_type("erofs").is_ok() && check_fs_type("ext4").is_ok());
        let err = check_fs_type("xfs").unwrap_err().to_string();
        assert!(err.contains("\"xfs\""), "{err}");
    }
}
