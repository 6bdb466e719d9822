//! A filesystem whose directory reads keep their place while entries are removed: every
//! request goes to the wrapped filesystem (the passthrough), except `READDIR` and
//! `READDIRPLUS`, which are answered from a [`Listings`] entry of the open directory.
//!
//! Why: fuse-backend-rs's passthrough answers each directory read with
//! `lseek(fd, offset)` + `getdents64` on the handle's directory fd and hands the guest the
//! host filesystem's `d_off` values as offsets. A reply holds fewer entries than the
//! `getdents64` call read (a `READDIRPLUS` entry carries 128 bytes of attributes), and the
//! guest stops mid-reply when its own buffer fills, so the next request's offset is rarely
//! where the fd stands and the host seeks. On filesystems whose offsets are positions in the
//! directory (tmpfs before Linux 6.6, ramfs and other `dcache_readdir` users) a seek counts
//! entries from the start: once the guest has removed the entries it read, offset N skips N
//! entries that were never returned, and `rm -rf` of a large directory leaves most of it
//! (measured in L1: 2802 of 3010 entries left). Filesystems with hash or stable offsets
//! (ext4, xfs, btrfs, tmpfs since 6.6) do not skip, but every seek costs them too.
//!
//! Here a directory is listed once, when the guest starts reading it (offset 0), through the
//! wrapped filesystem's own `readdir` on the guest's handle (so names are read through the
//! same fd, with the same checks); the guest gets positions in that listing as offsets. As
//! with any directory stream, entries added after the guest started reading may be missed;
//! entries present throughout are returned exactly once. `READDIRPLUS` looks every entry up
//! when it is sent (an entry removed since the listing is skipped), so the attributes and
//! lookup counts are those of the moment, as the passthrough's own.

use std::ffi::CStr;
use std::io;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use fuse_backend_rs::abi::fuse_abi::{stat64, statvfs64, CreateIn};
use fuse_backend_rs::abi::virtio_fs::RemovemappingOne;
use fuse_backend_rs::api::filesystem::{
    Context, DirEntry, Entry, FileLock, FileSystem, FsOptions, GetxattrReply, IoctlData, ListxattrReply,
    OpenOptions, SetattrValid, ZeroCopyReader, ZeroCopyWriter,
};
use fuse_backend_rs::transport::FsCacheReqHandler;

use crate::virtio::fs::listing::{Listed, Listings};

/// Buffer size of the wrapped `readdir` calls that read a listing: large enough that a call
/// returning no entry (only `.` and `..`, which are not passed on) means the end.
const LIST_CHUNK: u32 = 64 << 10;

/// Times a listing read restarts its chunk when an entry vanished between the host's
/// `getdents64` and the wrapped filesystem's lookup of it (`ENOENT` for the first entry).
const VANISHED_RETRIES: usize = 8;

/// `F` with directory reads served from listings (see the module documentation).
pub struct StableDirs<F> {
    inner: F,
    listings: Mutex<Listings>,
}

impl<F> StableDirs<F> {
    /// Wraps `inner`.
    pub fn new(inner: F) -> Self {
        Self { inner, listings: Mutex::new(Listings::default()) }
    }

    /// Bytes kept for listings of open directories.
    pub fn listing_bytes(&self) -> usize {
        self.listings().bytes()
    }

    fn listings(&self) -> MutexGuard<'_, Listings> {
        self.listings.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl<F: FileSystem<Inode = u64, Handle = u64>> StableDirs<F> {
    /// Reads the whole directory `inode` through the wrapped filesystem's `readdir` on
    /// `handle`, handing each entry to `sink`.
    fn read_listing(
        &self,
        ctx: &Context,
        inode: u64,
        handle: u64,
        sink: &mut dyn FnMut(Listed) -> io::Result<()>,
    ) -> io::Result<()> {
        let mut offset = 0;
        let mut retries = 0;
        loop {
            let mut got = 0usize;
            let mut next = offset;
            let mut failed = None;
            let read = self.inner.readdir(ctx, inode, handle, LIST_CHUNK, offset, &mut |d: DirEntry<'_>| {
                let name = match std::ffi::CString::new(d.name) {
                    Ok(name) => name,
                    Err(_) => return Err(io::Error::from_raw_os_error(libc::EINVAL)),
                };
                if let Err(e) = sink(Listed { ino: d.ino, type_: d.type_, name }) {
                    // Stop the wrapped read; the error is reported below.
                    failed = Some(e);
                    return Ok(0);
                }
                got += 1;
                next = d.offset;
                Ok(1)
            });
            if let Some(e) = failed {
                return Err(e);
            }
            match read {
                Err(e) if e.raw_os_error() == Some(libc::ENOENT) && retries < VANISHED_RETRIES => {
                    retries += 1;
                    continue;
                }
                Err(e) => return Err(e),
                Ok(()) if got == 0 => return Ok(()),
                Ok(()) => offset = next,
            }
        }
    }
}

