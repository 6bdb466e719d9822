//! Hostile descriptor chains against every one-queue handler: out-of-range addresses,
//! loops, zero-length buffers, chains longer than the queue. Each must be completed or
//! refused without a panic, a hang, or a write outside the buffers the driver offered.

use std::io;

use vm_memory::{Bytes, GuestAddress};

use crate::virtio::block::handler::{BlockBackend, BlockHandler, DiskInfo, ID_LEN};
use crate::virtio::rng::handler::{EntropySource, RngHandler};
use crate::virtio::single_queue::QueueProcessor;
use crate::virtio::test_utils::{memory, rd, wr, Buf, TestQueue};

struct Zeros;

impl BlockBackend for Zeros {
    fn read_at(&mut self, buf: &mut [u8], _offset: u64) -> io::Result<()> {
        buf.fill(0x5a);
        Ok(())
    }
    fn write_at(&mut self, _buf: &[u8], _offset: u64) -> io::Result<()> {
        Ok(())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl EntropySource for Zeros {
    fn fill(&mut self, buf: &mut [u8]) -> io::Result<()> {
        buf.fill(0x5a);
        Ok(())
    }
}

fn block() -> BlockHandler<Zeros> {
    BlockHandler::new(Zeros, DiskInfo { sectors: 8, read_only: false, id: [0; ID_LEN] })
}

/// Runs `processor` over one chain of `bufs` (optionally looped back to its head) and
/// returns the used entries.
fn run<P: QueueProcessor>(processor: &mut P, bufs: &[Buf], looped: bool) -> Vec<(u32, u32)> {
    let mem = memory();
    // A canary right after the rings: nothing may write there.
    mem.write_slice(&[0xc3; 64], GuestAddress(0x13000)).unwrap();
    let mut tq = TestQueue::new(&mem, 0x10000, 16);
    let head = tq.add_chain(&mem, bufs);
    if looped {
        let last = head + u16::try_from(bufs.len()).unwrap() - 1;
        tq.link(&mem, last, head);
    }
    let mut queue = tq.queue();
    let _ = processor.process_queue(&mem, &mut queue);
    let mut canary = [0u8; 64];
    mem.read_slice(&mut canary, GuestAddress(0x13000)).unwrap();
    assert_eq!(canary, [0xc3; 64], "a handler wrote outside the offered buffers");
    tq.take_used(&mem)
}

fn hostile_chains() -> Vec<(&'static str, Vec<Buf>, bool)> {
    vec![
        ("out-of-range header", vec![rd(0xffff_f000, 16), wr(0x40000, 512), wr(0x50000, 1)], false),
        ("out-of-range data", vec![rd(0x40000, 16), wr(0xfff0_0000, 4096), wr(0x50000, 1)], false),
        ("data past the end of memory", vec![rd(0x40000, 16), wr(0xff000, 0x2000), wr(0x50000, 1)], false),
        ("zero-length buffers", vec![rd(0x40000, 0), wr(0x50000, 0)], false),
        ("looped chain", vec![rd(0x40000, 16), wr(0x50000, 512), wr(0x60000, 1)], true),
        ("self loop", vec![wr(0x40000, 16)], true),
        ("longer than the queue", (0..16).map(|i| wr(0x40000 + 0x100 * i, 16)).collect(), true),
    ]
}

#[test]
fn block_survives_hostile_chains() {
    for (name, bufs, looped) in hostile_chains() {
        let used = run(&mut block(), &bufs, looped);
        assert!(used.len() <= 1, "{name}: {used:?}");
    }
}

#[test]
fn rng_survives_hostile_chains() {
    for (name, bufs, looped) in hostile_chains() {
        let used = run(&mut RngHandler::new(Zeros), &bufs, looped);
        assert!(used.len() <= 1, "{name}: {used:?}");
        if let Some((_, len)) = used.first() {
            assert!(*len <= 0x2000, "{name}: claims {len} bytes written");
        }
    }
}
