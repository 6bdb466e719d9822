//! Which FUSE requests may reach the passthrough filesystem.
//!
//! The guest is not trusted. Before a request reaches the FUSE server its header (and the
//! start of its body) is checked here:
//!
//! - only opcodes the Linux virtio-fs driver sends for a plain (non-DAX) mount are served;
//!   anything else (unknown numbers, `IOCTL`, `NOTIFY_REPLY`, the DAX mapping calls) gets
//!   `ENOSYS`;
//! - a `LOOKUP` of `.` or `..` is refused (`EPERM`): the guest kernel resolves those itself,
//!   so only a hostile driver sends them, and the share's root must stay the top;
//! - `MKNOD` of a character or block device is refused (`EPERM`): a device node in a host
//!   directory would reach host devices for whoever opens it on the host;
//! - on a read-only share, every request that changes something (write, create, link,
//!   rename, remove, attribute or xattr change, allocate, copy) and every `OPEN` for writing
//!   or truncation gets `EROFS`, and `ACCESS` asking for write permission gets `EROFS`.

/// Size of the FUSE request header (`fuse_in_header`).
pub const IN_HEADER_LEN: usize = 40;
/// Size of the FUSE reply header (`fuse_out_header`).
pub const OUT_HEADER_LEN: usize = 16;

/// FUSE opcodes this device knows about.
pub mod opcode {
    /// Look a name up in a directory.
    pub const LOOKUP: u32 = 1;
    /// Drop inode references (no reply).
    pub const FORGET: u32 = 2;
    /// Read attributes.
    pub const GETATTR: u32 = 3;
    /// Change attributes (mode, owner, size, times).
    pub const SETATTR: u32 = 4;
    /// Read a symlink.
    pub const READLINK: u32 = 5;
    /// Create a symlink.
    pub const SYMLINK: u32 = 6;
    /// Create a special or regular file.
    pub const MKNOD: u32 = 8;
    /// Create a directory.
    pub const MKDIR: u32 = 9;
    /// Remove a file.
    pub const UNLINK: u32 = 10;
    /// Remove a directory.
    pub const RMDIR: u32 = 11;
    /// Rename.
    pub const RENAME: u32 = 12;
    /// Hard link.
    pub const LINK: u32 = 13;
    /// Open a file.
    pub const OPEN: u32 = 14;
    /// Read file data.
    pub const READ: u32 = 15;
    /// Write file data.
    pub const WRITE: u32 = 16;
    /// File system statistics.
    pub const STATFS: u32 = 17;
    /// Close a file.
    pub const RELEASE: u32 = 18;
    /// Sync a file.
    pub const FSYNC: u32 = 20;
    /// Set an extended attribute.
    pub const SETXATTR: u32 = 21;
    /// Read an extended attribute.
    pub const GETXATTR: u32 = 22;
    /// List extended attributes.
    pub const LISTXATTR: u32 = 23;
    /// Remove an extended attribute.
    pub const REMOVEXATTR: u32 = 24;
    /// A file descriptor was closed.
    pub const FLUSH: u32 = 25;
    /// Session start.
    pub const INIT: u32 = 26;
    /// Open a directory.
    pub const OPENDIR: u32 = 27;
    /// Read directory entries.
    pub const READDIR: u32 = 28;
    /// Close a directory.
    pub const RELEASEDIR: u32 = 29;
    /// Sync a directory.
    pub const FSYNCDIR: u32 = 30;
    /// Test a POSIX lock.
    pub const GETLK: u32 = 31;
    /// Take a POSIX lock.
    pub const SETLK: u32 = 32;
    /// Take a POSIX lock, waiting.
    pub const SETLKW: u32 = 33;
    /// Check access permissions.
    pub const ACCESS: u32 = 34;
    /// Create and open a file.
    pub const CREATE: u32 = 35;
    /// Interrupt a request (no reply).
    pub const INTERRUPT: u32 = 36;
    /// Map a block.
    pub const BMAP: u32 = 37;
    /// Session end.
    pub const DESTROY: u32 = 38;
    /// Poll for events.
    pub const POLL: u32 = 40;
    /// Drop many inode references (no reply).
    pub const BATCH_FORGET: u32 = 42;
    /// Allocate file space.
    pub const FALLOCATE: u32 = 43;
    /// Read directory entries with attributes.
    pub const READDIRPLUS: u32 = 44;
    /// Rename with flags.
    pub const RENAME2: u32 = 45;
    /// Find data or holes.
    pub const LSEEK: u32 = 46;
    /// Copy between files on the host.
    pub const COPY_FILE_RANGE: u32 = 47;
}

