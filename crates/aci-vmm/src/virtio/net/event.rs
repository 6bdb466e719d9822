//! virtio-net event glue. The tap fd sits edge-triggered in a small epoll set of its own
//! (whose fd the device thread polls), so a frame waiting for a guest buffer does not keep
//! waking the thread; the RX queue notification (guest added buffers) resumes delivery.
//!
//! Notifications are suppressed while they are not needed: the TX queue's while the thread
//! drains it (re-enabled, and re-checked, once it is empty), the RX queue's unless a packet
//! waits for buffers. One interrupt covers everything a wakeup used, and only when the
//! driver asked for it.

use std::io;
use std::os::fd::{AsRawFd, RawFd};
use std::sync::Arc;

use virtio_queue::{Queue, QueueT};
use vmm_sys_util::epoll::{ControlOperation, Epoll, EpollEvent, EventSet};
use vmm_sys_util::eventfd::EventFd;

use crate::memory::GuestMem;
use crate::metrics::DeviceCounters;
use crate::virtio::event_loop::EventHandler;
use crate::virtio::net::handler::{NetHandler, NetQueueError};
use crate::virtio::net::tap::Tap;
use crate::virtio::net::used::{notify_on_next_buffer, UsedError};
use crate::virtio::Interrupt;

const RX_TOKEN: u64 = 0;
const TX_TOKEN: u64 = 1;
const TAP_TOKEN: u64 = 2;

/// The device's queues and tap on the device thread.
pub struct NetEvents {
    mem: GuestMem,
    rx: Queue,
    tx: Queue,
    queue_events: [EventFd; 2],
    interrupt: Interrupt,
    handler: NetHandler<Tap>,
    tap_epoll: Epoll,
    broken: bool,
}

impl NetEvents {
    /// Wires `tap` (edge-triggered) and the queues for the device thread.
    pub fn new(
        mem: GuestMem,
        [rx, tx]: [Queue; 2],
        queue_events: [EventFd; 2],
        interrupt: Interrupt,
        tap: Tap,
        mergeable: bool,
        counters: Arc<DeviceCounters>,
    ) -> io::Result<Self> {
        let tap_epoll = Epoll::new()?;
        let set = EventSet::IN | EventSet::EDGE_TRIGGERED;
        tap_epoll.ctl(ControlOperation::Add, tap.raw_fd(), EpollEvent::new(set, TAP_TOKEN))?;
        let handler = NetHandler::new(tap).with_counters(counters).with_mergeable(mergeable);
        Ok(Self { mem, rx, tx, queue_events, interrupt, handler, tap_epoll, broken: false })
    }
}

impl EventHandler for NetEvents {
    fn sources(&self) -> Vec<(RawFd, u64)> {
        vec![
            (self.queue_events[0].as_raw_fd(), RX_TOKEN),
            (self.queue_events[1].as_raw_fd(), TX_TOKEN),
            (self.tap_epoll.as_raw_fd(), TAP_TOKEN),
        ]
    }

    fn handle(&mut self, token: u64) {
        match token {
            TAP_TOKEN => {
                let mut events = [EpollEvent::default(); 4];
                // Only clears the edge; the frames are read below until the tap is empty.
                let _ = self.tap_epoll.wait(0, &mut events);
            }
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
        let result = self.serve(token == TX_TOKEN);
        match result {
            Ok(true) => self.interrupt.signal_used_queue(),
            Ok(false) => {}
            Err(_) => self.broken = true,
        }
    }
}

impl NetEvents {
    /// Drains the TX queue (when notified) and delivers what the tap holds; returns whether
    /// the driver wants an interrupt.
    fn serve(&mut self, tx_notified: bool) -> Result<bool, NetQueueError> {
        let mem = &self.mem;
        if tx_notified {
            loop {
                self.tx.disable_notification(mem).map_err(UsedError::from)?;
                self.handler.process_tx(mem, &mut self.tx)?;
                // More chains may have arrived before notifications came back on.
                if !self.tx.enable_notification(mem).map_err(UsedError::from)? {
                    break;
                }
            }
        }
        loop {
            self.handler.process_rx(mem, &mut self.rx)?;
            if !self.handler.rx_waiting() {
                // Buffers are plenty: no need to hear about new ones.
                self.rx.disable_notification(mem).map_err(UsedError::from)?;
                break;
            }
            // Too few buffers for the waiting packet: be told about the next one, unless it
            // already came.
            if !notify_on_next_buffer(mem, &mut self.rx)? {
                break;
            }
        }
        self.handler.needs_interrupt(mem, &self.rx, &self.tx)
    }
}
