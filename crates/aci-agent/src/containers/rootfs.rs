//! A container's root filesystem: an overlay whose lower layer is the image (mounted
//! read-only by the sandbox) and whose upper and work directories are on a tmpfs of the
//! container's own, so writes stay in guest memory, survive restarts, and go with
//! `RemoveContainer`.

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

/// Creates the bundle directory and mounts the scratch tmpfs and the overlay.
pub fn mount_overlay(layout: &Layout, image_root: &Path) -> io::Result<PathBuf> {
    let mut dirs = std::fs::DirBuilder::new();
    dirs.recursive(true).mode(0o700).create(&layout.dir)?;
    let scratch = layout.scratch();
    dirs.create(&scratch)?;
    mount("tmpfs", &scratch, "tmpfs", libc::MS_NOSUID | libc::MS_NODEV, "mode=0755")?;
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
