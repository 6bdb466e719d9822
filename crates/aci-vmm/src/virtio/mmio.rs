//! The virtio-mmio transport (virtio 1.x, "version 2" register layout, modern only): the one
//! place that knows register offsets. It presents a [`VirtioDevice`] to the driver, collects
//! feature and queue setup, and activates or resets the device as the driver's status writes
//! ask.

use std::io;

use virtio_queue::{Queue, QueueT};
use vmm_sys_util::eventfd::{EventFd, EFD_NONBLOCK};

use crate::devices::mmio_bus::MmioDevice;
use crate::memory::GuestMem;
use crate::virtio::{ActivateContext, Interrupt, VirtioDevice, VIRTIO_F_VERSION_1};

/// Size of one device's MMIO window.
pub const MMIO_WINDOW: u64 = 0x1000;

/// Register offsets (virtio 1.x, 4.2.2).
mod reg {
    pub const MAGIC: u64 = 0x000;
    pub const VERSION: u64 = 0x004;
    pub const DEVICE_ID: u64 = 0x008;
    pub const VENDOR_ID: u64 = 0x00c;
    pub const DEVICE_FEATURES: u64 = 0x010;
    pub const DEVICE_FEATURES_SEL: u64 = 0x014;
    pub const DRIVER_FEATURES: u64 = 0x020;
    pub const DRIVER_FEATURES_SEL: u64 = 0x024;
    pub const QUEUE_SEL: u64 = 0x030;
    pub const QUEUE_NUM_MAX: u64 = 0x034;
    pub const QUEUE_NUM: u64 = 0x038;
    pub const QUEUE_READY: u64 = 0x044;
    pub const QUEUE_NOTIFY: u64 = 0x050;
    pub const INTERRUPT_STATUS: u64 = 0x060;
    pub const INTERRUPT_ACK: u64 = 0x064;
    pub const STATUS: u64 = 0x070;
    pub const QUEUE_DESC_LOW: u64 = 0x080;
    pub const QUEUE_DESC_HIGH: u64 = 0x084;
    pub const QUEUE_DRIVER_LOW: u64 = 0x090;
    pub const QUEUE_DRIVER_HIGH: u64 = 0x094;
    pub const QUEUE_DEVICE_LOW: u64 = 0x0a0;
    pub const QUEUE_DEVICE_HIGH: u64 = 0x0a4;
    pub const CONFIG_GENERATION: u64 = 0x0fc;
    pub const CONFIG: u64 = 0x100;
}

/// Offset of the `QueueNotify` register (for the ioeventfd).
pub const QUEUE_NOTIFY_OFFSET: u64 = reg::QUEUE_NOTIFY;

const MAGIC: u32 = 0x7472_6976; // "virt"
const VERSION: u32 = 2;
const VENDOR: u32 = 0x0041_4349; // "ACI"

/// Device status bits (virtio 1.x, 2.1).
pub mod status {
    /// The guest noticed the device.
    pub const ACKNOWLEDGE: u32 = 1;
    /// The guest has a driver for it.
    pub const DRIVER: u32 = 2;
    /// The driver is ready: the device may use its queues.
    pub const DRIVER_OK: u32 = 4;
    /// Feature negotiation is complete.
    pub const FEATURES_OK: u32 = 8;
    /// The device hit an error it cannot recover from.
    pub const DEVICE_NEEDS_RESET: u32 = 0x40;
    /// The driver gave up on the device.
    pub const FAILED: u32 = 0x80;
}

/// Why a transport could not be created.
#[derive(Debug, thiserror::Error)]
pub enum TransportError {
    /// The device declares a queue size virtio-queue refuses (0, not a power of 2, > 32768).
    #[error("the device declares an invalid queue size")]
    CreateQueue(#[source] virtio_queue::Error),
    /// An eventfd (interrupt or queue notification) could not be created.
    #[error("could not create an eventfd")]
    CreateEventFd(#[source] io::Error),
}

/// A virtio device behind virtio-mmio registers.
pub struct MmioTransport {
    device: Box<dyn VirtioDevice>,
    mem: GuestMem,
    interrupt: Interrupt,
    queues: Vec<Queue>,
    queue_events: Vec<EventFd>,
    queue_sel: u32,
    device_features_sel: u32,
    driver_features_sel: u32,
    acked_features: u64,
    status: u32,
    config_generation: u32,
    activated: bool,
}

impl std::fmt::Debug for MmioTransport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MmioTransport")
            .field("device_type", &self.device.device_type())
            .field("status", &self.status)
            .field("activated", &self.activated)
            .finish_non_exhaustive()
    }
}