/// The listing position after `offset` (offsets are positions, 1-based, of the last entry
/// the guest got).
fn start(offset: u64) -> usize {
    usize::try_from(offset).unwrap_or(usize::MAX)
}

/// `d_type` of a file mode.
fn dir_type(mode: u32) -> u32 {
    (mode & libc::S_IFMT) >> 12
}

impl<F: FileSystem<Inode = u64, Handle = u64>> FileSystem for StableDirs<F> {
    type Inode = u64;
    type Handle = u64;

    fn opendir(&self, ctx: &Context, inode: u64, flags: u32) -> io::Result<(Option<u64>, OpenOptions)> {
        let opened = self.inner.opendir(ctx, inode, flags)?;
        if let Some(handle) = opened.0 {
            self.listings().drop_handle(handle);
        }
        Ok(opened)
    }

    fn readdir(
        &self,
        ctx: &Context,
        inode: u64,
        handle: u64,
        _size: u32,
        offset: u64,
        add_entry: &mut dyn FnMut(DirEntry) -> io::Result<usize>,
    ) -> io::Result<()> {
        let mut listings = self.listings();
        let listed =
            listings.get(inode, handle, offset, |sink| self.read_listing(ctx, inode, handle, sink))?;
        for (position, entry) in (1u64..).zip(listed).skip(start(offset)) {
            let dir_entry = DirEntry {
                ino: entry.ino,
                offset: position,
                type_: entry.type_,
                name: entry.name.to_bytes(),
            };
            if add_entry(dir_entry)? == 0 {
                break;
            }
        }
        Ok(())
    }

    fn readdirplus(
        &self,
        ctx: &Context,
        inode: u64,
        handle: u64,
        _size: u32,
        offset: u64,
        add_entry: &mut dyn FnMut(DirEntry, Entry) -> io::Result<usize>,
    ) -> io::Result<()> {
        let mut listings = self.listings();
        let listed =
            listings.get(inode, handle, offset, |sink| self.read_listing(ctx, inode, handle, sink))?;
        let mut sent = 0usize;
        for (position, listed) in (1u64..).zip(listed).skip(start(offset)) {
            let entry = match self.inner.lookup(ctx, inode, &listed.name) {
                Ok(entry) => entry,
                // Removed since the listing was read: not part of the directory any more.
                Err(e) if e.raw_os_error() == Some(libc::ENOENT) => continue,
                Err(e) if sent == 0 => return Err(e),
                // The guest asks again from here.
                Err(_) => break,
            };
            let dir_entry = DirEntry {
                ino: entry.attr.st_ino,
                offset: position,
                type_: dir_type(entry.attr.st_mode),
                name: listed.name.to_bytes(),
            };
            match add_entry(dir_entry, entry) {
                Ok(0) => {
                    // No room: the lookup is not handed to the guest.
                    self.inner.forget(ctx, entry.inode, 1);
                    break;
                }
                Ok(_) => sent += 1,
                Err(e) => {
                    self.inner.forget(ctx, entry.inode, 1);
                    if sent == 0 {
                        return Err(e);
                    }
                    break;
                }
            }
        }
        Ok(())
    }

    fn releasedir(&self, ctx: &Context, inode: u64, flags: u32, handle: u64) -> io::Result<()> {
        self.listings().drop_handle(handle);
        self.inner.releasedir(ctx, inode, flags, handle)
    }

    // Everything else is the wrapped filesystem's.

    fn init(&self, capable: FsOptions) -> io::Result<FsOptions> {
        self.inner.init(capable)
    }

    fn destroy(&self) {
        *self.listings() = Listings::default();
        self.inner.destroy()
    }

    fn lookup(&self, ctx: &Context, parent: u64, name: &CStr) -> io::Result<Entry> {
        self.inner.lookup(ctx, parent, name)
    }

    fn forget(&self, ctx: &Context, inode: u64, count: u64) {
        self.inner.forget(ctx, inode, count)
    }

