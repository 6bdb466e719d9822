//! virtio 1.x devices over the MMIO transport.
//!
//! [`mmio::MmioTransport`] is the only code that knows the virtio-mmio register layout; it
//! negotiates features, collects queue addresses and, when the driver sets `DRIVER_OK`, hands
//! the queues to a [`VirtioDevice`]. Each device is split three ways:
//!
//! - a *queue handler* (`handler.rs`): pure functions over guest memory, a virtqueue and a
//!   backend trait, with no fds and no event loop; unit-tested with queues built in memory
//!   ([`test_utils`]);
//! - *event glue* (`event.rs`, or [`single_queue`] for one-queue devices): the device
//!   thread's reaction to queue notifications (ioeventfd) and backend readiness, run by
//!   [`event_loop::Worker`];
//! - the *device* (`device.rs`): the [`VirtioDevice`] implementation (type, features, config
//!   space, activate, reset).
//!
//! Devices: [`block`] (host file), [`net`] (tap), [`rng`] (host getrandom), [`vsock`] (Unix
//! sockets), [`fs`] (a host directory over FUSE).
//!
//! [`attach`] places the devices on the MMIO bus, wires irqfd/ioeventfd with KVM and writes
//! the `virtio_mmio.device=` command-line entries.

pub mod attach;
pub mod block;
pub mod chain;
pub mod event_loop;
pub mod fs;
pub mod interrupt;
#[cfg(test)]
mod malformed_tests;
pub mod mmio;
pub mod net;
pub mod rng;
pub mod single_queue;
#[cfg(test)]
pub mod test_utils;
pub mod vsock;

use std::sync::Arc;

use vmm_sys_util::eventfd::EventFd;

pub use interrupt::Interrupt;
pub use virtio_queue::Queue;

use crate::memory::GuestMem;
use crate::metrics::DeviceCounters;

/// `VIRTIO_F_VERSION_1`: the device is modern (virtio 1.x). Every device offers it.
pub const VIRTIO_F_VERSION_1: u64 = 1 << 32;

/// virtio device type ids.
pub mod device_type {
    /// Network card.
    pub const NET: u32 = 1;
    /// Block device.
    pub const BLOCK: u32 = 2;
    /// Entropy source.
    pub const RNG: u32 = 4;
    /// Socket device.
    pub const VSOCK: u32 = 19;
    /// File system device (virtio-fs).
    pub const FS: u32 = 26;
}

/// Everything a device needs to start serving its queues.
pub struct ActivateContext {
    /// Guest RAM.
    pub mem: GuestMem,
    /// The queues as the driver set them up, in queue-index order.
    pub queues: Vec<Queue>,
    /// One notification eventfd per queue (KVM signals it on a `QueueNotify` write).
    pub queue_events: Vec<EventFd>,
    /// Raises the device's interrupt.
    pub interrupt: Interrupt,
    /// The features the driver accepted.
    pub acked_features: u64,
}

impl std::fmt::Debug for ActivateContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ActivateContext")
            .field("queues", &self.queues.len())
            .field("acked_features", &format_args!("{:#x}", self.acked_features))
            .finish_non_exhaustive()
    }
}

/// Why a device could not be activated.
#[derive(Debug, thiserror::Error)]
pub enum ActivateError {
    /// The driver set up a different number of queues than the device has.
    #[error("expected {expected} queues, got {got}")]
    QueueCount {
        /// Queues the device has.
        expected: usize,
        /// Queues handed over.
        got: usize,
    },
    /// The device's worker thread could not be started.
    #[error("could not start the device thread")]
    StartWorker(#[source] event_loop::EventLoopError),
    /// The device's backend could not be prepared.
    #[error("could not prepare the device backend")]
    Backend(#[source] std::io::Error),
}

/// A virtio device, seen from the transport: no register offsets, no bus.
pub trait VirtioDevice: Send {
    /// The virtio device type id ([`device_type`]).
    fn device_type(&self) -> u32;
    /// The largest size of each queue; the slice length is the number of queues.
    fn queue_max_sizes(&self) -> &[u16];
    /// The feature bits the device offers (including [`VIRTIO_F_VERSION_1`]).
    fn features(&self) -> u64;
    /// Reads the device-specific configuration space at `offset`; bytes past its end read 0.
    fn read_config(&self, offset: u64, data: &mut [u8]);
    /// Writes the device-specific configuration space; read-only fields ignore writes.
    fn write_config(&mut self, offset: u64, data: &[u8]) {
        let _ = (offset, data);
    }
    /// Starts serving the queues.
    fn activate(&mut self, ctx: ActivateContext) -> Result<(), ActivateError>;
    /// Stops serving the queues (the driver reset the device); a later activation starts over.
    fn reset(&mut self);
    /// The counters the device's queue logic bumps (kept across resets).
    fn counters(&self) -> Arc<DeviceCounters>;
}

/// Copies the bytes of `config` at `offset` into `data`, zero past its end.
pub fn read_config_bytes(config: &[u8], offset: u64, data: &mut [u8]) {
    data.fill(0);
    let Ok(start) = usize::try_from(offset) else {
        return;
    };
    if let Some(src) = config.get(start..) {
        let n = src.len().min(data.len());
        data[..n].copy_from_slice(&src[..n]);
    }
}
