//! The queue logic with a real passthrough filesystem on a temporary directory: FUSE
//! messages laid out in guest memory as the guest driver would, replies read back.

use std::path::Path;

use vm_memory::{Bytes, GuestAddress};

use super::*;
use crate::virtio::fs::backend::PassthroughServer;
use crate::virtio::fs::policy::opcode;
use crate::virtio::test_utils::{memory, rd, wr, TestQueue};

const ROOT: u64 = 1;
const REQ: u64 = 0x40000;
const REPLY: u64 = 0x60000;

/// A FUSE request: header (len, opcode, unique, nodeid, uid 0, gid 0, pid 1) and body.
fn message(op: u32, unique: u64, nodeid: u64, body: &[u8]) -> Vec<u8> {
    let mut m = Vec::with_capacity(IN_HEADER_LEN + body.len());
    m.extend_from_slice(&((IN_HEADER_LEN + body.len()) as u32).to_le_bytes());
    m.extend_from_slice(&op.to_le_bytes());
    m.extend_from_slice(&unique.to_le_bytes());
    m.extend_from_slice(&nodeid.to_le_bytes());
    m.extend_from_slice(&[0u8; 8]); // uid, gid
    m.extend_from_slice(&1u32.to_le_bytes()); // pid
    m.extend_from_slice(&[0u8; 4]);
    m.extend_from_slice(body);
    m
}

struct Session {
    mem: GuestMem,
    tq: TestQueue,
    queue: Queue,
    handler: FsHandler<PassthroughServer>,
    unique: u64,
}

/// A reply: errno (positive, 0 for success), body.
type Reply = (i32, Vec<u8>);

impl Session {
    fn new(dir: &Path, read_only: bool) -> Self {
        let mem = memory();
        let tq = TestQueue::new(&mem, 0x10000, 16);
        let queue = tq.queue();
        let server = PassthroughServer::open(dir).unwrap();
        let mut s = Self { mem, tq, queue, handler: FsHandler::new(server, read_only), unique: 0 };
        let init = [7u32, 31, 0, 0].iter().flat_map(|v| v.to_le_bytes()).collect::<Vec<_>>();
        assert_eq!(s.call(opcode::INIT, ROOT, &init).0, 0);
        s
    }

    /// Sends one request; returns the used length and the reply.
    fn send(&mut self, op: u32, nodeid: u64, body: &[u8]) -> (u32, Reply) {
        self.unique += 2;
        let m = message(op, self.unique, nodeid, body);
        self.mem.write_slice(&m, GuestAddress(REQ)).unwrap();
        self.mem.write_slice(&[0xee; 16], GuestAddress(REPLY)).unwrap();
        self.tq.add_chain(&self.mem, &[rd(REQ, m.len() as u32), wr(REPLY, 0x8000)]);
        assert!(self.handler.process_queue(&self.mem, &mut self.queue).unwrap());
        let used = self.tq.take_used(&self.mem);
        assert_eq!(used.len(), 1);
        let len = used[0].1;
        if len == 0 {
            return (0, (0, Vec::new()));
        }
        let mut out = vec![0u8; len as usize];
        self.mem.read_slice(&mut out, GuestAddress(REPLY)).unwrap();
        let reply_len = u32::from_le_bytes(out[..4].try_into().unwrap());
        let error = i32::from_le_bytes(out[4..8].try_into().unwrap());
        let unique = u64::from_le_bytes(out[8..16].try_into().unwrap());
        assert_eq!((reply_len, unique), (len, self.unique), "reply header");
        (len, (-error, out[16..].to_vec()))
    }

    fn call(&mut self, op: u32, nodeid: u64, body: &[u8]) -> Reply {
        self.send(op, nodeid, body).1
    }

    /// LOOKUP: errno, node id, file mode.
    fn lookup(&mut self, parent: u64, name: &str) -> (i32, u64, u32) {
        let (errno, body) = self.call(opcode::LOOKUP, parent, &cstr(name));
        if errno != 0 {
            return (errno, 0, 0);
        }
        // fuse_entry_out: nodeid, generation, entry_valid, attr_valid, 2 x nsec, then fuse_attr
        // (ino, size, blocks, atime, mtime, ctime, 3 x nsec, mode, ...).
        let nodeid = u64::from_le_bytes(body[..8].try_into().unwrap());
        let mode = u32::from_le_bytes(body[40 + 60..40 + 64].try_into().unwrap());
        (0, nodeid, mode)
    }
}

