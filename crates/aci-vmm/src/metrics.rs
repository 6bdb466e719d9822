//! Per-VM metrics: the counters each virtio device's queue logic bumps, the boot timestamps,
//! and the snapshot [`crate::Vm::metrics`] returns.
//!
//! A device gets one [`DeviceCounters`] (atomics, shared by `Arc` between the device thread
//! and the [`crate::Vm`] handle); its queue logic counts completed requests, payload bytes in
//! each direction, refused requests and (vsock) connections. Nothing else is shared, so the
//! queue logic still sees no fd and no event loop.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime};

use crate::exit::ExitStats;

/// Live counters of one device, bumped by its queue logic.
#[derive(Debug, Default)]
pub struct DeviceCounters {
    requests: AtomicU64,
    bytes_to_guest: AtomicU64,
    bytes_from_guest: AtomicU64,
    errors: AtomicU64,
    connections: AtomicU64,
}

fn add(counter: &AtomicU64, n: u64) {
    counter.fetch_add(n, Ordering::Relaxed);
}

impl DeviceCounters {
    /// One request (block request, frame, vsock packet, entropy request) was completed.
    pub fn request(&self) {
        add(&self.requests, 1);
    }

    /// `n` payload bytes went to the guest (disk read, frame received, vsock data, entropy).
    pub fn to_guest(&self, n: usize) {
        add(&self.bytes_to_guest, n as u64);
    }

    /// `n` payload bytes came from the guest (disk write, frame sent, vsock data).
    pub fn from_guest(&self, n: usize) {
        add(&self.bytes_from_guest, n as u64);
    }

    /// A request was refused or failed, or a frame/packet was dropped (malformed chain,
    /// out-of-range sector, buffer too small, backend error).
    pub fn error(&self) {
        add(&self.errors, 1);
    }

    /// A connection was established (vsock: a `RESPONSE` in either direction).
    pub fn connection(&self) {
        add(&self.connections, 1);
    }

    /// The counters at this moment.
    pub fn snapshot(&self) -> DeviceCounts {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        DeviceCounts {
            requests: get(&self.requests),
            bytes_to_guest: get(&self.bytes_to_guest),
            bytes_from_guest: get(&self.bytes_from_guest),
            errors: get(&self.errors),
            connections: get(&self.connections),
        }
    }
}

/// One device's counters at one moment. Directions are the guest's view:
///
/// | device | `bytes_to_guest` | `bytes_from_guest` | `requests` | `connections` |
/// |---|---|---|---|---|
/// | block | bytes read from the disk | bytes written to the disk | requests | — |
/// | net | frame bytes received (rx) | frame bytes sent (tx) | frames | — |
/// | vsock | stream bytes host → guest (rx) | stream bytes guest → host (tx) | packets | established |
/// | rng | random bytes served | — | requests | — |
/// | fs | FUSE reply bytes (file data read, attributes, …) | FUSE request bytes (file data written, names, …) | FUSE requests | — |
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DeviceCounts {
    /// Requests, frames or packets completed.
    pub requests: u64,
    /// Payload bytes delivered to the guest.
    pub bytes_to_guest: u64,
    /// Payload bytes taken from the guest.
    pub bytes_from_guest: u64,
    /// Requests refused or failed, frames or packets dropped.
    pub errors: u64,
    /// Connections established (vsock only).
    pub connections: u64,
}

/// What kind of device a [`DeviceStats`] describes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeviceKind {
    /// virtio-blk.
    Block,
    /// virtio-net.
    Net,
    /// virtio-vsock.
    Vsock,
    /// virtio-rng.
    Rng,
    /// virtio-fs (a host directory share).
    Fs,
}

/// One device's name and counters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceStats {
    /// The name the guest knows it by: `vda`, `vdb`, … for disks, `eth0`, … for network
    /// devices, `vsock`, `rng`, `fs0`, `fs1`, … for virtio-fs shares (in `VmConfig::shares`
    /// order).
    pub name: String,
    /// Its kind.
    pub kind: DeviceKind,
    /// Its counters.
    pub counts: DeviceCounts,
}

/// When the boot reached each milestone, measured from the start of [`crate::Vm::build`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BootTimes {
    /// Wall-clock time at which [`crate::Vm::build`] started (the VM was created).
    pub created: SystemTime,
    /// [`crate::Vm::build`] returned: vCPU threads started.
    pub built: Duration,
    /// The boot vCPU first entered the guest (`KVM_RUN` at the kernel's entry point).
    pub kernel_entry: Option<Duration>,
    /// The guest's first console byte.
    pub first_console_byte: Option<Duration>,
    /// The agent's ready line (`aci-agent ready`) on the console, or
    /// [`crate::Vm::mark_agent_ready`], whichever came first.
    pub agent_ready: Option<Duration>,
}

/// Everything [`crate::Vm::metrics`] reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VmMetrics {
    /// VM exits by kind.
    pub exits: ExitStats,
    /// Per-device counters, in the order the guest sees the devices.
    pub devices: Vec<DeviceStats>,
    /// Boot milestones.
    pub boot: BootTimes,
}

impl VmMetrics {
    /// The device named `name`, if the VM has it.
    pub fn device(&self, name: &str) -> Option<&DeviceCounts> {
        self.devices.iter().find(|d| d.name == name).map(|d| &d.counts)
    }
}

/// The guest's name for device `index` of `kind` (the `index`-th of its kind).
pub fn device_name(kind: DeviceKind, index: usize) -> String {
    match kind {
        DeviceKind::Block => format!("vd{}", disk_letters(index)),
        DeviceKind::Net => format!("eth{index}"),
        DeviceKind::Vsock => "vsock".to_string(),
        DeviceKind::Rng => "rng".to_string(),
        DeviceKind::Fs => format!("fs{index}"),
    }
}

/// `a`, `b`, …, `z`, `aa`, `ab`, … as Linux names virtio disks.
fn disk_letters(index: usize) -> String {
    let mut n = index + 1;
    let mut letters = Vec::new();
    while n > 0 {
        let rem = (n - 1) % 26;
        letters.push(b'a' + rem as u8);
        n = (n - 1) / 26;
    }
    letters.reverse();
    String::from_utf8_lossy(&letters).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_snapshot_and_names_follow_linux() {
        let c = DeviceCounters::default();
        c.request();
        c.to_guest(512);
        c.from_guest(3);
        c.error();
        c.connection();
        let s = c.snapshot();
        assert_eq!(
            s,
            DeviceCounts { requests: 1, bytes_to_guest: 512, bytes_from_guest: 3, errors: 1, connections: 1 }
        );
        assert_eq!(device_name(DeviceKind::Block, 0), "vda");
        assert_eq!(device_name(DeviceKind::Block, 25), "vdz");
        assert_eq!(device_name(DeviceKind::Block, 26), "vdaa");
        assert_eq!(device_name(DeviceKind::Net, 1), "eth1");
    }
}
