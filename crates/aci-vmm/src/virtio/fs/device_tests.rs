//! The device behind the real virtio-mmio transport, driven as the Linux driver does:
//! identity, feature negotiation, config space, activation with two queues, one FUSE `INIT`
//! on the request queue and one `FORGET` on the high-priority queue served by the device
//! thread, and reset.

use std::time::{Duration, Instant};

use vm_memory::{Bytes, GuestAddress};

use super::*;
use crate::devices::mmio_bus::MmioDevice;
use crate::memory::GuestMem;
use crate::virtio::fs::policy::opcode;
use crate::virtio::mmio::{status, MmioTransport};
use crate::virtio::test_utils::{memory, rd, wr, TestQueue};

// virtio-mmio register offsets (virtio 1.x, 4.2.2).
const DEVICE_ID: u64 = 0x008;
const DEVICE_FEATURES: u64 = 0x010;
const DEVICE_FEATURES_SEL: u64 = 0x014;
const DRIVER_FEATURES: u64 = 0x020;
const DRIVER_FEATURES_SEL: u64 = 0x024;
const QUEUE_SEL: u64 = 0x030;
const QUEUE_NUM_MAX: u64 = 0x034;
const QUEUE_NUM: u64 = 0x038;
const QUEUE_READY: u64 = 0x044;
const QUEUE_NOTIFY: u64 = 0x050;
const STATUS: u64 = 0x070;
const QUEUE_DESC_LOW: u64 = 0x080;
const QUEUE_DRIVER_LOW: u64 = 0x090;
const QUEUE_DEVICE_LOW: u64 = 0x0a0;
const CONFIG: u64 = 0x100;

fn r(t: &mut MmioTransport, offset: u64) -> u32 {
    let mut data = [0u8; 4];
    t.read(offset, &mut data);
    u32::from_le_bytes(data)
}

fn w(t: &mut MmioTransport, offset: u64, value: u32) {
    t.write(offset, &value.to_le_bytes());
}

fn negotiate(t: &mut MmioTransport, low: u32) -> bool {
    w(t, STATUS, 0);
    w(t, STATUS, status::ACKNOWLEDGE | status::DRIVER);
    w(t, DRIVER_FEATURES_SEL, 0);
    w(t, DRIVER_FEATURES, low);
    w(t, DRIVER_FEATURES_SEL, 1);
    w(t, DRIVER_FEATURES, 1);
    w(t, STATUS, status::ACKNOWLEDGE | status::DRIVER | status::FEATURES_OK);
    r(t, STATUS) & status::FEATURES_OK != 0
}

fn set_up_queue(t: &mut MmioTransport, index: u32, q: &TestQueue) {
    let (desc, avail, used) = q.addresses();
    w(t, QUEUE_SEL, index);
    w(t, QUEUE_NUM, 16);
    w(t, QUEUE_DESC_LOW, desc as u32);
    w(t, QUEUE_DRIVER_LOW, avail as u32);
    w(t, QUEUE_DEVICE_LOW, used as u32);
    w(t, QUEUE_READY, 1);
}

/// Waits for the device thread to use a buffer of `q`.
fn wait_used(mem: &GuestMem, q: &mut TestQueue) -> Vec<(u32, u32)> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let used = q.take_used(mem);
        if !used.is_empty() {
            return used;
        }
        assert!(Instant::now() < deadline, "the device thread did not answer");
        std::thread::sleep(Duration::from_millis(5));
    }
}

fn message(op: u32, unique: u64, body: &[u8]) -> Vec<u8> {
    let mut m = Vec::new();
    m.extend_from_slice(&(40 + body.len() as u32).to_le_bytes());
    m.extend_from_slice(&op.to_le_bytes());
    m.extend_from_slice(&unique.to_le_bytes());
    m.extend_from_slice(&1u64.to_le_bytes());
    m.extend_from_slice(&[0u8; 16]);
    m.extend_from_slice(body);
    m
}

