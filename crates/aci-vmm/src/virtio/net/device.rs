//! The virtio-net device: a tap, a MAC address in the config space, RX and TX queues, and
//! the offloads of [`features`](crate::virtio::net::features) when the tap allows them.

use std::io;
use std::sync::Arc;

use virtio_queue::QueueT;

use crate::config::{NetConfig, TapSource};
use crate::metrics::DeviceCounters;
use crate::virtio::event_loop::Worker;
use crate::virtio::net::event::NetEvents;
use crate::virtio::net::features::{self, VIRTIO_NET_F_MRG_RXBUF, VIRTIO_RING_F_EVENT_IDX};
use crate::virtio::net::tap::{Tap, TapError};
use crate::virtio::{device_type, ActivateContext, ActivateError, VirtioDevice};

pub use crate::virtio::net::features::VIRTIO_NET_F_MAC;
/// Queue size of the RX and TX queues.
const QUEUE_SIZE: u16 = 256;

/// Why a network device could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum NetError {
    /// The tap could not be opened or configured.
    #[error("could not open tap {name}")]
    OpenTap {
        /// The interface name, or `fd` for a caller's fd.
        name: String,
        /// What failed.
        #[source]
        source: TapError,
    },
    /// The caller's tap fd could not be duplicated.
    #[error("could not duplicate the tap fd")]
    DuplicateFd(#[source] io::Error),
}

/// A virtio-net device over a tap.
#[derive(Debug)]
pub struct Net {
    tap: Tap,
    mac: [u8; 6],
    worker: Option<Worker>,
    counters: Arc<DeviceCounters>,
}

impl Net {
    /// Opens the tap `config` names (or takes a duplicate of its fd).
    pub fn new(config: &NetConfig) -> Result<Self, NetError> {
        let tap = match &config.tap {
            TapSource::Name(name) => {
                Tap::open(name).map_err(|source| NetError::OpenTap { name: name.clone(), source })?
            }
            TapSource::Fd(fd) => {
                let fd = fd.try_clone().map_err(NetError::DuplicateFd)?;
                Tap::from_fd(fd).map_err(|source| NetError::OpenTap { name: "fd".to_string(), source })?
            }
        };
        Ok(Self { tap, mac: config.mac, worker: None, counters: Arc::default() })
    }
}

impl VirtioDevice for Net {
    fn device_type(&self) -> u32 {
        device_type::NET
    }

    fn queue_max_sizes(&self) -> &[u16] {
        &[QUEUE_SIZE; 2]
    }

    fn features(&self) -> u64 {
        features::offered(self.tap.vnet_hdr())
    }

    fn read_config(&self, offset: u64, data: &mut [u8]) {
        crate::virtio::read_config_bytes(&self.mac, offset, data);
    }

    fn activate(&mut self, ctx: ActivateContext) -> Result<(), ActivateError> {
        let got = ctx.queues.len();
        let count = |got| ActivateError::QueueCount { expected: 2, got };
        let mut queues: [_; 2] = ctx.queues.try_into().map_err(|_| count(got))?;
        let queue_events: [_; 2] = ctx.queue_events.try_into().map_err(|_| count(got))?;
        let acked = ctx.acked_features;
        for queue in &mut queues {
            queue.set_event_idx(acked & VIRTIO_RING_F_EVENT_IDX != 0);
        }
        // The tap outlives a reset only as a duplicate: the worker owns the one it runs with.
        let fd = self.tap.try_clone_fd().map_err(ActivateError::Backend)?;
        let backend = |e| ActivateError::Backend(io::Error::other(e));
        let tap = Tap::from_fd(fd).map_err(backend)?;
        tap.set_offloads(features::tap_offloads(acked)).map_err(backend)?;
        let mergeable = acked & VIRTIO_NET_F_MRG_RXBUF != 0;
        let events = NetEvents::new(
            ctx.mem,
            queues,
            queue_events,
            ctx.interrupt,
            tap,
            mergeable,
            self.counters.clone(),
        )
        .map_err(ActivateError::Backend)?;
        self.worker = Some(Worker::spawn("aci-virtio-net", events).map_err(ActivateError::StartWorker)?);
        Ok(())
    }

    fn reset(&mut self) {
        self.worker = None;
    }

    fn counters(&self) -> Arc<DeviceCounters> {
        self.counters.clone()
    }
}
