//! virtio-vsock event glue: queue notifications and host-socket readiness, turned into
//! calls of the queue logic; the interrupt is raised when buffers were used.

use std::os::fd::{AsRawFd, RawFd};
use std::sync::Arc;

use virtio_queue::Queue;
use vmm_sys_util::eventfd::EventFd;

use crate::memory::GuestMem;
use crate::metrics::DeviceCounters;
use crate::virtio::event_loop::EventHandler;
use crate::virtio::vsock::handler::{process_rx, process_tx};
use crate::virtio::vsock::muxer::Muxer;
use crate::virtio::Interrupt;

const RX_TOKEN: u64 = 0;
const TX_TOKEN: u64 = 1;
const EVENT_QUEUE_TOKEN: u64 = 2;
const MUXER_TOKEN: u64 = 3;

/// The device's queues and backend on the device thread.
pub struct VsockEvents {
    /// Guest RAM.
    pub mem: GuestMem,
    /// Queue 0: buffers for packets to the guest.
    pub rx: Queue,
    /// Queue 1: packets from the guest.
    pub tx: Queue,
    /// Notification eventfds of queues 0, 1 and 2 (the event queue is never used).
    pub queue_events: [EventFd; 3],
    /// The device interrupt.
    pub interrupt: Interrupt,
    /// The Unix-socket backend.
    pub muxer: Muxer,
    /// Set once the guest broke a ring; the device then ignores it until reset.
    pub broken: bool,
    /// The device's counters.
    pub counters: Arc<DeviceCounters>,
}

impl EventHandler for VsockEvents {
    fn sources(&self) -> Vec<(RawFd, u64)> {
        vec![
            (self.queue_events[0].as_raw_fd(), RX_TOKEN),
            (self.queue_events[1].as_raw_fd(), TX_TOKEN),
            (self.queue_events[2].as_raw_fd(), EVENT_QUEUE_TOKEN),
            (self.muxer.epoll_fd(), MUXER_TOKEN),
        ]
    }

    fn handle(&mut self, token: u64) {
        match token {
            MUXER_TOKEN => self.muxer.process_events(),
            other => {
                let index = usize::try_from(other).unwrap_or(usize::MAX);
                if let Some(event) = self.queue_events.get(index) {
                    // Reading only resets the counter; EAGAIN means a spurious wakeup.
                    let _ = event.read();
                }
            }
        }
        if self.broken {
            return;
        }
        let counters = &*self.counters;
        let tx = if token == TX_TOKEN {
            process_tx(&self.mem, &mut self.tx, &mut self.muxer, counters)
        } else {
            Ok(false)
        };
        let rx = process_rx(&self.mem, &mut self.rx, &mut self.muxer, counters);
        match (tx, rx) {
            (Ok(tx), Ok(rx)) => {
                if tx || rx {
                    self.interrupt.signal_used_queue();
                }
            }
            _ => self.broken = true,
        }
    }
}
