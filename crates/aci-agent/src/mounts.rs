//! Mounting the kernel filesystems the agent and containers need, and enabling the cgroup v2
//! controllers containers are limited by.

use std::ffi::CString;
use std::fmt;
use std::io;

/// A mount (or cgroup set-up step) that failed, with the target and the OS error.
#[derive(Debug)]
pub struct MountError {
    target: &'static str,
    source: io::Error,
}

impl fmt::Display for MountError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "setting up {} failed: {}", self.target, self.source)
    }
}

/// What PID 1 mounts, in order: (source, target, fstype, flags, data).
const MOUNTS: &[(&str, &str, &str, libc::c_ulong, &str)] = &[
    ("proc", "/proc", "proc", NOSUID_NODEV_NOEXEC, ""),
    ("sysfs", "/sys", "sysfs", NOSUID_NODEV_NOEXEC, ""),
    ("devtmpfs", "/dev", "devtmpfs", libc::MS_NOSUID, "mode=0755"),
    (
        "devpts",
        "/dev/pts",
        "devpts",
        libc::MS_NOSUID | libc::MS_NOEXEC,
        "newinstance,ptmxmode=0666,mode=0620",
    ),
    ("tmpfs", "/dev/shm", "tmpfs", NOSUID_NODEV, "mode=1777"),
    ("tmpfs", "/run", "tmpfs", NOSUID_NODEV, "mode=0755"),
    ("cgroup2", "/sys/fs/cgroup", "cgroup2", NOSUID_NODEV_NOEXEC, ""),
];
const NOSUID_NODEV: libc::c_ulong = libc::MS_NOSUID | libc::MS_NODEV;
const NOSUID_NODEV_NOEXEC: libc::c_ulong = NOSUID_NODEV | libc::MS_NOEXEC;

/// The cgroup v2 controllers delegated to container cgroups.
pub const CONTROLLERS: &[&str] = &["cpu", "memory", "pids", "io"];

/// Mounts [`MOUNTS`] (an already-mounted target is not an error) and enables the
/// [`CONTROLLERS`] the kernel offers for child cgroups. Returns the controllers enabled.
pub fn mount_kernel_filesystems() -> Result<Vec<String>, MountError> {
    for &(source, target, fstype, flags, data) in MOUNTS {
        mount(source, target, fstype, flags, data)?;
    }
    enable_controllers()
}

fn enable_controllers() -> Result<Vec<String>, MountError> {
    let target = "/sys/fs/cgroup/cgroup.subtree_control";
    let err = |source| MountError { target, source };
    let available = std::fs::read_to_string("/sys/fs/cgroup/cgroup.controllers").map_err(err)?;
    let wanted: Vec<String> = CONTROLLERS
        .iter()
        .filter(|c| available.split_whitespace().any(|a| a == **c))
        .map(|c| (*c).to_owned())
        .collect();
    let line: Vec<String> = wanted.iter().map(|c| format!("+{c}")).collect();
    std::fs::write(target, line.join(" ")).map_err(err)?;
    Ok(wanted)
}

/// Sets the hostname (the group's name, given on the kernel command line).
pub fn set_hostname(name: &str) -> io::Result<()> {
    // SAFETY: the pointer and length describe `name`'s bytes, valid for the call.
    let rc = unsafe { libc::sethostname(name.as_ptr().cast(), name.len()) };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

fn mount(
    source: &'static str,
    target: &'static str,
    fstype: &'static str,
    flags: libc::c_ulong,
    data: &'static str,
) -> Result<(), MountError> {
    let err = |source| MountError { target, source };
    std::fs::create_dir_all(target).map_err(err)?;
    let c = |s: &str| CString::new(s).map_err(|e| err(io::Error::new(io::ErrorKind::InvalidInput, e)));
    let (src, tgt, fs, dat) = (c(source)?, c(target)?, c(fstype)?, c(data)?);
    // SAFETY: all pointers are valid NUL-terminated strings that outlive the call.
    let rc = unsafe { libc::mount(src.as_ptr(), tgt.as_ptr(), fs.as_ptr(), flags, dat.as_ptr().cast()) };
    if rc == 0 {
        return Ok(());
    }
    let os = io::Error::last_os_error();
    if os.raw_os_error() == Some(libc::EBUSY) {
        return Ok(());
    }
    Err(err(os))
}
