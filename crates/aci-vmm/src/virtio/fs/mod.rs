//! virtio-fs: a host directory shared with the guest, served in the VMM process.
//!
//! The guest's virtio-fs driver sends FUSE requests over two queues (0: high priority,
//! `FORGET`/`INTERRUPT`; 1: requests). Each request is checked by [`policy`] (known opcodes
//! only; no `..` lookups; no device nodes; a read-only share refuses every change with
//! `EROFS`), then answered by fuse-backend-rs's FUSE server over its passthrough filesystem
//! rooted at the shared directory ([`backend`]).
//!
//! - [`policy`]: what may reach the filesystem (pure: a request header in, a verdict out).
//! - [`handler`]: the queue logic: chain checks, the policy, the server, the used ring
//!   (no fds, no event loop; unit-tested with queues in memory and a real passthrough
//!   filesystem on a temporary directory).
//! - [`event`]: the device thread's reaction to the two queues' notifications.
//! - [`init`]: the `INIT` reply widened to 1 MiB requests.
//! - [`backend`]: the passthrough filesystem and FUSE server for one directory.
//! - [`stable_dirs`] and [`listing`]: directory reads answered from a listing per open
//!   directory, so removing entries while reading (`rm -rf`) skips none.
//! - [`device`]: the [`crate::virtio::VirtioDevice`] (type 26, tag + queue-count config).

pub mod backend;
pub mod device;
pub mod event;
pub mod handler;
pub mod init;
pub mod listing;
pub mod policy;
pub mod stable_dirs;

pub use device::{Fs, FsError};
