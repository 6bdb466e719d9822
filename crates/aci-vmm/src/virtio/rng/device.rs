//! The virtio-rng device: one request queue, no configuration space.

use std::io;
use std::sync::Arc;

use crate::metrics::DeviceCounters;
use crate::virtio::event_loop::Worker;
use crate::virtio::rng::handler::{EntropySource, RngHandler};
use crate::virtio::single_queue;
use crate::virtio::{device_type, ActivateContext, ActivateError, VirtioDevice, VIRTIO_F_VERSION_1};

const QUEUE_SIZE: u16 = 64;

/// The host's `getrandom(2)`.
pub struct HostRandom;

impl EntropySource for HostRandom {
    fn fill(&mut self, buf: &mut [u8]) -> io::Result<()> {
        let mut done = 0;
        while done < buf.len() {
            let rest = &mut buf[done..];
            // SAFETY: the pointer and length describe `rest`, writable for the call.
            let n = unsafe { libc::getrandom(rest.as_mut_ptr().cast(), rest.len(), 0) };
            if n < 0 {
                let err = io::Error::last_os_error();
                if err.kind() == io::ErrorKind::Interrupted {
                    continue;
                }
                return Err(err);
            }
            done += n.unsigned_abs();
        }
        Ok(())
    }
}

/// A virtio-rng device fed by the host's getrandom.
#[derive(Debug, Default)]
pub struct Rng {
    worker: Option<Worker>,
    counters: Arc<DeviceCounters>,
}

impl Rng {
    /// A device, not yet activated.
    pub fn new() -> Self {
        Self::default()
    }
}

impl VirtioDevice for Rng {
    fn device_type(&self) -> u32 {
        device_type::RNG
    }

    fn queue_max_sizes(&self) -> &[u16] {
        &[QUEUE_SIZE]
    }

    fn features(&self) -> u64 {
        VIRTIO_F_VERSION_1
    }

    fn read_config(&self, _offset: u64, data: &mut [u8]) {
        data.fill(0);
    }

    fn activate(&mut self, ctx: ActivateContext) -> Result<(), ActivateError> {
        let handler = RngHandler::new(HostRandom).with_counters(self.counters.clone());
        self.worker = Some(single_queue::activate(ctx, "aci-virtio-rng", handler)?);
        Ok(())
    }

    fn reset(&mut self) {
        self.worker = None;
    }

    fn counters(&self) -> Arc<DeviceCounters> {
        self.counters.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_random_fills_and_differs() {
        let (mut a, mut b) = ([0u8; 64], [0u8; 64]);
        HostRandom.fill(&mut a).unwrap();
        HostRandom.fill(&mut b).unwrap();
        assert_ne!(a, b);
        assert_eq!(Rng::new().features(), VIRTIO_F_VERSION_1);
        assert_eq!(Rng::new().device_type(), 4);
    }
}
