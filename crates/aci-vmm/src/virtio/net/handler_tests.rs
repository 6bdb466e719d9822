//! virtio-net queue logic tests: queues laid out in guest memory, a loopback backend.

use std::collections::VecDeque;

use vm_memory::{Bytes, GuestAddress};

use super::*;
use crate::virtio::test_utils::{memory, rd, wr, TestQueue};

#[derive(Default)]
struct Loop {
    sent: Vec<Vec<u8>>,
    incoming: VecDeque<Vec<u8>>,
}

impl NetBackend for Loop {
    fn send_frame(&mut self, frame: &[u8]) -> io::Result<()> {
        self.sent.push(frame.to_vec());
        Ok(())
    }
    fn recv_frame(&mut self, buf: &mut [u8]) -> io::Result<Option<usize>> {
        Ok(self.incoming.pop_front().map(|f| {
            buf[..f.len()].copy_from_slice(&f);
            f.len()
        }))
    }
}

#[test]
fn tx_strips_the_header_and_sends_the_frame() {
    let mem = memory();
    let mut tq = TestQueue::new(&mem, 0x10000, 16);
    let mut queue = tq.queue();
    mem.write_slice(&[0u8; 12], GuestAddress(0x40000)).unwrap();
    mem.write_slice(b"frame-bytes", GuestAddress(0x41000)).unwrap();
    tq.add_chain(&mem, &[rd(0x40000, 12), rd(0x41000, 11)]);
    let mut h = NetHandler::new(Loop::default());
    assert!(h.process_tx(&mem, &mut queue).unwrap());
    assert_eq!(h.backend().sent, vec![b"frame-bytes".to_vec()]);
    assert_eq!(tq.take_used(&mem), vec![(0, 0)]);
    assert_eq!(h.counters().snapshot().bytes_from_guest, 11);
}

#[test]
fn rx_waits_for_buffers_and_drops_frames_that_do_not_fit() {
    let mem = memory();
    let mut tq = TestQueue::new(&mem, 0x10000, 16);
    let mut queue = tq.queue();
    let mut h = NetHandler::new(Loop::default());
    h.backend.incoming.push_back(vec![0xaa; 100]);
    h.backend.incoming.push_back(vec![0xbb; 2000]);
    assert!(!h.process_rx(&mem, &mut queue).unwrap(), "no buffers: the frame waits");
    tq.add_chain(&mem, &[wr(0x40000, 1526)]);
    tq.add_chain(&mem, &[wr(0x41000, 1526)]);
    assert!(h.process_rx(&mem, &mut queue).unwrap());
    assert_eq!(tq.take_used(&mem), vec![(0, 112), (1, 0)]);
    let mut got = [0u8; 112];
    mem.read_slice(&mut got, GuestAddress(0x40000)).unwrap();
    assert_eq!(got[10], 1, "num_buffers");
    assert!(got[12..].iter().all(|b| *b == 0xaa));
    assert_eq!(h.dropped, 1);
    let counts = h.counters().snapshot();
    assert_eq!((counts.requests, counts.bytes_to_guest, counts.errors), (2, 100, 1));
}

