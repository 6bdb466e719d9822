//! virtio-blk request processing: pure queue logic over guest memory, a virtqueue and a
//! [`BlockBackend`]. No fds, no event loop: the event glue calls [`BlockHandler::process_queue`]
//! when the driver notifies.
//!
//! A request is a 16-byte header (type, reserved, sector) in driver-readable buffers, then
//! data (readable for writes, writable for reads), then one writable status byte.

use std::io::{self, Read, Write};
use std::sync::Arc;

use virtio_queue::{Queue, QueueT, Reader, Writer};

use crate::memory::GuestMem;
use crate::metrics::DeviceCounters;
use crate::virtio::chain::validate_chain;

/// Sector size of the virtio-blk protocol.
pub const SECTOR_SIZE: u64 = 512;
/// Length of the `GET_ID` answer.
pub const ID_LEN: usize = 20;
/// Bytes copied per backend call, bounding the bounce buffer whatever the guest sends.
const CHUNK: usize = 128 << 10;

/// Request types.
mod req {
    pub const IN: u32 = 0;
    pub const OUT: u32 = 1;
    pub const FLUSH: u32 = 4;
    pub const GET_ID: u32 = 8;
}

/// Status byte values.
pub mod blk_status {
    /// Success.
    pub const OK: u8 = 0;
    /// I/O error (also: out of range, write to a read-only disk).
    pub const IOERR: u8 = 1;
    /// Unknown request type.
    pub const UNSUPP: u8 = 2;
}

/// Where the disk's bytes live (a host file, or memory in tests).
pub trait BlockBackend: Send {
    /// Fills `buf` from byte `offset`.
    fn read_at(&mut self, buf: &mut [u8], offset: u64) -> io::Result<()>;
    /// Writes `buf` at byte `offset`.
    fn write_at(&mut self, buf: &[u8], offset: u64) -> io::Result<()>;
    /// Makes written data durable.
    fn flush(&mut self) -> io::Result<()>;
}

/// Why the queue could not be processed (the guest broke the ring; the device stops).
#[derive(Debug, thiserror::Error)]
pub enum BlockQueueError {
    /// A used-ring update failed.
    #[error("could not add a used-ring entry")]
    AddUsed(#[source] virtio_queue::Error),
}

/// What the handler knows about the disk.
#[derive(Debug, Clone)]
pub struct DiskInfo {
    /// Size in 512-byte sectors.
    pub sectors: u64,
    /// Writes are refused.
    pub read_only: bool,
    /// The `GET_ID` answer, NUL-padded.
    pub id: [u8; ID_LEN],
}

/// Serves block requests from one queue.
pub struct BlockHandler<B> {
    backend: B,
    info: DiskInfo,
    buf: Vec<u8>,
    counters: Arc<DeviceCounters>,
}

impl<B: BlockBackend> BlockHandler<B> {
    /// A handler for `backend`, described by `info`.
    pub fn new(backend: B, info: DiskInfo) -> Self {
        Self { backend, info, buf: Vec::new(), counters: Arc::default() }
    }

    /// Counts into `counters` (requests, bytes read and written, failed requests).
    pub fn with_counters(mut self, counters: Arc<DeviceCounters>) -> Self {
        self.counters = counters;
        self
    }

    /// The counters.
    pub fn counters(&self) -> &DeviceCounters {
        &self.counters
    }

    /// The backend (tests look at what was written).
    pub fn backend(&self) -> &B {
        &self.backend
    }

    /// Serves every available request; returns whether any used entry was added.
    pub fn process_queue(&mut self, mem: &GuestMem, queue: &mut Queue) -> Result<bool, BlockQueueError> {
        let mut used = false;
        while let Some(chain) = queue.pop_descriptor_chain(mem) {
            let head = chain.head_index();
            self.counters.request();
            let valid = validate_chain(mem, queue, head).is_ok();
            let len = match (valid, Reader::new(mem, chain.clone()), Writer::new(mem, chain)) {
                (true, Ok(reader), Ok(writer)) => self.execute(reader, writer),
                _ => {
                    self.counters.error();
                    0
                }
            };
            queue.add_used(mem, head, len).map_err(BlockQueueError::AddUsed)?;
            used = true;
        }
        Ok(used)
    }

