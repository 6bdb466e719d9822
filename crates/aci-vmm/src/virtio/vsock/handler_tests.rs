//! vsock queue logic tests: packets built in guest memory, a recording backend.

use std::collections::VecDeque;

use vm_memory::{Bytes, GuestAddress};

use super::*;
use crate::virtio::test_utils::{memory, rd, wr, TestQueue};
use crate::virtio::vsock::packet::{op, TYPE_STREAM};

#[derive(Default)]
struct Recorder {
    sent: Vec<Packet>,
    queued: VecDeque<Packet>,
}

impl VsockBackend for Recorder {
    fn send_to_host(&mut self, pkt: Packet) {
        self.sent.push(pkt);
    }
    fn has_rx(&self) -> bool {
        !self.queued.is_empty()
    }
    fn next_rx(&mut self, max_data: usize) -> Option<Packet> {
        let mut pkt = self.queued.pop_front()?;
        if pkt.data.len() > max_data {
            let rest = pkt.data.split_off(max_data);
            let mut tail = pkt.clone();
            tail.data = rest;
            self.queued.push_front(tail);
        }
        Some(pkt)
    }
}

fn hdr(op: u16, len: u32) -> Header {
    Header {
        src_cid: 3,
        dst_cid: 2,
        src_port: 1000,
        dst_port: 52,
        len,
        type_: TYPE_STREAM,
        op,
        ..Header::default()
    }
}

#[test]
fn tx_packets_reach_the_backend_whatever_the_buffer_layout() {
    let mem = memory();
    let mut tq = TestQueue::new(&mem, 0x10000, 16);
    let mut queue = tq.queue();
    // Header and data in separate buffers (Linux), and both in one buffer.
    mem.write_slice(&hdr(op::RW, 5).to_bytes(), GuestAddress(0x40000)).unwrap();
    mem.write_slice(b"hello", GuestAddress(0x41000)).unwrap();
    tq.add_chain(&mem, &[rd(0x40000, 44), rd(0x41000, 5)]);
    let mut both = hdr(op::REQUEST, 0).to_bytes().to_vec();
    both.extend_from_slice(&[0; 4]);
    mem.write_slice(&both, GuestAddress(0x42000)).unwrap();
    tq.add_chain(&mem, &[rd(0x42000, 48)]);
    // A packet claiming more data than its buffers hold is dropped.
    mem.write_slice(&hdr(op::RW, 100).to_bytes(), GuestAddress(0x43000)).unwrap();
    tq.add_chain(&mem, &[rd(0x43000, 44), rd(0x44000, 10)]);

    let mut backend = Recorder::default();
    let counters = DeviceCounters::default();
    assert!(process_tx(&mem, &mut queue, &mut backend, &counters).unwrap());
    assert_eq!(backend.sent.len(), 2);
    assert_eq!(backend.sent[0].hdr.op, op::RW);
    assert_eq!(backend.sent[0].data, b"hello");
    assert_eq!(backend.sent[1].hdr.op, op::REQUEST);
    assert!(backend.sent[1].data.is_empty());
    assert_eq!(tq.take_used(&mem).len(), 3);
    let counts = counters.snapshot();
    assert_eq!((counts.requests, counts.bytes_from_guest, counts.errors), (2, 5, 1));
}

#[test]
fn rx_packets_are_fitted_to_guest_buffers_and_wait_for_more() {
    let mem = memory();
    let mut tq = TestQueue::new(&mem, 0x10000, 16);
    let mut queue = tq.queue();
    let mut backend = Recorder::default();
    let counters = DeviceCounters::default();
    let data: Vec<u8> = (0..100u8).collect();
    backend.queued.push_back(Packet { hdr: hdr(op::RW, 0), data: data.clone() });
    backend.queued.push_back(Packet { hdr: hdr(op::CREDIT_UPDATE, 0), data: Vec::new() });

    // No buffers: nothing happens, nothing is lost.
    assert!(!process_rx(&mem, &mut queue, &mut backend, &counters).unwrap());
    // One buffer with room for 60 data bytes: the first 60 go.
    tq.add_chain(&mem, &[wr(0x40000, 44), wr(0x41000, 60)]);
    assert!(process_rx(&mem, &mut queue, &mut backend, &counters).unwrap());
    assert_eq!(tq.take_used(&mem), vec![(0, 104)]);
    let mut raw = [0u8; 44];
    mem.read_slice(&mut raw, GuestAddress(0x40000)).unwrap();
    assert_eq!(Header::from_bytes(&raw).len, 60);
    let mut got = vec![0u8; 60];
    mem.read_slice(&mut got, GuestAddress(0x41000)).unwrap();
    assert_eq!(got, data[..60]);
    // Two more buffers: the remaining 40 bytes, then the credit update.
    tq.add_chain(&mem, &[wr(0x42000, 4096)]);
    tq.add_chain(&mem, &[wr(0x43000, 4096)]);
    assert!(process_rx(&mem, &mut queue, &mut backend, &counters).unwrap());
    assert_eq!(tq.take_used(&mem), vec![(2, 84), (3, 44)]);
    mem.read_slice(&mut raw, GuestAddress(0x43000)).unwrap();
    assert_eq!(Header::from_bytes(&raw).op, op::CREDIT_UPDATE);
    assert!(!backend.has_rx());
    let counts = counters.snapshot();
    assert_eq!((counts.requests, counts.bytes_to_guest, counts.errors), (3, 100, 0));
}

#[test]
fn responses_count_as_connections_both_ways() {
    let mem = memory();
    let mut tq = TestQueue::new(&mem, 0x10000, 16);
    let mut queue = tq.queue();
    let counters = DeviceCounters::default();
    mem.write_slice(&hdr(op::RESPONSE, 0).to_bytes(), GuestAddress(0x40000)).unwrap();
    tq.add_chain(&mem, &[rd(0x40000, 44)]);
    let mut backend = Recorder::default();
    process_tx(&mem, &mut queue, &mut backend, &counters).unwrap();
    backend.queued.push_back(Packet { hdr: hdr(op::RESPONSE, 0), data: Vec::new() });
    let mut rx_tq = TestQueue::new(&mem, 0x20000, 16);
    let mut rx = rx_tq.queue();
    rx_tq.add_chain(&mem, &[wr(0x50000, 4096)]);
    process_rx(&mem, &mut rx, &mut backend, &counters).unwrap();
    assert_eq!(counters.snapshot().connections, 2);
}
