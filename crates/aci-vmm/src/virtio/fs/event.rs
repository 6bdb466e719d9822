//! virtio-fs event glue: either queue's notification runs the queue logic on that queue and
//! raises the interrupt if anything was used. A queue the guest broke is ignored until the
//! driver resets the device.

use std::os::fd::{AsRawFd, RawFd};

use virtio_queue::Queue;
use vmm_sys_util::eventfd::EventFd;

use crate::memory::GuestMem;
use crate::virtio::event_loop::{EventHandler, Worker};
use crate::virtio::fs::backend::FuseServer;
use crate::virtio::fs::handler::FsHandler;
use crate::virtio::{ActivateContext, ActivateError, Interrupt};

/// Queues of the device: high priority (0) and one request queue (1).
pub const QUEUE_COUNT: usize = 2;

/// One queue and its notification.
struct QueueState {
    queue: Queue,
    event: EventFd,
    broken: bool,
}

/// The device's queues and handler on the device thread.
struct FsEvents<S> {
    mem: GuestMem,
    queues: Vec<QueueState>,
    interrupt: Interrupt,
    handler: FsHandler<S>,
}

impl<S: FuseServer> EventHandler for FsEvents<S> {
    fn sources(&self) -> Vec<(RawFd, u64)> {
        (0u64..).zip(&self.queues).map(|(token, q)| (q.event.as_raw_fd(), token)).collect()
    }

    fn handle(&mut self, token: u64) {
        let Some(state) = usize::try_from(token).ok().and_then(|i| self.queues.get_mut(i)) else {
            return;
        };
        // Reading only resets the counter; EAGAIN means a spurious wakeup.
        let _ = state.event.read();
        if state.broken {
            return;
        }
        match self.handler.process_queue(&self.mem, &mut state.queue) {
            Ok(true) => self.interrupt.signal_used_queue(),
            Ok(false) => {}
            Err(_) => state.broken = true,
        }
    }
}

/// Takes the queues of `ctx` and starts the device thread `name` serving them with `handler`.
pub fn activate<S: FuseServer>(
    ctx: ActivateContext,
    name: &str,
    handler: FsHandler<S>,
) -> Result<Worker, ActivateError> {
    let got = ctx.queues.len();
    if got != QUEUE_COUNT || ctx.queue_events.len() != QUEUE_COUNT {
        return Err(ActivateError::QueueCount { expected: QUEUE_COUNT, got });
    }
    let queues = ctx
        .queues
        .into_iter()
        .zip(ctx.queue_events)
        .map(|(queue, event)| QueueState { queue, event, broken: false })
        .collect();
    let events = FsEvents { mem: ctx.mem, queues, interrupt: ctx.interrupt, handler };
    Worker::spawn(name, events).map_err(ActivateError::StartWorker)
}