#[test]
fn the_driver_negotiates_activates_and_is_answered_on_both_queues() {
    let dir = tempfile::tempdir().unwrap();
    let share = ShareConfig { tag: "vol-t".into(), path: dir.path().into(), read_only: true };
    let fs = Fs::new(&share).unwrap();
    let counters = fs.counters();
    let mem = memory();
    let mut t = MmioTransport::new(Box::new(fs), mem.clone()).unwrap();

    assert_eq!(r(&mut t, DEVICE_ID), 26);
    w(&mut t, DEVICE_FEATURES_SEL, 0);
    assert_eq!(r(&mut t, DEVICE_FEATURES), 0, "no notification queue, no DAX");
    w(&mut t, DEVICE_FEATURES_SEL, 1);
    assert_eq!(r(&mut t, DEVICE_FEATURES), 1, "VIRTIO_F_VERSION_1");
    w(&mut t, QUEUE_SEL, 0);
    assert_eq!(r(&mut t, QUEUE_NUM_MAX), 128);
    w(&mut t, QUEUE_SEL, 1);
    assert_eq!(r(&mut t, QUEUE_NUM_MAX), 1024);
    w(&mut t, QUEUE_SEL, 2);
    assert_eq!(r(&mut t, QUEUE_NUM_MAX), 0);
    let mut tag = [0u8; 8];
    t.read(CONFIG, &mut tag);
    assert_eq!(&tag, b"vol-t\0\0\0");
    assert_eq!(r(&mut t, CONFIG + TAG_LEN as u64), 1, "num_request_queues");

    // VIRTIO_FS_F_NOTIFICATION (bit 0) is not offered: a driver asking for it is refused.
    assert!(!negotiate(&mut t, 1));
    assert!(negotiate(&mut t, 0));
    let mut hiprio = TestQueue::new(&mem, 0x10000, 16);
    let mut requests = TestQueue::new(&mem, 0x20000, 16);
    set_up_queue(&mut t, 0, &hiprio);
    set_up_queue(&mut t, 1, &requests);
    let ok = status::ACKNOWLEDGE | status::DRIVER | status::FEATURES_OK | status::DRIVER_OK;
    w(&mut t, STATUS, ok);
    assert_eq!(r(&mut t, STATUS), ok);

    // fuse_init_in: major 7, minor 31, max_readahead, flags = FUSE_MAX_PAGES.
    let init_in = [7, 31, 0, crate::virtio::fs::init::FUSE_MAX_PAGES];
    let init = message(opcode::INIT, 42, &init_in.iter().flat_map(|v| v.to_le_bytes()).collect::<Vec<_>>());
    mem.write_slice(&init, GuestAddress(0x40000)).unwrap();
    requests.add_chain(&mem, &[rd(0x40000, init.len() as u32), wr(0x50000, 256)]);
    w(&mut t, QUEUE_NOTIFY, 1);
    let used = wait_used(&mem, &mut requests);
    assert_eq!(used.len(), 1);
    assert!(used[0].1 > 16, "an INIT reply with its body: {used:?}");
    let mut header = [0u8; 16];
    mem.read_slice(&mut header, GuestAddress(0x50000)).unwrap();
    assert_eq!(u32::from_le_bytes(header[..4].try_into().unwrap()), used[0].1);
    assert_eq!(i32::from_le_bytes(header[4..8].try_into().unwrap()), 0);
    assert_eq!(u64::from_le_bytes(header[8..].try_into().unwrap()), 42);
    // fuse_init_out: max_write at 20, max_pages at 28 (1 MiB requests, see fs/init.rs).
    let mut init_out = [0u8; 32];
    mem.read_slice(&mut init_out, GuestAddress(0x50010)).unwrap();
    assert_eq!(u32::from_le_bytes(init_out[20..24].try_into().unwrap()), 1 << 20);
    assert_eq!(u16::from_le_bytes(init_out[28..30].try_into().unwrap()), 256);

    // fuse_forget_in: nlookup. No reply.
    let forget = message(opcode::FORGET, 44, &1u64.to_le_bytes());
    mem.write_slice(&forget, GuestAddress(0x60000)).unwrap();
    hiprio.add_chain(&mem, &[rd(0x60000, forget.len() as u32)]);
    w(&mut t, QUEUE_NOTIFY, 0);
    assert_eq!(wait_used(&mem, &mut hiprio), vec![(0, 0)]);
    assert_eq!(counters.snapshot().requests, 2);

    w(&mut t, STATUS, 0);
    assert_eq!(r(&mut t, STATUS), 0);
}
