//! Hostile descriptor chains against every device's queue logic (blk, rng, net RX/TX, vsock
//! RX/TX, fs): out-of-range addresses, loops, zero-length buffers, chains longer than the queue,
//! wild `next` indexes and indirect tables (valid, out of range, odd-sized, empty, nested).
//! Each must be refused (completed with used length 0 and counted as an error) without a
//! panic, a hang (each run has a deadline), a write outside the buffers the driver offered,
//! or anything reaching the backend; and the queue must keep serving good chains after it.

use std::collections::VecDeque;
use std::io;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::time::Duration;

use virtio_queue::Queue;
use vm_memory::{Bytes, GuestAddress, GuestMemory};

use crate::memory::GuestMem;
use crate::metrics::DeviceCounts;
use crate::virtio::block::handler::{BlockBackend, BlockHandler, DiskInfo, ID_LEN};
use crate::virtio::fs::backend::FuseServer;
use crate::virtio::fs::handler::FsHandler;
use crate::virtio::net::handler::{NetBackend, NetHandler, VNET_HDR_LEN};
use crate::virtio::rng::handler::{EntropySource, RngHandler};
use crate::virtio::test_utils::{memory, rd, wr, Buf, TestQueue};
use crate::virtio::vsock::handler::{process_rx, process_tx, VsockBackend};
use crate::virtio::vsock::packet::{op, Header, Packet, HDR_LEN, TYPE_STREAM};

/// Where the canary sits: right after the rings, nothing may write there.
const CANARY: u64 = 0x13000;
/// How long one run may take before it counts as a hang.
const DEADLINE: Duration = Duration::from_secs(10);
/// Queue size of the test queues.
const QUEUE_SIZE: u16 = 16;

/// A backend that records every call.
#[derive(Default)]
struct Recorder {
    disk_writes: usize,
    frames_sent: Vec<Vec<u8>>,
    frames_in: VecDeque<Vec<u8>>,
    packets_sent: Vec<Packet>,
    packets_in: VecDeque<Packet>,
}

