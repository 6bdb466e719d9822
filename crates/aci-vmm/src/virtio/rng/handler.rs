//! virtio-rng request processing: every available chain's writable buffers are filled with
//! random bytes. No fds, no event loop.

use std::io::{self, Write};
use std::sync::Arc;

use virtio_queue::{Queue, QueueT, Writer};

use crate::memory::GuestMem;
use crate::metrics::DeviceCounters;
use crate::virtio::chain::validate_chain;

/// The most bytes served per request, whatever buffer size the guest offers.
pub const MAX_PER_REQUEST: usize = 64 << 10;

/// Where random bytes come from (the host's getrandom, or a pattern in tests).
pub trait EntropySource: Send {
    /// Fills `buf` completely.
    fn fill(&mut self, buf: &mut [u8]) -> io::Result<()>;
}

/// Why the queue could not be processed (the guest broke the ring; the device stops).
#[derive(Debug, thiserror::Error)]
pub enum RngQueueError {
    /// A used-ring update failed.
    #[error("could not add a used-ring entry")]
    AddUsed(#[source] virtio_queue::Error),
}

/// Serves entropy requests from one queue.
pub struct RngHandler<S> {
    source: S,
    buf: Vec<u8>,
    counters: Arc<DeviceCounters>,
}

impl<S: EntropySource> RngHandler<S> {
    /// A handler drawing from `source`.
    pub fn new(source: S) -> Self {
        Self { source, buf: Vec::new(), counters: Arc::default() }
    }

    /// Counts into `counters` (requests, bytes served, failed requests).
    pub fn with_counters(mut self, counters: Arc<DeviceCounters>) -> Self {
        self.counters = counters;
        self
    }

    /// Serves every available request; returns whether any used entry was added.
    pub fn process_queue(&mut self, mem: &GuestMem, queue: &mut Queue) -> Result<bool, RngQueueError> {
        let mut used = false;
        while let Some(chain) = queue.pop_descriptor_chain(mem) {
            let head = chain.head_index();
            self.counters.request();
            let valid = validate_chain(mem, queue, head);
            let len = match valid.ok().and_then(|()| Writer::new(mem, chain).ok()) {
                Some(writer) => self.serve(writer),
                None => {
                    // Malformed chain: complete it with nothing written.
                    self.counters.error();
                    0
                }
            };
            queue.add_used(mem, head, len).map_err(RngQueueError::AddUsed)?;
            used = true;
        }
        Ok(used)
    }

    fn serve(&mut self, mut writer: Writer<'_>) -> u32 {
        let n = writer.available_bytes().min(MAX_PER_REQUEST);
        self.buf.resize(n, 0);
        if self.source.fill(&mut self.buf[..n]).is_err() || writer.write_all(&self.buf[..n]).is_err() {
            self.counters.error();
            return 0;
        }
        self.counters.to_guest(n);
        u32::try_from(n).unwrap_or(0)
    }
}

impl<S: EntropySource + 'static> crate::virtio::single_queue::QueueProcessor for RngHandler<S> {
    type Error = RngQueueError;

    fn process_queue(&mut self, mem: &GuestMem, queue: &mut Queue) -> Result<bool, RngQueueError> {
        RngHandler::process_queue(self, mem, queue)
    }
}

#[cfg(test)]
mod tests {
    use vm_memory::{Bytes, GuestAddress};

    use super::*;
    use crate::virtio::test_utils::{memory, rd, wr, TestQueue};

    struct Counter(u8);

    impl EntropySource for Counter {
        fn fill(&mut self, buf: &mut [u8]) -> io::Result<()> {
            for b in buf {
                self.0 = self.0.wrapping_add(1);
                *b = self.0;
            }
            Ok(())
        }
    }

    #[test]
    fn fills_writable_buffers_and_reports_the_length() {
        let mem = memory();
        let mut tq = TestQueue::new(&mem, 0x10000, 16);
        tq.add_chain(&mem, &[wr(0x40000, 16), wr(0x50000, 8)]);
        let mut queue = tq.queue();
        let mut h = RngHandler::new(Counter(0));
        assert!(h.process_queue(&mem, &mut queue).unwrap());
        let used = tq.take_used(&mem);
        assert_eq!(used.len(), 1);
        assert_eq!(used[0].1, 24);
        let mut first = [0u8; 16];
        mem.read_slice(&mut first, GuestAddress(0x40000)).unwrap();
        assert_eq!(first[0], 1);
        assert_eq!(first[15], 16);
        let mut second = [0u8; 8];
        mem.read_slice(&mut second, GuestAddress(0x50000)).unwrap();
        assert_eq!(second, [17, 18, 19, 20, 21, 22, 23, 24]);
    }

    #[test]
    fn readable_only_chains_get_nothing_and_huge_buffers_are_capped() {
        let mem = memory();
        let mut tq = TestQueue::new(&mem, 0x10000, 16);
        tq.add_chain(&mem, &[rd(0x40000, 64)]);
        tq.add_chain(&mem, &[wr(0x80000, 0x70000)]);
        let mut queue = tq.queue();
        let mut h = RngHandler::new(Counter(0));
        h.process_queue(&mem, &mut queue).unwrap();
        let used = tq.take_used(&mem);
        assert_eq!(used.iter().map(|u| u.1).collect::<Vec<_>>(), vec![0, MAX_PER_REQUEST as u32]);
    }
}