#[test]
fn mergeable_rx_spreads_a_packet_over_buffers_and_publishes_them_at_once() {
    let mem = memory();
    let mut tq = TestQueue::new(&mem, 0x10000, 16);
    let mut queue = tq.queue();
    let mut h = NetHandler::new(Loop::default()).with_mergeable(true);
    let frame: Vec<u8> = (0..3000u32).map(|i| i as u8).collect();
    h.backend.incoming.push_back(frame.clone());
    tq.add_chain(&mem, &[wr(0x40000, 1500)]);
    // Two buffers are not enough for 3012 bytes: nothing is used, the packet waits.
    tq.add_chain(&mem, &[wr(0x41000, 1500)]);
    assert!(!h.process_rx(&mem, &mut queue).unwrap());
    assert!(h.rx_waiting());
    assert_eq!(tq.take_used(&mem), vec![]);
    tq.add_chain(&mem, &[wr(0x42000, 1500)]);
    assert!(h.process_rx(&mem, &mut queue).unwrap());
    assert_eq!(tq.take_used(&mem), vec![(0, 1500), (1, 1500), (2, 12)]);
    let mut got = vec![0u8; 4500];
    for (i, at) in [0x40000u64, 0x41000, 0x42000].into_iter().enumerate() {
        mem.read_slice(&mut got[i * 1500..(i + 1) * 1500], GuestAddress(at)).unwrap();
    }
    assert_eq!(u16::from_le_bytes([got[10], got[11]]), 3, "num_buffers");
    assert_eq!(&got[VNET_HDR_LEN..VNET_HDR_LEN + 3000], &frame[..]);
    assert_eq!(h.counters().snapshot().bytes_to_guest, 3000);
}

#[test]
fn a_broken_buffer_inside_a_mergeable_packet_drops_it_and_returns_every_buffer() {
    let mem = memory();
    let mut tq = TestQueue::new(&mem, 0x10000, 16);
    let mut queue = tq.queue();
    let mut h = NetHandler::new(Loop::default()).with_mergeable(true);
    h.backend.incoming.push_back(vec![7; 3000]);
    tq.add_chain(&mem, &[wr(0x40000, 1500)]);
    tq.add_chain(&mem, &[wr(0x41000, 1500)]);
    tq.add_chain(&mem, &[wr(0x42000, 1500)]);
    tq.link(&mem, 1, 1); // a loop: the second buffer is refused
    assert!(h.process_rx(&mem, &mut queue).unwrap());
    assert_eq!(tq.take_used(&mem), vec![(0, 0), (1, 0)]);
    assert_eq!(h.dropped, 1);
    assert!(!h.rx_waiting());
}

#[test]
fn interrupts_follow_used_event_and_no_interrupt() {
    let mem = memory();
    let mut tq = TestQueue::new(&mem, 0x10000, 16);
    let (_, avail, _) = tq.addresses();
    let used_event = GuestAddress(avail + 4 + 2 * 16);
    let mut rx = tq.queue();
    let tx = TestQueue::new(&mem, 0x20000, 16).queue();
    let mut h = NetHandler::new(Loop::default());
    let mut one_packet = |h: &mut NetHandler<Loop>, rx: &mut Queue| {
        h.backend.incoming.push_back(vec![1; 60]);
        tq.add_chain(&mem, &[wr(0x40000, 1526)]);
        assert!(h.process_rx(&mem, rx).unwrap());
    };
    // Without EVENT_IDX the avail flags decide.
    mem.write_obj(1u16, GuestAddress(avail)).unwrap(); // VRING_AVAIL_F_NO_INTERRUPT
    one_packet(&mut h, &mut rx);
    assert!(!h.needs_interrupt(&mem, &rx, &tx).unwrap(), "the driver asked for none");
    mem.write_obj(0u16, GuestAddress(avail)).unwrap();
    one_packet(&mut h, &mut rx);
    assert!(h.needs_interrupt(&mem, &rx, &tx).unwrap());
    assert!(!h.needs_interrupt(&mem, &rx, &tx).unwrap(), "nothing new was used");
    // With EVENT_IDX, only when used.idx moves past used_event.
    rx.set_event_idx(true);
    mem.write_obj(5u16, used_event).unwrap();
    one_packet(&mut h, &mut rx);
    assert!(!h.needs_interrupt(&mem, &rx, &tx).unwrap(), "used.idx 2 -> 3 does not pass 5");
    mem.write_obj(3u16, used_event).unwrap();
    one_packet(&mut h, &mut rx);
    assert!(h.needs_interrupt(&mem, &rx, &tx).unwrap(), "used.idx 3 -> 4 passes 3");
}
