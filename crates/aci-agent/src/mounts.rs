//! Mounting the kernel filesystems the agent and containers need.

use std::ffi::CString;
use std::fmt;
use std::io;

/// A mount that failed, with the target and the OS error.
#[derive(Debug)]
pub struct MountError {
    target: &'static str,
    source: io::Error,
}

impl fmt::Display for MountError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "mounting {} failed: {}", self.target, self.source)
    }
}

/// Mounts /proc, /sys and /dev (devtmpfs). An already-mounted target is not an error.
pub fn mount_kernel_filesystems() -> Result<(), MountError> {
    mount("proc", "/proc", "proc")?;
    mount("sysfs", "/sys", "sysfs")?;
    mount("devtmpfs", "/dev", "devtmpfs")?;
    Ok(())
}

fn mount(source: &'static str, target: &'static str, fstype: &'static str) -> Result<(), MountError> {
    let err = |source| MountError { target, source };
    std::fs::create_dir_all(target).map_err(err)?;
    let c = |s: &str| CString::new(s).map_err(|e| err(io::Error::new(io::ErrorKind::InvalidInput, e)));
    let (src, tgt, fs) = (c(source)?, c(target)?, c(fstype)?);
    // SAFETY: all pointers are valid NUL-terminated strings that outlive the call; a null
    // data pointer is allowed by mount(2).
    let rc = unsafe { libc::mount(src.as_ptr(), tgt.as_ptr(), fs.as_ptr(), 0, std::ptr::null()) };
    if rc == 0 {
        return Ok(());
    }
    let os = io::Error::last_os_error();
    if os.raw_os_error() == Some(libc::EBUSY) {
        return Ok(());
    }
    Err(err(os))
}
