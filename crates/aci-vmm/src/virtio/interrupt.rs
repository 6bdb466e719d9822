//! The interrupt a virtio-mmio device raises: a status word the driver reads and acknowledges
//! through the transport, and an eventfd KVM turns into an edge on the device's GSI (irqfd).

use std::io;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;

use vmm_sys_util::eventfd::{EventFd, EFD_NONBLOCK};

/// `InterruptStatus` bit: a used ring was updated.
pub const INT_USED_RING: u32 = 1;
/// `InterruptStatus` bit: the configuration space changed.
pub const INT_CONFIG: u32 = 2;

/// A cloneable handle that raises one device's interrupt.
#[derive(Clone, Debug)]
pub struct Interrupt(Arc<Inner>);

#[derive(Debug)]
struct Inner {
    status: AtomicU32,
    event: EventFd,
}

impl Interrupt {
    /// A new interrupt with its own eventfd (register it with `register_irqfd`).
    pub fn new() -> io::Result<Self> {
        let event = EventFd::new(EFD_NONBLOCK)?;
        Ok(Self(Arc::new(Inner { status: AtomicU32::new(0), event })))
    }

    /// The eventfd KVM listens on.
    pub fn eventfd(&self) -> &EventFd {
        &self.0.event
    }

    /// Tells the driver that used rings changed.
    pub fn signal_used_queue(&self) {
        self.raise(INT_USED_RING);
    }

    /// Tells the driver that the configuration space changed.
    pub fn signal_config_change(&self) {
        self.raise(INT_CONFIG);
    }

    fn raise(&self, bits: u32) {
        self.0.status.fetch_or(bits, Ordering::SeqCst);
        // A full counter (EAGAIN) already means "pending"; nothing else can fail here.
        let _ = self.0.event.write(1);
    }

    /// The `InterruptStatus` register.
    pub fn status(&self) -> u32 {
        self.0.status.load(Ordering::SeqCst)
    }

    /// `InterruptACK`: clears the acknowledged bits.
    pub fn ack(&self, bits: u32) {
        self.0.status.fetch_and(!bits, Ordering::SeqCst);
    }

    /// Clears everything (device reset).
    pub fn clear(&self) {
        self.0.status.store(0, Ordering::SeqCst);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn raising_sets_status_and_signals_the_eventfd() {
        let irq = Interrupt::new().unwrap();
        irq.signal_used_queue();
        irq.signal_config_change();
        assert_eq!(irq.status(), INT_USED_RING | INT_CONFIG);
        assert_eq!(irq.eventfd().read().unwrap(), 2);
        irq.ack(INT_USED_RING);
        assert_eq!(irq.status(), INT_CONFIG);
        irq.clear();
        assert_eq!(irq.status(), 0);
    }
}