impl BlockBackend for Recorder {
    fn read_at(&mut self, buf: &mut [u8], _offset: u64) -> io::Result<()> {
        buf.fill(0x5a);
        Ok(())
    }
    fn write_at(&mut self, _buf: &[u8], _offset: u64) -> io::Result<()> {
        self.disk_writes += 1;
        Ok(())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl EntropySource for Recorder {
    fn fill(&mut self, buf: &mut [u8]) -> io::Result<()> {
        buf.fill(0x5a);
        Ok(())
    }
}

impl NetBackend for Recorder {
    fn send_frame(&mut self, frame: &[u8]) -> io::Result<()> {
        self.frames_sent.push(frame.to_vec());
        Ok(())
    }
    fn recv_frame(&mut self, buf: &mut [u8]) -> io::Result<Option<usize>> {
        Ok(self.frames_in.pop_front().map(|f| {
            buf[..f.len()].copy_from_slice(&f);
            f.len()
        }))
    }
}

impl VsockBackend for Recorder {
    fn send_to_host(&mut self, pkt: Packet) {
        self.packets_sent.push(pkt);
    }
    fn has_rx(&self) -> bool {
        !self.packets_in.is_empty()
    }
    fn next_rx(&mut self, _max_data: usize) -> Option<Packet> {
        self.packets_in.pop_front()
    }
}

/// A FUSE server that counts the requests reaching it.
#[derive(Default)]
struct FuseRecorder(AtomicUsize);

impl FuseServer for FuseRecorder {
    fn serve(
        &self,
        _reader: fuse_backend_rs::transport::Reader<'_>,
        _writer: fuse_backend_rs::transport::Writer<'_>,
    ) -> io::Result<usize> {
        self.0.fetch_add(1, Ordering::Relaxed);
        Ok(0)
    }
}

/// How a hostile request is laid out.
#[derive(Clone, Debug)]
enum Shape {
    /// A plain chain.
    Chain(Vec<Buf>),
    /// A chain whose last descriptor continues at its head.
    Looped(Vec<Buf>),
    /// A chain whose first descriptor continues at an index past the queue.
    WildNext(Vec<Buf>),
    /// One descriptor referring to an indirect table of `len` bytes at `at`, holding `table`.
    Indirect { at: u64, len: u32, table: Vec<Buf> },
    /// An indirect table whose first entry is itself indirect.
    NestedIndirect,
}

fn hostile() -> Vec<(&'static str, Shape)> {
    let table = vec![rd(0x40000, 16), wr(0x50000, 512), wr(0x60000, 1)];
    vec![
        (
            "out-of-range first buffer",
            Shape::Chain(vec![rd(0xffff_f000, 64), wr(0x50000, 512), wr(0x60000, 1)]),
        ),
        ("out-of-range data", Shape::Chain(vec![rd(0x40000, 64), wr(0xfff0_0000, 4096), wr(0x60000, 1)])),
        ("buffer past the end of memory", Shape::Chain(vec![rd(0x40000, 64), wr(0xff000, 0x2000)])),
        ("zero-length buffers", Shape::Chain(vec![rd(0x40000, 0), wr(0x50000, 0)])),
        (
            "zero-length buffer among good ones",
            Shape::Chain(vec![rd(0x40000, 64), wr(0x50000, 0), wr(0x60000, 64)]),
        ),
        ("looped chain", Shape::Looped(vec![rd(0x40000, 64), wr(0x50000, 512), wr(0x60000, 1)])),
        ("self loop", Shape::Looped(vec![wr(0x40000, 64)])),
        ("self loop, readable", Shape::Looped(vec![rd(0x40000, 64)])),
        (
            "longer than the queue",
            Shape::Looped((0..u64::from(QUEUE_SIZE)).map(|i| wr(0x40000 + 0x100 * i, 64)).collect()),
        ),
        ("next index past the queue", Shape::WildNext(vec![rd(0x40000, 64), wr(0x50000, 64)])),
        ("indirect table (not negotiated)", Shape::Indirect { at: 0x30000, len: 48, table: table.clone() }),
        ("indirect table out of range", Shape::Indirect { at: 0xffff_0000, len: 48, table: Vec::new() }),
        ("indirect table of odd length", Shape::Indirect { at: 0x30000, len: 20, table: table.clone() }),
        ("empty indirect table", Shape::Indirect { at: 0x30000, len: 0, table: Vec::new() }),
        ("huge indirect table", Shape::Indirect { at: 0x30000, len: 0x10_0000, table }),
        ("nested indirect table", Shape::NestedIndirect),
    ]
}

/// Lays `shape` out as the next available request of `tq`; returns its head.
fn lay_out(mem: &GuestMem, tq: &mut TestQueue, shape: &Shape) -> u16 {
    let count = |bufs: &[Buf]| u16::try_from(bufs.len()).unwrap();
    match shape {
        Shape::Chain(bufs) => tq.add_chain(mem, bufs),
        Shape::Looped(bufs) => {
            let head = tq.add_chain(mem, bufs);
            tq.link(mem, head + count(bufs) - 1, head);
            head
        }
        Shape::WildNext(bufs) => {
            let head = tq.add_chain(mem, bufs);
            tq.link(mem, head, 0x7fff);
            head
        }
        Shape::Indirect { at, len, table } => {
            if mem.address_in_range(GuestAddress(*at)) {
                TestQueue::write_table(mem, *at, table);
            }
            tq.add_indirect(mem, *at, *len)
        }
        Shape::NestedIndirect => {
            TestQueue::write_table(mem, 0x30000, &[rd(0x31000, 32)]);
            mem.write_obj(4u16, GuestAddress(0x30000 + 12)).unwrap(); // entry 0: INDIRECT
            TestQueue::write_table(mem, 0x31000, &[wr(0x40000, 64), wr(0x50000, 64)]);
            tq.add_indirect(mem, 0x30000, 16)
        }
    }
}

/// A device's queue logic under test: serves `queue` once, reports its counters.
trait Subject: Send + 'static {
    /// Serves the queue (the result is ignored: a broken ring may be reported, not panicked).
    fn serve(&mut self, mem: &GuestMem, queue: &mut Queue);
    /// Its counters.
    fn counts(&self) -> DeviceCounts;
    /// What reached its backend (must stay empty for hostile requests).
    fn backend_calls(&self) -> usize;
}

struct Block(BlockHandler<Recorder>);
struct Rng(RngHandler<Recorder>, std::sync::Arc<crate::metrics::DeviceCounters>);
struct NetTx(NetHandler<Recorder>);
struct NetRx(NetHandler<Recorder>);
struct VsockTx(Recorder, crate::metrics::DeviceCounters);
struct VsockRx(Recorder, crate::metrics::DeviceCounters);
struct Fs(FsHandler<FuseRecorder>);

impl Subject for Fs {
    fn serve(&mut self, mem: &GuestMem, queue: &mut Queue) {
        let _ = self.0.process_queue(mem, queue);
    }
    fn counts(&self) -> DeviceCounts {
        self.0.counters().snapshot()
    }
    fn backend_calls(&self) -> usize {
        self.0.server().0.load(Ordering::Relaxed)
    }
}

impl Subject for Block {
    fn serve(&mut self, mem: &GuestMem, queue: &mut Queue) {
        let _ = self.0.process_queue(mem, queue);
    }
    fn counts(&self) -> DeviceCounts {
        self.0.counters().snapshot()
    }
    fn backend_calls(&self) -> usize {
        self.0.backend().disk_writes
    }
}

impl Subject for Rng {
    fn serve(&mut self, mem: &GuestMem, queue: &mut Queue) {
        let _ = self.0.process_queue(mem, queue);
    }
    fn counts(&self) -> DeviceCounts {
        self.1.snapshot()
    }
    fn backend_calls(&self) -> usize {
        0
    }
}

impl Subject for NetTx {
    fn serve(&mut self, mem: &GuestMem, queue: &mut Queue) {
        let _ = self.0.process_tx(mem, queue);
    }
    fn counts(&self) -> DeviceCounts {
        self.0.counters().snapshot()
    }
    fn backend_calls(&self) -> usize {
        self.0.backend().frames_sent.len()
    }
}

impl Subject for NetRx {
    fn serve(&mut self, mem: &GuestMem, queue: &mut Queue) {
        let _ = self.0.process_rx(mem, queue);
    }
    fn counts(&self) -> DeviceCounts {
        self.0.counters().snapshot()
    }
    fn backend_calls(&self) -> usize {
        0
    }
}

impl Subject for VsockTx {
    fn serve(&mut self, mem: &GuestMem, queue: &mut Queue) {
        let _ = process_tx(mem, queue, &mut self.0, &self.1);
    }
    fn counts(&self) -> DeviceCounts {
        self.1.snapshot()
    }
    fn backend_calls(&self) -> usize {
        self.0.packets_sent.len()
    }
}

impl Subject for VsockRx {
    fn serve(&mut self, mem: &GuestMem, queue: &mut Queue) {
        let _ = process_rx(mem, queue, &mut self.0, &self.1);
    }
    fn counts(&self) -> DeviceCounts {
        self.1.snapshot()
    }
    fn backend_calls(&self) -> usize {
        0
    }
}

/// What one run saw.
struct Outcome<S> {
    subject: S,
    used: Vec<(u32, u32)>,
    mem: GuestMem,
    tq: TestQueue,
    queue: Queue,
}

/// Lays out `shape`, lets `subject` serve it on its own thread (bounded by [`DEADLINE`]) and
/// checks the canary.
fn run<S: Subject>(name: &str, mut subject: S, shape: Shape) -> Outcome<S> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mem = memory();
        mem.write_slice(&[0xc3; 64], GuestAddress(CANARY)).unwrap();
        // Guest data that looks like a request header (blk IN, vsock RW with a payload).
        let mut pkt =
            Header { op: op::RW, type_: TYPE_STREAM, src_cid: 3, dst_cid: 2, len: 8, ..Header::default() };
        pkt.dst_port = 1024;
        mem.write_slice(&pkt.to_bytes(), GuestAddress(0x40000)).unwrap();
        let mut tq = TestQueue::new(&mem, 0x10000, QUEUE_SIZE);
        let mut queue = tq.queue();
        lay_out(&mem, &mut tq, &shape);
        subject.serve(&mem, &mut queue);
        let mut canary = [0u8; 64];
        mem.read_slice(&mut canary, GuestAddress(CANARY)).unwrap();
        let used = tq.take_used(&mem);
        let _ = tx.send((subject, used, canary, mem, tq, queue));
    });
    let (subject, used, canary, mem, tq, queue) =
        rx.recv_timeout(DEADLINE).unwrap_or_else(|_| panic!("{name}: the handler hung or panicked"));
    assert_eq!(canary, [0xc3; 64], "{name}: a handler wrote outside the offered buffers");
    Outcome { subject, used, mem, tq, queue }
}

