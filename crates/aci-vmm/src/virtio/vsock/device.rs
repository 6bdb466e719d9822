//! The virtio-vsock device: guest CID in the config space, three queues (rx, tx, event).

use std::sync::Arc;

use crate::config::VsockConfig;
use crate::metrics::DeviceCounters;
use crate::virtio::event_loop::Worker;
use crate::virtio::vsock::event::VsockEvents;
use crate::virtio::vsock::muxer::{Muxer, MuxerError};
use crate::virtio::{device_type, ActivateContext, ActivateError, VirtioDevice, VIRTIO_F_VERSION_1};

/// Queue size of each of the three queues.
const QUEUE_SIZE: u16 = 256;

/// Why the vsock device could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum VsockError {
    /// CIDs 0-2 are reserved (hypervisor, local, host).
    #[error("guest CID {0} is reserved; use 3 or more")]
    ReservedCid(u64),
    /// The host-side listener could not be created.
    #[error("could not create the host side of the vsock device")]
    CreateMuxer(#[source] MuxerError),
}

/// A virtio-vsock device whose host side is Unix sockets.
#[derive(Debug)]
pub struct Vsock {
    config: VsockConfig,
    muxer: Option<Muxer>,
    worker: Option<Worker>,
    counters: Arc<DeviceCounters>,
}

impl Vsock {
    /// Binds the host listener at `config.uds_path` right away, so host clients can connect
    /// before the guest driver is up (they are served once it is).
    pub fn new(config: &VsockConfig) -> Result<Self, VsockError> {
        if config.guest_cid <= 2 || config.guest_cid > u64::from(u32::MAX) {
            return Err(VsockError::ReservedCid(config.guest_cid));
        }
        let muxer = Muxer::new(config.guest_cid, &config.uds_path).map_err(VsockError::CreateMuxer)?;
        Ok(Self { config: config.clone(), muxer: Some(muxer), worker: None, counters: Arc::default() })
    }
}

impl VirtioDevice for Vsock {
    fn device_type(&self) -> u32 {
        device_type::VSOCK
    }

    fn queue_max_sizes(&self) -> &[u16] {
        &[QUEUE_SIZE; 3]
    }

    fn features(&self) -> u64 {
        VIRTIO_F_VERSION_1
    }

    fn read_config(&self, offset: u64, data: &mut [u8]) {
        crate::virtio::read_config_bytes(&self.config.guest_cid.to_le_bytes(), offset, data);
    }

    fn activate(&mut self, ctx: ActivateContext) -> Result<(), ActivateError> {
        let got = ctx.queues.len();
        let count = |got| ActivateError::QueueCount { expected: 3, got };
        let [rx, tx, _event]: [_; 3] = ctx.queues.try_into().map_err(|_| count(got))?;
        let queue_events: [_; 3] = ctx.queue_events.try_into().map_err(|_| count(got))?;
        let muxer = match self.muxer.take() {
            Some(muxer) => muxer,
            None => Muxer::new(self.config.guest_cid, &self.config.uds_path)
                .map_err(|e| ActivateError::Backend(std::io::Error::other(e)))?,
        };
        let events = VsockEvents {
            mem: ctx.mem,
            rx,
            tx,
            queue_events,
            interrupt: ctx.interrupt,
            muxer,
            broken: false,
            counters: self.counters.clone(),
        };
        self.worker = Some(Worker::spawn("aci-virtio-vsock", events).map_err(ActivateError::StartWorker)?);
        Ok(())
    }

    fn reset(&mut self) {
        // Dropping the worker drops the muxer: every connection is closed.
        self.worker = None;
    }

    fn counters(&self) -> Arc<DeviceCounters> {
        self.counters.clone()
    }
}
