//! virtio-net queue logic: pure functions over guest memory, the RX/TX virtqueues and a
//! [`NetBackend`]. Every buffer starts with the 12-byte `virtio_net_hdr_v1`; with no offload
//! features negotiated it carries nothing the device needs (TX) or sets (RX, except
//! `num_buffers` = 1).

use std::io::{self, Read, Write};
use std::sync::Arc;

use virtio_queue::{Queue, QueueT, Reader, Writer};

use crate::memory::GuestMem;
use crate::metrics::DeviceCounters;
use crate::virtio::chain::validate_chain;

/// Length of `virtio_net_hdr_v1`.
pub const VNET_HDR_LEN: usize = 12;
/// Largest frame handled (no offloads: an MTU-sized frame, with room to spare).
pub const MAX_FRAME: usize = 65_536;

/// Where frames go to and come from (a tap device, or memory in tests).
pub trait NetBackend: Send {
    /// Sends one Ethernet frame. A frame the backend cannot take now may be dropped.
    fn send_frame(&mut self, frame: &[u8]) -> io::Result<()>;
    /// Receives one frame into `buf`; `Ok(None)` when none is waiting.
    fn recv_frame(&mut self, buf: &mut [u8]) -> io::Result<Option<usize>>;
}

/// Why a queue could not be processed (the guest broke the ring).
#[derive(Debug, thiserror::Error)]
pub enum NetQueueError {
    /// A used-ring update failed.
    #[error("could not add a used-ring entry")]
    AddUsed(#[source] virtio_queue::Error),
}

/// Moves frames between the queues and the backend.
pub struct NetHandler<B> {
    backend: B,
    rx_frame: Vec<u8>,
    /// Length of a received frame still waiting for a guest buffer.
    rx_pending: Option<usize>,
    tx_frame: Vec<u8>,
    /// Frames dropped: too large for the guest's buffer, or refused by the backend.
    pub dropped: u64,
    counters: Arc<DeviceCounters>,
}

impl<B: NetBackend> NetHandler<B> {
    /// A handler over `backend`.
    pub fn new(backend: B) -> Self {
        Self {
            backend,
            rx_frame: vec![0; MAX_FRAME],
            rx_pending: None,
            tx_frame: Vec::new(),
            dropped: 0,
            counters: Arc::default(),
        }
    }

    /// Counts into `counters` (frames, frame bytes each way, drops).
    pub fn with_counters(mut self, counters: Arc<DeviceCounters>) -> Self {
        self.counters = counters;
        self
    }

    /// The counters.
    pub fn counters(&self) -> &DeviceCounters {
        &self.counters
    }

    /// The backend.
    pub fn backend(&self) -> &B {
        &self.backend
    }

    /// Sends every frame on the TX queue; returns whether any buffer was used.
    pub fn process_tx(&mut self, mem: &GuestMem, queue: &mut Queue) -> Result<bool, NetQueueError> {
        let mut used = false;
        while let Some(chain) = queue.pop_descriptor_chain(mem) {
            let head = chain.head_index();
            let valid = validate_chain(mem, queue, head).ok();
            let sent = valid.and_then(|()| Reader::new(mem, chain).ok()).and_then(|mut reader| {
                let len = reader.available_bytes().checked_sub(VNET_HDR_LEN)?;
                if len > MAX_FRAME {
                    return None;
                }
                let mut hdr = [0u8; VNET_HDR_LEN];
                reader.read_exact(&mut hdr).ok()?;
                self.tx_frame.resize(len, 0);
                reader.read_exact(&mut self.tx_frame).ok()?;
                self.backend.send_frame(&self.tx_frame).ok()?;
                Some(len)
            });
            self.counters.request();
            match sent {
                Some(len) => self.counters.from_guest(len),
                None => {
                    self.dropped += 1;
                    self.counters.error();
                }
            }
            queue.add_used(mem, head, 0).map_err(NetQueueError::AddUsed)?;
            used = true;
        }
        Ok(used)
    }

    /// Delivers received frames into the guest's RX buffers while both last; a frame with no
    /// buffer waits for the next call. Returns whether any buffer was used.
    pub fn process_rx(&mut self, mem: &GuestMem, queue: &mut Queue) -> Result<bool, NetQueueError> {
        let mut used = false;
        loop {
            let len = match self.rx_pending {
                Some(len) => len,
                None => match self.backend.recv_frame(&mut self.rx_frame) {
                    Ok(Some(len)) => len,
                    Ok(None) | Err(_) => break,
                },
            };
            self.rx_pending = Some(len);
            let Some(chain) = queue.pop_descriptor_chain(mem) else {
                break;
            };
            let head = chain.head_index();
            if validate_chain(mem, queue, head).is_err() {
                // A broken buffer: give it back unused; the frame waits for the next one.
                self.counters.error();
                queue.add_used(mem, head, 0).map_err(NetQueueError::AddUsed)?;
                used = true;
                continue;
            }
            let written = Writer::new(mem, chain)
                .ok()
                .filter(|w| w.available_bytes() >= VNET_HDR_LEN + len)
                .and_then(|mut writer| {
                    let mut hdr = [0u8; VNET_HDR_LEN];
                    hdr[10] = 1; // num_buffers
                    writer.write_all(&hdr).ok()?;
                    writer.write_all(&self.rx_frame[..len]).ok()?;
                    Some(VNET_HDR_LEN + len)
                });
            self.counters.request();
            match written {
                Some(_) => self.counters.to_guest(len),
                None => {
                    self.dropped += 1;
                    self.counters.error();
                }
            }
            self.rx_pending = None;
            let written = u32::try_from(written.unwrap_or(0)).unwrap_or(0);
            queue.add_used(mem, head, written).map_err(NetQueueError::AddUsed)?;
            used = true;
        }
        Ok(used)
    }
}

#[cfg(test)]
mod tests {
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
}
