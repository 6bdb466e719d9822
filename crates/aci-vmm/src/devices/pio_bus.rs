//! The port I/O bus: dispatches a vCPU's `in`/`out` to the device registered for the port.
//!
//! Unregistered ports read as zeros and ignore writes; both are counted, never fatal.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

/// What a device asks the VMM to do after a write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeviceAction {
    /// Nothing; keep running.
    None,
    /// Reset the machine (the VM ends with a guest-reset exit).
    Reset,
}

/// A device on the port I/O bus; offsets are relative to its base port.
pub trait PioDevice: Send {
    /// Fills `data` for a read at `offset`.
    fn read(&mut self, offset: u16, data: &mut [u8]);
    /// Handles a write at `offset`.
    fn write(&mut self, offset: u16, data: &[u8]) -> DeviceAction;
}

/// A device shared between vCPU threads.
pub type SharedDevice = Arc<Mutex<dyn PioDevice>>;

/// Why a device could not be registered.
#[derive(Debug, thiserror::Error)]
pub enum PioBusError {
    /// The range overlaps one already registered.
    #[error("port range {base:#x}+{len} overlaps a registered device")]
    Overlap {
        /// First port.
        base: u16,
        /// Number of ports.
        len: u16,
    },
    /// Zero-length or wrapping range.
    #[error("port range {base:#x}+{len} is empty or wraps")]
    BadRange {
        /// First port.
        base: u16,
        /// Number of ports.
        len: u16,
    },
}

/// Counts of accesses no device claimed.
#[derive(Debug, Default)]
pub struct UnhandledCounts {
    /// Reads of unregistered ports.
    pub reads: AtomicU64,
    /// Writes to unregistered ports.
    pub writes: AtomicU64,
}

/// Accesses to one port: `(port, reads, writes)`.
pub type PortCount = (u16, u64, u64);

/// Port ranges mapped to devices.
#[derive(Default)]
pub struct PioBus {
    devices: BTreeMap<u16, (u16, SharedDevice)>,
    unhandled: UnhandledCounts,
    /// Reads and writes per port, to see which device costs the exits.
    per_port: Mutex<HashMap<u16, (u64, u64)>>,
}

impl std::fmt::Debug for PioBus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let ranges: Vec<_> = self.devices.iter().map(|(b, (l, _))| (*b, *l)).collect();
        f.debug_struct("PioBus").field("ranges", &ranges).finish()
    }
}

impl PioBus {
    /// An empty bus.
    pub fn new() -> Self {
        Self::default()
    }

    /// Registers `device` for ports `base..base + len`.
    pub fn register(&mut self, base: u16, len: u16, device: SharedDevice) -> Result<(), PioBusError> {
        let end = base.checked_add(len).filter(|_| len > 0);
        let Some(end) = end else {
            return Err(PioBusError::BadRange { base, len });
        };
        let before = self.devices.range(..end).next_back();
        if before.is_some_and(|(b, (l, _))| u32::from(*b) + u32::from(*l) > u32::from(base)) {
            return Err(PioBusError::Overlap { base, len });
        }
        self.devices.insert(base, (len, device));
        Ok(())
    }

    fn find(&self, port: u16) -> Option<(u16, &SharedDevice)> {
        let (base, (len, device)) = self.devices.range(..=port).next_back()?;
        (u32::from(port) < u32::from(*base) + u32::from(*len)).then_some((port - base, device))
    }

    /// Handles an `in` from `port`.
    pub fn read(&self, port: u16, data: &mut [u8]) {
        lock(&self.per_port).entry(port).or_default().0 += 1;
        match self.find(port) {
            Some((offset, device)) => lock(device).read(offset, data),
            None => {
                data.fill(0);
                self.unhandled.reads.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    /// Handles an `out` to `port`.
    pub fn write(&self, port: u16, data: &[u8]) -> DeviceAction {
        lock(&self.per_port).entry(port).or_default().1 += 1;
        match self.find(port) {
            Some((offset, device)) => lock(device).write(offset, data),
            None => {
                self.unhandled.writes.fetch_add(1, Ordering::Relaxed);
                DeviceAction::None
            }
        }
    }

    /// Accesses no device claimed.
    pub fn unhandled(&self) -> &UnhandledCounts {
        &self.unhandled
    }

    /// Accesses per port, busiest first.
    pub fn port_counts(&self) -> Vec<PortCount> {
        let mut counts: Vec<PortCount> =
            lock(&self.per_port).iter().map(|(port, (r, w))| (*port, *r, *w)).collect();
        counts.sort_by_key(|(port, r, w)| (std::cmp::Reverse(r + w), *port));
        counts
    }
}

/// Locks a device, recovering from a poisoned lock (a panicked vCPU thread must not take the
/// console down with it).
pub fn lock<T: ?Sized>(device: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    device.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Recorder(Vec<(u16, u8)>);

    impl PioDevice for Recorder {
        fn read(&mut self, offset: u16, data: &mut [u8]) {
            data.fill(0xa0 + offset as u8);
        }
        fn write(&mut self, offset: u16, data: &[u8]) -> DeviceAction {
            self.0.push((offset, data[0]));
            if data[0] == 0xfe {
                DeviceAction::Reset
            } else {
                DeviceAction::None
            }
        }
    }

    #[test]
    fn accesses_reach_the_device_at_their_offset() {
        let dev = Arc::new(Mutex::new(Recorder(Vec::new())));
        let mut bus = PioBus::new();
        bus.register(0x3f8, 8, dev.clone()).unwrap();
        let mut byte = [0u8];
        bus.read(0x3fd, &mut byte);
        assert_eq!(byte, [0xa5]);
        assert_eq!(bus.write(0x3f8, b"x"), DeviceAction::None);
        assert_eq!(bus.write(0x3ff, &[0xfe]), DeviceAction::Reset);
        assert_eq!(lock(&dev).0, vec![(0, b'x'), (7, 0xfe)]);
    }

    #[test]
    fn unregistered_ports_read_zero_and_are_counted() {
        let mut bus = PioBus::new();
        bus.register(0x60, 1, Arc::new(Mutex::new(Recorder(Vec::new())))).unwrap();
        let mut data = [0xffu8; 4];
        bus.read(0x61, &mut data);
        assert_eq!(data, [0; 4]);
        bus.read(0x5f, &mut data[..1]);
        assert_eq!(bus.write(0x80, &[1]), DeviceAction::None);
        assert_eq!(bus.unhandled().reads.load(Ordering::Relaxed), 2);
        assert_eq!(bus.unhandled().writes.load(Ordering::Relaxed), 1);
        assert_eq!(bus.port_counts(), vec![(0x5f, 1, 0), (0x61, 1, 0), (0x80, 0, 1)]);
    }

    #[test]
    fn overlapping_ranges_are_refused() {
        let mut bus = PioBus::new();
        let dev = || -> SharedDevice { Arc::new(Mutex::new(Recorder(Vec::new()))) };
        bus.register(0x70, 2, dev()).unwrap();
        assert!(matches!(bus.register(0x71, 1, dev()), Err(PioBusError::Overlap { .. })));
        assert!(matches!(bus.register(0x6f, 2, dev()), Err(PioBusError::Overlap { .. })));
        assert!(matches!(bus.register(0x10, 0, dev()), Err(PioBusError::BadRange { .. })));
        bus.register(0x72, 1, dev()).unwrap();
        bus.register(0x6e, 2, dev()).unwrap();
    }
}
