//! Moving PID 1 off the initramfs onto a tmpfs root, first thing at boot.
//!
//! The kernel unpacks the initramfs into `rootfs`, the root mount of the initial mount
//! namespace. That mount has no parent, and pivot_root(2) refuses (EINVAL) to move a root
//! without one, in this namespace and in every namespace copied from it, so no container
//! runtime could enter a container's root filesystem the usual way. The fix is the one
//! init systems use: mount a tmpfs, move it onto `/` and chroot into it. The agent keeps
//! running from its (now hidden) initramfs file; nothing else of the initramfs is needed
//! afterwards, since [`crate::mounts`] creates every mount point it uses.

use std::ffi::CString;
use std::io;

/// Where the new root is mounted before it is moved onto `/`.
const STAGING: &str = "/.aci-root";

/// A step of the switch that failed.
#[derive(Debug, thiserror::Error)]
#[error("moving / onto a tmpfs failed at {step}")]
pub struct SwitchError {
    step: &'static str,
    #[source]
    source: io::Error,
}

fn check(step: &'static str, rc: libc::c_int) -> Result<(), SwitchError> {
    if rc == 0 {
        Ok(())
    } else {
        Err(SwitchError { step, source: io::Error::last_os_error() })
    }
}

fn c(s: &str) -> CString {
    // The strings passed here are constants without NUL bytes.
    CString::new(s).unwrap_or_default()
}

/// Whether `/` is memory-backed (ramfs or tmpfs): the initramfs case this module is for.
/// A root on a disk or a share is left alone.
pub fn root_is_initramfs() -> bool {
    const RAMFS_MAGIC: i64 = 0x8584_58f6;
    const TMPFS_MAGIC: i64 = 0x0102_1994;
    let root = c("/");
    // SAFETY: statfs is plain old data; all-zero is a valid value to be overwritten.
    let mut st: libc::statfs = unsafe { std::mem::zeroed() };
    // SAFETY: `root` is a valid path and `st` a valid statfs buffer, both outliving the call.
    if unsafe { libc::statfs(root.as_ptr(), &mut st) } != 0 {
        return false;
    }
    let kind = st.f_type as i64;
    kind == RAMFS_MAGIC || kind == TMPFS_MAGIC
}

/// Mounts a tmpfs at [`STAGING`], moves it onto `/` and chroots into it. On failure before
/// the move, the staging mount is removed and the agent stays on the initramfs.
pub fn switch() -> Result<(), SwitchError> {
    std::fs::create_dir_all(STAGING)
        .map_err(|source| SwitchError { step: "creating the staging directory", source })?;
    let (tmpfs, staging, dot, root, mode) = (c("tmpfs"), c(STAGING), c("."), c("/"), c("mode=0755"));
    // SAFETY: all pointers are valid NUL-terminated strings that outlive the call.
    let rc =
        unsafe { libc::mount(tmpfs.as_ptr(), staging.as_ptr(), tmpfs.as_ptr(), 0, mode.as_ptr().cast()) };
    check("mounting the tmpfs", rc)?;
    // SAFETY: `staging` is a valid NUL-terminated path.
    let mut moved = check("changing into the tmpfs", unsafe { libc::chdir(staging.as_ptr()) });
    if moved.is_ok() {
        // SAFETY: valid NUL-terminated paths; MS_MOVE takes no filesystem type nor data.
        let rc = unsafe {
            libc::mount(dot.as_ptr(), root.as_ptr(), std::ptr::null(), libc::MS_MOVE, std::ptr::null())
        };
        moved = check("moving the tmpfs onto /", rc);
    }
    if let Err(e) = moved {
        // SAFETY: valid NUL-terminated paths; this undoes the staging mount (best effort).
        unsafe {
            libc::chdir(root.as_ptr());
            libc::umount2(staging.as_ptr(), libc::MNT_DETACH);
        }
        return Err(e);
    }
    // SAFETY: a valid NUL-terminated path; the working directory is the moved tmpfs.
    check("chroot into the tmpfs", unsafe { libc::chroot(dot.as_ptr()) })?;
    // SAFETY: a valid NUL-terminated path.
    check("changing into the new /", unsafe { libc::chdir(root.as_ptr()) })
}