/// Every hostile shape is refused by `make()`'s subject: one used entry of length 0, an
/// error counted, nothing passed to the backend.
fn refuses_all<S: Subject>(device: &str, make: impl Fn() -> S) {
    for (case, shape) in hostile() {
        let name = format!("{device}: {case}");
        let out = run(&name, make(), shape);
        assert_eq!(out.used.len(), 1, "{name}: {:?}", out.used);
        assert_eq!(out.used[0].1, 0, "{name}: claims {} bytes written", out.used[0].1);
        let counts = out.subject.counts();
        assert!(counts.errors >= 1, "{name}: not counted as an error: {counts:?}");
        assert_eq!((counts.bytes_to_guest, counts.bytes_from_guest), (0, 0), "{name}: {counts:?}");
        assert_eq!(out.subject.backend_calls(), 0, "{name}: reached the backend");
    }
}

fn block() -> Block {
    Block(BlockHandler::new(Recorder::default(), DiskInfo { sectors: 8, read_only: false, id: [0; ID_LEN] }))
}

fn rng() -> Rng {
    let counters = std::sync::Arc::new(crate::metrics::DeviceCounters::default());
    Rng(RngHandler::new(Recorder::default()).with_counters(counters.clone()), counters)
}

fn net_rx() -> NetRx {
    let mut backend = Recorder::default();
    backend.frames_in.push_back(vec![0xee; 60]);
    NetRx(NetHandler::new(backend))
}

