//! virtio-rng event glue: on a queue notification, drain the eventfd, serve the queue, raise
//! the interrupt if anything completed.

use std::os::fd::{AsRawFd, RawFd};

use virtio_queue::Queue;
use vmm_sys_util::eventfd::EventFd;

use crate::memory::GuestMem;
use crate::virtio::event_loop::EventHandler;
use crate::virtio::rng::handler::{EntropySource, RngHandler};
use crate::virtio::Interrupt;

/// The request queue's state on the device thread.
pub struct RngEvents<S> {
    /// Guest RAM.
    pub mem: GuestMem,
    /// The request queue.
    pub queue: Queue,
    /// Its notification eventfd.
    pub queue_event: EventFd,
    /// The device interrupt.
    pub interrupt: Interrupt,
    /// The queue logic.
    pub handler: RngHandler<S>,
    /// Set once the guest broke the ring; the device then ignores it until reset.
    pub broken: bool,
}

impl<S: EntropySource + 'static> EventHandler for RngEvents<S> {
    fn sources(&self) -> Vec<(RawFd, u64)> {
        vec![(self.queue_event.as_raw_fd(), 0)]
    }

    fn handle(&mut self, _token: u64) {
        let _ = self.queue_event.read();
        if self.broken {
            return;
        }
        match self.handler.process_queue(&self.mem, &mut self.queue) {
            Ok(true) => self.interrupt.signal_used_queue(),
            Ok(false) => {}
            Err(_) => self.broken = true,
        }
    }
}