/// The parts of a request the policy looks at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RequestHead<'a> {
    /// `fuse_in_header.opcode`.
    pub opcode: u32,
    /// `fuse_in_header.unique` (echoed in the reply).
    pub unique: u64,
    /// The first bytes of the body after the header (possibly fewer than the body has).
    pub body: &'a [u8],
}

impl<'a> RequestHead<'a> {
    /// Splits `bytes` (the request's first bytes) into header fields and body; `None` if
    /// shorter than a header.
    pub fn parse(bytes: &'a [u8]) -> Option<Self> {
        let header = bytes.get(..IN_HEADER_LEN)?;
        let opcode = u32::from_le_bytes([header[4], header[5], header[6], header[7]]);
        let mut unique = [0u8; 8];
        unique.copy_from_slice(&header[8..16]);
        Some(Self { opcode, unique: u64::from_le_bytes(unique), body: &bytes[IN_HEADER_LEN..] })
    }

    /// The body's `u32` at byte `offset`, if the body reaches that far.
    fn body_u32(&self, offset: usize) -> Option<u32> {
        let b = self.body.get(offset..offset + 4)?;
        Some(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }
}

/// What to do with a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Hand it to the FUSE server.
    Serve,
    /// Answer it with this errno, without touching the filesystem.
    Refuse(i32),
}

/// Opcodes that change the filesystem: refused on read-only shares.
const CHANGES: [u32; 15] = [
    opcode::SETATTR,
    opcode::SYMLINK,
    opcode::MKNOD,
    opcode::MKDIR,
    opcode::UNLINK,
    opcode::RMDIR,
    opcode::RENAME,
    opcode::LINK,
    opcode::WRITE,
    opcode::SETXATTR,
    opcode::REMOVEXATTR,
    opcode::CREATE,
    opcode::FALLOCATE,
    opcode::RENAME2,
    opcode::COPY_FILE_RANGE,
];

/// Opcodes that change nothing, served (subject to the checks below) on every share.
const KNOWN: [u32; 28] = [
    opcode::LOOKUP,
    opcode::FORGET,
    opcode::GETATTR,
    opcode::READLINK,
    opcode::OPEN,
    opcode::READ,
    opcode::STATFS,
    opcode::RELEASE,
    opcode::FSYNC,
    opcode::GETXATTR,
    opcode::LISTXATTR,
    opcode::FLUSH,
    opcode::INIT,
    opcode::OPENDIR,
    opcode::READDIR,
    opcode::RELEASEDIR,
    opcode::FSYNCDIR,
    opcode::GETLK,
    opcode::SETLK,
    opcode::SETLKW,
    opcode::ACCESS,
    opcode::INTERRUPT,
    opcode::BMAP,
    opcode::DESTROY,
    opcode::POLL,
    opcode::BATCH_FORGET,
    opcode::READDIRPLUS,
    opcode::LSEEK,
];

/// `W_OK` in an `ACCESS` mask.
const W_OK: u32 = 2;

/// Decides what happens to `request` on a share that is read-only or not.
pub fn check(request: &RequestHead<'_>, read_only: bool) -> Verdict {
    let op = request.opcode;
    if !KNOWN.contains(&op) && !CHANGES.contains(&op) {
        return Verdict::Refuse(libc::ENOSYS);
    }
    if read_only && CHANGES.contains(&op) {
        return Verdict::Refuse(libc::EROFS);
    }
    match op {
        opcode::LOOKUP if is_dot_or_dotdot(request.body) => Verdict::Refuse(libc::EPERM),
        opcode::MKNOD => match request.body_u32(0) {
            // fuse_mknod_in: mode, rdev, umask, padding.
            Some(mode) if is_device(mode) => Verdict::Refuse(libc::EPERM),
            Some(_) => Verdict::Serve,
            None => Verdict::Refuse(libc::EINVAL),
        },
        opcode::OPEN if read_only => match request.body_u32(0) {
            // fuse_open_in: flags, open_flags.
            Some(flags) if opens_for_change(flags) => Verdict::Refuse(libc::EROFS),
            Some(_) => Verdict::Serve,
            None => Verdict::Refuse(libc::EINVAL),
        },
        opcode::ACCESS if read_only => match request.body_u32(0) {
            // fuse_access_in: mask, padding.
            Some(mask) if mask & W_OK != 0 => Verdict::Refuse(libc::EROFS),
            Some(_) => Verdict::Serve,
            None => Verdict::Refuse(libc::EINVAL),
        },
        _ => Verdict::Serve,
    }
}

/// The name (NUL-terminated) is `.` or `..`.
fn is_dot_or_dotdot(name: &[u8]) -> bool {
    name.starts_with(b".\0") || name.starts_with(b"..\0")
}

fn is_device(mode: u32) -> bool {
    let kind = mode & libc::S_IFMT;
    kind == libc::S_IFCHR || kind == libc::S_IFBLK
}

