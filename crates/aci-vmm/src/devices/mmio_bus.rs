//! The MMIO bus: dispatches a vCPU's memory-mapped I/O exits to the device registered for the
//! address.
//!
//! Unregistered addresses read as zeros and ignore writes; both are counted, never fatal.

use std::collections::BTreeMap;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};

use crate::devices::pio_bus::{lock, UnhandledCounts};

/// A device on the MMIO bus; offsets are relative to its base address.
pub trait MmioDevice: Send {
    /// Fills `data` for a read at `offset`.
    fn read(&mut self, offset: u64, data: &mut [u8]);
    /// Handles a write at `offset`.
    fn write(&mut self, offset: u64, data: &[u8]);
}

/// A device shared between vCPU threads.
pub type SharedMmioDevice = Arc<Mutex<dyn MmioDevice>>;

/// Why a device could not be registered.
#[derive(Debug, thiserror::Error)]
pub enum MmioBusError {
    /// The range overlaps one already registered.
    #[error("MMIO range {base:#x}+{len:#x} overlaps a registered device")]
    Overlap {
        /// First address.
        base: u64,
        /// Length in bytes.
        len: u64,
    },
    /// Zero-length or wrapping range.
    #[error("MMIO range {base:#x}+{len:#x} is empty or wraps")]
    BadRange {
        /// First address.
        base: u64,
        /// Length in bytes.
        len: u64,
    },
}

/// Address ranges mapped to devices.
#[derive(Default)]
pub struct MmioBus {
    devices: BTreeMap<u64, (u64, SharedMmioDevice)>,
    unhandled: UnhandledCounts,
}

impl std::fmt::Debug for MmioBus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let ranges: Vec<_> = self.devices.iter().map(|(b, (l, _))| (*b, *l)).collect();
        f.debug_struct("MmioBus").field("ranges", &ranges).finish()
    }
}

impl MmioBus {
    /// An empty bus.
    pub fn new() -> Self {
        Self::default()
    }

    /// Registers `device` for addresses `base..base + len`.
    pub fn register(&mut self, base: u64, len: u64, device: SharedMmioDevice) -> Result<(), MmioBusError> {
        let Some(end) = base.checked_add(len).filter(|_| len > 0) else {
            return Err(MmioBusError::BadRange { base, len });
        };
        let before = self.devices.range(..end).next_back();
        if before.is_some_and(|(b, (l, _))| u128::from(*b) + u128::from(*l) > u128::from(base)) {
            return Err(MmioBusError::Overlap { base, len });
        }
        self.devices.insert(base, (len, device));
        Ok(())
    }

    fn find(&self, addr: u64) -> Option<(u64, &SharedMmioDevice)> {
        let (base, (len, device)) = self.devices.range(..=addr).next_back()?;
        (addr - base < *len).then_some((addr - base, device))
    }

    /// Handles a read of `data.len()` bytes at `addr`.
    pub fn read(&self, addr: u64, data: &mut [u8]) {
        match self.find(addr) {
            Some((offset, device)) => lock(device).read(offset, data),
            None => {
                data.fill(0);
                self.unhandled.reads.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    /// Handles a write of `data` at `addr`.
    pub fn write(&self, addr: u64, data: &[u8]) {
        match self.find(addr) {
            Some((offset, device)) => lock(device).write(offset, data),
            None => {
                self.unhandled.writes.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    /// Accesses no device claimed.
    pub fn unhandled(&self) -> &UnhandledCounts {
        &self.unhandled
    }

    /// Reads of unregistered addresses so far.
    pub fn unhandled_reads(&self) -> u64 {
        self.unhandled.reads.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Echo(Vec<(u64, Vec<u8>)>);

    impl MmioDevice for Echo {
        fn read(&mut self, offset: u64, data: &mut [u8]) {
            data.fill(offset as u8);
        }
        fn write(&mut self, offset: u64, data: &[u8]) {
            self.0.push((offset, data.to_vec()));
        }
    }

    #[test]
    fn accesses_reach_the_device_and_the_rest_reads_zero() {
        let dev = Arc::new(Mutex::new(Echo(Vec::new())));
        let mut bus = MmioBus::new();
        bus.register(0xd000_0000, 0x1000, dev.clone()).unwrap();
        let mut data = [0xffu8; 4];
        bus.read(0xd000_0070, &mut data);
        assert_eq!(data, [0x70; 4]);
        bus.write(0xd000_0fff, &[1]);
        assert_eq!(lock(&dev).0, vec![(0xfff, vec![1])]);
        bus.read(0xd000_1000, &mut data);
        assert_eq!(data, [0; 4]);
        bus.write(0xcfff_ffff, &[1]);
        assert_eq!(bus.unhandled_reads(), 1);
        assert_eq!(bus.unhandled().writes.load(Ordering::Relaxed), 1);
    }

    #[test]
    fn overlapping_ranges_are_refused() {
        let mut bus = MmioBus::new();
        let dev = || -> SharedMmioDevice { Arc::new(Mutex::new(Echo(Vec::new()))) };
        bus.register(0x1000, 0x1000, dev()).unwrap();
        assert!(matches!(bus.register(0x1800, 0x1000, dev()), Err(MmioBusError::Overlap { .. })));
        assert!(matches!(bus.register(0x800, 0x1000, dev()), Err(MmioBusError::Overlap { .. })));
        assert!(matches!(bus.register(u64::MAX, 2, dev()), Err(MmioBusError::BadRange { .. })));
        bus.register(0x2000, 0x1000, dev()).unwrap();
    }
}