impl MmioTransport {
    /// Wraps `device`; its queues start unconfigured. Creates the interrupt and one
    /// notification eventfd per queue.
    pub fn new(device: Box<dyn VirtioDevice>, mem: GuestMem) -> Result<Self, TransportError> {
        let queues = new_queues(device.queue_max_sizes()).map_err(TransportError::CreateQueue)?;
        let queue_events = queues
            .iter()
            .map(|_| EventFd::new(EFD_NONBLOCK))
            .collect::<io::Result<Vec<_>>>()
            .map_err(TransportError::CreateEventFd)?;
        Ok(Self {
            device,
            mem,
            interrupt: Interrupt::new().map_err(TransportError::CreateEventFd)?,
            queues,
            queue_events,
            queue_sel: 0,
            device_features_sel: 0,
            driver_features_sel: 0,
            acked_features: 0,
            status: 0,
            config_generation: 0,
            activated: false,
        })
    }

    /// The interrupt (register its eventfd with KVM as an irqfd).
    pub fn interrupt(&self) -> &Interrupt {
        &self.interrupt
    }

    /// The notification eventfds, by queue index (register each as an ioeventfd on
    /// `QueueNotify` with the queue index as data match).
    pub fn queue_events(&self) -> &[EventFd] {
        &self.queue_events
    }

    /// The device status register.
    pub fn status(&self) -> u32 {
        self.status
    }

    /// The features the driver accepted.
    pub fn acked_features(&self) -> u64 {
        self.acked_features
    }

    fn selected_queue(&mut self) -> Option<&mut Queue> {
        let index = usize::try_from(self.queue_sel).ok()?;
        self.queues.get_mut(index)
    }

    fn read_register(&self, offset: u64) -> u32 {
        let queue = usize::try_from(self.queue_sel).ok().and_then(|i| self.queues.get(i));
        match offset {
            reg::MAGIC => MAGIC,
            reg::VERSION => VERSION,
            reg::DEVICE_ID => self.device.device_type(),
            reg::VENDOR_ID => VENDOR,
            reg::DEVICE_FEATURES => match self.device_features_sel {
                0 => low(self.device.features()),
                1 => high(self.device.features()),
                _ => 0,
            },
            reg::QUEUE_NUM_MAX => queue.map_or(0, |q| u32::from(q.max_size())),
            reg::QUEUE_READY => queue.map_or(0, |q| u32::from(q.ready())),
            reg::INTERRUPT_STATUS => self.interrupt.status(),
            reg::STATUS => self.status,
            reg::CONFIG_GENERATION => self.config_generation,
            _ => 0,
        }
    }

    fn write_register(&mut self, offset: u64, value: u32) {
        let setting_up = self.status & status::DRIVER_OK == 0;
        let negotiating = setting_up && self.status & status::FEATURES_OK == 0;
        match offset {
            reg::DEVICE_FEATURES_SEL => self.device_features_sel = value,
            reg::DRIVER_FEATURES_SEL => self.driver_features_sel = value,
            reg::DRIVER_FEATURES if negotiating => match self.driver_features_sel {
                0 => self.acked_features = (self.acked_features & !0xffff_ffff) | u64::from(value),
                1 => {
                    self.acked_features = (self.acked_features & 0xffff_ffff) | (u64::from(value) << 32);
                }
                _ => {}
            },
            reg::QUEUE_SEL => self.queue_sel = value,
            reg::QUEUE_NUM if setting_up => {
                if let (Some(q), Ok(size)) = (self.selected_queue(), u16::try_from(value)) {
                    q.set_size(size);
                }
            }
            reg::QUEUE_READY if setting_up => {
                if let Some(q) = self.selected_queue() {
                    q.set_ready(value == 1);
                }
            }
            reg::QUEUE_DESC_LOW | reg::QUEUE_DESC_HIGH if setting_up => {
                let (lo, hi) = split(offset == reg::QUEUE_DESC_LOW, value);
                if let Some(q) = self.selected_queue() {
                    q.set_desc_table_address(lo, hi);
                }
            }
            reg::QUEUE_DRIVER_LOW | reg::QUEUE_DRIVER_HIGH if setting_up => {
                let (lo, hi) = split(offset == reg::QUEUE_DRIVER_LOW, value);
                if let Some(q) = self.selected_queue() {
                    q.set_avail_ring_address(lo, hi);
                }
            }
            reg::QUEUE_DEVICE_LOW | reg::QUEUE_DEVICE_HIGH if setting_up => {
                let (lo, hi) = split(offset == reg::QUEUE_DEVICE_LOW, value);
                if let Some(q) = self.selected_queue() {
                    q.set_used_ring_address(lo, hi);
                }
            }
            reg::QUEUE_NOTIFY => self.notify(value),
            reg::INTERRUPT_ACK => self.interrupt.ack(value),
            reg::STATUS => self.write_status(value),
            _ => {}
        }
    }