fn opens_for_change(flags: u32) -> bool {
    let flags = flags as i32;
    flags & libc::O_ACCMODE != libc::O_RDONLY || flags & (libc::O_TRUNC | libc::O_CREAT) != 0
}

/// A complete FUSE error reply (`fuse_out_header` alone) for request `unique`.
pub fn error_reply(unique: u64, errno: i32) -> [u8; OUT_HEADER_LEN] {
    let mut out = [0u8; OUT_HEADER_LEN];
    out[..4].copy_from_slice(&(OUT_HEADER_LEN as u32).to_le_bytes());
    out[4..8].copy_from_slice(&(-errno).to_le_bytes());
    out[8..].copy_from_slice(&unique.to_le_bytes());
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(op: u32, body: &[u8]) -> Vec<u8> {
        let mut bytes = vec![0u8; IN_HEADER_LEN];
        bytes[..4].copy_from_slice(&((IN_HEADER_LEN + body.len()) as u32).to_le_bytes());
        bytes[4..8].copy_from_slice(&op.to_le_bytes());
        bytes[8..16].copy_from_slice(&77u64.to_le_bytes());
        bytes.extend_from_slice(body);
        bytes
    }

    fn verdict(op: u32, body: &[u8], read_only: bool) -> Verdict {
        let bytes = request(op, body);
        let head = RequestHead::parse(&bytes).unwrap();
        assert_eq!((head.opcode, head.unique), (op, 77));
        check(&head, read_only)
    }

    #[test]
    fn unknown_and_unsupported_opcodes_get_enosys() {
        for op in [0, 7, 19, 39, 41, 48, 49, 50, 51, 4096, u32::MAX] {
            assert_eq!(verdict(op, &[], false), Verdict::Refuse(libc::ENOSYS), "opcode {op}");
        }
        assert_eq!(verdict(opcode::READ, &[], false), Verdict::Serve);
        assert!(RequestHead::parse(&[0u8; IN_HEADER_LEN - 1]).is_none());
    }

    #[test]
    fn read_only_shares_refuse_every_change_with_erofs() {
        for op in CHANGES {
            assert_eq!(verdict(op, &[0; 16], true), Verdict::Refuse(libc::EROFS), "opcode {op}");
            assert_eq!(verdict(op, &0o100644u32.to_le_bytes(), false), Verdict::Serve, "opcode {op}");
        }
        let open = |flags: i32| verdict(opcode::OPEN, &(flags as u32).to_le_bytes(), true);
        assert_eq!(open(libc::O_RDONLY), Verdict::Serve);
        for flags in [libc::O_WRONLY, libc::O_RDWR, libc::O_RDONLY | libc::O_TRUNC, libc::O_CREAT] {
            assert_eq!(open(flags), Verdict::Refuse(libc::EROFS), "flags {flags:#o}");
        }
        assert_eq!(verdict(opcode::OPEN, &[1, 0], true), Verdict::Refuse(libc::EINVAL));
        let access = |mask: u32| verdict(opcode::ACCESS, &mask.to_le_bytes(), true);
        assert_eq!(access(4), Verdict::Serve);
        assert_eq!(access(6), Verdict::Refuse(libc::EROFS));
        assert_eq!(verdict(opcode::OPEN, &(libc::O_RDWR as u32).to_le_bytes(), false), Verdict::Serve);
    }

    #[test]
    fn dot_lookups_and_device_nodes_are_refused_everywhere() {
        for read_only in [false, true] {
            assert_eq!(verdict(opcode::LOOKUP, b"..\0", read_only), Verdict::Refuse(libc::EPERM));
            assert_eq!(verdict(opcode::LOOKUP, b".\0", read_only), Verdict::Refuse(libc::EPERM));
            assert_eq!(verdict(opcode::LOOKUP, b"..x\0", read_only), Verdict::Serve);
        }
        let mknod = |mode: u32| verdict(opcode::MKNOD, &mode.to_le_bytes(), false);
        assert_eq!(mknod(libc::S_IFCHR | 0o666), Verdict::Refuse(libc::EPERM));
        assert_eq!(mknod(libc::S_IFBLK | 0o600), Verdict::Refuse(libc::EPERM));
        assert_eq!(mknod(libc::S_IFIFO | 0o600), Verdict::Serve);
    }

    #[test]
    fn error_replies_carry_the_negative_errno_and_the_request_id() {
        let out = error_reply(0x0102_0304_0506_0708, libc::EROFS);
        assert_eq!(u32::from_le_bytes(out[..4].try_into().unwrap()), 16);
        assert_eq!(i32::from_le_bytes(out[4..8].try_into().unwrap()), -libc::EROFS);
        assert_eq!(u64::from_le_bytes(out[8..].try_into().unwrap()), 0x0102_0304_0506_0708);
    }
}
