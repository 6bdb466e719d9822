//! virtio-rng: the guest's `/dev/hwrng` (and the kernel's entropy pool) fed from the host's
//! `getrandom(2)`.
//!
//! - [`handler`]: fills the driver's writable buffers from an [`handler::EntropySource`]
//!   (pure).
//! - [`device`]: the [`crate::virtio::VirtioDevice`] (one queue, no configuration space).

pub mod device;
pub mod handler;

pub use device::Rng;