    /// A notify KVM did not consume (no ioeventfd, or unit tests): signal the queue's
    /// eventfd by hand so the device thread sees it either way.
    fn notify(&self, queue: u32) {
        let event = usize::try_from(queue).ok().and_then(|i| self.queue_events.get(i));
        if let Some(event) = event {
            // A full counter already means "notified".
            let _ = event.write(1);
        }
    }

    fn write_status(&mut self, value: u32) {
        if value == 0 {
            self.reset();
            return;
        }
        let added = value & !self.status;
        if value & self.status != self.status {
            // Clearing bits other than by a reset is not allowed; ignore.
            return;
        }
        let mut value = value;
        if added & status::FEATURES_OK != 0 && !self.features_acceptable() {
            value &= !status::FEATURES_OK;
        }
        let starting = added & status::DRIVER_OK != 0 && !self.activated;
        if starting && (value & status::FEATURES_OK == 0 || !self.activate()) {
            value = (value & !status::DRIVER_OK) | status::DEVICE_NEEDS_RESET;
        }
        self.status = value;
    }

    fn features_acceptable(&self) -> bool {
        let offered = self.device.features();
        self.acked_features & !offered == 0 && self.acked_features & VIRTIO_F_VERSION_1 != 0
    }

    fn activate(&mut self) -> bool {
        let valid = self.queues.iter().all(|q| !q.ready() || q.is_valid(&self.mem));
        if !valid {
            return false;
        }
        let events = self.queue_events.iter().map(EventFd::try_clone).collect::<io::Result<Vec<_>>>();
        let Ok(queue_events) = events else {
            return false;
        };
        let fresh = match new_queues(self.device.queue_max_sizes()) {
            Ok(fresh) => fresh,
            Err(_) => return false,
        };
        let ctx = ActivateContext {
            mem: self.mem.clone(),
            queues: std::mem::replace(&mut self.queues, fresh),
            queue_events,
            interrupt: self.interrupt.clone(),
            acked_features: self.acked_features,
        };
        self.activated = self.device.activate(ctx).is_ok();
        self.activated
    }

    fn reset(&mut self) {
        if self.activated {
            self.device.reset();
            self.activated = false;
        }
        for q in &mut self.queues {
            q.reset();
        }
        for event in &self.queue_events {
            let _ = event.read();
        }
        self.interrupt.clear();
        self.status = 0;
        self.acked_features = 0;
        self.queue_sel = 0;
        self.device_features_sel = 0;
        self.driver_features_sel = 0;
    }
}

fn new_queues(sizes: &[u16]) -> Result<Vec<Queue>, virtio_queue::Error> {
    sizes.iter().map(|size| Queue::new(*size)).collect()
}

fn low(v: u64) -> u32 {
    (v & 0xffff_ffff) as u32
}

fn high(v: u64) -> u32 {
    (v >> 32) as u32
}

fn split(is_low: bool, value: u32) -> (Option<u32>, Option<u32>) {
    if is_low {
        (Some(value), None)
    } else {
        (None, Some(value))
    }
}

impl MmioDevice for MmioTransport {
    fn read(&mut self, offset: u64, data: &mut [u8]) {
        if offset >= reg::CONFIG {
            self.device.read_config(offset - reg::CONFIG, data);
            return;
        }
        match data.len() {
            4 if offset % 4 == 0 => data.copy_from_slice(&self.read_register(offset).to_le_bytes()),
            _ => data.fill(0),
        }
    }

    fn write(&mut self, offset: u64, data: &[u8]) {
        if offset >= reg::CONFIG {
            if self.status & status::DRIVER != 0 {
                self.device.write_config(offset - reg::CONFIG, data);
                self.config_generation = self.config_generation.wrapping_add(1);
            }
            return;
        }
        if let (Ok(bytes), true) = (<[u8; 4]>::try_from(data), offset % 4 == 0) {
            self.write_register(offset, u32::from_le_bytes(bytes));
        }
    }
}

#[cfg(test)]
#[path = "mmio_tests.rs"]
mod tests;
