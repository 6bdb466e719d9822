//! Directory listings kept per open directory handle, whose offsets are positions in the
//! listing rather than the host filesystem's directory offsets ([`super::stable_dirs`]).
//!
//! A listing is read whole when the guest starts reading a directory (offset 0, or a handle
//! without one) and kept until the handle is released, so removing entries while reading
//! (what `rm -rf` does) cannot move the guest's place in it. The bytes kept for all handles
//! together are bounded ([`LISTING_BUDGET`]); a listing past the bound fails with `ENOMEM`
//! instead of growing without limit for a guest that opens many large directories.

use std::collections::HashMap;
use std::ffi::CString;
use std::io;

/// Bytes all kept listings may use together (names and per-entry bookkeeping): about a
/// million entries of 30-byte names.
pub const LISTING_BUDGET: usize = 64 << 20;

/// One directory entry as listed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listed {
    /// The inode number reported for the entry.
    pub ino: u64,
    /// The entry's `d_type`.
    pub type_: u32,
    /// The entry's name.
    pub name: CString,
}

impl Listed {
    /// Bytes the entry accounts for against the budget.
    fn cost(&self) -> usize {
        std::mem::size_of::<Self>() + self.name.as_bytes_with_nul().len()
    }
}

/// The listing of one open directory.
#[derive(Debug)]
struct Listing {
    inode: u64,
    entries: Vec<Listed>,
    bytes: usize,
}

/// The listings of every open directory handle.
#[derive(Debug)]
pub struct Listings {
    by_handle: HashMap<u64, Listing>,
    bytes: usize,
    budget: usize,
}

impl Default for Listings {
    fn default() -> Self {
        Self::with_budget(LISTING_BUDGET)
    }
}

impl Listings {
    /// No listings; all of them together may use `budget` bytes.
    pub fn with_budget(budget: usize) -> Self {
        Self { by_handle: HashMap::new(), bytes: 0, budget }
    }

    /// Drops the listing of `handle` (released, or reused for another directory).
    pub fn drop_handle(&mut self, handle: u64) {
        if let Some(listing) = self.by_handle.remove(&handle) {
            self.bytes -= listing.bytes;
        }
    }

    /// Bytes kept for all listings.
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// The listing of directory `inode` open as `handle`, read anew with `read` when `offset`
    /// is 0 (the guest starts, or rewinds) or no listing of that directory is kept for the
    /// handle. `read` hands every entry to the sink it is given; the sink fails with `ENOMEM`
    /// past the budget. A failed read keeps no listing.
    pub fn get(
        &mut self,
        inode: u64,
        handle: u64,
        offset: u64,
        read: impl FnOnce(&mut dyn FnMut(Listed) -> io::Result<()>) -> io::Result<()>,
    ) -> io::Result<&[Listed]> {
        let kept = self.by_handle.get(&handle).is_some_and(|l| l.inode == inode);
        if offset == 0 || !kept {
            self.drop_handle(handle);
            let room = self.budget.saturating_sub(self.bytes);
            let mut listing = Listing { inode, entries: Vec::new(), bytes: 0 };
            read(&mut |entry: Listed| {
                let cost = entry.cost();
                if listing.bytes + cost > room {
                    return Err(io::Error::from_raw_os_error(libc::ENOMEM));
                }
                listing.bytes += cost;
                listing.entries.push(entry);
                Ok(())
            })?;
            self.bytes += listing.bytes;
            self.by_handle.insert(handle, listing);
        }
        Ok(self.by_handle.get(&handle).map_or(&[], |l| &l.entries))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(name: &str) -> Listed {
        Listed { ino: 7, type_: 8, name: CString::new(name).unwrap() }
    }

    fn names(listed: &[Listed]) -> Vec<&str> {
        listed.iter().map(|l| l.name.to_str().unwrap()).collect()
    }

    #[test]
    fn a_listing_is_read_at_offset_zero_and_kept_until_the_handle_goes() {
        let mut listings = Listings::default();
        let mut reads = 0;
        let mut read_ab = |sink: &mut dyn FnMut(Listed) -> io::Result<()>| {
            reads += 1;
            sink(entry("a"))?;
            sink(entry("b"))
        };
        assert_eq!(names(listings.get(1, 10, 0, &mut read_ab).unwrap()), ["a", "b"]);
        let unused = |_: &mut dyn FnMut(Listed) -> io::Result<()>| -> io::Result<()> { panic!("read again") };
        assert_eq!(names(listings.get(1, 10, 1, unused).unwrap()), ["a", "b"]);
        assert!(listings.bytes() > 0);
        // Offset 0 (a rewind) reads anew; another directory on the same handle too.
        assert_eq!(names(listings.get(1, 10, 0, &mut read_ab).unwrap()), ["a", "b"]);
        assert_eq!(names(listings.get(2, 10, 5, &mut read_ab).unwrap()), ["a", "b"]);
        assert_eq!(reads, 3);
        listings.drop_handle(10);
        assert_eq!(listings.bytes(), 0);
    }

    #[test]
    fn listings_past_the_budget_fail_with_enomem_and_keep_nothing() {
        let one = entry("abc").cost();
        let mut listings = Listings::with_budget(3 * one);
        let read = |n: usize| {
            move |sink: &mut dyn FnMut(Listed) -> io::Result<()>| (0..n).try_for_each(|_| sink(entry("abc")))
        };
        assert_eq!(listings.get(1, 1, 0, read(2)).unwrap().len(), 2);
        let err = listings.get(1, 2, 0, read(2)).unwrap_err();
        assert_eq!(err.raw_os_error(), Some(libc::ENOMEM));
        assert_eq!(listings.bytes(), 2 * one);
        assert_eq!(listings.get(1, 2, 0, read(1)).unwrap().len(), 1);
        listings.drop_handle(1);
        assert_eq!(listings.get(1, 3, 0, read(2)).unwrap().len(), 2);
        // A failed read of the same handle's listing is not kept either.
        let failing =
            |_: &mut dyn FnMut(Listed) -> io::Result<()>| Err(io::Error::from_raw_os_error(libc::EIO));
        assert!(listings.get(1, 3, 0, failing).is_err());
        assert_eq!(listings.bytes(), one);
    }
}
