//! Named network namespaces (`/run/netns/<name>`, the `ip netns` convention) and running code
//! inside one on a dedicated thread, so the caller's threads never change namespace.

use std::fs::File;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};

/// Where named network namespaces are bind-mounted (shared with `ip netns`).
pub const NETNS_DIR: &str = "/run/netns";

/// Errors of namespace operations.
#[derive(Debug, thiserror::Error)]
pub enum NetnsError {
    /// Creating `/run/netns` or the namespace's mount point failed.
    #[error("cannot create the mount point for network namespace {name}")]
    CreateMountPoint {
        /// Namespace name.
        name: String,
        /// Cause.
        #[source]
        source: std::io::Error,
    },
    /// `unshare(CLONE_NEWNET)` or the bind mount of the new namespace failed.
    #[error("cannot create network namespace {name}")]
    Create {
        /// Namespace name.
        name: String,
        /// Cause.
        #[source]
        source: std::io::Error,
    },
    /// Opening the namespace file failed (it does not exist or is not a namespace).
    #[error("cannot open network namespace {name}")]
    Open {
        /// Namespace name.
        name: String,
        /// Cause.
        #[source]
        source: std::io::Error,
    },
    /// `setns` into the namespace failed.
    #[error("cannot enter network namespace {name}")]
    Enter {
        /// Namespace name.
        name: String,
        /// Cause.
        #[source]
        source: std::io::Error,
    },
    /// Unmounting or removing the namespace file failed.
    #[error("cannot delete network namespace {name}")]
    Delete {
        /// Namespace name.
        name: String,
        /// Cause.
        #[source]
        source: std::io::Error,
    },
    /// Listing `/run/netns` failed.
    #[error("cannot list network namespaces")]
    List(#[source] std::io::Error),
    /// The helper thread could not be spawned or panicked.
    #[error("the helper thread for network namespace {name} failed")]
    Thread {
        /// Namespace name.
        name: String,
    },
}

/// Path of the named namespace `name`.
pub fn path(name: &str) -> PathBuf {
    Path::new(NETNS_DIR).join(name)
}

/// Whether the named namespace exists.
pub fn exists(name: &str) -> bool {
    path(name).exists()
}

/// Creates the named namespace `name` (with its loopback down; see [`crate::links`]).
pub fn create(name: &str) -> Result<(), NetnsError> {
    let mount_err = |source| NetnsError::CreateMountPoint { name: name.to_owned(), source };
    std::fs::create_dir_all(NETNS_DIR).map_err(mount_err)?;
    let target = path(name);
    File::options().write(true).create_new(true).open(&target).map_err(mount_err)?;
    let owned = name.to_owned();
    let result = std::thread::Builder::new()
        .name("aci-netns-create".into())
        .spawn(move || bind_new_netns(&target))
        .map_err(|_| NetnsError::Thread { name: owned.clone() })?
        .join()
        .map_err(|_| NetnsError::Thread { name: owned.clone() })?;
    if let Err(source) = result {
        let _ = std::fs::remove_file(path(name));
        return Err(NetnsError::Create { name: owned, source });
    }
    Ok(())
}

/// On the calling (throw-away) thread: unshare a new network namespace and bind-mount it.
fn bind_new_netns(target: &Path) -> std::io::Result<()> {
    // SAFETY: unshare only changes this thread's namespace; the thread ends right after.
    if unsafe { libc::unshare(libc::CLONE_NEWNET) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    let src = c"/proc/thread-self/ns/net";
    let dst = cstring(target)?;
    // SAFETY: both paths are valid NUL-terminated strings; a bind mount has no other inputs.
    let rc =
        unsafe { libc::mount(src.as_ptr(), dst.as_ptr(), std::ptr::null(), libc::MS_BIND, std::ptr::null()) };
    if rc != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

fn cstring(p: &Path) -> std::io::Result<std::ffi::CString> {
    use std::os::unix::ffi::OsStrExt;
    std::ffi::CString::new(p.as_os_str().as_bytes())
        .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))
}

/// Deletes the named namespace: lazily unmounts and removes its file. Links inside it vanish
/// with the last reference (taps whose fds are still open keep it alive until closed).
pub fn delete(name: &str) -> Result<(), NetnsError> {
    let target = path(name);
    let err = |source| NetnsError::Delete { name: name.to_owned(), source };
    let c = cstring(&target).map_err(err)?;
    // SAFETY: `c` is a valid NUL-terminated path; MNT_DETACH has no other inputs.
    if unsafe { libc::umount2(c.as_ptr(), libc::MNT_DETACH) } != 0 {
        let e = std::io::Error::last_os_error();
        if e.raw_os_error() != Some(libc::EINVAL) && e.raw_os_error() != Some(libc::ENOENT) {
            return Err(err(e));
        }
    }
    match std::fs::remove_file(&target) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(err(e)),
    }
}

/// Names of all named namespaces starting with `prefix`.
pub fn list(prefix: &str) -> Result<Vec<String>, NetnsError> {
    let dir = match std::fs::read_dir(NETNS_DIR) {
        Ok(d) => d,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(NetnsError::List(e)),
    };
    let mut out = Vec::new();
    for entry in dir {
        let entry = entry.map_err(NetnsError::List)?;
        if let Some(n) = entry.file_name().to_str() {
            if n.starts_with(prefix) {
                out.push(n.to_owned());
            }
        }
    }
    out.sort();
    Ok(out)
}

/// Runs `f` on a new thread that has entered namespace `name`, and returns its result. Sockets
/// and tap fds created by `f` stay bound to that namespace and are usable from any thread.
pub fn run_in<T, F>(name: &str, f: F) -> Result<T, NetnsError>
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    let ns = File::open(path(name)).map_err(|source| NetnsError::Open { name: name.to_owned(), source })?;
    let thread_err = || NetnsError::Thread { name: name.to_owned() };
    let handle = std::thread::Builder::new()
        .name("aci-netns".into())
        .spawn(move || {
            // SAFETY: `ns` is an open namespace fd; setns affects only this thread, which
            // exits when `f` returns.
            if unsafe { libc::setns(ns.as_raw_fd(), libc::CLONE_NEWNET) } != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(f())
        })
        .map_err(|_| thread_err())?;
    handle
        .join()
        .map_err(|_| thread_err())?
        .map_err(|source| NetnsError::Enter { name: name.to_owned(), source })
}

/// Turns on IPv4 forwarding inside namespace `name` only (`/proc/sys/net` is per namespace).
pub fn enable_forwarding(name: &str) -> Result<(), NetnsError> {
    run_in(name, || std::fs::write("/proc/sys/net/ipv4/ip_forward", b"1"))?
        .map_err(|source| NetnsError::Enter { name: name.to_owned(), source })
}

/// [`run_in`] without blocking the async caller.
pub async fn run_in_async<T, F>(name: &str, f: F) -> Result<T, NetnsError>
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    let owned = name.to_owned();
    tokio::task::spawn_blocking(move || run_in(&owned, f))
        .await
        .map_err(|_| NetnsError::Thread { name: name.to_owned() })?
}
