//! Boot step 4b: the configured virtio devices on the MMIO bus. Each gets a 4 KiB window from
//! [`VIRTIO_MMIO_BASE`] up and the next free IOAPIC pin; its interrupt eventfd becomes an irqfd
//! on that GSI and each queue's notification eventfd an ioeventfd on `QueueNotify` (data match
//! = queue index), so notifications never stop a vCPU in user space. The guest learns of the
//! devices from `virtio_mmio.device=4K@<addr>:<irq>` command-line entries.

use std::sync::{Arc, Mutex};

use kvm_ioctls::{IoEventAddress, VmFd};

use crate::config::VmConfig;
use crate::devices::mmio_bus::{MmioBus, MmioBusError};
use crate::memory::GuestMem;
use crate::virtio::block::{Block, BlockError};
use crate::virtio::fs::{Fs, FsError};
use crate::virtio::mmio::{MmioTransport, TransportError, MMIO_WINDOW, QUEUE_NOTIFY_OFFSET};
use crate::virtio::net::{Net, NetError};
use crate::virtio::vsock::{Vsock, VsockError};
use crate::virtio::VirtioDevice;

/// First virtio-mmio window, in the 32-bit MMIO gap.
pub const VIRTIO_MMIO_BASE: u64 = 0xd000_0000;

/// IOAPIC pins free for virtio devices, in the order handed out: the MP table routes all 24
/// pins; 0-2 (timer, keyboard, cascade), 3-4 (COM2/COM1), 8 (RTC) and 13 (FPU) are taken.
pub const VIRTIO_IRQS: [u32; 17] = [5, 6, 7, 9, 10, 11, 12, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23];

/// Why the virtio devices could not be attached.
#[derive(Debug, thiserror::Error)]
pub enum AttachError {
    /// More devices than free interrupt lines.
    #[error("{0} virtio devices requested; at most {max} fit", max = VIRTIO_IRQS.len())]
    TooManyDevices(usize),
    /// A disk could not be opened.
    #[error("could not set up disk {index}")]
    OpenDisk {
        /// Its position in `VmConfig::disks`.
        index: usize,
        /// What failed.
        #[source]
        source: BlockError,
    },
    /// A network device could not be set up.
    #[error("could not set up network device {index}")]
    OpenNet {
        /// Its position in `VmConfig::nets`.
        index: usize,
        /// What failed.
        #[source]
        source: NetError,
    },
    /// A virtio-fs share could not be set up.
    #[error("could not set up virtio-fs share {index}")]
    OpenShare {
        /// Its position in `VmConfig::shares`.
        index: usize,
        /// What failed (names the tag or the directory).
        #[source]
        source: FsError,
    },
    /// The vsock device could not be set up.
    #[error("could not set up the vsock device")]
    CreateVsock(#[source] VsockError),
    /// The transport's eventfds could not be created.
    #[error("could not create the virtio-mmio transport")]
    CreateTransport(#[source] TransportError),
    /// KVM refused the interrupt eventfd.
    #[error("could not register the irqfd for GSI {gsi}")]
    RegisterIrqfd {
        /// The GSI.
        gsi: u32,
        /// The KVM error.
        #[source]
        source: kvm_ioctls::Error,
    },
    /// KVM refused a queue notification eventfd.
    #[error("could not register the ioeventfd at {addr:#x}")]
    RegisterIoevent {
        /// The `QueueNotify` address.
        addr: u64,
        /// The KVM error.
        #[source]
        source: kvm_ioctls::Error,
    },
    /// The window overlaps another device.
    #[error("could not place the device on the MMIO bus")]
    AddToBus(#[source] MmioBusError),
}

/// The devices `config` asks for: disks in order, then network devices, then vsock, then rng,
/// then the virtio-fs shares in order.
pub fn devices_from_config(config: &VmConfig) -> Result<Vec<Box<dyn VirtioDevice>>, AttachError> {
    let mut devices: Vec<Box<dyn VirtioDevice>> = Vec::new();
    for (index, disk) in config.disks.iter().enumerate() {
        let block = Block::open(disk).map_err(|source| AttachError::OpenDisk { index, source })?;
        devices.push(Box::new(block));
    }
    for (index, net) in config.nets.iter().enumerate() {
        let dev = Net::new(net).map_err(|source| AttachError::OpenNet { index, source })?;
        devices.push(Box::new(dev));
    }
    if let Some(vsock) = &config.vsock {
        devices.push(Box::new(Vsock::new(vsock).map_err(AttachError::CreateVsock)?));
    }
    if config.rng {
        devices.push(Box::new(crate::virtio::rng::Rng::new()));
    }
    for (index, share) in config.shares.iter().enumerate() {
        let fs = Fs::new(share).map_err(|source| AttachError::OpenShare { index, source })?;
        devices.push(Box::new(fs));
    }
    Ok(devices)
}

/// Where one device landed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Placement {
    /// Base of its MMIO window.
    pub addr: u64,
    /// Its GSI (IOAPIC pin).
    pub irq: u32,
}

impl Placement {
    /// The kernel command-line entry that declares the device.
    pub fn cmdline_entry(&self) -> String {
        format!("virtio_mmio.device={}K@{:#x}:{}", MMIO_WINDOW >> 10, self.addr, self.irq)
    }
}

/// The placement of device `index`, if there is a free line for it.
pub fn placement(index: usize) -> Option<Placement> {
    let irq = *VIRTIO_IRQS.get(index)?;
    Some(Placement { addr: VIRTIO_MMIO_BASE + MMIO_WINDOW * index as u64, irq })
}

/// Puts each device behind a transport on `bus` and wires its interrupt and notifications
/// with KVM. Returns the placements, in device order.
pub fn attach_devices(
    vm: &VmFd,
    mem: &GuestMem,
    bus: &mut MmioBus,
    devices: Vec<Box<dyn VirtioDevice>>,
) -> Result<Vec<Placement>, AttachError> {
    let count = devices.len();
    let mut placements = Vec::with_capacity(count);
    for (index, device) in devices.into_iter().enumerate() {
        let place = placement(index).ok_or(AttachError::TooManyDevices(count))?;
        let transport = MmioTransport::new(device, mem.clone()).map_err(AttachError::CreateTransport)?;
        vm.register_irqfd(transport.interrupt().eventfd(), place.irq)
            .map_err(|source| AttachError::RegisterIrqfd { gsi: place.irq, source })?;
        let addr = place.addr + QUEUE_NOTIFY_OFFSET;
        for (queue, event) in (0u32..).zip(transport.queue_events()) {
            vm.register_ioevent(event, &IoEventAddress::Mmio(addr), queue)
                .map_err(|source| AttachError::RegisterIoevent { addr, source })?;
        }
        bus.register(place.addr, MMIO_WINDOW, Arc::new(Mutex::new(transport)))
            .map_err(AttachError::AddToBus)?;
        placements.push(place);
    }
    Ok(placements)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placements_use_free_pins_and_distinct_windows() {
        let first = placement(0).unwrap();
        assert_eq!(first.cmdline_entry(), "virtio_mmio.device=4K@0xd0000000:5");
        assert_eq!(placement(3).unwrap(), Placement { addr: 0xd000_3000, irq: 9 });
        assert!(placement(VIRTIO_IRQS.len()).is_none());
        for irq in [0, 1, 2, 4, 8, 13] {
            assert!(!VIRTIO_IRQS.contains(&irq));
        }
    }
}
