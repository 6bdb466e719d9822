//! Event glue shared by the one-queue devices (block, rng): on a queue notification, drain
//! the eventfd, let the device's queue handler serve the queue, raise the interrupt if
//! anything completed. A handler error means the guest broke the ring: the queue is then
//! ignored until the driver resets the device.

use std::os::fd::{AsRawFd, RawFd};

use virtio_queue::Queue;
use vmm_sys_util::eventfd::EventFd;

use crate::memory::GuestMem;
use crate::virtio::event_loop::{EventHandler, Worker};
use crate::virtio::{ActivateContext, ActivateError, Interrupt};

/// A device's pure queue logic.
pub trait QueueProcessor: Send + 'static {
    /// Why processing stopped (the ring is broken).
    type Error;
    /// Serves every available request; returns whether any used entry was added.
    fn process_queue(&mut self, mem: &GuestMem, queue: &mut Queue) -> Result<bool, Self::Error>;
}

/// The queue's state on the device thread.
struct SingleQueueEvents<P> {
    mem: GuestMem,
    queue: Queue,
    queue_event: EventFd,
    interrupt: Interrupt,
    processor: P,
    broken: bool,
}

impl<P: QueueProcessor> EventHandler for SingleQueueEvents<P> {
    fn sources(&self) -> Vec<(RawFd, u64)> {
        vec![(self.queue_event.as_raw_fd(), 0)]
    }

    fn handle(&mut self, _token: u64) {
        // Reading only resets the counter; EAGAIN means a spurious wakeup.
        let _ = self.queue_event.read();
        if self.broken {
            return;
        }
        match self.processor.process_queue(&self.mem, &mut self.queue) {
            Ok(true) => self.interrupt.signal_used_queue(),
            Ok(false) => {}
            Err(_) => self.broken = true,
        }
    }
}

/// Takes the one queue of `ctx` and starts a device thread named `name` serving it with
/// `processor`.
pub fn activate<P: QueueProcessor>(
    ctx: ActivateContext,
    name: &str,
    processor: P,
) -> Result<Worker, ActivateError> {
    let got = ctx.queues.len();
    let (Some(queue), Some(queue_event)) =
        (ctx.queues.into_iter().next(), ctx.queue_events.into_iter().next())
    else {
        return Err(ActivateError::QueueCount { expected: 1, got });
    };
    let events = SingleQueueEvents {
        mem: ctx.mem,
        queue,
        queue_event,
        interrupt: ctx.interrupt,
        processor,
        broken: false,
    };
    Worker::spawn(name, events).map_err(ActivateError::StartWorker)
}
