//! Block queue handler tests: requests built in guest memory, a disk in memory.

use vm_memory::{Bytes, GuestAddress};

use super::*;
use crate::virtio::test_utils::{memory, rd, wr, TestQueue};

#[derive(Default)]
struct MemDisk {
    bytes: Vec<u8>,
    flushes: u32,
}

impl BlockBackend for MemDisk {
    fn read_at(&mut self, buf: &mut [u8], offset: u64) -> io::Result<()> {
        let at = offset as usize;
        buf.copy_from_slice(&self.bytes[at..at + buf.len()]);
        Ok(())
    }
    fn write_at(&mut self, buf: &[u8], offset: u64) -> io::Result<()> {
        let at = offset as usize;
        self.bytes[at..at + buf.len()].copy_from_slice(buf);
        Ok(())
    }
    fn flush(&mut self) -> io::Result<()> {
        self.flushes += 1;
        Ok(())
    }
}

const HDR: u64 = 0x40000;
const DATA: u64 = 0x50000;
const STATUS: u64 = 0x60000;

fn handler(read_only: bool) -> BlockHandler<MemDisk> {
    let bytes = (0..8 * 512).map(|i| (i % 251) as u8).collect();
    let mut id = [0u8; ID_LEN];
    id[..6].copy_from_slice(b"disk-7");
    BlockHandler::new(MemDisk { bytes, flushes: 0 }, DiskInfo { sectors: 8, read_only, id })
}

fn header(mem: &GuestMem, kind: u32, sector: u64) {
    mem.write_obj(kind, GuestAddress(HDR)).unwrap();
    mem.write_obj(0u32, GuestAddress(HDR + 4)).unwrap();
    mem.write_obj(sector, GuestAddress(HDR + 8)).unwrap();
    mem.write_obj(0xffu8, GuestAddress(STATUS)).unwrap();
}

fn run(h: &mut BlockHandler<MemDisk>, mem: &GuestMem, bufs: &[crate::virtio::test_utils::Buf]) -> (u8, u32) {
    let mut tq = TestQueue::new(mem, 0x10000, 16);
    let mut queue = tq.queue();
    let head = tq.add_chain(mem, bufs);
    assert!(h.process_queue(mem, &mut queue).unwrap());
    let used = tq.take_used(mem);
    assert_eq!(used.len(), 1);
    assert_eq!(used[0].0, u32::from(head));
    (mem.read_obj(GuestAddress(STATUS)).unwrap(), used[0].1)
}

#[test]
fn read_copies_sectors_into_split_buffers() {
    let mem = memory();
    let mut h = handler(false);
    header(&mem, 0, 2);
    let (status, len) =
        run(&mut h, &mem, &[rd(HDR, 16), wr(DATA, 512), wr(DATA + 0x1000, 512), wr(STATUS, 1)]);
    assert_eq!((status, len), (blk_status::OK, 1025));
    let mut got = vec![0u8; 512];
    mem.read_slice(&mut got, GuestAddress(DATA + 0x1000)).unwrap();
    assert_eq!(got, h.backend().bytes[3 * 512..4 * 512]);
    let counts = h.counters().snapshot();
    assert_eq!(
        (counts.requests, counts.bytes_to_guest, counts.bytes_from_guest, counts.errors),
        (1, 1024, 0, 0)
    );
}

#[test]
fn write_reaches_the_backend_and_flush_flushes() {
    let mem = memory();
    let mut h = handler(false);
    header(&mem, 1, 7);
    mem.write_slice(&[0xab; 512], GuestAddress(DATA)).unwrap();
    let (status, len) = run(&mut h, &mem, &[rd(HDR, 16), rd(DATA, 512), wr(STATUS, 1)]);
    assert_eq!((status, len), (blk_status::OK, 1));
    assert!(h.backend().bytes[7 * 512..].iter().all(|b| *b == 0xab));
    header(&mem, 4, 0);
    assert_eq!(run(&mut h, &mem, &[rd(HDR, 16), wr(STATUS, 1)]).0, blk_status::OK);
    assert_eq!(h.backend().flushes, 1);
    let counts = h.counters().snapshot();
    assert_eq!(
        (counts.requests, counts.bytes_to_guest, counts.bytes_from_guest, counts.errors),
        (2, 0, 512, 0)
    );
}

#[test]
fn writes_to_a_read_only_disk_and_out_of_range_reads_fail() {
    let mem = memory();
    let mut h = handler(true);
    header(&mem, 1, 0);
    mem.write_slice(&[0xab; 512], GuestAddress(DATA)).unwrap();
    assert_eq!(run(&mut h, &mem, &[rd(HDR, 16), rd(DATA, 512), wr(STATUS, 1)]).0, blk_status::IOERR);
    assert_eq!(h.backend().bytes[0], 0, "read-only data unchanged");
    header(&mem, 0, 7);
    assert_eq!(run(&mut h, &mem, &[rd(HDR, 16), wr(DATA, 1024), wr(STATUS, 1)]).0, blk_status::IOERR);
    let counts = h.counters().snapshot();
    assert_eq!((counts.bytes_to_guest, counts.bytes_from_guest, counts.errors), (0, 0, 2));
}

#[test]
fn get_id_returns_the_serial_and_unknown_types_are_unsupported() {
    let mem = memory();
    let mut h = handler(false);
    header(&mem, 8, 0);
    let (status, len) = run(&mut h, &mem, &[rd(HDR, 16), wr(DATA, 20), wr(STATUS, 1)]);
    assert_eq!((status, len), (blk_status::OK, 21));
    let mut id = [0u8; 20];
    mem.read_slice(&mut id, GuestAddress(DATA)).unwrap();
    assert_eq!(&id[..7], b"disk-7\0");
    header(&mem, 99, 0);
    assert_eq!(run(&mut h, &mem, &[rd(HDR, 16), wr(STATUS, 1)]).0, blk_status::UNSUPP);
}
