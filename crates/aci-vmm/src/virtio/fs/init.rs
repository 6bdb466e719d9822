//! Widening the FUSE `INIT` reply so large reads and writes are one request each.
//!
//! fuse-backend-rs's server answers `INIT` with the options its filesystem asks for, and the
//! passthrough filesystem asks for neither `BIG_WRITES` nor `MAX_PAGES`; the server then
//! offers `max_write` = 4 KiB, so the guest splits every write into 4 KiB requests (one
//! queue round trip each). The server itself accepts requests up to 1 MiB of data. After
//! the server has written its reply, the handler rewrites these fields of it
//! (`fuse_init_out`, after the 16-byte reply header):
//!
//! - `max_write` = 1 MiB and `max_pages` = 256 with `FUSE_MAX_PAGES`, when the guest offered
//!   `FUSE_MAX_PAGES` (Linux caps `max_pages` by its queue size, 1024 here);
//! - otherwise `max_write` = 128 KiB (Linux's default of 32 pages per request);
//! - `FUSE_BIG_WRITES` when the guest offered it.

/// `FUSE_BIG_WRITES`.
pub const FUSE_BIG_WRITES: u32 = 1 << 5;
/// `FUSE_MAX_PAGES`.
pub const FUSE_MAX_PAGES: u32 = 1 << 22;
/// Largest request data the server accepts (its `MAX_BUFFER_SIZE`).
pub const MAX_WRITE: u32 = 1 << 20;
/// Pages of [`MAX_WRITE`].
const MAX_PAGES: u16 = (MAX_WRITE / 4096) as u16;
/// Linux's pages per request without `FUSE_MAX_PAGES`.
const DEFAULT_PAGES: u32 = 32;

/// Reply bytes the rewrite needs: the header and `fuse_init_out` up to `max_pages`.
pub const REPLY_PREFIX: usize = 16 + 30;

// Offsets in the reply (header included).
const ERROR: usize = 4;
const FLAGS: usize = 16 + 12;
const MAX_WRITE_AT: usize = 16 + 20;
const MAX_PAGES_AT: usize = 16 + 28;

/// The `flags` of a `fuse_init_in` body (major, minor, max_readahead, flags), if present.
pub fn request_flags(body: &[u8]) -> Option<u32> {
    let b = body.get(12..16)?;
    Some(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
}

/// Rewrites the first [`REPLY_PREFIX`] bytes of a successful `INIT` reply for a guest that
/// offered `offered` flags; leaves error replies (and short buffers) alone. Returns whether
/// anything changed.
pub fn widen(offered: u32, reply: &mut [u8]) -> bool {
    let Some(reply) = reply.get_mut(..REPLY_PREFIX) else {
        return false;
    };
    if reply[ERROR..ERROR + 4] != [0; 4] {
        return false;
    }
    let mut flags = u32::from_le_bytes([reply[FLAGS], reply[FLAGS + 1], reply[FLAGS + 2], reply[FLAGS + 3]]);
    flags |= offered & FUSE_BIG_WRITES;
    let max_write = if offered & FUSE_MAX_PAGES != 0 {
        flags |= FUSE_MAX_PAGES;
        reply[MAX_PAGES_AT..MAX_PAGES_AT + 2].copy_from_slice(&MAX_PAGES.to_le_bytes());
        MAX_WRITE
    } else {
        DEFAULT_PAGES * 4096
    };
    reply[FLAGS..FLAGS + 4].copy_from_slice(&flags.to_le_bytes());
    reply[MAX_WRITE_AT..MAX_WRITE_AT + 4].copy_from_slice(&max_write.to_le_bytes());
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reply(error: i32, flags: u32) -> Vec<u8> {
        let mut r = vec![0u8; 16 + 64];
        r[4..8].copy_from_slice(&error.to_le_bytes());
        r[FLAGS..FLAGS + 4].copy_from_slice(&flags.to_le_bytes());
        r[MAX_WRITE_AT..MAX_WRITE_AT + 4].copy_from_slice(&4096u32.to_le_bytes());
        r
    }

    fn field(r: &[u8], at: usize) -> u32 {
        u32::from_le_bytes(r[at..at + 4].try_into().unwrap())
    }

    #[test]
    fn a_guest_offering_max_pages_gets_one_mib_requests() {
        let mut r = reply(0, 0b1);
        assert!(widen(FUSE_MAX_PAGES | FUSE_BIG_WRITES | 0b10, &mut r));
        assert_eq!(field(&r, FLAGS), 0b1 | FUSE_MAX_PAGES | FUSE_BIG_WRITES);
        assert_eq!(field(&r, MAX_WRITE_AT), 1 << 20);
        assert_eq!(u16::from_le_bytes(r[MAX_PAGES_AT..MAX_PAGES_AT + 2].try_into().unwrap()), 256);
    }

    #[test]
    fn other_guests_get_the_default_page_count_and_errors_are_untouched() {
        let mut r = reply(0, 0);
        assert!(widen(0, &mut r));
        assert_eq!((field(&r, FLAGS), field(&r, MAX_WRITE_AT)), (0, 128 << 10));
        let mut e = reply(-libc::EPROTO, 0);
        let before = e.clone();
        assert!(!widen(FUSE_MAX_PAGES, &mut e));
        assert_eq!(e, before);
        assert!(!widen(FUSE_MAX_PAGES, &mut [0u8; 20]));
        assert_eq!(request_flags(&[0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0]), Some(1));
        assert_eq!(request_flags(&[0; 15]), None);
    }
}