fn cstr(name: &str) -> Vec<u8> {
    let mut v = name.as_bytes().to_vec();
    v.push(0);
    v
}

fn mkdir_body(name: &str) -> Vec<u8> {
    let mut body = 0o755u32.to_le_bytes().to_vec();
    body.extend_from_slice(&0u32.to_le_bytes());
    body.extend_from_slice(&cstr(name));
    body
}

#[test]
fn lookups_and_changes_reach_the_shared_directory() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("hello"), "hi").unwrap();
    let mut s = Session::new(dir.path(), false);
    let (errno, node, mode) = s.lookup(ROOT, "hello");
    assert_eq!(errno, 0);
    assert_ne!(node, 0);
    assert_eq!(mode & libc::S_IFMT, libc::S_IFREG);
    assert_eq!(s.lookup(ROOT, "absent").0, libc::ENOENT);
    assert_eq!(s.call(opcode::MKDIR, ROOT, &mkdir_body("made")).0, 0);
    assert!(dir.path().join("made").is_dir());
    let counts = s.handler.counters.snapshot();
    assert_eq!(counts.requests, 4);
    assert_eq!(counts.errors, 0);
    assert!(counts.bytes_to_guest > 0 && counts.bytes_from_guest > 0);
}

#[test]
fn read_only_shares_answer_changes_with_erofs_and_change_nothing() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("hello"), "hi").unwrap();
    let mut s = Session::new(dir.path(), true);
    assert_eq!(s.send(opcode::MKDIR, ROOT, &mkdir_body("made")), (16, (libc::EROFS, Vec::new())));
    assert!(!dir.path().join("made").exists());
    let (_, node, _) = s.lookup(ROOT, "hello");
    let open = |flags: i32| [flags as u32, 0].iter().flat_map(|v| v.to_le_bytes()).collect::<Vec<_>>();
    assert_eq!(s.call(opcode::OPEN, node, &open(libc::O_RDWR)).0, libc::EROFS);
    assert_eq!(s.call(opcode::OPEN, node, &open(libc::O_RDONLY)).0, 0);
    assert_eq!(std::fs::read_to_string(dir.path().join("hello")).unwrap(), "hi");
    assert_eq!(s.handler.counters.snapshot().errors, 2);
}

#[test]
fn the_root_cannot_be_left_by_dotdot_or_a_host_symlink() {
    let outer = tempfile::tempdir().unwrap();
    std::fs::write(outer.path().join("outside"), "host secret").unwrap();
    let share = outer.path().join("share");
    std::fs::create_dir(&share).unwrap();
    std::os::unix::fs::symlink("/etc", share.join("etc-link")).unwrap();
    std::os::unix::fs::symlink("..", share.join("up")).unwrap();
    let mut s = Session::new(&share, false);
    assert_eq!(s.lookup(ROOT, "..").0, libc::EPERM);
    assert_eq!(s.lookup(ROOT, ".").0, libc::EPERM);
    assert_eq!(s.lookup(ROOT, "../outside").0, libc::EINVAL);
    // Symlinks are symlinks to the guest: looking through them on the host side fails.
    for link in ["etc-link", "up"] {
        let (errno, node, mode) = s.lookup(ROOT, link);
        assert_eq!((errno, mode & libc::S_IFMT), (0, libc::S_IFLNK), "{link}");
        let (errno, _, _) = s.lookup(node, if link == "up" { "outside" } else { "passwd" });
        assert_ne!(errno, 0, "{link} was followed on the host");
        let (errno, target) = s.call(opcode::READLINK, node, &[]);
        assert_eq!(errno, 0);
        assert_eq!(target, if link == "up" { b"..".to_vec() } else { b"/etc".to_vec() });
    }
}

