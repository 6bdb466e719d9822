//! virtio-vsock with a host side of Unix sockets (Firecracker-compatible), the host ↔ agent
//! channel.
//!
//! - [`packet`]: the packet header.
//! - [`handler`]: RX/TX queue logic against a [`handler::VsockBackend`] (pure).
//! - [`conn`]: one connection's state machine and credit accounting (no fds of its own).
//! - [`muxer`]: the Unix-socket backend: listener, `CONNECT` handshake, connections.
//! - [`event`]: the device thread's reaction to queue notifications and socket readiness.
//! - [`device`]: the [`crate::virtio::VirtioDevice`] (guest CID config, activation).

pub mod conn;
pub mod device;
pub mod event;
pub mod handler;
pub mod muxer;
pub mod packet;

pub use device::{Vsock, VsockError};