    fn batch_forget(&self, ctx: &Context, requests: Vec<(u64, u64)>) {
        self.inner.batch_forget(ctx, requests)
    }

    fn getattr(&self, ctx: &Context, inode: u64, handle: Option<u64>) -> io::Result<(stat64, Duration)> {
        self.inner.getattr(ctx, inode, handle)
    }

    fn setattr(
        &self,
        ctx: &Context,
        inode: u64,
        attr: stat64,
        handle: Option<u64>,
        valid: SetattrValid,
    ) -> io::Result<(stat64, Duration)> {
        self.inner.setattr(ctx, inode, attr, handle, valid)
    }

    fn readlink(&self, ctx: &Context, inode: u64) -> io::Result<Vec<u8>> {
        self.inner.readlink(ctx, inode)
    }

    fn symlink(&self, ctx: &Context, linkname: &CStr, parent: u64, name: &CStr) -> io::Result<Entry> {
        self.inner.symlink(ctx, linkname, parent, name)
    }

    fn mknod(
        &self,
        ctx: &Context,
        inode: u64,
        name: &CStr,
        mode: u32,
        rdev: u32,
        umask: u32,
    ) -> io::Result<Entry> {
        self.inner.mknod(ctx, inode, name, mode, rdev, umask)
    }

    fn mkdir(&self, ctx: &Context, parent: u64, name: &CStr, mode: u32, umask: u32) -> io::Result<Entry> {
        self.inner.mkdir(ctx, parent, name, mode, umask)
    }

    fn unlink(&self, ctx: &Context, parent: u64, name: &CStr) -> io::Result<()> {
        self.inner.unlink(ctx, parent, name)
    }

    fn rmdir(&self, ctx: &Context, parent: u64, name: &CStr) -> io::Result<()> {
        self.inner.rmdir(ctx, parent, name)
    }

    fn rename(
        &self,
        ctx: &Context,
        olddir: u64,
        oldname: &CStr,
        newdir: u64,
        newname: &CStr,
        flags: u32,
    ) -> io::Result<()> {
        self.inner.rename(ctx, olddir, oldname, newdir, newname, flags)
    }

    fn link(&self, ctx: &Context, inode: u64, newparent: u64, newname: &CStr) -> io::Result<Entry> {
        self.inner.link(ctx, inode, newparent, newname)
    }

    fn open(
        &self,
        ctx: &Context,
        inode: u64,
        flags: u32,
        fuse_flags: u32,
    ) -> io::Result<(Option<u64>, OpenOptions, Option<u32>)> {
        self.inner.open(ctx, inode, flags, fuse_flags)
    }

    fn create(
        &self,
        ctx: &Context,
        parent: u64,
        name: &CStr,
        args: CreateIn,
    ) -> io::Result<(Entry, Option<u64>, OpenOptions, Option<u32>)> {
        self.inner.create(ctx, parent, name, args)
    }

    fn read(
        &self,
        ctx: &Context,
        inode: u64,
        handle: u64,
        w: &mut dyn ZeroCopyWriter,
        size: u32,
        offset: u64,
        lock_owner: Option<u64>,
        flags: u32,
    ) -> io::Result<usize> {
        self.inner.read(ctx, inode, handle, w, size, offset, lock_owner, flags)
    }

    fn write(
        &self,
        ctx: &Context,
        inode: u64,
        handle: u64,
        r: &mut dyn ZeroCopyReader,
        size: u32,
        offset: u64,
        lock_owner: Option<u64>,
        delayed_write: bool,
        flags: u32,
        fuse_flags: u32,
    ) -> io::Result<usize> {
        self.inner.write(ctx, inode, handle, r, size, offset, lock_owner, delayed_write, flags, fuse_flags)
    }

    fn flush(&self, ctx: &Context, inode: u64, handle: u64, lock_owner: u64) -> io::Result<()> {
        self.inner.flush(ctx, inode, handle, lock_owner)
    }

    fn fsync(&self, ctx: &Context, inode: u64, datasync: bool, handle: u64) -> io::Result<()> {
        self.inner.fsync(ctx, inode, datasync, handle)
    }

    fn fallocate(
        &self,
        ctx: &Context,
        inode: u64,
        handle: u64,
        mode: u32,
        offset: u64,
        length: u64,
    ) -> io::Result<()> {
        self.inner.fallocate(ctx, inode, handle, mode, offset, length)
    }

