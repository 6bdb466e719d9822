//! virtio-blk over a host file: read-only or read-write, flush, `GET_ID`.
//!
//! - [`handler`]: request parsing and I/O against a [`handler::BlockBackend`] (pure).
//! - [`device`]: the [`crate::virtio::VirtioDevice`] (features, config space, activation).

pub mod device;
pub mod handler;

pub use device::{Block, BlockError};