    /// Runs one request; returns the bytes written to the guest (data plus status).
    fn execute(&mut self, mut reader: Reader<'_>, mut writer: Writer<'_>) -> u32 {
        let Some(data_len) = writer.available_bytes().checked_sub(1) else {
            self.counters.error();
            return 0; // no room for a status byte: nothing can be reported
        };
        let Ok(mut status_writer) = writer.split_at(data_len) else {
            self.counters.error();
            return 0;
        };
        let mut header = [0u8; 16];
        let (status, written) = match reader.read_exact(&mut header) {
            Err(_) => (blk_status::IOERR, 0),
            Ok(()) => {
                let kind = u32::from_le_bytes([header[0], header[1], header[2], header[3]]);
                let mut sector = [0u8; 8];
                sector.copy_from_slice(&header[8..]);
                self.request(kind, u64::from_le_bytes(sector), &mut reader, &mut writer)
            }
        };
        if status != blk_status::OK {
            self.counters.error();
        }
        if status_writer.write_all(&[status]).is_err() {
            return 0;
        }
        u32::try_from(written + 1).unwrap_or(u32::MAX)
    }

    fn request(
        &mut self,
        kind: u32,
        sector: u64,
        reader: &mut Reader<'_>,
        writer: &mut Writer<'_>,
    ) -> (u8, usize) {
        let result = match kind {
            req::IN => self.read(sector, writer).inspect(|n| self.counters.to_guest(*n)),
            req::OUT if self.info.read_only => Err(io::ErrorKind::PermissionDenied.into()),
            req::OUT => self.write(sector, reader).map(|n| {
                self.counters.from_guest(n);
                0
            }),
            req::FLUSH if self.info.read_only => Ok(0),
            req::FLUSH => self.backend.flush().map(|()| 0),
            req::GET_ID => {
                let n = writer.available_bytes().min(ID_LEN);
                writer.write_all(&self.info.id[..n]).map(|()| n)
            }
            _ => return (blk_status::UNSUPP, 0),
        };
        match result {
            Ok(written) => (blk_status::OK, written),
            Err(_) => (blk_status::IOERR, 0),
        }
    }

    /// Checks `len` bytes at `sector` lie inside the disk; returns the byte offset.
    fn range(&self, sector: u64, len: usize) -> io::Result<u64> {
        let end_ok = sector
            .checked_mul(SECTOR_SIZE)
            .and_then(|start| start.checked_add(len as u64).map(|end| (start, end)))
            .filter(|(_, end)| *end <= self.info.sectors * SECTOR_SIZE);
        end_ok.map(|(start, _)| start).ok_or_else(|| io::ErrorKind::InvalidInput.into())
    }

    fn read(&mut self, sector: u64, writer: &mut Writer<'_>) -> io::Result<usize> {
        let len = writer.available_bytes();
        let mut offset = self.range(sector, len)?;
        let mut left = len;
        while left > 0 {
            let n = left.min(CHUNK);
            self.buf.resize(n, 0);
            self.backend.read_at(&mut self.buf[..n], offset)?;
            writer.write_all(&self.buf[..n])?;
            offset += n as u64;
            left -= n;
        }
        Ok(len)
    }

    fn write(&mut self, sector: u64, reader: &mut Reader<'_>) -> io::Result<usize> {
        let len = reader.available_bytes();
        let mut offset = self.range(sector, len)?;
        let mut left = len;
        while left > 0 {
            let n = left.min(CHUNK);
            self.buf.resize(n, 0);
            reader.read_exact(&mut self.buf[..n])?;
            self.backend.write_at(&self.buf[..n], offset)?;
            offset += n as u64;
            left -= n;
        }
        Ok(len)
    }
}

impl<B: BlockBackend + 'static> crate::virtio::single_queue::QueueProcessor for BlockHandler<B> {
    type Error = BlockQueueError;

    fn process_queue(&mut self, mem: &GuestMem, queue: &mut Queue) -> Result<bool, BlockQueueError> {
        BlockHandler::process_queue(self, mem, queue)
    }
}

#[cfg(test)]
#[path = "handler_tests.rs"]
mod tests;
