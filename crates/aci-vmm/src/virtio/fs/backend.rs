//! The filesystem behind a share: fuse-backend-rs's passthrough filesystem rooted at the
//! shared directory, with directory reads served from listings ([`super::stable_dirs`]),
//! behind its FUSE server.
//!
//! The passthrough filesystem keeps an `O_PATH` fd per inode the guest knows and resolves
//! every name with `openat` relative to its parent's fd (`O_NOFOLLOW`), so a path never
//! leaves the tree through a symlink on the host side: symlinks are handed to the guest
//! (`READLINK`) and resolved by the guest kernel in the guest. A `..` lookup at the root maps
//! to the root itself (and [`super::policy`] refuses `..` lookups altogether).

use std::io;
use std::path::Path;

use fuse_backend_rs::api::server::Server;
use fuse_backend_rs::passthrough::{CachePolicy, Config, PassthroughFs};
use fuse_backend_rs::transport::{Reader, Writer};

use crate::virtio::fs::stable_dirs::StableDirs;

/// Answers one FUSE request: reads it from `reader`, writes the reply to `writer`, returns
/// the reply's length (0 for requests without a reply).
pub trait FuseServer: Send + 'static {
    /// Serves one request.
    fn serve(&self, reader: Reader<'_>, writer: Writer<'_>) -> io::Result<usize>;
}

/// fuse-backend-rs's FUSE server over a passthrough filesystem of one host directory.
pub struct PassthroughServer {
    server: Server<StableDirs<PassthroughFs>>,
}

impl std::fmt::Debug for PassthroughServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PassthroughServer").finish_non_exhaustive()
    }
}

impl PassthroughServer {
    /// A server for the directory `root` (absolute, valid UTF-8, no NUL), with a fresh
    /// session (no inode the guest knew before).
    pub fn open(root: &Path) -> io::Result<Self> {
        let root_dir = root
            .to_str()
            .filter(|s| s.starts_with('/') && !s.contains('\0'))
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "not an absolute UTF-8 path"))?;
        let config = Config {
            root_dir: root_dir.to_owned(),
            do_import: true,
            // Close-to-open consistency: the host may change files between guest opens.
            cache_policy: CachePolicy::Auto,
            xattr: false,
            writeback: false,
            ..Config::default()
        };
        raise_open_file_limit();
        let fs = PassthroughFs::<()>::new(config)?;
        fs.import()?;
        Ok(Self { server: Server::new(StableDirs::new(fs)) })
    }
}

/// Ceiling for the raised hard limit (Linux's default `fs.nr_open`).
const NOFILE_CEILING: u64 = 1 << 20;

/// Raises the process's `RLIMIT_NOFILE`: the hard limit up to `fs.nr_open` (at most
/// [`NOFILE_CEILING`]) when the process may (`CAP_SYS_RESOURCE`, which the VMM's root has),
/// then the soft limit to the hard one (once is enough; repeating is harmless).
///
/// The passthrough filesystem holds one `O_PATH` fd per inode the guest has looked up and
/// not forgotten, and a guest keeps thousands cached (a listing with `READDIRPLUS` looks up
/// every entry): with the usual soft limit of 1024 file creation in a share fails with
/// `EMFILE` after about a thousand files, and with a hard limit of 4096 (the kernel's
/// default for init's children, as in L1) listing and removing a few thousand files fails
/// the same way. Failure leaves the limits as they were.
pub fn raise_open_file_limit() {
    let mut limit = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: `limit` is a valid, writable rlimit for the call.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } != 0 {
        return;
    }
    let nr_open = std::fs::read_to_string("/proc/sys/fs/nr_open")
        .ok()
        .and_then(|s| s.trim().parse::<u64>().ok())
        .map_or(limit.rlim_max, |n| n.min(NOFILE_CEILING));
    if nr_open > limit.rlim_max {
        let raised = libc::rlimit { rlim_cur: limit.rlim_cur, rlim_max: nr_open };
        // SAFETY: `raised` is a valid rlimit; raising the hard limit needs CAP_SYS_RESOURCE
        // (EPERM without it, checked) and changes nothing else.
        if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &raised) } == 0 {
            limit = raised;
        }
    }
    if limit.rlim_cur >= limit.rlim_max {
        return;
    }
    limit.rlim_cur = limit.rlim_max;
    // SAFETY: `limit` is a valid rlimit; raising the soft limit up to the hard one needs no
    // privilege and changes nothing else.
    unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &limit) };
}

impl FuseServer for PassthroughServer {
    fn serve(&self, reader: Reader<'_>, writer: Writer<'_>) -> io::Result<usize> {
        self.server.handle_message(reader, writer, None, None).map_err(io::Error::other)
    }
}
