//! A container's root filesystem: an overlay whose lower layer is the image (mounted
//! read-only by the sandbox) and whose upper and work directories are on a tmpfs of the
//! container's own, so writes stay in guest memory, survive restarts, and go with
//! `RemoveContainer`.
//!
//! The tmpfs is bounded ([`upper_size`]): half the memory the container may use (its
//! memory limit, or the guest's RAM when it has none), so a container that fills its root
//! gets `ENOSPC` instead of exhausting the guest's memory under its neighbours.

use std::ffi::CString;
use std::io;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

/// The directories of one container below its bundle directory.
#[derive(Debug, Clone)]
pub struct Layout {
    /// The bundle directory (`config.json` lives here).
    pub dir: PathBuf,
}

impl Layout {
    /// The tmpfs holding the writable layer.
    pub fn scratch(&self) -> PathBuf {
        self.dir.join("scratch")
    }

    /// The merged root the container sees.
    pub fn rootfs(&self) -> PathBuf {
        self.dir.join("rootfs")
    }
}

/// Checks that `image_root` can be named in overlay options (no `,` or `:`) and is a
/// directory.
pub fn check_image_root(image_root: &str) -> Result<PathBuf, String> {
    if image_root.contains([',', ':', '\0']) || !image_root.starts_with('/') {
        return Err(format!("image_root {image_root:?} must be an absolute path without ',' or ':'"));
    }
    if !Path::new(image_root).is_dir() {
        return Err(format!("image_root {image_root:?} is not a directory (was the image mounted?)"));
    }
    Ok(PathBuf::from(image_root))
}

/// The smallest writable layer a container gets.
pub const MIN_UPPER_BYTES: u64 = 1 << 20;

/// The size of a container's writable layer: half its memory limit, or half the guest's RAM
/// (`guest_ram`) when it has none; at least [`MIN_UPPER_BYTES`].
///
/// Why half: tmpfs pages are charged to the memory cgroup of the writer, so with a limit the
/// layer and the processes share it; a layer as large as the limit would end in an OOM kill
/// rather than `ENOSPC`. Without a limit the layer can still take at most half the guest.
pub fn upper_size(memory_limit: Option<u64>, guest_ram: u64) -> u64 {
    (memory_limit.unwrap_or(guest_ram) / 2).max(MIN_UPPER_BYTES)
}

/// The guest's RAM (`MemTotal` of `/proc/meminfo`), in bytes.
pub fn guest_ram() -> io::Result<u64> {
    let meminfo = std::fs::read_to_string("/proc/meminfo")?;
    parse_mem_total(&meminfo)
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "no MemTotal line in /proc/meminfo"))
}

fn parse_mem_total(meminfo: &str) -> Option<u64> {
    let line = meminfo.lines().find(|l| l.starts_with("MemTotal:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    kib.checked_mul(1024)
}

/// Creates the bundle directory and mounts the scratch tmpfs (`upper_bytes` large) and the
/// overlay.
pub fn mount_overlay(layout: &Layout, image_root: &Path, upper_bytes: u64) -> io::Result<PathBuf> {
    let mut dirs = std::fs::DirBuilder::new();
    dirs.recursive(true).mode(0o700).create(&layout.dir)?;
    let scratch = layout.scratch();
    dirs.create(&scratch)?;
    mount(
        "tmpfs",
        &scratch,
        "tmpfs",
        libc::MS_NOSUID | libc::MS_NODEV,
        &format!("mode=0755,size={upper_bytes}"),
    )?;
    let (upper, work, rootfs) = (scratch.join("upper"), scratch.join("work"), layout.rootfs());
    dirs.mode(0o755);
    for d in [&upper, &work, &rootfs] {
        dirs.create(d)?;
    }
    let data =
        format!("lowerdir={},upperdir={},workdir={}", image_root.display(), upper.display(), work.display());
    mount("overlay", &rootfs, "overlay", 0, &data)?;
    Ok(rootfs)
}

/// Unmounts the overlay and the scratch tmpfs and removes the bundle directory.
pub fn remove(layout: &Layout) -> io::Result<()> {
    for target in [layout.rootfs(), layout.scratch()] {
        unmount(&target)?;
    }
    match std::fs::remove_dir_all(&layout.dir) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

/// Writes `contents` to `path` readable by root only (the spec holds secure values).
pub fn write_private(path: &Path, contents: &[u8]) -> io::Result<()> {
    use std::io::Write;
    let mut f = std::fs::OpenOptions::new().create(true).truncate(true).write(true).mode(0o600).open(path)?;
    f.write_all(contents)
}

fn cstring(s: &str) -> io::Result<CString> {
    CString::new(s).map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))
}

fn mount(source: &str, target: &Path, fstype: &str, flags: libc::c_ulong, data: &str) -> io::Result<()> {
    let (src, tgt) = (cstring(source)?, cstring(&target.to_string_lossy())?);
    let (fs, dat) = (cstring(fstype)?, cstring(data)?);
    // SAFETY: all pointers are valid NUL-terminated strings that outlive the call.
    let rc = unsafe { libc::mount(src.as_ptr(), tgt.as_ptr(), fs.as_ptr(), flags, dat.as_ptr().cast()) };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

fn unmount(target: &Path) -> io::Result<()> {
    let tgt = cstring(&target.to_string_lossy())?;
    // SAFETY: a valid NUL-terminated path.
    if unsafe { libc::umount2(tgt.as_ptr(), libc::MNT_DETACH) } == 0 {
        return Ok(());
    }
    let err = io::Error::last_os_error();
    // Not mounted (EINVAL) or already gone (ENOENT): nothing to undo.
    match err.raw_os_error() {
        Some(libc::EINVAL) | Some(libc::ENOENT) => Ok(()),
        _ => Err(err),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_upper_layer_is_half_the_memory_the_container_may_use() {
        assert_eq!(upper_size(Some(256 << 20), 4 << 30), 128 << 20);
        assert_eq!(upper_size(None, 4 << 30), 2 << 30);
        assert_eq!(upper_size(Some(1 << 20), 4 << 30), MIN_UPPER_BYTES);
    }

    #[test]
    fn mem_total_is_read_in_bytes() {
        let meminfo = "MemTotal:        2030956 kB\nMemFree:          123 kB\n";
        assert_eq!(parse_mem_total(meminfo), Some(2030956 * 1024));
        assert_eq!(parse_mem_total("MemFree: 1 kB\n"), None);
    }
}
