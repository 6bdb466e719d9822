//! A directory that layer entries are written into, with every path resolved *inside* it.
//!
//! Parent directories are opened with `openat2(RESOLVE_IN_ROOT)`: the kernel resolves `..`
//! and symlinks (absolute or relative) as if the target directory were `/`, so a layer that
//! plants `evil -> /etc` and then writes `evil/passwd` lands in `<root>/etc/passwd`. The last
//! component is then created with `*at` calls relative to that parent fd and never followed
//! (`O_NOFOLLOW`, `AT_SYMLINK_NOFOLLOW`). All `unsafe` of the unpacker lives in this file.

use std::ffi::{CString, OsStr};
use std::fs::File;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::{Component, Path, PathBuf};

/// `struct open_how` from `linux/openat2.h` (libc's copy is `#[non_exhaustive]`).
#[repr(C)]
struct OpenHow {
    flags: u64,
    mode: u64,
    resolve: u64,
}

const RESOLVE_NO_MAGICLINKS: u64 = 0x02;
const RESOLVE_IN_ROOT: u64 = 0x10;

/// What is at a name inside a parent directory, as `fstatat(AT_SYMLINK_NOFOLLOW)` sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Existing {
    Nothing,
    Dir,
    Other,
}

/// Ownership, permissions and time applied to a created entry.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Meta {
    pub uid: u32,
    pub gid: u32,
    pub mode: u32,
    pub mtime: i64,
}

/// The unpack target: an fd for the root plus its canonical path.
pub(crate) struct RootDir {
    fd: OwnedFd,
    path: PathBuf,
}

fn cstr(name: &OsStr) -> io::Result<CString> {
    CString::new(name.as_bytes()).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))
}

