//! virtio-net over a host tap device, without offloads.
//!
//! - [`handler`]: frames between the RX/TX queues and a [`handler::NetBackend`] (pure).
//! - [`tap`]: the tap backend (opened by name or handed in as an fd).
//! - [`event`]: the device thread's reaction to queue notifications and tap readiness.
//! - [`device`]: the [`crate::virtio::VirtioDevice`] (MAC in the config space, activation).

pub mod device;
pub mod event;
pub mod handler;
pub mod tap;

pub use device::{Net, NetError};