    fn release(
        &self,
        ctx: &Context,
        inode: u64,
        flags: u32,
        handle: u64,
        flush: bool,
        flock_release: bool,
        lock_owner: Option<u64>,
    ) -> io::Result<()> {
        self.inner.release(ctx, inode, flags, handle, flush, flock_release, lock_owner)
    }

    fn statfs(&self, ctx: &Context, inode: u64) -> io::Result<statvfs64> {
        self.inner.statfs(ctx, inode)
    }

    fn setxattr(&self, ctx: &Context, inode: u64, name: &CStr, value: &[u8], flags: u32) -> io::Result<()> {
        self.inner.setxattr(ctx, inode, name, value, flags)
    }

    fn getxattr(&self, ctx: &Context, inode: u64, name: &CStr, size: u32) -> io::Result<GetxattrReply> {
        self.inner.getxattr(ctx, inode, name, size)
    }

    fn listxattr(&self, ctx: &Context, inode: u64, size: u32) -> io::Result<ListxattrReply> {
        self.inner.listxattr(ctx, inode, size)
    }

    fn removexattr(&self, ctx: &Context, inode: u64, name: &CStr) -> io::Result<()> {
        self.inner.removexattr(ctx, inode, name)
    }

    fn fsyncdir(&self, ctx: &Context, inode: u64, datasync: bool, handle: u64) -> io::Result<()> {
        self.inner.fsyncdir(ctx, inode, datasync, handle)
    }

    fn setupmapping(
        &self,
        ctx: &Context,
        inode: u64,
        handle: u64,
        foffset: u64,
        len: u64,
        flags: u64,
        moffset: u64,
        vu_req: &mut dyn FsCacheReqHandler,
    ) -> io::Result<()> {
        self.inner.setupmapping(ctx, inode, handle, foffset, len, flags, moffset, vu_req)
    }

    fn removemapping(
        &self,
        ctx: &Context,
        inode: u64,
        requests: Vec<RemovemappingOne>,
        vu_req: &mut dyn FsCacheReqHandler,
    ) -> io::Result<()> {
        self.inner.removemapping(ctx, inode, requests, vu_req)
    }

    fn access(&self, ctx: &Context, inode: u64, mask: u32) -> io::Result<()> {
        self.inner.access(ctx, inode, mask)
    }

    fn lseek(&self, ctx: &Context, inode: u64, handle: u64, offset: u64, whence: u32) -> io::Result<u64> {
        self.inner.lseek(ctx, inode, handle, offset, whence)
    }

    fn getlk(
        &self,
        ctx: &Context,
        inode: u64,
        handle: u64,
        owner: u64,
        lock: FileLock,
        flags: u32,
    ) -> io::Result<FileLock> {
        self.inner.getlk(ctx, inode, handle, owner, lock, flags)
    }

    fn setlk(
        &self,
        ctx: &Context,
        inode: u64,
        handle: u64,
        owner: u64,
        lock: FileLock,
        flags: u32,
    ) -> io::Result<()> {
        self.inner.setlk(ctx, inode, handle, owner, lock, flags)
    }

    fn setlkw(
        &self,
        ctx: &Context,
        inode: u64,
        handle: u64,
        owner: u64,
        lock: FileLock,
        flags: u32,
    ) -> io::Result<()> {
        self.inner.setlkw(ctx, inode, handle, owner, lock, flags)
    }

    fn ioctl(
        &self,
        ctx: &Context,
        inode: u64,
        handle: u64,
        flags: u32,
        cmd: u32,
        data: IoctlData,
        out_size: u32,
    ) -> io::Result<IoctlData<'_>> {
        self.inner.ioctl(ctx, inode, handle, flags, cmd, data, out_size)
    }

    fn bmap(&self, ctx: &Context, inode: u64, block: u64, blocksize: u32) -> io::Result<u64> {
        self.inner.bmap(ctx, inode, block, blocksize)
    }

    fn poll(
        &self,
        ctx: &Context,
        inode: u64,
        handle: u64,
        khandle: u64,
        flags: u32,
        events: u32,
    ) -> io::Result<u32> {
        self.inner.poll(ctx, inode, handle, khandle, flags, events)
    }

    fn notify_reply(&self) -> io::Result<()> {
        self.inner.notify_reply()
    }

    fn id_remap(&self, ctx: &mut Context) -> io::Result<()> {
        self.inner.id_remap(ctx)
    }
}

#[cfg(test)]
#[path = "stable_dirs_tests.rs"]
mod tests;