fn check(ret: libc::c_int) -> io::Result<()> {
    if ret < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

impl RootDir {
    /// Opens `path` (which must exist and be a directory) as the root.
    pub fn open(path: &Path) -> io::Result<Self> {
        let path = path.canonicalize()?;
        let c = cstr(path.as_os_str())?;
        // SAFETY: `c` is a valid NUL-terminated string; the returned fd is checked below.
        let fd = unsafe { libc::open(c.as_ptr(), libc::O_PATH | libc::O_DIRECTORY | libc::O_CLOEXEC) };
        check(fd)?;
        // SAFETY: `fd` is a freshly opened descriptor that nothing else owns.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        Ok(Self { fd, path })
    }

    /// Opens the directory `rel` (relative, already normalised) resolved inside the root.
    pub fn open_dir(&self, rel: &Path) -> io::Result<OwnedFd> {
        let rel = if rel.as_os_str().is_empty() { Path::new(".") } else { rel };
        let c = cstr(rel.as_os_str())?;
        let how = OpenHow {
            flags: (libc::O_PATH | libc::O_DIRECTORY | libc::O_CLOEXEC) as u64,
            mode: 0,
            resolve: RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS,
        };
        // SAFETY: openat2 reads `how` (a live repr(C) open_how of the size passed) and `c`
        // (NUL-terminated); the root fd stays open for the call. The result is checked.
        let ret = unsafe {
            libc::syscall(
                libc::SYS_openat2,
                self.fd.as_raw_fd(),
                c.as_ptr(),
                &how as *const OpenHow,
                std::mem::size_of::<OpenHow>(),
            )
        };
        if ret < 0 {
            return Err(io::Error::last_os_error());
        }
        let raw = i32::try_from(ret).map_err(|_| io::Error::from(io::ErrorKind::InvalidData))?;
        // SAFETY: `raw` is a freshly opened descriptor that nothing else owns.
        Ok(unsafe { OwnedFd::from_raw_fd(raw) })
    }

    /// Opens directory `rel`, creating missing components (mode 0755) inside the root. A
    /// dangling symlink on the way is followed the way the kernel would inside the root, and
    /// its target directories are created (at most 40 symlinks, like `ELOOP`).
    pub fn ensure_dir(&self, rel: &Path) -> io::Result<OwnedFd> {
        let mut rel = rel.to_path_buf();
        for _ in 0..40 {
            match self.open_dir(&rel) {
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                other => return other,
            }
            match self.create_components(&rel)? {
                None => return self.open_dir(&rel),
                Some(redirected) => rel = redirected,
            }
        }
        Err(io::Error::from_raw_os_error(libc::ELOOP))
    }

    /// Creates the missing components of `rel`. When one is a dangling symlink, returns the
    /// path `rel` means through it instead (lexically, `..` stopping at the root).
    fn create_components(&self, rel: &Path) -> io::Result<Option<PathBuf>> {
        let comps: Vec<Component<'_>> = rel.components().collect();
        let mut prefix = PathBuf::new();
        for (i, comp) in comps.iter().enumerate() {
            let parent = self.open_dir(&prefix)?;
            prefix.push(comp);
            match self.open_dir(&prefix) {
                Ok(_) => continue,
                Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
                Err(_) => {}
            }
            match mkdir_at(&parent, comp.as_os_str(), 0o755) {
                Ok(()) => continue,
                Err(e) if e.kind() != io::ErrorKind::AlreadyExists => return Err(e),
                Err(_) => {}
            }
            let target = read_link_at(&parent, comp.as_os_str())?;
            let mut out = if target.is_absolute() {
                PathBuf::new()
            } else {
                prefix.parent().map(Path::to_path_buf).unwrap_or_default()
            };
            for t in target.components().chain(comps[i + 1..].iter().copied()) {
                match t {
                    Component::Normal(n) => out.push(n),
                    Component::ParentDir => {
                        out.pop();
                    }
                    _ => {}
                }
            }
            return Ok(Some(out));
        }
        Ok(None)
    }

    /// The real path of a directory fd obtained from this root, checked to be inside it.
    pub fn real_path(&self, dir: &OwnedFd) -> io::Result<PathBuf> {
        let p = std::fs::read_link(format!("/proc/self/fd/{}", dir.as_raw_fd()))?;
        if p.starts_with(&self.path) {
            Ok(p)
        } else {
            Err(io::Error::new(io::ErrorKind::PermissionDenied, "directory escaped the root"))
        }
    }
}

/// Looks at `name` in `parent` without following a symlink.
pub(crate) fn existing(parent: &OwnedFd, name: &OsStr) -> io::Result<Existing> {
    let c = cstr(name)?;
    // SAFETY: `st` is plain data that fstatat fills; `c` is NUL-terminated.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: pointers are valid for the call; the result is checked.
    let ret = unsafe { libc::fstatat(parent.as_raw_fd(), c.as_ptr(), &mut st, libc::AT_SYMLINK_NOFOLLOW) };
    if ret < 0 {
        let e = io::Error::last_os_error();
        return if e.kind() == io::ErrorKind::NotFound { Ok(Existing::Nothing) } else { Err(e) };
    }
    Ok(if st.st_mode & libc::S_IFMT == libc::S_IFDIR { Existing::Dir } else { Existing::Other })
}

/// Reads the target of symlink `name` in `parent`.
pub(crate) fn read_link_at(parent: &OwnedFd, name: &OsStr) -> io::Result<PathBuf> {
    let c = cstr(name)?;
    let mut buf = vec![0u8; libc::PATH_MAX as usize];
    // SAFETY: `buf` is writable for `buf.len()` bytes; `c` is NUL-terminated.
    let n = unsafe { libc::readlinkat(parent.as_raw_fd(), c.as_ptr(), buf.as_mut_ptr().cast(), buf.len()) };
    let n = usize::try_from(n).map_err(|_| io::Error::last_os_error())?;
    buf.truncate(n);
    Ok(PathBuf::from(std::ffi::OsString::from_vec(buf)))
}

/// Removes a non-directory `name` from `parent`.
pub(crate) fn unlink_at(parent: &OwnedFd, name: &OsStr) -> io::Result<()> {
    let c = cstr(name)?;
    // SAFETY: `c` is NUL-terminated; the result is checked.
    check(unsafe { libc::unlinkat(parent.as_raw_fd(), c.as_ptr(), 0) })
}

/// Creates directory `name` in `parent`.
pub(crate) fn mkdir_at(parent: &OwnedFd, name: &OsStr, mode: u32) -> io::Result<()> {
    let c = cstr(name)?;
    // SAFETY: `c` is NUL-terminated; the result is checked.
    check(unsafe { libc::mkdirat(parent.as_raw_fd(), c.as_ptr(), mode & 0o7777) })
}

/// Creates a new regular file `name` in `parent` (never following or reusing an entry).
pub(crate) fn create_file_at(parent: &OwnedFd, name: &OsStr) -> io::Result<File> {
    let c = cstr(name)?;
    let flags = libc::O_WRONLY | libc::O_CREAT | libc::O_EXCL | libc::O_NOFOLLOW | libc::O_CLOEXEC;
    // SAFETY: `c` is NUL-terminated; the result is checked before use.
    let fd = unsafe { libc::openat(parent.as_raw_fd(), c.as_ptr(), flags, 0o600 as libc::c_uint) };
    check(fd)?;
    // SAFETY: `fd` is a freshly opened descriptor that nothing else owns.
    Ok(unsafe { File::from_raw_fd(fd) })
}

/// Creates symlink `name` in `parent` pointing at `target` (the target is never resolved).
pub(crate) fn symlink_at(parent: &OwnedFd, name: &OsStr, target: &OsStr) -> io::Result<()> {
    let (c, t) = (cstr(name)?, cstr(target)?);
    // SAFETY: both strings are NUL-terminated; the result is checked.
    check(unsafe { libc::symlinkat(t.as_ptr(), parent.as_raw_fd(), c.as_ptr()) })
}

/// Hard-links `src_parent/src_name` (not following a symlink) as `parent/name`.
pub(crate) fn link_at(
    src_parent: &OwnedFd,
    src_name: &OsStr,
    parent: &OwnedFd,
    name: &OsStr,
) -> io::Result<()> {
    let (s, c) = (cstr(src_name)?, cstr(name)?);
    // SAFETY: both strings are NUL-terminated; flags 0 never follows a symlink source.
    check(unsafe { libc::linkat(src_parent.as_raw_fd(), s.as_ptr(), parent.as_raw_fd(), c.as_ptr(), 0) })
}

/// Creates a FIFO or device node `name` in `parent`. `kind` is `S_IFIFO`, `S_IFCHR` or `S_IFBLK`.
pub(crate) fn mknod_at(
    parent: &OwnedFd,
    name: &OsStr,
    kind: libc::mode_t,
    mode: u32,
    major: u32,
    minor: u32,
) -> io::Result<()> {
    let c = cstr(name)?;
    let dev = libc::makedev(major, minor);
    // SAFETY: `c` is NUL-terminated; the result is checked.
    check(unsafe { libc::mknodat(parent.as_raw_fd(), c.as_ptr(), kind | (mode & 0o7777), dev) })
}

/// Applies owner, mode (not for symlinks) and mtime to `parent/name` without following it.
/// Ownership changes that the caller may not make (`EPERM`, rootless) are reported as `Ok(false)`.
pub(crate) fn set_meta_at(parent: &OwnedFd, name: &OsStr, meta: Meta, is_symlink: bool) -> io::Result<bool> {
    let c = cstr(name)?;
    let fd = parent.as_raw_fd();
    // SAFETY: `c` is NUL-terminated; the result is checked.
    let chown = unsafe { libc::fchownat(fd, c.as_ptr(), meta.uid, meta.gid, libc::AT_SYMLINK_NOFOLLOW) };
    let owned = if chown < 0 {
        let e = io::Error::last_os_error();
        if e.raw_os_error() != Some(libc::EPERM) {
            return Err(e);
        }
        false
    } else {
        true
    };
    if !is_symlink {
        // SAFETY: `c` is NUL-terminated; the entry was just created by us and is not a
        // symlink, so following is impossible. The result is checked.
        check(unsafe { libc::fchmodat(fd, c.as_ptr(), meta.mode & 0o7777, 0) })?;
    }
    let t = libc::timespec { tv_sec: meta.mtime, tv_nsec: 0 };
    let times = [t, t];
    // SAFETY: `times` holds two timespecs as utimensat requires; the result is checked.
    check(unsafe { libc::utimensat(fd, c.as_ptr(), times.as_ptr(), libc::AT_SYMLINK_NOFOLLOW) })?;
    Ok(owned)
}

/// Sets extended attribute `key` on an open file.
pub(crate) fn set_xattr(file: &File, key: &[u8], value: &[u8]) -> io::Result<()> {
    let k = CString::new(key).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
    // SAFETY: `k` is NUL-terminated and `value` is valid for `value.len()` bytes.
    check(unsafe { libc::fsetxattr(file.as_raw_fd(), k.as_ptr(), value.as_ptr().cast(), value.len(), 0) })
}
