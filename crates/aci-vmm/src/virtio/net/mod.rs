//! virtio-net over a host tap device, with checksum/segmentation offloads when the tap has
//! `IFF_VNET_HDR`, mergeable receive buffers and `EVENT_IDX` notification suppression.
//!
//! - [`features`]: the feature bits offered and the tap offloads they map to.
//! - [`used`]: batched used-ring publication and the interrupt decision.
//! - [`handler`]: frames between the RX/TX queues and a [`handler::NetBackend`] (pure).
//! - [`tap`]: the tap backend (opened by name or handed in as an fd).
//! - [`event`]: the device thread's reaction to queue notifications and tap readiness.
//! - [`device`]: the [`crate::virtio::VirtioDevice`] (MAC in the config space, activation).

pub mod device;
pub mod event;
pub mod features;
pub mod handler;
pub mod tap;
pub mod used;

pub use device::{Net, NetError};
