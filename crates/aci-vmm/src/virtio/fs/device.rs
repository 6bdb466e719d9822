//! The virtio-fs device: one shared directory, its tag and queues.
//!
//! Configuration space (virtio 1.2, 5.11.4): `tag` (36 bytes, NUL-padded UTF-8) then
//! `num_request_queues` (le32, here 1). No feature bits beyond `VIRTIO_F_VERSION_1` (no
//! notification queue, no DAX window).

use std::io;
use std::path::PathBuf;
use std::sync::Arc;

use crate::config::ShareConfig;
use crate::metrics::DeviceCounters;
use crate::virtio::event_loop::Worker;
use crate::virtio::fs::backend::PassthroughServer;
use crate::virtio::fs::event::{self, QUEUE_COUNT};
use crate::virtio::fs::handler::FsHandler;
use crate::virtio::{device_type, ActivateContext, ActivateError, VirtioDevice, VIRTIO_F_VERSION_1};

/// Length of the tag field.
pub const TAG_LEN: usize = 36;
/// High-priority queue size (`FORGET`, `INTERRUPT`).
const HIPRIO_QUEUE_SIZE: u16 = 128;
/// Request queue size: bounds the descriptors of one request, so the largest FUSE read or
/// write the guest driver will send.
const REQUEST_QUEUE_SIZE: u16 = 1024;
/// Request queues offered.
const NUM_REQUEST_QUEUES: u32 = QUEUE_COUNT as u32 - 1;

/// Why a share could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum FsError {
    /// The tag is empty, longer than 36 bytes or contains NUL.
    #[error("virtio-fs tag {tag:?} is invalid: {reason}")]
    Tag {
        /// The tag.
        tag: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// The shared directory cannot be used.
    #[error("virtio-fs share {tag:?}: cannot share directory {path}")]
    Directory {
        /// The share's tag.
        tag: String,
        /// The directory.
        path: PathBuf,
        /// What failed (missing, not a directory, not UTF-8, no access).
        #[source]
        source: io::Error,
    },
}

/// A virtio-fs device sharing one host directory.
#[derive(Debug)]
pub struct Fs {
    root: PathBuf,
    read_only: bool,
    config: [u8; TAG_LEN + 4],
    worker: Option<Worker>,
    counters: Arc<DeviceCounters>,
}

impl Fs {
    /// Checks the tag and opens the directory of `share` once (a later activation opens it
    /// again, for a fresh FUSE session).
    pub fn new(share: &ShareConfig) -> Result<Self, FsError> {
        let tag = share.tag.as_bytes();
        let reason = if tag.is_empty() {
            Some("it is empty")
        } else if tag.len() > TAG_LEN {
            Some("it is longer than 36 bytes")
        } else if tag.contains(&0) {
            Some("it contains NUL")
        } else {
            None
        };
        if let Some(reason) = reason {
            return Err(FsError::Tag { tag: share.tag.clone(), reason });
        }
        let directory =
            |source| FsError::Directory { tag: share.tag.clone(), path: share.path.clone(), source };
        let root = std::fs::canonicalize(&share.path).map_err(directory)?;
        if !root.is_dir() {
            return Err(directory(io::Error::from_raw_os_error(libc::ENOTDIR)));
        }
        PassthroughServer::open(&root).map_err(directory)?;
        let mut config = [0u8; TAG_LEN + 4];
        config[..tag.len()].copy_from_slice(tag);
        config[TAG_LEN..].copy_from_slice(&NUM_REQUEST_QUEUES.to_le_bytes());
        Ok(Self { root, read_only: share.read_only, config, worker: None, counters: Arc::default() })
    }
}

impl VirtioDevice for Fs {
    fn device_type(&self) -> u32 {
        device_type::FS
    }

    fn queue_max_sizes(&self) -> &[u16] {
        &[HIPRIO_QUEUE_SIZE, REQUEST_QUEUE_SIZE]
    }

    fn features(&self) -> u64 {
        VIRTIO_F_VERSION_1
    }

    fn read_config(&self, offset: u64, data: &mut [u8]) {
        crate::virtio::read_config_bytes(&self.config, offset, data);
    }

    fn activate(&mut self, ctx: ActivateContext) -> Result<(), ActivateError> {
        let server = PassthroughServer::open(&self.root).map_err(ActivateError::Backend)?;
        let handler = FsHandler::new(server, self.read_only).with_counters(self.counters.clone());
        self.worker = Some(event::activate(ctx, "aci-virtio-fs", handler)?);
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
#[path = "device_tests.rs"]
mod transport_tests;

#[cfg(test)]
mod tests {
    use super::*;

    fn share(tag: &str, path: PathBuf) -> ShareConfig {
        ShareConfig { tag: tag.into(), path, read_only: false }
    }

    #[test]
    fn config_space_holds_the_tag_and_one_request_queue() {
        let dir = tempfile::tempdir().unwrap();
        let fs = Fs::new(&share("vol-data", dir.path().into())).unwrap();
        assert_eq!(fs.device_type(), 26);
        assert_eq!(fs.features(), VIRTIO_F_VERSION_1);
        assert_eq!(fs.queue_max_sizes().len(), 2);
        let mut tag = [0xffu8; TAG_LEN];
        fs.read_config(0, &mut tag);
        assert_eq!(&tag[..8], b"vol-data");
        assert!(tag[8..].iter().all(|b| *b == 0));
        let mut queues = [0u8; 4];
        fs.read_config(TAG_LEN as u64, &mut queues);
        assert_eq!(u32::from_le_bytes(queues), 1);
        let mut past = [0xffu8; 8];
        fs.read_config(TAG_LEN as u64 + 2, &mut past);
        assert_eq!(past, [0; 8]);
        let full = "t".repeat(TAG_LEN);
        let fs = Fs::new(&share(&full, dir.path().into())).unwrap();
        let mut tag = [0u8; TAG_LEN];
        fs.read_config(0, &mut tag);
        assert_eq!(tag, [b't'; TAG_LEN]);
    }

    #[test]
    fn bad_tags_and_directories_are_named() {
        let dir = tempfile::tempdir().unwrap();
        for (tag, reason) in [("", "empty"), (&*"x".repeat(37), "longer"), ("a\0b", "NUL")] {
            let err = Fs::new(&share(tag, dir.path().into())).unwrap_err();
            assert!(matches!(err, FsError::Tag { .. }), "{err}");
            assert!(err.to_string().contains(reason), "{err}");
        }
        let missing = dir.path().join("missing");
        let err = Fs::new(&share("data", missing.clone())).unwrap_err().to_string();
        assert!(err.contains("\"data\"") && err.contains(&missing.display().to_string()), "{err}");
        let file = dir.path().join("file");
        std::fs::write(&file, "x").unwrap();
        let err = Fs::new(&share("data", file.clone())).unwrap_err();
        assert!(err.to_string().contains(&file.display().to_string()), "{err}");
    }
}
