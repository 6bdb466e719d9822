//! The virtio-blk device: a host file, its features and configuration space.

use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::FileExt;
use std::path::PathBuf;
use std::sync::Arc;

use crate::config::DiskConfig;
use crate::metrics::DeviceCounters;
use crate::virtio::block::handler::{BlockBackend, BlockHandler, DiskInfo, ID_LEN, SECTOR_SIZE};
use crate::virtio::event_loop::Worker;
use crate::virtio::single_queue;
use crate::virtio::{device_type, ActivateContext, ActivateError, VirtioDevice, VIRTIO_F_VERSION_1};

/// `VIRTIO_BLK_F_SEG_MAX`: `seg_max` in the config space is valid.
pub const VIRTIO_BLK_F_SEG_MAX: u64 = 1 << 2;
/// `VIRTIO_BLK_F_RO`: the disk is read-only.
pub const VIRTIO_BLK_F_RO: u64 = 1 << 5;
/// `VIRTIO_BLK_F_FLUSH`: the flush command is supported.
pub const VIRTIO_BLK_F_FLUSH: u64 = 1 << 9;
/// Queue size.
const QUEUE_SIZE: u16 = 256;
/// Largest number of data segments per request (the queue size less header and status).
const SEG_MAX: u32 = QUEUE_SIZE as u32 - 2;

/// Why a disk could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum BlockError {
    /// The backing file could not be opened.
    #[error("could not open disk image {path}")]
    OpenImage {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: io::Error,
    },
    /// The backing file's size could not be read.
    #[error("could not read the size of disk image {path}")]
    ReadSize {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: io::Error,
    },
}

/// A host file as a [`BlockBackend`].
#[derive(Debug)]
pub struct FileBackend(File);

impl BlockBackend for FileBackend {
    fn read_at(&mut self, buf: &mut [u8], offset: u64) -> io::Result<()> {
        self.0.read_exact_at(buf, offset)
    }
    fn write_at(&mut self, buf: &[u8], offset: u64) -> io::Result<()> {
        self.0.write_all_at(buf, offset)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.0.sync_data()
    }
}

/// A virtio-blk device backed by a host file.
#[derive(Debug)]
pub struct Block {
    file: File,
    info: DiskInfo,
    config: [u8; 16],
    worker: Option<Worker>,
    counters: Arc<DeviceCounters>,
}

impl Block {
    /// Opens the disk `config` describes (read-only disks open the file read-only).
    pub fn open(config: &DiskConfig) -> Result<Self, BlockError> {
        let file = OpenOptions::new()
            .read(true)
            .write(!config.read_only)
            .open(&config.path)
            .map_err(|source| BlockError::OpenImage { path: config.path.clone(), source })?;
        let len = file
            .metadata()
            .map_err(|source| BlockError::ReadSize { path: config.path.clone(), source })?
            .len();
        let mut id = [0u8; ID_LEN];
        let serial = config.serial.as_deref().unwrap_or_default().as_bytes();
        let n = serial.len().min(ID_LEN);
        id[..n].copy_from_slice(&serial[..n]);
        let sectors = len / SECTOR_SIZE;
        let mut space = [0u8; 16];
        space[..8].copy_from_slice(&sectors.to_le_bytes());
        space[12..16].copy_from_slice(&SEG_MAX.to_le_bytes());
        let info = DiskInfo { sectors, read_only: config.read_only, id };
        Ok(Self { file, info, config: space, worker: None, counters: Arc::default() })
    }
}

impl VirtioDevice for Block {
    fn device_type(&self) -> u32 {
        device_type::BLOCK
    }

    fn queue_max_sizes(&self) -> &[u16] {
        &[QUEUE_SIZE]
    }

    fn features(&self) -> u64 {
        let ro = if self.info.read_only { VIRTIO_BLK_F_RO } else { 0 };
        VIRTIO_F_VERSION_1 | VIRTIO_BLK_F_SEG_MAX | VIRTIO_BLK_F_FLUSH | ro
    }

    fn read_config(&self, offset: u64, data: &mut [u8]) {
        crate::virtio::read_config_bytes(&self.config, offset, data);
    }

    fn activate(&mut self, ctx: ActivateContext) -> Result<(), ActivateError> {
        let file = self.file.try_clone().map_err(ActivateError::Backend)?;
        let handler =
            BlockHandler::new(FileBackend(file), self.info.clone()).with_counters(self.counters.clone());
        self.worker = Some(single_queue::activate(ctx, "aci-virtio-blk", handler)?);
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
    fn config_space_and_features_describe_the_file() {
        let dir = std::env::temp_dir().join(format!("aci-blk-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("disk.img");
        std::fs::write(&path, vec![0u8; 4096 + 100]).unwrap();
        let config = DiskConfig { path, read_only: true, serial: Some("serial-1".into()) };
        let block = Block::open(&config).unwrap();
        let mut capacity = [0u8; 8];
        block.read_config(0, &mut capacity);
        assert_eq!(u64::from_le_bytes(capacity), 8);
        assert_ne!(block.features() & VIRTIO_BLK_F_RO, 0);
        assert_ne!(block.features() & VIRTIO_BLK_F_FLUSH, 0);
        assert_eq!(&block.info.id[..9], b"serial-1\0");
        std::fs::remove_dir_all(dir).unwrap();
    }
}
