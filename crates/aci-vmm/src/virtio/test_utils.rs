//! Test helpers: a split virtqueue laid out in guest memory by hand, so device code can be
//! driven without KVM. The "driver" side here writes descriptors and the available ring and
//! reads the used ring, as a guest driver would.

use virtio_queue::{Queue, QueueT};
use vm_memory::{Bytes, GuestAddress, GuestMemoryMmap};

use crate::memory::GuestMem;

/// `VIRTQ_DESC_F_NEXT`.
const F_NEXT: u16 = 1;
/// `VIRTQ_DESC_F_WRITE`.
const F_WRITE: u16 = 2;
/// `VIRTQ_DESC_F_INDIRECT`.
const F_INDIRECT: u16 = 4;

/// 1 MiB of guest memory.
pub fn memory() -> GuestMem {
    GuestMemoryMmap::from_ranges(&[(GuestAddress(0), 1 << 20)]).unwrap()
}

/// A queue of `size` entries whose rings sit at `base`, `base + 0x1000`, `base + 0x2000`.
pub struct TestQueue {
    size: u16,
    desc: u64,
    avail: u64,
    used: u64,
    next_desc: u16,
    avail_idx: u16,
    used_seen: u16,
}

/// One buffer of a chain: guest address, length, device-writable.
#[derive(Clone, Copy, Debug)]
pub struct Buf {
    /// Guest address.
    pub addr: u64,
    /// Length.
    pub len: u32,
    /// Device-writable.
    pub write: bool,
}

/// A driver-readable (device-reads) buffer.
pub fn rd(addr: u64, len: u32) -> Buf {
    Buf { addr, len, write: false }
}

/// A device-writable buffer.
pub fn wr(addr: u64, len: u32) -> Buf {
    Buf { addr, len, write: true }
}

impl TestQueue {
    /// Lays out an empty queue.
    pub fn new(mem: &GuestMem, base: u64, size: u16) -> Self {
        let q = Self {
            size,
            desc: base,
            avail: base + 0x1000,
            used: base + 0x2000,
            next_desc: 0,
            avail_idx: 0,
            used_seen: 0,
        };
        mem.write_obj(0u16, GuestAddress(q.avail)).unwrap();
        mem.write_obj(0u16, GuestAddress(q.avail + 2)).unwrap();
        mem.write_obj(0u16, GuestAddress(q.used + 2)).unwrap();
        q
    }

    /// The device-side `Queue`, configured and ready, as the transport would hand it over.
    pub fn queue(&self) -> Queue {
        let mut q = Queue::new(self.size).unwrap();
        q.set_desc_table_address(Some(self.desc as u32), Some(0));
        q.set_avail_ring_address(Some(self.avail as u32), Some(0));
        q.set_used_ring_address(Some(self.used as u32), Some(0));
        q.set_ready(true);
        q
    }

    /// The ring addresses `(desc, avail, used)`.
    pub fn addresses(&self) -> (u64, u64, u64) {
        (self.desc, self.avail, self.used)
    }

    /// Adds one chain and makes it available; returns its head index.
    pub fn add_chain(&mut self, mem: &GuestMem, bufs: &[Buf]) -> u16 {
        let head = self.next_desc;
        for (i, buf) in bufs.iter().enumerate() {
            let index = self.next_desc;
            self.next_desc = (self.next_desc + 1) % self.size;
            let mut flags = if buf.write { F_WRITE } else { 0 };
            if i + 1 < bufs.len() {
                flags |= F_NEXT;
            }
            let at = self.desc + 16 * u64::from(index);
            mem.write_obj(buf.addr, GuestAddress(at)).unwrap();
            mem.write_obj(buf.len, GuestAddress(at + 8)).unwrap();
            mem.write_obj(flags, GuestAddress(at + 12)).unwrap();
            mem.write_obj(self.next_desc, GuestAddress(at + 14)).unwrap();
        }
        let slot = self.avail + 4 + 2 * u64::from(self.avail_idx % self.size);
        mem.write_obj(head, GuestAddress(slot)).unwrap();
        self.avail_idx = self.avail_idx.wrapping_add(1);
        mem.write_obj(self.avail_idx, GuestAddress(self.avail + 2)).unwrap();
        head
    }

    /// Adds one descriptor that refers to an indirect table of `table_len` bytes at `table`
    /// and makes it available; returns its index.
    pub fn add_indirect(&mut self, mem: &GuestMem, table: u64, table_len: u32) -> u16 {
        let head = self.add_chain(mem, &[rd(table, table_len)]);
        let at = self.desc + 16 * u64::from(head);
        mem.write_obj(F_INDIRECT, GuestAddress(at + 12)).unwrap();
        head
    }

    /// Writes `bufs` as a descriptor table at `table` (each linked to the next), as an
    /// indirect table's contents.
    pub fn write_table(mem: &GuestMem, table: u64, bufs: &[Buf]) {
        for (i, buf) in (0u16..).zip(bufs) {
            let mut flags = if buf.write { F_WRITE } else { 0 };
            if usize::from(i) + 1 < bufs.len() {
                flags |= F_NEXT;
            }
            let at = table + 16 * u64::from(i);
            mem.write_obj(buf.addr, GuestAddress(at)).unwrap();
            mem.write_obj(buf.len, GuestAddress(at + 8)).unwrap();
            mem.write_obj(flags, GuestAddress(at + 12)).unwrap();
            mem.write_obj(i + 1, GuestAddress(at + 14)).unwrap();
        }
    }

    /// Makes descriptor `index` continue to `next` (sets `NEXT`), e.g. to build a loop.
    pub fn link(&self, mem: &GuestMem, index: u16, next: u16) {
        let at = self.desc + 16 * u64::from(index);
        let flags: u16 = mem.read_obj(GuestAddress(at + 12)).unwrap();
        mem.write_obj(flags | F_NEXT, GuestAddress(at + 12)).unwrap();
        mem.write_obj(next, GuestAddress(at + 14)).unwrap();
    }

    /// Used entries `(head, len)` added since the last call.
    pub fn take_used(&mut self, mem: &GuestMem) -> Vec<(u32, u32)> {
        let idx: u16 = mem.read_obj(GuestAddress(self.used + 2)).unwrap();
        let mut out = Vec::new();
        while self.used_seen != idx {
            let at = self.used + 4 + 8 * u64::from(self.used_seen % self.size);
            let id: u32 = mem.read_obj(GuestAddress(at)).unwrap();
            let len: u32 = mem.read_obj(GuestAddress(at + 4)).unwrap();
            out.push((id, len));
            self.used_seen = self.used_seen.wrapping_add(1);
        }
        out
    }
}