#[test]
fn malformed_chains_and_unknown_opcodes_do_not_reach_the_filesystem() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = Session::new(dir.path(), false);
    let before = s.handler.counters.snapshot();
    // A header cut short, a chain with nothing to read, a buffer outside guest memory.
    let m = message(opcode::MKDIR, 9, ROOT, &mkdir_body("short"));
    s.mem.write_slice(&m, GuestAddress(REQ)).unwrap();
    s.tq.add_chain(&s.mem, &[rd(REQ, 20), wr(REPLY, 64)]);
    s.tq.add_chain(&s.mem, &[wr(REPLY, 64)]);
    s.tq.add_chain(&s.mem, &[rd(REQ, m.len() as u32), wr(0x7fff_0000, 64)]);
    s.tq.add_chain(&s.mem, &[rd(0xffff_0000, 64), wr(REPLY, 64)]);
    s.handler.process_queue(&s.mem, &mut s.queue).unwrap();
    let used = s.tq.take_used(&s.mem);
    assert_eq!(used.iter().map(|u| u.1).collect::<Vec<_>>(), vec![0, 0, 0, 0]);
    assert!(!dir.path().join("short").exists());
    let after = s.handler.counters.snapshot();
    assert_eq!((after.requests - before.requests, after.errors - before.errors), (4, 4));
    // Opcodes the library has no variant for, and IOCTL: ENOSYS without reaching the server.
    for op in [7, 19, 39, 48, 1000] {
        assert_eq!(s.call(op, ROOT, &[0; 32]).0, libc::ENOSYS, "opcode {op}");
    }
    // The queue still serves good requests.
    assert_eq!(s.call(opcode::MKDIR, ROOT, &mkdir_body("fine")).0, 0);
    assert!(dir.path().join("fine").is_dir());
}

#[test]
fn a_large_directory_lists_completely_with_readdirplus() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("many")).unwrap();
    for i in 0..4000 {
        std::fs::write(dir.path().join(format!("many/f{i}")), "x").unwrap();
    }
    // A soft limit far below the entries; opening the server raises it to the hard limit.
    let mut limit = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: `limit` is a valid, writable rlimit for the call.
    assert_eq!(unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) }, 0);
    if limit.rlim_max > 4096 {
        let low = libc::rlimit { rlim_cur: 512, rlim_max: limit.rlim_max };
        // SAFETY: `low` is a valid rlimit; lowering the soft limit needs no privilege.
        assert_eq!(unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &low) }, 0);
    }
    let mut s = Session::new(dir.path(), false);
    let (_, node, _) = s.lookup(ROOT, "many");
    let (errno, open) = s.call(opcode::OPENDIR, node, &[0u8; 8]);
    assert_eq!(errno, 0);
    let fh = u64::from_le_bytes(open[..8].try_into().unwrap());
    let (mut offset, mut names) = (0u64, Vec::new());
    loop {
        // fuse_read_in: fh, offset, size, read_flags, lock_owner, flags, padding.
        let mut body = fh.to_le_bytes().to_vec();
        body.extend_from_slice(&offset.to_le_bytes());
        body.extend_from_slice(&4096u32.to_le_bytes());
        body.extend_from_slice(&[0u8; 20]);
        let (errno, reply) = s.call(opcode::READDIRPLUS, node, &body);
        assert_eq!(errno, 0, "READDIRPLUS at {offset}");
        if reply.is_empty() {
            break;
        }
        let mut at = 0;
        while at < reply.len() {
            // fuse_direntplus: fuse_entry_out (128 bytes), then ino, off, namelen, type, name.
            let dirent = &reply[at + 128..];
            offset = u64::from_le_bytes(dirent[8..16].try_into().unwrap());
            let len = u32::from_le_bytes(dirent[16..20].try_into().unwrap()) as usize;
            names.push(String::from_utf8(dirent[24..24 + len].to_vec()).unwrap());
            at += 128 + (24 + len).div_ceil(8) * 8;
        }
    }
    names.retain(|n| n != "." && n != "..");
    assert_eq!(names.len(), 4000);
    // Every entry was looked up (READDIRPLUS): one fd each, far above the old soft limit.
    // SAFETY: `limit` is a valid, writable rlimit for the call.
    assert_eq!(unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) }, 0);
    assert_eq!(limit.rlim_cur, limit.rlim_max, "the soft limit was raised");
}