fn vsock_rx() -> VsockRx {
    let mut backend = Recorder::default();
    let hdr = Header { op: op::RW, type_: TYPE_STREAM, src_cid: 2, dst_cid: 3, ..Header::default() };
    backend.packets_in.push_back(Packet { hdr, data: vec![7; 32] });
    VsockRx(backend, Default::default())
}

#[test]
fn block_refuses_hostile_chains() {
    refuses_all("blk", block);
}

#[test]
fn rng_refuses_hostile_chains() {
    refuses_all("rng", rng);
}

#[test]
fn net_tx_refuses_hostile_chains() {
    refuses_all("net tx", || NetTx(NetHandler::new(Recorder::default())));
}

#[test]
fn net_rx_refuses_hostile_buffers_and_keeps_the_frame() {
    refuses_all("net rx", net_rx);
    // After a refused buffer the frame is still there for the next good one.
    for (case, shape) in hostile() {
        let mut out = run(case, net_rx(), shape);
        let frame = 60 + VNET_HDR_LEN as u32;
        out.tq.add_chain(&out.mem, &[wr(0x70000, 1526)]);
        out.subject.serve(&out.mem, &mut out.queue);
        let used = out.tq.take_used(&out.mem);
        assert_eq!(used.last().map(|u| u.1), Some(frame), "net rx after {case}: {used:?}");
    }
}

#[test]
fn vsock_tx_refuses_hostile_chains() {
    refuses_all("vsock tx", || VsockTx(Recorder::default(), Default::default()));
}

#[test]
fn vsock_rx_refuses_hostile_buffers_and_keeps_the_packet() {
    refuses_all("vsock rx", vsock_rx);
    let (case, shape) = hostile().swap_remove(5);
    let mut out = run(case, vsock_rx(), shape);
    assert!(out.subject.0.has_rx(), "vsock rx: the packet waits for a good buffer");
    out.tq.add_chain(&out.mem, &[wr(0x70000, 4096)]);
    out.subject.serve(&out.mem, &mut out.queue);
    assert_eq!(out.tq.take_used(&out.mem).last().map(|u| u.1), Some(HDR_LEN as u32 + 32));
    assert_eq!(out.subject.counts().bytes_to_guest, 32);
}

#[test]
fn fs_refuses_hostile_chains_for_both_kinds_of_share() {
    refuses_all("fs", || Fs(FsHandler::new(FuseRecorder::default(), false)));
    refuses_all("fs read-only", || Fs(FsHandler::new(FuseRecorder::default(), true)));
}

#[test]
fn a_good_chain_after_a_hostile_one_is_served() {
    let (case, shape) = hostile().swap_remove(5);
    let mut out = run(case, block(), shape);
    // blk IN of sector 0 into 512 bytes, status at 0x60000.
    out.mem.write_obj(0u32, GuestAddress(0x41000)).unwrap();
    out.mem.write_obj(0u64, GuestAddress(0x41008)).unwrap();
    out.tq.add_chain(&out.mem, &[rd(0x41000, 16), wr(0x50000, 512), wr(0x60000, 1)]);
    out.subject.serve(&out.mem, &mut out.queue);
    assert_eq!(out.tq.take_used(&out.mem).last().map(|u| u.1), Some(513));
    assert_eq!(out.subject.counts().bytes_to_guest, 512);
}
